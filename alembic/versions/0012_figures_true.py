"""Every figure true: what each publication changed, and clicks made while their email was being sent.

- ``template_publications.contents`` keeps what each email of the course said once the publication was
  live (a digest per email) and ``changed`` the emails it changed, so that the insights split an email
  by the changes that touched it, not by every release of the course (emails/store.py).
- A click recorded while its email's chunk was still being handed to the mail server (the delivery was
  not yet recorded as sent, or was recorded within seconds after the click) was counted as a person's;
  it was a scanner's, and now says so (course/engagement.py, web/scanners.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 04:30:00

"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The delay a person needs at least to open an email and tap a link (web/scanners.py HUMAN_DELAY_SECONDS).
HUMAN_DELAY = timedelta(seconds=10)
CLICKS = ("click", "consultation", "resource")
BATCH = 5000


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def upgrade() -> None:
    op.add_column("template_publications", sa.Column("contents", sa.Text(), nullable=True))
    op.add_column("template_publications", sa.Column("changed", sa.Text(), nullable=True))
    connection = op.get_bind()
    # Only clicks judged a person's without a time since delivery can have been made while sending: few.
    candidates = connection.execute(
        sa.text(
            "SELECT e.id, e.created_at, d.sent_at FROM events AS e"
            " JOIN deliveries AS d ON d.subscriber_id = e.subscriber_id AND d.enrolment = e.enrolment"
            "  AND d.step = e.step"
            " WHERE e.kind IN ('click', 'consultation', 'resource') AND e.automated = :no"
            "  AND e.seconds_since_delivery IS NULL AND e.step IS NOT NULL AND d.sent_at IS NOT NULL"
        ),
        {"no": False},
    ).all()
    scanners = [event_id for event_id, clicked, sent in candidates if _aware(clicked) < _aware(sent) + HUMAN_DELAY]
    for start in range(0, len(scanners), BATCH):
        connection.execute(
            sa.text("UPDATE events SET automated = :yes WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"yes": True, "ids": scanners[start : start + BATCH]},
        )


def downgrade() -> None:
    with op.batch_alter_table("template_publications") as batch:
        batch.drop_column("changed")
        batch.drop_column("contents")
