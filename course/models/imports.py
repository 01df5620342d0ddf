"""A list brought in from a file (course/imports.py): the file as it came, how its columns map, what
consent was recorded for it, and how far its rows have gone; and each row it refused, with why.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column

from course.models.base import Base, Id, enum_values


class ImportState(StrEnum):
    MAPPING = "mapping"  # uploaded: its columns are being chosen, its first rows previewed
    QUEUED = "queued"  # started: waiting for the beat's import runner
    RUNNING = "running"  # rows going in, a chunk at a time (lines_done: how far)
    DONE = "done"
    FAILED = "failed"  # the file could not be read after all (problem says why); what went in stays


class ImportRefusal(StrEnum):
    """Why a row of a file did not add a person (each with its line in the report)."""

    INVALID = "invalid"  # not an address, or a name, zone or time that is not one
    DUPLICATE = "duplicate"  # the address came earlier in the same file
    ALREADY = "already"  # on the course already (signed up, imported before, left: never re-added)
    SUPPRESSED = "suppressed"  # on the suppression list: bounced, complained, or erased their data


class ListImport(Base):
    __tablename__ = "imports"
    __table_args__ = (CheckConstraint(f"state IN ({enum_values(ImportState)})", name="state"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("studio_users.id", ondelete="SET NULL"))
    user_email: Mapped[str] = mapped_column(String(320))  # kept when the account is gone
    file_name: Mapped[str] = mapped_column(String(200))
    source: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # the file as uploaded (UTF-8 CSV)
    delimiter: Mapped[str] = mapped_column(String(1), default=",")
    header: Mapped[bool] = mapped_column(default=True)
    # Which column (from 0) holds each value; None: none does (the defaults below apply).
    email_column: Mapped[int | None] = mapped_column(Integer)
    name_column: Mapped[int | None] = mapped_column(Integer)
    timezone_column: Mapped[int | None] = mapped_column(Integer)
    send_time_column: Mapped[int | None] = mapped_column(Integer)
    default_timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    default_send_time: Mapped[time] = mapped_column(Time(), default=time(8, 0))
    # Consent the operator recorded for the whole list (what they signed up on, and when): with it the
    # people start the course; without it each gets the double opt-in confirmation first.
    consent_source: Mapped[str | None] = mapped_column(String(200))
    consent_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(20), default=ImportState.MAPPING.value)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    lines_done: Mapped[int] = mapped_column(Integer, default=0)  # data rows taken, in the file's order
    added: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    problem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class ImportRefusalRow(Base):
    __tablename__ = "import_refusals"

    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)  # the file's line (the header is line 1)
    address: Mapped[str | None] = mapped_column(String(320))  # as written, cut to 320 characters
    reason: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(300))
