"""The database: subscribers and their journey, deliveries, events, the suppression list.

Every timestamp is stored and returned as an aware UTC datetime.
No column takes the time of its own accord: whoever writes a row says when, by the clock it was given
(course/clock.py in production, the tests' own clock in tests), so that two clocks never meet in one
figure. A row written without its ``created_at`` is an error, not this machine's wall clock.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints, so that migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _same_as_created(context: Any) -> datetime:
    """``updated_at`` on insert: the row's own ``created_at`` (never the wall clock)."""
    return context.get_current_parameters()["created_at"]  # type: ignore[no-any-return]


Id = BigInteger()


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out; a naive one is refused rather than guessed at."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


def _values(enum: type[StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum)


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


class DeliveryState(StrEnum):
    CLAIMED = "claimed"  # created by the beat, waiting for a worker (or for its retry time)
    SENDING = "sending"  # a worker is handing it to SMTP
    SENT = "sent"
    FAILED = "failed"  # permanently refused
    SKIPPED = "skipped"  # not sent on purpose: unsubscribed, suppressed, paused in the meantime


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        UniqueConstraint("course_slug", "email", name="uq_subscribers_course_email"),
        CheckConstraint(f"status IN ({_values(SubscriberStatus)})", name="status"),
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
    updated_at: Mapped[datetime] = mapped_column(default=_same_as_created)

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


class Delivery(Base):
    """One email to one subscriber. A course step is delivered at most once per time through the course:
    UNIQUE(subscriber, enrolment, step).

    Confirmations have no step (NULL), so a confirmation can be sent again after an hour.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "enrolment", "step", name="uq_deliveries_subscriber_enrolment_step"),
        CheckConstraint(f"state IN ({_values(DeliveryState)})", name="state"),
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
    updated_at: Mapped[datetime] = mapped_column(default=_same_as_created)

    subscriber: Mapped[Subscriber] = relationship(back_populates="deliveries")
    signup_request: Mapped[SignupRequest | None] = relationship()


class EventKind(StrEnum):
    CONFIRMED = "confirmed"
    CLICK = "click"
    ANSWER = "answer"
    EXERCISE_DONE = "exercise-done"
    CONSULTATION = "consultation"
    RESOURCE = "resource"
    UNSUBSCRIBED = "unsubscribed"
    PAUSED = "paused"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"


class Bounce(StrEnum):
    """What a bounce event's value says happened to the email (``Event.value`` of a ``bounce``)."""

    REFUSED = "failed"  # refused for good at SMTP time, this one message (the course goes on)
    BAD_ADDRESS = "bad-address"  # 5.1.x at SMTP time: no such mailbox; the address is suppressed
    HARD = "hard"  # a hard bounce reported after the server accepted it: suppressed
    SOFT = "soft"  # a soft bounce reported after acceptance: the provider may still deliver it
    SOFT_LIMIT = "soft-limit"  # the soft bounce that reached the limit: suppressed

    @classmethod
    def undelivered(cls) -> tuple[str, ...]:
        """The email did not reach the reader."""
        return (cls.REFUSED.value, cls.BAD_ADDRESS.value, cls.HARD.value)

    @classmethod
    def stopping(cls) -> tuple[str, ...]:
        """The reader's address was stopped: they left the course by bouncing."""
        return (cls.BAD_ADDRESS.value, cls.HARD.value, cls.SOFT_LIMIT.value)


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


class FeedbackKind(StrEnum):
    HARD_BOUNCE = "hard-bounce"  # the address does not exist or refuses us for good
    SOFT_BOUNCE = "soft-bounce"  # full mailbox, greylisting, an outage: counts toward a threshold
    COMPLAINT = "complaint"  # the reader pressed "this is spam"
    UNSUBSCRIBE = "unsubscribe"  # mail to the List-Unsubscribe mailto: address, or the provider's own link


class FeedbackNotice(Base):
    """A bounce, complaint or unsubscribe that came back after SMTP accepted the message: from a
    provider's webhook (SES, Postmark, a generic JSON form) or from a bounce mailbox (DSN, ARF).

    ``fingerprint`` makes a notice told twice (SNS retries, a mailbox read again) count once. The address
    is kept as its keyed hash only, like the suppression list, and soft bounces are counted by it.
    """

    __tablename__ = "feedback_notices"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_values(FeedbackKind)})", name="kind"),
        Index("ix_feedback_notices_address_kind_created", "email_hash", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(20))  # ses, postmark, webhook, mailbox
    kind: Mapped[str] = mapped_column(String(20))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(Text)
    # From an authenticated provider, or returning an email we sent to that address: only then does it act
    # (course/feedback.py). An unproven notice is kept for the record and counted, never acted on.
    proven: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime]


