"""Studio sessions kept on the server: the cookie holds a random token, a row its hash, so that signing out
ends the session for every copy of the cookie, a session has an absolute lifetime from its sign-in, and a
password change, a reset or a disabled account end every other session. Studio accounts can be disabled.

Sessions signed in before this revision have no row: their people sign in again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("studio_users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "studio_sessions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_why", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["studio_users.id"], name=op.f("fk_studio_sessions_user_id_studio_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_studio_sessions_token_hash")),
    )
    op.create_index("ix_studio_sessions_user_id", "studio_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_studio_sessions_user_id", table_name="studio_sessions")
    op.drop_table("studio_sessions")
    with op.batch_alter_table("studio_users") as batch:
        batch.drop_column("disabled_at")
