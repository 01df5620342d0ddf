"""The course's figures per sign-up week, summed by the beat for the studio's insights page: reading
them never aggregates the deliveries and events themselves.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 01:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "insight_counts",
        sa.Column("course_slug", sa.String(length=100), nullable=False),
        sa.Column("cohort", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(length=40), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "course_slug", "cohort", "measure", "step", "version", "key", name=op.f("pk_insight_counts")
        ),
    )
    op.create_table(
        "insight_cohorts",
        sa.Column("course_slug", sa.String(length=100), nullable=False),
        sa.Column("cohort", sa.Date(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("course_slug", "cohort", name=op.f("pk_insight_cohorts")),
    )


def downgrade() -> None:
    op.drop_table("insight_cohorts")
    op.drop_table("insight_counts")
