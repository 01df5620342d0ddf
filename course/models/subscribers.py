"""The subscribers' tables: who signed up for which course, where they are in it, and each sign-up request;
and the keyed hashes that stand for an address where the address itself must not be kept.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, time
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

if TYPE_CHECKING:
    from course.models.deliveries import Delivery

from course.models.base import Base, Id, enum_values, same_as_created


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # signed up, not yet confirmed
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


# Who is on the course (confirmed, and neither left nor stopped): their clicks count, they cannot sign up
# or confirm again, and they may start the course again.
ENROLLED = frozenset({SubscriberStatus.ACTIVE.value, SubscriberStatus.PAUSED.value, SubscriberStatus.COMPLETED.value})


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        UniqueConstraint("course_slug", "email", name="uq_subscribers_course_email"),
        CheckConstraint(f"status IN ({enum_values(SubscriberStatus)})", name="status"),
        # The beat's question, "who is due?", reads only this index.
        Index("ix_subscribers_due", "status", "next_send_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))  # normalised: see subscriptions.normalise_email
    first_name: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))  # an IANA name
    send_time: Mapped[time] = mapped_column(Time(), default=time(8, 0))  # local, preferred
    status: Mapped[str] = mapped_column(String(20), default=SubscriberStatus.PENDING.value)
    # Which time through the course this is: restarting the course starts enrolment 2, and so on.
    enrolment: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The last course step sent (0 the welcome); None before the welcome.
    current_step: Mapped[int | None] = mapped_column(Integer)
    next_send_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    paused_until: Mapped[datetime | None]
    confirmation_sent_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # When the last link to their data that was used had been made (web/preferences.py): that link and
    # every older one are used up.
    data_link_used: Mapped[datetime | None]
    # Consent, as the law asks us to be able to show it: when, from where, with what, on which form.
    consent_at: Mapped[datetime | None]
    consent_ip: Mapped[str | None] = mapped_column(String(45))
    consent_user_agent: Mapped[str | None] = mapped_column(String(500))
    consent_form: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=same_as_created)

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="subscriber", passive_deletes=True)


class SignupRequest(Base):
    """One sign-up form sent for an address, kept apart from the subscriber until the address confirms.

    Anyone can type anyone's address into the form, so a request changes nothing about an existing
    subscriber: its values (name, time, time zone, consent) are applied only when a confirmation link
    made for this very request is used. ``mailbox_hash`` (a keyed hash of the address without its
    +tag, see :func:`mailbox_hash`) paces confirmations per mailbox against list bombing.
    """

    __tablename__ = "signup_requests"
    __table_args__ = (Index("ix_signup_requests_mailbox_created", "mailbox_hash", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    mailbox_hash: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    send_time: Mapped[time] = mapped_column(Time())
    consent_ip: Mapped[str | None] = mapped_column(String(45))
    consent_user_agent: Mapped[str | None] = mapped_column(String(500))
    consent_form: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]


def email_hash(email: str, key: bytes) -> str:
    """HMAC-SHA256 of the normalised address: without the key, nobody can test an address against it."""
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


# Providers that ignore dots in the local part: a.b@gmail.com is ab@gmail.com.
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def mailbox(email: str) -> str:
    """The mailbox an address reaches: without its +tag, and without dots where the provider ignores them.

    ``victim+1@example.com`` and ``v.i.c.t.i.m@gmail.com`` are one inbox, so they share one pace of
    confirmations.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain == "googlemail.com":
        domain = "gmail.com"
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def mailbox_hash(email: str, key: bytes) -> str:
    return email_hash(mailbox(email), key)
