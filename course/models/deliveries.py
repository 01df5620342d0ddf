"""The send path's tables: each email to each subscriber (a delivery), the pauses a mail server asked for,
and the suppression list.
"""

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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from course.models.base import Base, Id, enum_values, same_as_created
from course.models.subscribers import SignupRequest, Subscriber


class DeliveryState(StrEnum):
    CLAIMED = "claimed"  # created by the beat, waiting for a worker (or for its retry time)
    SENDING = "sending"  # a worker is handing it to SMTP
    SENT = "sent"
    FAILED = "failed"  # permanently refused
    SKIPPED = "skipped"  # not sent on purpose: unsubscribed, suppressed, paused in the meantime


class Delivery(Base):
    """One email to one subscriber. A course step is delivered at most once per time through the course:
    UNIQUE(subscriber, enrolment, step).

    Confirmations have no step (NULL), so a confirmation can be sent again after an hour.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "enrolment", "step", name="uq_deliveries_subscriber_enrolment_step"),
        CheckConstraint(f"state IN ({enum_values(DeliveryState)})", name="state"),
        Index("ix_deliveries_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # Found by the unique (subscriber_id, enrolment, step) index: no index of its own (migration 0005).
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    enrolment: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    step: Mapped[int | None] = mapped_column(Integer)
    email: Mapped[str] = mapped_column(String(40))  # the template folder: "day-03", "confirmation"
    template_version: Mapped[str | None] = mapped_column(String(32))
    # A confirmation's sign-up request: its link confirms that request, its greeting is that request's name.
    signup_request_id: Mapped[int | None] = mapped_column(ForeignKey("signup_requests.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.CLAIMED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]  # not attempted before this
    lease_until: Mapped[datetime | None]  # while queued or sending; after it, taken to be abandoned
    # While sending, on PostgreSQL: the key of the advisory lock its worker holds for the batch
    # (workers/liveness.py). A lock goes with its connection, so a worker that dies frees its key at once.
    sender_key: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(255))
    last_reply: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=same_as_created)

    subscriber: Mapped[Subscriber] = relationship(back_populates="deliveries")
    signup_request: Mapped[SignupRequest | None] = relationship()


class Suppression(Base):
    """Addresses not to be mailed, by a keyed hash (:func:`email_hash`) so that the list itself holds no
    address and cannot be tested against one without the key.

    ``bounce`` and ``complaint`` are for good; ``erased`` stops accidental mail to a person who deleted
    their data, and is lifted when that person signs up again and confirms.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(30))  # bounce, complaint, erased
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class SendingPause(Base):
    """Sending is paused while a row's ``until`` lies ahead: the provider refused us (5.7.x)."""

    __tablename__ = "sending_pauses"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    until: Mapped[datetime]
