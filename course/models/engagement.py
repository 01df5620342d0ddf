"""What subscribers do: their clicks and other events, and their checklist answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from course.models.base import Base, Id, UTCDateTime


class EventKind(StrEnum):
    CONFIRMED = "confirmed"
    CLICK = "click"
    ANSWER = "answer"
    EXERCISE_DONE = "exercise-done"
    CONSULTATION = "consultation"
    RESOURCE = "resource"
    UNSUBSCRIBED = "unsubscribed"
    PAUSED = "paused"
    RESUMED = "resumed"  # after a pause: by the person, at the pause's end, or by the studio
    RESTARTED = "restarted"  # the course again from the welcome: a new time through
    BOUNCE = "bounce"
    COMPLAINT = "complaint"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_kind_created", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(30))
    enrolment: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[str | None] = mapped_column(String(200))
    automated: Mapped[bool] = mapped_column(Boolean, default=False)  # a scanner, not a person
    user_agent: Mapped[str | None] = mapped_column(String(500))
    seconds_since_delivery: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


# Each link a subscriber's clicks were recorded on (people and machines apart): when the last was, and
# how many are kept. The click statement (course/engagement/clicks.py) records a click only when it can
# move this row on (an upsert: PostgreSQL makes simultaneous clicks on one link wait for each other and
# decide on the row as the first left it), so that a link opened many times at once is one click, not as
# many as the requests that raced. The clicks themselves are the events.
clicked_links = Table(
    "clicked_links",
    Base.metadata,
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("enrolment", Integer, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("step", Integer),
    Column("value", String(200)),
    Column("automated", Boolean, nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    Column("kept", Integer, nullable=False),
    UniqueConstraint(
        "subscriber_id",
        "enrolment",
        "kind",
        "step",
        "value",
        "automated",
        name="uq_clicked_links_link",
        postgresql_nulls_not_distinct=True,
    ),
)


class Answer(Base):
    """A checklist answer. Every save is a new row, so a changed answer keeps its history; the latest
    row per (subscriber, enrolment, step) is the current answer."""

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_subscriber_step", "subscriber_id", "enrolment", "step", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    enrolment: Mapped[int] = mapped_column(Integer, default=1)
    step: Mapped[int] = mapped_column(Integer)  # which occurrence: the welcome's baseline, the completion's retake
    checklist: Mapped[str] = mapped_column(String(100))
    band: Mapped[str] = mapped_column(String(50))
    score: Mapped[int | None] = mapped_column(Integer)  # known when the items were ticked one by one
    items: Mapped[str | None] = mapped_column(Text)  # the ticked items' numbers, comma-separated
    created_at: Mapped[datetime]
