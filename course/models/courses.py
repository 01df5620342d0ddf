"""The courses a deployment runs: those shipped with it (``course/curricula/``) and those made in the studio.

A course's data (its emails, their waits and words, its theme) is versioned with its templates
(course/catalog.py); this table only says that a course made in the studio exists, who made it, and
whether it was archived.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from course.models.base import Base


class CourseEntry(Base):
    __tablename__ = "courses"

    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(320))
    # Where it was copied from (none: blank).
    copied_from: Mapped[str | None] = mapped_column(String(100))
