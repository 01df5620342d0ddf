"""The images marketers upload in the studio for their emails: stored in the database, served by the app.

An email names an image by its stored name (its content's hash and its type, ``3f9a….png``): the same image
uploaded twice is one row, and a name never changes meaning, so the app serves it to be cached for good.
Images live here rather than on a disk so that every web process of a fleet serves the same ones, and a
backup of the database is a backup of the emails (web/media.py checks and serves them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from course.models.base import Base


class MediaFile(Base):
    __tablename__ = "media_files"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    # The course it was first uploaded for, and by whom (the audit log has each upload).
    course_slug: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(320))
