"""Several courses in one deployment: the courses made in the studio.

A course shipped with the deployment (``course/curricula/<slug>.yaml``) needs no row: it is known by its
file. A course made in the studio is a row here; its data is the ``_course.yaml`` item of its templates.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("copied_from", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_courses")),
    )


def downgrade() -> None:
    op.drop_table("courses")
