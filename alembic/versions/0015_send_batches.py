"""The send queue moves into the database: ``send_batches``, each a worker's batch, holding the lease and
the worker's lock that each delivery held before. A course step the beat claims is a batch entry until it
is sent, so that sending it costs two row writes (the claim's subscriber update, the sent record's
insert); deliveries keep only the batch that carries them (``batch_id``).

The index of deliveries by state and due time becomes one of the waiting deliveries alone (building it
reads the table once, a few seconds a million rows, while writes to it wait: upgrade before the morning).

A delivery a worker of the previous version had taken (``sending``) goes back to ``claimed``: the beat
puts it in a batch at its first tick (its worker was stopped for the upgrade; a duplicate of what that
worker had sent but not recorded is the same bound as a worker stopped at any time).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 15:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_batches",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("course_slug", sa.String(length=100), nullable=True),
        sa.Column("release", sa.String(length=32), nullable=True),
        sa.Column("subscriber_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("enrolments", postgresql.ARRAY(sa.Integer()), nullable=True),
        sa.Column("steps", postgresql.ARRAY(sa.Integer()), nullable=True),
        sa.Column("emails", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("delivery_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("lane", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sender_key", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint("(subscriber_ids IS NULL) <> (delivery_ids IS NULL)", name=op.f("ck_send_batches_one_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_batches")),
    )
    op.create_index(
        "ix_send_batches_waiting", "send_batches", ["lane", "id"], postgresql_where=sa.text("taken_at IS NULL")
    )
    op.execute("UPDATE deliveries SET state = 'claimed' WHERE state = 'sending'")
    # The beat reads only the deliveries waiting in claimed: the index holds them alone, and a course
    # email's record, inserted as sent, writes no entry in it.
    op.drop_index("ix_deliveries_state_due", table_name="deliveries")
    op.create_index("ix_deliveries_waiting", "deliveries", ["due_at"], postgresql_where=sa.text("state = 'claimed'"))
    op.add_column("deliveries", sa.Column("batch_id", sa.BigInteger(), nullable=True))
    op.drop_column("deliveries", "sender_key")
    op.drop_column("deliveries", "lease_until")


def downgrade() -> None:
    op.drop_index("ix_deliveries_waiting", table_name="deliveries")
    op.create_index("ix_deliveries_state_due", "deliveries", ["state", "due_at"], unique=False)
    op.add_column("deliveries", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("deliveries", sa.Column("sender_key", sa.Integer(), nullable=True))
    op.drop_column("deliveries", "batch_id")
    op.drop_index("ix_send_batches_waiting", table_name="send_batches")
    op.drop_table("send_batches")
