"""Each link a subscriber's clicks were recorded on, with when the last was and how many are kept:
``clicked_links``. The click statement records a click only when it can move that row on, so that
simultaneous requests for one link (a mail scanner opens every link at once, several times) are one click;
before, each statement looked for a recent click in its own snapshot, and requests that raced all found
none.

The rows are made from the clicks recorded so far (one pass over the events of the three kinds of click).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clicked_links",
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("enrolment", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("automated", sa.Boolean(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_clicked_links_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "subscriber_id",
            "enrolment",
            "kind",
            "step",
            "value",
            "automated",
            name="uq_clicked_links_link",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.execute(
        "INSERT INTO clicked_links (subscriber_id, enrolment, kind, step, value, automated, last_at, kept)"
        " SELECT subscriber_id, coalesce(enrolment, 1), kind, step, value, automated, max(created_at), count(*)"
        " FROM events WHERE kind IN ('click', 'consultation', 'resource') AND subscriber_id IS NOT NULL"
        " GROUP BY subscriber_id, coalesce(enrolment, 1), kind, step, value, automated"
    )


def downgrade() -> None:
    op.drop_table("clicked_links")
