"""Bounces, complaints and unsubscribes reported after SMTP accepted the message (provider webhooks,
the bounce mailbox), one row per notice, so that a notice told twice counts once and soft bounces can
be counted per address.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 06:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_notices",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=True),
        sa.Column("subscriber_id", sa.BigInteger(), nullable=True),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('hard-bounce', 'soft-bounce', 'complaint', 'unsubscribe')", name=op.f("ck_feedback_notices_kind")
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_feedback_notices_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_feedback_notices_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_notices")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_feedback_notices_fingerprint")),
    )
    op.create_index(
        "ix_feedback_notices_address_kind_created", "feedback_notices", ["email_hash", "kind", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_notices_address_kind_created", table_name="feedback_notices")
    op.drop_table("feedback_notices")
