"""The studio's list of a course's people (course/audience.py): the indexes its pages read.

- ``ix_subscribers_course_created``: a course's people in sign-up order, a page at a time from where the
  last page ended (keyset).
- ``ix_subscribers_search``: a trigram index (PostgreSQL's ``pg_trgm``, a trusted extension its owner may
  create) on the address and the name, so that a search for any part of either reads the index, not the
  table.
- ``ix_progress_last_sent``: the people in the order of their last email. ``progress`` is the table the
  claim rewrites at every email; this index is one more entry a rewrite writes (its cost is measured in
  docs/performance.md).
- ``ix_audit_log_item``: what the studio did for one person, for their story.

Building them reads each table once (seconds a million rows) while writes to it wait.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 17:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index("ix_subscribers_course_created", "subscribers", ["course_slug", "created_at", "id"])
    op.create_index(
        "ix_subscribers_search", "subscribers", ["email", "first_name"], postgresql_using="gin",
        postgresql_ops={"email": "gin_trgm_ops", "first_name": "gin_trgm_ops"},
    )  # fmt: skip
    op.create_index("ix_progress_last_sent", "progress", ["last_sent_at", "subscriber_id"])
    op.create_index("ix_audit_log_item", "audit_log", ["item"])


def downgrade() -> None:
    # The extension stays: other schemas of the database may use it.
    op.drop_index("ix_audit_log_item", table_name="audit_log")
    op.drop_index("ix_progress_last_sent", table_name="progress")
    op.drop_index("ix_subscribers_search", table_name="subscribers")
    op.drop_index("ix_subscribers_course_created", table_name="subscribers")
