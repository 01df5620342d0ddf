"""A feedback notice says whether it was proven: it came from an authenticated provider, or it returned an
email we sent to that very address. Only a proven notice acts; an unproven one (the bounce mailbox is
anyone's to write to) is kept for the record and is no longer counted towards the soft-bounce limit.

Notices recorded before this revision: those from the mailbox that returned none of our emails (no
delivery) were unproven; everything else was proven.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("feedback_notices", sa.Column("proven", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.execute(
        "UPDATE feedback_notices SET proven = false "
        "WHERE source = 'mailbox' AND delivery_id IS NULL AND kind <> 'unsubscribe'"
    )


def downgrade() -> None:
    with op.batch_alter_table("feedback_notices") as batch:
        batch.drop_column("proven")
