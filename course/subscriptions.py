"""A subscriber's lifecycle: subscribe (pending), confirm (active), unsubscribe, pause and resume.

Double opt-in: subscribing sends a confirmation, at most one an hour per address; only a confirmed
subscriber receives the course. An active subscriber never gets a second course, a suppressed address
(bounced, complained, erased) is never mailed, and someone who unsubscribed comes back only through a
new confirmation. The caller commits, then enqueues the returned delivery ids.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from course.deliveries import (
    Timing,
    claim_next_step,
    is_suppressed,
    queue_confirmation,
    schedule_for,
)
from course.models import Delivery, DeliveryState, Event, EventKind, Subscriber, SubscriberStatus
from course.schedule import DEFAULT_SEND_TIME, UnknownTimezone, zone

CONFIRMATION_INTERVAL = timedelta(hours=1)
OutcomeT = TypeVar("OutcomeT")
MAX_FIRST_NAME_LENGTH = 100


class InvalidSubscription(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True)
class Consent:
    """What we keep to show that a person asked for the course."""

    at: datetime
    ip: str | None = None
    user_agent: str | None = None
    form: str | None = None


class SubscribeOutcome(StrEnum):
    CONFIRMATION_QUEUED = "confirmation-queued"
    CONFIRMATION_RECENTLY_SENT = "confirmation-recently-sent"  # within the hour: not another one
    ALREADY_SUBSCRIBED = "already-subscribed"  # active, paused or finished: not a second course
    SUPPRESSED = "suppressed"


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already-confirmed"
    NOT_PENDING = "not-pending"  # unsubscribed or bounced since: an old link does not bring them back


@dataclass(frozen=True)
class Result(Generic[OutcomeT]):
    outcome: OutcomeT
    subscriber_id: int | None = None
    delivery_ids: list[int] = field(default_factory=list)


def normalise_email(raw: str) -> str:
    """A comparable, sendable address: syntax checked (no DNS), domain in ASCII, lower case."""
    try:
        checked = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise InvalidSubscription("email", str(error)) from None
    return (checked.ascii_email or checked.normalized).lower()


def clean_first_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co") for char in raw if char not in " \t"):
        raise InvalidSubscription("first_name", "contains control characters")
    name = " ".join(raw.split())
    if len(name) > MAX_FIRST_NAME_LENGTH:
        raise InvalidSubscription("first_name", f"longer than {MAX_FIRST_NAME_LENGTH} characters")
    return name or None


def check_timezone(name: str) -> str:
    try:
        zone(name)
    except UnknownTimezone as error:
        raise InvalidSubscription("timezone", str(error)) from None
    return name


def subscribe(
    session: Session,
    *,
    course_slug: str,
    email: str,
    consent: Consent,
    timing: Timing,
    first_name: str | None = None,
    timezone: str = "UTC",
    send_time: time = DEFAULT_SEND_TIME,
) -> Result[SubscribeOutcome]:
    address = normalise_email(email)
    name = clean_first_name(first_name)
    timezone = check_timezone(timezone)
    now = consent.at
    if is_suppressed(session, address):
        return Result(SubscribeOutcome.SUPPRESSED)
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.course_slug == course_slug, Subscriber.email == address).with_for_update()
    )
    if subscriber is None:
        subscriber = Subscriber(course_slug=course_slug, email=address, timezone=timezone, created_at=now)
        try:
            with session.begin_nested():  # two sign-ups of one new address at once: the second loses here
                session.add(subscriber)
        except IntegrityError:
            return Result(SubscribeOutcome.CONFIRMATION_RECENTLY_SENT)
    elif subscriber.status in (
        SubscriberStatus.ACTIVE.value,
        SubscriberStatus.PAUSED.value,
        SubscriberStatus.COMPLETED.value,
    ):
        return Result(SubscribeOutcome.ALREADY_SUBSCRIBED, subscriber.id)
    elif subscriber.status in (SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value):
        return Result(SubscribeOutcome.SUPPRESSED, subscriber.id)
    elif subscriber.confirmation_sent_at is not None and now - subscriber.confirmation_sent_at < CONFIRMATION_INTERVAL:
        return Result(SubscribeOutcome.CONFIRMATION_RECENTLY_SENT, subscriber.id)

    # New, still pending, or unsubscribed: (back) to pending, and a confirmation on its way.
    subscriber.status = SubscriberStatus.PENDING.value
    subscriber.first_name = name
    subscriber.timezone = timezone
    subscriber.send_time = send_time
    subscriber.next_send_at = None
    subscriber.confirmation_sent_at = now  # counts from the request, so a flood cannot queue many
    subscriber.consent_at = consent.at
    subscriber.consent_ip = consent.ip
    subscriber.consent_user_agent = (consent.user_agent or "")[:500] or None
    subscriber.consent_form = consent.form
    delivery = queue_confirmation(session, subscriber, now, timing)
    session.flush()
    return Result(SubscribeOutcome.CONFIRMATION_QUEUED, subscriber.id, [delivery.id])


def confirm(session: Session, subscriber_id: int, *, now: datetime, timing: Timing) -> Result[ConfirmOutcome]:
    """Activate a pending subscriber; the welcome is claimed at once (the caller enqueues it)."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    if subscriber.status in (SubscriberStatus.ACTIVE.value, SubscriberStatus.PAUSED.value,
                             SubscriberStatus.COMPLETED.value):  # fmt: skip
        return Result(ConfirmOutcome.ALREADY_CONFIRMED, subscriber.id)
    if subscriber.status != SubscriberStatus.PENDING.value or is_suppressed(session, subscriber.email):
        return Result(ConfirmOutcome.NOT_PENDING, subscriber.id)
    subscriber.status = SubscriberStatus.ACTIVE.value
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    session.add(Event(subscriber_id=subscriber.id, kind=EventKind.CONFIRMED.value, created_at=now))
    if subscriber.current_step is None:
        delivery = claim_next_step(session, subscriber, now, timing)  # the welcome, right away
        session.flush()
        return Result(ConfirmOutcome.CONFIRMED, subscriber.id, [delivery.id] if delivery else [])
    # Back after an unsubscribe: resume where they left off, on a new local day.
    subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)
    session.flush()
    return Result(ConfirmOutcome.CONFIRMED, subscriber.id)


