"""The studio: its users, its audit log, template versions and their publications.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "studio_users",
        sa.Column("id", Id, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("courses", sa.String(length=1000), nullable=False),
        sa.Column("session_generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('editor', 'publisher')", name=op.f("ck_studio_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_users")),
        sa.UniqueConstraint("email", name=op.f("uq_studio_users_email")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("user_email", sa.String(length=320), nullable=False),
        sa.Column("course_slug", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["studio_users.id"], name=op.f("fk_audit_log_user_id_studio_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_course_created", "audit_log", ["course_slug", "created_at"])
    op.create_table(
        "template_versions",
        sa.Column("id", Id, nullable=False),
        sa.Column("course_slug", sa.String(length=100), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_versions")),
        sa.UniqueConstraint("course_slug", "item", "number", name="uq_template_versions_course_item_number"),
    )
    op.create_table(
        "template_drafts",
        sa.Column("id", Id, nullable=False),
        sa.Column("course_slug", sa.String(length=100), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_drafts")),
        sa.UniqueConstraint("course_slug", "item", name="uq_template_drafts_course_item"),
    )
    op.create_table(
        "template_previews",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("email", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("preview", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["studio_users.id"], name=op.f("fk_template_previews_user_id_studio_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_template_previews")),
    )
    op.create_table(
        "template_publications",
        sa.Column("id", Id, nullable=False),
        sa.Column("course_slug", sa.String(length=100), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("version_id", Id, nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["template_versions.id"],
            name=op.f("fk_template_publications_version_id_template_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_publications")),
    )
    op.create_index("ix_template_publications_course_item", "template_publications", ["course_slug", "item", "id"])


def downgrade() -> None:
    op.drop_index("ix_template_publications_course_item", table_name="template_publications")
    op.drop_table("template_publications")
    op.drop_table("template_previews")
    op.drop_table("template_drafts")
    op.drop_table("template_versions")
    op.drop_index("ix_audit_log_course_created", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("studio_users")
