"""The studio's people: accounts, their sessions, and the audit log of what they did."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from course.models.base import Base, Id, enum_values


class StudioRole(StrEnum):
    EDITOR = "editor"  # saves drafts, previews, test-sends
    PUBLISHER = "publisher"  # also publishes and rolls back


class StudioUser(Base):
    """Someone at the practice who edits the emails in the studio. Not a subscriber: a subscriber's
    signed link never opens the studio."""

    __tablename__ = "studio_users"
    __table_args__ = (CheckConstraint(f"role IN ({enum_values(StudioRole)})", name="role"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # argon2id (argon2-cffi); None until the person sets one through their one-time sign-in link.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default=StudioRole.EDITOR.value)
    # Which courses they may edit, comma-separated slugs ("*": every course).
    courses: Mapped[str] = mapped_column(String(1000), default="*")
    # Part of every session cookie: changing the password or signing out everywhere bumps it, and
    # every older cookie stops working.
    session_generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    last_sign_in_at: Mapped[datetime | None]
    # `course studio disable-user`: no sign-in, every session ended; `enable-user` clears it.
    disabled_at: Mapped[datetime | None]

    def may_edit(self, course_slug: str) -> bool:
        allowed = {slug.strip() for slug in self.courses.split(",")}
        return "*" in allowed or course_slug in allowed

    @property
    def may_publish(self) -> bool:
        return self.role == StudioRole.PUBLISHER.value


class StudioSession(Base):
    """One signed-in browser: the cookie holds a random token, this row its hash. A session ends on sign-out,
    a password change or reset, or when the account is disabled, for every copy of the cookie; it also
    ends on its own after ``expires_at`` (from sign-in: it never slides) or when left idle too long."""

    __tablename__ = "studio_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("studio_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_why: Mapped[str | None] = mapped_column(String(40))


class AuditEntry(Base):
    """Who did what in the studio, and when: every sign-in, save, publish, roll-back and test send."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_course_created", "course_slug", "created_at"),
        Index("ix_audit_log_item", "item"),  # what was done to one person (their story, course/audience.py)
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("studio_users.id", ondelete="SET NULL"))
    user_email: Mapped[str] = mapped_column(String(320))  # kept when the account is gone
    course_slug: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    item: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
