"""The life of a delivery: claimed -> sending -> sent | failed | skipped, and the subscriber's journey with it.

Assume two of everything run at once: two beats, a task delivered twice, a worker killed mid-batch.
- Claiming due subscribers takes row locks with ``FOR UPDATE SKIP LOCKED`` and clears
  ``next_send_at`` in the same transaction, so a subscriber is claimed once per step; and
  UNIQUE(subscriber, step) stops a second delivery row even if that were to fail.
- A worker moves a delivery from ``claimed`` to ``sending`` with a conditional UPDATE and only sends
  what it moved, so a task delivered twice sends nothing twice.
- ``sending`` is committed before SMTP and ``sent`` after each chunk of SEND_CHUNK_SIZE messages
  (:func:`mark_sent_many`): a worker killed in between can duplicate only that chunk. A delivery whose
  lease ran out (queued but lost, or stuck in ``sending``) is handed out again by the beat, and on
  PostgreSQL so is one whose worker died while sending, at the next tick (course/senders.py); nothing is
  ever lost.

Functions here change the session; the caller commits, and enqueues only after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as time_of_day
from typing import cast

from sqlalchemy import Boolean, Table, and_, bindparam, case, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from course.curriculum import Course, load_course
from course.lifecycle import EmailKind, SuppressionReason, become, complete
from course.models import (
    Bounce,
    Delivery,
    DeliveryState,
    Event,
    EventKind,
    SendingPause,
    SignupRequest,
    Subscriber,
    SubscriberStatus,
    Suppression,
    email_hash,
)
from course.schedule import Schedule
from course.senders import sender_gone
from course.settings import Settings

log = logging.getLogger(__name__)

CONFIRMATION_EMAIL = EmailKind.CONFIRMATION.value
# Sent on request to the address on file: a fresh link to the preferences page (data download and erase).
PREFERENCES_LINK_EMAIL = EmailKind.PREFERENCES_LINK.value
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Timing:
    """The engine's settings (from Settings): its clock (day length, leases, backoff, pauses) and the
    key of the keyed address hashes (suppressions, mailbox pacing)."""

    address_key: bytes
    day_seconds: int | None = None
    lease_seconds: int = 600
    sending_pause_seconds: int = 900

    @classmethod
    def of(cls, settings: Settings) -> Timing:
        return cls(
            address_key=settings.address_key,
            day_seconds=settings.course_day_seconds,
            lease_seconds=settings.delivery_lease_seconds,
            sending_pause_seconds=settings.sending_pause_seconds,
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def retry_delay(self, attempts: int) -> timedelta:
        """Minutes at first, doubling, capped at an hour (or proportionally shorter with compressed days)."""
        base, cap = (60.0, 3600.0) if self.day_seconds is None else (self.day_seconds / 16, self.day_seconds / 4)
        return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def schedule_for(subscriber: Subscriber, timing: Timing) -> Schedule:
    return Schedule.for_subscriber(subscriber.timezone, subscriber.send_time, timing.day_seconds)


def suppression_reason(session: Session, email: str, key: bytes) -> str | None:
    """Why this address is on the suppression list (bounce, complaint, erased), or None."""
    return session.scalar(select(Suppression.reason).where(Suppression.email_hash == email_hash(email, key)))


def is_suppressed(session: Session, email: str, key: bytes) -> bool:
    return suppression_reason(session, email, key) is not None


def suppress(
    session: Session, email: str, key: bytes, reason: SuppressionReason, detail: str | None, now: datetime
) -> None:
    existing = session.scalar(select(Suppression).where(Suppression.email_hash == email_hash(email, key)))
    if existing is None:
        session.add(Suppression(email_hash=email_hash(email, key), reason=reason.value, detail=detail, created_at=now))
    elif reason.weight > SuppressionReason(existing.reason).weight:
        existing.reason, existing.detail = reason.value, detail


def lift_erasure(session: Session, email: str, key: bytes) -> None:
    """The person who erased their data confirmed a new sign-up: their own choice wins over the old erasure."""
    erased = Suppression.reason == SuppressionReason.ERASED.value
    session.execute(delete(Suppression).where(Suppression.email_hash == email_hash(email, key), erased))


# --- Creating deliveries --------------------------------------------------------------------------


def _claimed(session: Session, subscriber: Subscriber, step: int | None, email: str, now: datetime,
             timing: Timing) -> Delivery:  # fmt: skip
    """A new delivery, claimed and due now; its lease covers the time until a worker takes it."""
    delivery = Delivery(
        subscriber=subscriber,
        enrolment=subscriber.enrolment,
        step=step,
        email=email,
        state=DeliveryState.CLAIMED.value,
        due_at=now,
        lease_until=now + timing.lease,
        created_at=now,
    )
    session.add(delivery)
    return delivery


def queue_service_email(
    session: Session, subscriber: Subscriber, email: str, now: datetime, due: datetime, timing: Timing
) -> Delivery:
    """A confirmation or a preferences link. Due now, it is handed to a worker at once (the caller enqueues
    it); due later (confirmations are paced per mailbox), the beat hands it out when its time comes."""
    delivery = _claimed(session, subscriber, None, email, now, timing)
    if due > now:
        delivery.due_at = due
        delivery.lease_until = None
    return delivery


def queue_confirmation(
    session: Session, subscriber: Subscriber, request: SignupRequest, now: datetime, due: datetime, timing: Timing
) -> Delivery:
    delivery = queue_service_email(session, subscriber, CONFIRMATION_EMAIL, now, due, timing)
    delivery.signup_request_id = request.id
    return delivery


def claim_next_step(session: Session, subscriber: Subscriber, now: datetime, timing: Timing) -> Delivery | None:
    """Create the delivery of the subscriber's next course email (the caller holds the row lock)."""
    course = load_course(subscriber.course_slug)
    step_number = 0 if subscriber.current_step is None else subscriber.current_step + 1
    subscriber.next_send_at = None
    if step_number >= len(course.steps):
        complete(subscriber, now)
        return None
    existing = session.scalar(
        select(Delivery).where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.enrolment == subscriber.enrolment,
            Delivery.step == step_number,
        )
    )
    if existing is None:
        return _claimed(session, subscriber, step_number, course.step(step_number).email, now, timing)
    if existing.state != DeliveryState.SKIPPED.value:
        return None  # claimed or sent already: never a second delivery of one step
    # Skipped when they paused or unsubscribed before it went out: it goes now instead.
    existing.state = DeliveryState.CLAIMED.value
    existing.due_at = now
    existing.lease_until = now + timing.lease
    existing.last_reply = None
    return existing


