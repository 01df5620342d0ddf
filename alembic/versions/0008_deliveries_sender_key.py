"""Deliveries record which worker is sending them: the key of the PostgreSQL advisory lock that worker
holds for the batch (workers/liveness.py). The lock goes with the worker's connection, so when a worker
dies the beat sees its key free and hands its deliveries out again at the next tick, instead of waiting
for their lease to run out. A nullable column without a default: no table rewrite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 09:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("sender_key", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("deliveries", "sender_key")
