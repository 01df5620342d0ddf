"""Lists brought in from a file (course/imports.py): ``imports`` (the file, how its columns map, the consent
recorded for it, how far it got), ``import_refusals`` (each row refused, with why), and the import that
added a subscriber (``subscribers.import_id``).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("course_slug", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("user_email", sa.String(length=320), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.LargeBinary(), nullable=False),
        sa.Column("delimiter", sa.String(length=1), nullable=False),
        sa.Column("header", sa.Boolean(), nullable=False),
        sa.Column("email_column", sa.Integer(), nullable=True),
        sa.Column("name_column", sa.Integer(), nullable=True),
        sa.Column("timezone_column", sa.Integer(), nullable=True),
        sa.Column("send_time_column", sa.Integer(), nullable=True),
        sa.Column("default_timezone", sa.String(length=64), nullable=False),
        sa.Column("default_send_time", sa.Time(), nullable=False),
        sa.Column("consent_source", sa.String(length=200), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("lines_done", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('mapping', 'queued', 'running', 'done', 'failed')", name=op.f("ck_imports_state")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["studio_users.id"], name=op.f("fk_imports_user_id_studio_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    op.create_table(
        "import_refusals",
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"], ["imports.id"], name=op.f("fk_import_refusals_import_id_imports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("import_id", "line", name=op.f("pk_import_refusals")),
    )
    op.add_column("subscribers", sa.Column("import_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_subscribers_import_id_imports"), "subscribers", "imports", ["import_id"], ["id"],
                          ondelete="SET NULL")  # fmt: skip


def downgrade() -> None:
    op.drop_constraint(op.f("fk_subscribers_import_id_imports"), "subscribers", type_="foreignkey")
    op.drop_column("subscribers", "import_id")
    op.drop_table("import_refusals")
    op.drop_table("imports")