# One statement claims a round on PostgreSQL: it locks due subscribers nobody else holds (SKIP LOCKED),
# clears their next_send_at (completing those past the last step), and creates each one's delivery of
# its next step, or hands a skipped one out again; a step already claimed or sent gets nothing (the
# unique (subscriber, enrolment, step) makes "never two" the database's rule, not ours).
_CLAIM = text("""
WITH due AS (
    SELECT id, enrolment, COALESCE(current_step + 1, 0) AS step
    FROM subscribers
    WHERE status = 'active' AND next_send_at <= :now AND course_slug = :slug
    ORDER BY next_send_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), cleared AS (
    UPDATE subscribers AS s
    SET next_send_at = NULL, updated_at = :now,
        status = CASE WHEN due.step >= :steps THEN 'completed' ELSE s.status END,
        completed_at = CASE WHEN due.step >= :steps THEN :now ELSE s.completed_at END
    FROM due
    WHERE s.id = due.id
    RETURNING s.id
)
INSERT INTO deliveries AS d (subscriber_id, enrolment, step, email, template_version, state, attempts, due_at,
                             lease_until, created_at, updated_at)
SELECT due.id, due.enrolment, due.step, (CAST(:emails AS text[]))[due.step + 1], :release, 'claimed', 0, :now,
       :lease_until, :now, :now
FROM due JOIN cleared ON cleared.id = due.id
WHERE due.step < :steps
ON CONFLICT (subscriber_id, enrolment, step) DO UPDATE
    SET state = 'claimed', due_at = :now, lease_until = :lease_until, last_reply = NULL,
        template_version = :release, updated_at = :now
    WHERE d.state = 'skipped'
RETURNING d.id
""")


