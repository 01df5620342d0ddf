"""Checklist answers with their history, and enrolments (a subscriber may go through the course again).

Events record the enrolment too, so that "exercise done" is once per time through the course.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:07:57.864843

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("enrolment", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("checklist", sa.String(length=100), nullable=False),
        sa.Column("band", sa.String(length=50), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("items", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_answers_subscriber_id_subscribers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    op.create_index(
        "ix_answers_subscriber_step", "answers", ["subscriber_id", "enrolment", "step", "created_at"], unique=False
    )
    # Batch mode: SQLite (the demo) cannot alter a constraint in place; PostgreSQL just runs the ALTERs.
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("enrolment", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("enrolment", sa.Integer(), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("enrolment", sa.Integer(), server_default="1", nullable=False))
        batch.drop_constraint("uq_deliveries_subscriber_step", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_subscriber_enrolment_step", ["subscriber_id", "enrolment", "step"]
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_subscriber_enrolment_step", type_="unique")
        batch.create_unique_constraint("uq_deliveries_subscriber_step", ["subscriber_id", "step"])
        batch.drop_column("enrolment")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("enrolment")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("enrolment")
    op.drop_index("ix_answers_subscriber_step", table_name="answers")
    op.drop_table("answers")