def unsubscribe(session: Session, subscriber_id: int, *, now: datetime) -> bool:
    """Stop everything at once, including deliveries claimed but not yet handed to SMTP. Idempotent."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    _skip_waiting_deliveries(session, subscriber.id, "unsubscribed", now)
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED.value:
        return False
    subscriber.status = SubscriberStatus.UNSUBSCRIBED.value
    subscriber.unsubscribed_at = now
    subscriber.next_send_at = None
    session.add(Event(subscriber_id=subscriber.id, kind=EventKind.UNSUBSCRIBED.value, created_at=now))
    return True


def pause(session: Session, subscriber_id: int, *, now: datetime, until: datetime | None = None) -> None:
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status != SubscriberStatus.ACTIVE.value:
        return
    subscriber.status = SubscriberStatus.PAUSED.value
    subscriber.paused_until = until
    subscriber.next_send_at = None
    _skip_waiting_deliveries(session, subscriber.id, "paused", now)


def resume(session: Session, subscriber_id: int, *, now: datetime, timing: Timing) -> None:
    """Carry on where they left off, one a day from a new local day: no burst of missed days."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status != SubscriberStatus.PAUSED.value:
        return
    subscriber.status = SubscriberStatus.ACTIVE.value
    subscriber.paused_until = None
    subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)


def restart(session: Session, subscriber_id: int, *, now: datetime, timing: Timing) -> bool:
    """Go through the course again from the welcome: a new enrolment, one email a day from a new local day."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status not in (
        SubscriberStatus.ACTIVE.value,
        SubscriberStatus.PAUSED.value,
        SubscriberStatus.COMPLETED.value,
    ):
        return False
    _skip_waiting_deliveries(session, subscriber.id, "restarted", now)
    subscriber.enrolment += 1
    subscriber.current_step = None
    subscriber.status = SubscriberStatus.ACTIVE.value
    subscriber.completed_at = None
    subscriber.paused_until = None
    subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)
    return True


def change_schedule(
    session: Session, subscriber_id: int, *, send_time: time, timezone: str, now: datetime, timing: Timing
) -> None:
    """A new hour or time zone, from the next email on; never two emails on one local day."""
    timezone = check_timezone(timezone)
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    subscriber.send_time = send_time
    subscriber.timezone = timezone
    if subscriber.status == SubscriberStatus.ACTIVE.value and subscriber.next_send_at is not None:
        subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)


def resume_ended_pauses(session: Session, *, now: datetime, timing: Timing, limit: int) -> int:
    """Subscribers who paused "for a week" come back by themselves when the week is over."""
    ended = session.scalars(
        select(Subscriber.id)
        .where(Subscriber.status == SubscriberStatus.PAUSED.value, Subscriber.paused_until <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for subscriber_id in ended:
        resume(session, subscriber_id, now=now, timing=timing)
    return len(ended)


def _skip_waiting_deliveries(session: Session, subscriber_id: int, reason: str, now: datetime) -> None:
    """Deliveries not yet handed to SMTP are skipped (a skipped step is claimed again on resuming)."""
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.state == DeliveryState.CLAIMED.value)
        .values(state=DeliveryState.SKIPPED.value, last_reply=reason, lease_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