def claim_due_ids(
    session: Session, course: Course, now: datetime, limit: int, timing: Timing, release: str | None
) -> list[int]:
    """One round of the beat for one course, set-based: the ids of the deliveries it made due.

    The same rules as :func:`claim_next_step` for one subscriber, in one statement for a round of them;
    the deliveries carry ``release``, the templates they are sent with.
    """
    rows = session.execute(_CLAIM, {
        "now": now, "slug": course.slug, "limit": limit, "steps": len(course.steps), "release": release,
        "emails": [step.email for step in course.steps], "lease_until": now + timing.lease,
    })  # fmt: skip
    return [row[0] for row in rows]


def in_flight(session: Session, now: datetime) -> int:
    """Deliveries due and claimed, or being sent: the work the workers have not finished (a retry
    waiting for its time is not)."""
    waiting = and_(Delivery.state == DeliveryState.CLAIMED.value, Delivery.due_at <= now)
    sending = Delivery.state == DeliveryState.SENDING.value
    return int(session.scalar(select(func.count()).select_from(Delivery).where(or_(waiting, sending))) or 0)


def release_abandoned(session: Session, now: datetime, limit: int, timing: Timing) -> list[int]:
    """Deliveries whose lease ran out (a lost task, a worker that died or stalled while sending), and
    those whose worker holds its lock no more (it died: course/senders.py). Hand them out again."""
    sending = Delivery.state == DeliveryState.SENDING.value
    abandoned = or_(Delivery.lease_until < now, sender_gone())
    stale = session.scalars(
        select(Delivery)
        .where(
            or_(
                and_(
                    Delivery.state == DeliveryState.CLAIMED.value,
                    Delivery.due_at <= now,
                    or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
                ),
                and_(sending, abandoned),
            )
        )
        .order_by(Delivery.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for delivery in stale:
        if delivery.state == DeliveryState.SENDING.value:
            # It may or may not have reached the server: sending again risks this one duplicate.
            log.warning("delivery %s was left in sending by a worker gone or stalled; sending it again", delivery.id)
            delivery.state = DeliveryState.CLAIMED.value
            delivery.sender_key = None
        delivery.lease_until = now + timing.lease
    session.flush()
    return [delivery.id for delivery in stale]


# --- Sending --------------------------------------------------------------------------------------


def begin_sending(
    session: Session, delivery_ids: list[int], now: datetime, timing: Timing, sender_key: int | None = None
) -> list[int]:
    """claimed -> sending, for the deliveries nobody else has taken; returns the ones this worker owns.
    ``sender_key``: the key of the lock the worker holds for the batch (course/senders.py)."""
    if not delivery_ids:
        return []
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(delivery_ids),
            Delivery.state == DeliveryState.CLAIMED.value,
            # Handed out (a lease): due by the clock of whoever claimed it, which may read a few ms ahead
            # of this worker's (each process keeps its own offset to the database's clock, course/clock.py).
            # Waiting for a retry or the end of a pause (no lease): not before its time, whatever a stale
            # task in the queue says.
            or_(Delivery.lease_until.is_not(None), Delivery.due_at <= now),
        )
        .values(
            state=DeliveryState.SENDING.value,
            attempts=Delivery.attempts + 1,
            lease_until=now + timing.lease,
            sender_key=sender_key,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    owned = sorted(row[0] for row in result)
    session.expire_all()
    return owned


def active_pause(session: Session, now: datetime) -> SendingPause | None:
    return session.scalar(
        select(SendingPause).where(SendingPause.until > now).order_by(SendingPause.until.desc()).limit(1)
    )


def _why_not(step: int | None, email: str, status: str, suppressed: str | None) -> str | None:
    """Why a delivery must not go out, from its reader's status and suppression; None: send it."""
    if step is not None:
        if suppressed is not None:
            return "the address is suppressed"
        if status != SubscriberStatus.ACTIVE.value:
            return f"the subscriber is {status}"
        return None
    # Emails the person asked for just now. An erasure does not stop them: they are the way back in.
    if SuppressionReason.is_permanent(suppressed):
        return "the address is suppressed"
    # Someone who unsubscribed stays unsubscribed until they confirm again: their confirmation may go.
    if email == CONFIRMATION_EMAIL and status not in (
        SubscriberStatus.PENDING.value,
        SubscriberStatus.UNSUBSCRIBED.value,
    ):
        return f"a confirmation for a subscriber who is {status}"
    if status in (SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value):
        return f"the subscriber is {status}"
    return None


# --- Sending a batch: a few statements for many messages ----------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """What a worker needs to send one delivery: read for a whole batch in one query."""

    delivery_id: int
    email: str
    step: int | None
    enrolment: int
    template_version: str | None
    created_at: datetime
    signup_request_id: int | None
    subscriber_id: int
    course_slug: str
    address: str
    first_name: str | None  # for a confirmation, only what its requester typed: the address may not be theirs
    timezone: str
    send_time: time_of_day


def outgoing(session: Session, delivery_ids: list[int]) -> list[Outgoing]:
    """The deliveries with their subscribers (and a confirmation's request), in the order of the ids."""
    rows = session.execute(
        select(Delivery.id, Delivery.email, Delivery.step, Delivery.enrolment, Delivery.template_version,
               Delivery.created_at, Delivery.signup_request_id, Subscriber.id, Subscriber.course_slug,
               Subscriber.email, Subscriber.first_name, SignupRequest.first_name, Subscriber.timezone,
               Subscriber.send_time)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .outerjoin(SignupRequest, SignupRequest.id == Delivery.signup_request_id)
        .where(Delivery.id.in_(delivery_ids))
    )  # fmt: skip
    found = {}
    for (delivery_id, email, step, enrolment, version, created_at, request_id, subscriber_id, slug, address,
         first_name, request_first_name, timezone, send_time) in rows:  # fmt: skip
        if email == CONFIRMATION_EMAIL:
            first_name = request_first_name
        found[delivery_id] = Outgoing(delivery_id, email, step, enrolment, version, created_at, request_id,
                                      subscriber_id, slug, address, first_name, timezone, send_time)  # fmt: skip
    return [found[delivery_id] for delivery_id in delivery_ids if delivery_id in found]


def reasons_not_to_send(session: Session, items: list[Outgoing], timing: Timing) -> dict[int, str]:
    """Read just before their SMTP transactions: which of these deliveries must not go out, by id, with
    why (an unsubscribe, a suppression, an erasure)."""
    if not items:
        return {}
    statuses: dict[int, str] = {
        subscriber_id: status for subscriber_id, status in session.execute(
            select(Subscriber.id, Subscriber.status).where(Subscriber.id.in_({item.subscriber_id for item in items}))
        )
    }  # fmt: skip
    hashes = {item.delivery_id: email_hash(item.address, timing.address_key) for item in items}
    suppressed: dict[str, str] = {
        hashed: reason for hashed, reason in session.execute(
            select(Suppression.email_hash, Suppression.reason).where(Suppression.email_hash.in_(set(hashes.values())))
        )
    }  # fmt: skip
    reasons = {}
    for item in items:
        status = statuses.get(item.subscriber_id)
        if status is None:
            reasons[item.delivery_id] = "the subscriber is gone"
        elif (why := _why_not(item.step, item.email, status, suppressed.get(hashes[item.delivery_id]))) is not None:
            reasons[item.delivery_id] = why
    return reasons


# Core statements on the tables (executemany), not ORM updates: nothing here is loaded as an object.
_DELIVERIES = cast(Table, Delivery.__table__)
_SUBSCRIBERS = cast(Table, Subscriber.__table__)
_deliveries = _DELIVERIES.c
_subscribers = _SUBSCRIBERS.c
_MARK_SENT = (
    update(_DELIVERIES)
    .where(_deliveries.id == bindparam("delivery_id"))
    .values(state=DeliveryState.SENT.value, message_id=bindparam("message_id"), last_reply=bindparam("reply"),
            sent_at=bindparam("sent_at"), lease_until=None, template_version=bindparam("release"),
            updated_at=bindparam("now"))
)  # fmt: skip
# The advance of a subscriber whose course step was sent (or failed for good), as one statement for many:
# the course moves on to the next slot, or is complete after its last step; a subscriber who paused or
# left in the meantime keeps that status and no next slot is set. The one place the send path changes a
# status: it completes what course/lifecycle.py's MOVES lets complete (an active subscriber).
_LAST = bindparam("last", type_=Boolean)
# The last step sent completes the course of someone still active; who paused keeps paused (resuming
# completes them: nothing is left to claim), who left while it was being sent stays left.
_COMPLETES = and_(_LAST, _subscribers.status == SubscriberStatus.ACTIVE.value)
_ADVANCE = (
    update(_SUBSCRIBERS)
    .where(_subscribers.id == bindparam("subscriber_id"))
    .values(
        current_step=case((_subscribers.current_step > bindparam("step"), _subscribers.current_step),
                          else_=bindparam("step")),
        last_sent_at=bindparam("now"),
        status=case((_COMPLETES, SubscriberStatus.COMPLETED.value), else_=_subscribers.status),
        completed_at=case((_COMPLETES, bindparam("now")), else_=_subscribers.completed_at),
        next_send_at=case(
            (_LAST, None),
            (_subscribers.status == SubscriberStatus.ACTIVE.value, bindparam("next_send_at")),
            else_=_subscribers.next_send_at,
        ),
        updated_at=bindparam("now"),
    )
)  # fmt: skip
_CONFIRMATION_SENT = (
    update(_SUBSCRIBERS)
    .where(_subscribers.id == bindparam("subscriber_id"))
    .values(confirmation_sent_at=bindparam("now"), updated_at=bindparam("now"))
)


@dataclass(frozen=True)
class Sent:
    """One message the server accepted: its Message-ID, the server's reply, the release it was made with,
    and when the server said 250 (each message its own moment: a reader's click is measured from it)."""

    item: Outgoing
    message_id: str
    reply: str
    release: str
    at: datetime


def mark_sent_many(session: Session, sent: list[Sent], now: datetime, timing: Timing) -> None:
    """Record that these deliveries were sent, each at its own moment. Two statements whatever their
    number (executemany); the caller commits. ``now``: when the chunk is recorded (the subscribers'
    next slots count from it)."""
    if not sent:
        return
    session.execute(_MARK_SENT, [
        {"delivery_id": one.item.delivery_id, "message_id": one.message_id, "reply": one.reply,
         "release": one.release, "sent_at": one.at, "now": now}
        for one in sent
    ])  # fmt: skip
    sent_items = [one.item for one in sent]
    steps = [(item, item.step) for item in sent_items if item.step is not None]
    if steps:
        session.execute(_ADVANCE, [_advanced(item.subscriber_id, item.course_slug, item.timezone, item.send_time, step,
                                             now, timing) for item, step in steps])  # fmt: skip
    confirmations = [item for item in sent_items if item.email == CONFIRMATION_EMAIL]
    if confirmations:
        session.execute(
            _CONFIRMATION_SENT, [{"subscriber_id": item.subscriber_id, "now": now} for item in confirmations]
        )


def _advanced(subscriber_id: int, course_slug: str, timezone: str, send_time: time_of_day, step: int,
              now: datetime, timing: Timing) -> dict[str, object]:  # fmt: skip
    """``_ADVANCE``'s parameters for one subscriber whose ``step`` was sent (or failed for good)."""
    last = step >= len(load_course(course_slug).steps) - 1
    schedule = Schedule.for_subscriber(timezone, send_time, timing.day_seconds)
    return {
        "subscriber_id": subscriber_id, "step": step, "now": now, "last": last,
        "next_send_at": None if last else schedule.next_after(now),
    }  # fmt: skip


def mark_skipped(delivery: Delivery, reason: str, now: datetime) -> None:
    delivery.state = DeliveryState.SKIPPED.value
    delivery.last_reply = reason
    delivery.lease_until = None
    delivery.updated_at = now


def hold_for_pause(delivery: Delivery, pause: SendingPause) -> None:
    """Back to the queue until the pause ends; the attempt does not count against the subscriber."""
    delivery.state = DeliveryState.CLAIMED.value
    delivery.attempts = max(0, delivery.attempts - 1)
    delivery.due_at = pause.until
    delivery.lease_until = None


def mark_failed(
    session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing, *, bounced: bool = True
) -> None:
    """A permanent failure of this one message: record it; the course goes on tomorrow.

    ``bounced``: the receiving server refused it (a bounce event), rather than our not being able to build it.
    """
    delivery.state = DeliveryState.FAILED.value
    delivery.last_reply = reply
    delivery.lease_until = None
    if bounced:
        session.add(Event(subscriber_id=delivery.subscriber_id, delivery_id=delivery.id, kind=EventKind.BOUNCE.value,
                          step=delivery.step, value=Bounce.REFUSED.value, detail=reply, created_at=now))  # fmt: skip
    if delivery.step is not None:
        subscriber = delivery.subscriber
        session.execute(_ADVANCE, [_advanced(subscriber.id, subscriber.course_slug, subscriber.timezone,
                                             subscriber.send_time, delivery.step, now, timing)])  # fmt: skip
        session.expire(subscriber)  # the statement changed it behind the session's back


def mark_bad_address(session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing) -> None:
    """5.1.x: the mailbox does not exist. Suppress the address; nothing more goes to it."""
    delivery.state = DeliveryState.FAILED.value
    delivery.last_reply = reply
    delivery.lease_until = None
    subscriber = delivery.subscriber
    become(subscriber, SubscriberStatus.BOUNCED)
    subscriber.next_send_at = None
    suppress(session, subscriber.email, timing.address_key, SuppressionReason.BOUNCE, reply, now)
    session.add(Event(subscriber_id=subscriber.id, delivery_id=delivery.id, kind=EventKind.BOUNCE.value,
                      step=delivery.step, value=Bounce.BAD_ADDRESS.value, detail=reply, created_at=now))  # fmt: skip


def retry_later(session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing) -> None:
    """A transient refusal (4xx, a dropped connection): back off, but never past the next day's slot."""
    if delivery.attempts >= MAX_ATTEMPTS:
        mark_failed(session, delivery, f"gave up after {delivery.attempts} attempts: {reply}", now, timing)
        return
    due = now + timing.retry_delay(delivery.attempts)
    if delivery.step is not None:
        # A day that cannot go out before the next day's slot waits for that slot instead: the
        # course moves on by one day, and the subscriber never gets two course emails at once.
        next_slot = schedule_for(delivery.subscriber, timing).next_after(delivery.created_at)
        due = min(due, next_slot)
    delivery.state = DeliveryState.CLAIMED.value
    delivery.last_reply = reply
    delivery.due_at = due
    delivery.lease_until = None


def pause_sending(session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing) -> SendingPause:
    """5.7.x: the provider refuses *us* (authentication, reputation, policy). Stop everything and alert."""
    pause = SendingPause(reason=reply, created_at=now, until=now + timedelta(seconds=timing.sending_pause_seconds))
    session.add(pause)
    hold_for_pause(delivery, pause)
    delivery.last_reply = reply
    log.error(
        "ALERT sending paused until %s: the mail provider refused our message (%s). "
        "This is a problem on the sender's side (authentication, SPF/DKIM/DMARC, reputation); "
        "no recipient was suppressed.",
        pause.until.isoformat(),
        reply,
    )
    return pause
