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
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Time,
    UniqueConstraint,
    join,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

if TYPE_CHECKING:
    from course.models.deliveries import Delivery

from course.models.base import Base, Id, UTCDateTime, enum_values, same_as_created


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


# Who a subscriber is (their address, name, time zone and hour, consent): written when they sign up or
# change their details.
subscribers = Table(
    "subscribers",
    Base.metadata,
    Column("id", Id, primary_key=True),
    Column("course_slug", String(100), nullable=False),
    Column("email", String(320), nullable=False),  # normalised: see subscriptions.normalise_email
    Column("first_name", String(100)),
    Column("timezone", String(64), nullable=False),  # an IANA name
    Column("send_time", Time(), nullable=False, default=time(8, 0)),  # local, preferred
    Column("confirmation_sent_at", UTCDateTime()),
    Column("confirmed_at", UTCDateTime()),
    Column("unsubscribed_at", UTCDateTime()),
    # When the last link to their data that was used had been made (web/preferences.py): that link and
    # every older one are used up.
    Column("data_link_used", UTCDateTime()),
    # Consent, as the law asks us to be able to show it: when, from where, with what, on which form.
    Column("consent_at", UTCDateTime()),
    Column("consent_ip", String(45)),
    Column("consent_user_agent", String(500)),
    Column("consent_form", String(100)),
    # The list import that added them (course/imports.py); None: they signed up themselves.
    Column("import_id", Id, ForeignKey("imports.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, default=same_as_created),
    UniqueConstraint("course_slug", "email", name="uq_subscribers_course_email"),
    # The studio's list of a course's people (course/audience.py): in sign-up order, a page at a time; and
    # a search for any part of an address or a name (trigrams: PostgreSQL's pg_trgm).
    Index("ix_subscribers_course_created", "course_slug", "created_at", "id"),
    Index(
        "ix_subscribers_search",
        "email",
        "first_name",
        postgresql_using="gin",
        postgresql_ops={"email": "gin_trgm_ops", "first_name": "gin_trgm_ops"},
    ),
)

# Where each subscriber is in the course, and when their next email goes: the columns the beat's claim
# and the workers' records write every day, in a narrow table of their own. A subscriber's row there is
# rewritten at each email (its due time is indexed, so PostgreSQL writes a new version and its index
# entries); beside the address and its unique index, that rewrite cost three times as much.
progress = Table(
    "progress",
    Base.metadata,
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(20), nullable=False, default=SubscriberStatus.PENDING.value),
    # Which time through the course this is: restarting the course starts enrolment 2, and so on.
    Column("enrolment", Integer, nullable=False, default=1, server_default="1"),
    # The last course step sent (0 the welcome); None before the welcome.
    Column("current_step", Integer),
    Column("next_send_at", UTCDateTime()),
    Column("last_sent_at", UTCDateTime()),
    Column("paused_until", UTCDateTime()),
    Column("completed_at", UTCDateTime()),
    CheckConstraint(f"status IN ({enum_values(SubscriberStatus)})", name="status"),
    # The beat's question, "who is due?", reads only this index.
    Index("ix_progress_due", "status", "next_send_at"),
    # The studio's list in the order of each person's last email (course/audience.py).
    Index("ix_progress_last_sent", "last_sent_at", "subscriber_id"),
)


class Subscriber(Base):
    """A subscriber: one object over their two rows (who they are, and where they are in the course). A
    change writes only the row whose columns it changes; a new subscriber writes both."""

    __table__ = join(subscribers, progress)

    id: Mapped[int] = column_property(subscribers.c.id, progress.c.subscriber_id)
    course_slug: Mapped[str]
    email: Mapped[str]
    first_name: Mapped[str | None]
    timezone: Mapped[str]
    send_time: Mapped[time]
    status: Mapped[str]
    enrolment: Mapped[int]
    current_step: Mapped[int | None]
    next_send_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    paused_until: Mapped[datetime | None]
    confirmation_sent_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    data_link_used: Mapped[datetime | None]
    consent_at: Mapped[datetime | None]
    consent_ip: Mapped[str | None]
    consent_user_agent: Mapped[str | None]
    consent_form: Mapped[str | None]
    import_id: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

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
