"""Deliveries lose their index on subscriber_id alone: the unique (subscriber_id, enrolment, step)
index starts with that column and answers the same lookups. Every delivery is written three times on
its way (claimed, sending, sent), and each write that changes its state updates every index: one index
fewer is a write fewer each time, on the busiest table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 21:50:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_subscriber_id", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"], unique=False)
