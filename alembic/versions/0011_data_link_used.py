"""Links to one's data work once: the link to download or erase one's data is only emailed on request,
works for an hour and once, so that a forwarded email does not hand over the reader's data. The subscriber
keeps when the last link used had been made: that link and every older one are used up.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("data_link_used", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("data_link_used")
