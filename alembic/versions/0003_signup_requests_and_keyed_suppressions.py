"""Sign-up requests kept apart from subscribers until confirmed; suppressions under a keyed hash.

A sign-up no longer writes over a subscriber's name, time, time zone and consent: each one is a row of
``signup_requests``, and a confirmation delivery names the request its link confirms.

Suppressions were keyed by a plain SHA-256 of the address, which anyone can test an address against.
They are re-keyed with the HMAC of ``course.models.email_hash`` under the key derived from SECRET_KEY,
so run this with the deployment's SECRET_KEY (``course db upgrade`` does). A bounce or complaint is
re-keyed from its subscriber's address; an erasure's address is gone with its subscriber, so its old
hash can only be dropped: it could not be matched any more, and a person who erased their data may
now sign up again anyway.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 16:20:00

"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from course.models.subscribers import email_hash
from course.settings import get_settings

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "signup_requests",
        sa.Column("id", Id, nullable=False),
        sa.Column("subscriber_id", Id, nullable=False),
        sa.Column("mailbox_hash", sa.String(length=64), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("send_time", sa.Time(), nullable=False),
        sa.Column("consent_ip", sa.String(length=45), nullable=True),
        sa.Column("consent_user_agent", sa.String(length=500), nullable=True),
        sa.Column("consent_form", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_signup_requests_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_requests")),
    )
    op.create_index("ix_signup_requests_mailbox_created", "signup_requests", ["mailbox_hash", "created_at"])
    op.create_index(op.f("ix_signup_requests_subscriber_id"), "signup_requests", ["subscriber_id"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("signup_request_id", Id, nullable=True))
        batch.create_foreign_key(
            batch.f("fk_deliveries_signup_request_id_signup_requests"),
            "signup_requests",
            ["signup_request_id"],
            ["id"],
            ondelete="SET NULL",
        )
    _rekey_suppressions()


def _rekey_suppressions() -> None:
    connection = op.get_bind()
    key = get_settings().address_key
    rows = connection.execute(sa.text("SELECT id, email_hash, reason FROM suppressions")).all()
    if not rows:
        return
    by_old_hash = {
        hashlib.sha256(email.strip().lower().encode()).hexdigest(): email
        for (email,) in connection.execute(sa.text("SELECT email FROM subscribers"))
    }
    for row_id, old_hash, _reason in rows:
        email = by_old_hash.get(old_hash)
        if email is None:
            connection.execute(sa.text("DELETE FROM suppressions WHERE id = :id"), {"id": row_id})
        else:
            connection.execute(
                sa.text("UPDATE suppressions SET email_hash = :hash WHERE id = :id"),
                {"hash": email_hash(email, key), "id": row_id},
            )


def downgrade() -> None:
    # The keyed hashes cannot be turned back into plain ones without the addresses: they stay keyed.
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("fk_deliveries_signup_request_id_signup_requests", type_="foreignkey")
        batch.drop_column("signup_request_id")
    op.drop_index(op.f("ix_signup_requests_subscriber_id"), table_name="signup_requests")
    op.drop_index("ix_signup_requests_mailbox_created", table_name="signup_requests")
    op.drop_table("signup_requests")