class StudioRole(StrEnum):
    EDITOR = "editor"  # saves drafts, previews, test-sends
    PUBLISHER = "publisher"  # also publishes and rolls back


class StudioUser(Base):
    """Someone at the practice who edits the emails in the studio. Not a subscriber: a subscriber's
    signed link never opens the studio."""

    __tablename__ = "studio_users"
    __table_args__ = (CheckConstraint(f"role IN ({_values(StudioRole)})", name="role"),)

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
    __table_args__ = (Index("ix_audit_log_course_created", "course_slug", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("studio_users.id", ondelete="SET NULL"))
    user_email: Mapped[str] = mapped_column(String(320))  # kept when the account is gone
    course_slug: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    item: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class TemplateVersion(Base):
    """An immutable, numbered version of one template item of a course, made by publishing it.

    An item is what the studio edits as one: an email's folder ("welcome", "day", "day-07") or a
    shared file ("_base/footer.mjml"). ``files`` is a JSON object of the item's files by their path in
    the template set ("welcome/subject.txt": "..."). The repository's files are every item's version 0.
    """

    __tablename__ = "template_versions"
    __table_args__ = (
        UniqueConstraint("course_slug", "item", "number", name="uq_template_versions_course_item_number"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    item: Mapped[str] = mapped_column(String(200))
    number: Mapped[int] = mapped_column(Integer)
    files: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]


class TemplateDraft(Base):
    """The studio's work in progress on one item: saved, checked, not yet sent to anyone.

    ``revision`` counts the saves: a save must name the revision it started from, so that two people
    editing one item never silently overwrite each other (the second is refused and shown the first's).
    """

    __tablename__ = "template_drafts"
    __table_args__ = (UniqueConstraint("course_slug", "item", name="uq_template_drafts_course_item"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    item: Mapped[str] = mapped_column(String(200))
    files: Mapped[str] = mapped_column(Text)
    based_on: Mapped[int] = mapped_column(Integer)  # the live version number the draft started from
    revision: Mapped[int] = mapped_column(Integer, default=1)
    author: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[datetime]


class TemplatePreview(Base):
    """One rendering of unsaved studio text, kept a short while so that the preview's frames can load it
    from whichever web process answers (it is rendered once, in the bounded child)."""

    __tablename__ = "template_previews"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("studio_users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text)
    preview: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class TemplatePublication(Base):
    """What is live, as a history: every publish and roll-back of an item, in order.

    The latest row of an item says which of its versions is sent (none: the repository's files). The
    id of a course's latest row is its *release*: a delivery records the release it was claimed under,
    and is rendered with exactly the templates of that release.
    """

    __tablename__ = "template_publications"
    __table_args__ = (Index("ix_template_publications_course_item", "course_slug", "item", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    course_slug: Mapped[str] = mapped_column(String(100))
    item: Mapped[str] = mapped_column(String(200))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("template_versions.id"))
    action: Mapped[str] = mapped_column(String(20))  # publish, roll-back
    author: Mapped[str | None] = mapped_column(String(320))
    note: Mapped[str] = mapped_column(Text, default="")
    # What each email of the course said once this was live: a JSON object of a digest per email (of its
    # subject, preview, text and HTML for sample readers: emails/store.py), and the JSON list of the
    # emails this publication changed. None: published before these were kept (taken to change them all).
    contents: Mapped[str | None] = mapped_column(Text)
    changed: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    version: Mapped[TemplateVersion | None] = relationship()


class SendingPause(Base):
    """Sending is paused while a row's ``until`` lies ahead: the provider refused us (5.7.x)."""

    __tablename__ = "sending_pauses"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    until: Mapped[datetime]


class InsightCount(Base):
    """The course's figures, summed per sign-up week (cohort) by course/insights.py: how many did
    ``measure`` at ``step`` (-1: not a step's) with the email's ``version`` ('' none) and ``key`` (a
    checklist band, a movement between bands; '' none). Every figure is a count of things that belong to
    one cohort, so any set of cohorts is a sum of rows, whatever the size of the tables behind them."""

    __tablename__ = "insight_counts"

    course_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    cohort: Mapped[date] = mapped_column(Date, primary_key=True)  # the Monday of the sign-up week (UTC)
    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class InsightCohort(Base):
    """When each cohort's figures were last summed."""

    __tablename__ = "insight_cohorts"

    course_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    cohort: Mapped[date] = mapped_column(Date, primary_key=True)
    refreshed_at: Mapped[datetime]


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
