"""The images uploaded in the studio for the emails' image blocks, served by the app under /media/; and
what the check of a draft found, kept with it (the editor shows it after the save's redirect).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 08:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_files",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("course_slug", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_media_files")),
    )
    op.add_column("template_drafts", sa.Column("checked", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("template_drafts", "checked")
    op.drop_table("media_files")
