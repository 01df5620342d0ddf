"""Sending a batch: claimed -> sending -> sent | failed | skipped, a few statements for many messages.

- A worker moves a delivery from ``claimed`` to ``sending`` with a conditional UPDATE and only sends
  what it moved, so a task delivered twice sends nothing twice.
- ``sending`` is committed before SMTP and ``sent`` after each chunk of SEND_CHUNK_SIZE messages
  (:func:`mark_sent_many`): a worker killed in between can duplicate only that chunk. A delivery left in
  ``sending`` by a worker that died is handed out again at the next tick (course/senders.py), one whose
  lease ran out by the beat (course/deliveries/claim.py).
- Sending a course step advances its subscriber (:data:`_ADVANCE`), in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as time_of_day
from typing import cast

from sqlalchemy import Boolean, Integer, Table, and_, any_, bindparam, case, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from course.catalog import course_at, parse_release
from course.deliveries.suppressions import suppress
from course.deliveries.timing import MAX_ATTEMPTS, Timing, schedule_for
from course.lifecycle import EmailKind, SuppressionReason, move, stop
from course.models.deliveries import Delivery, DeliveryState, SendingPause, Suppression
from course.models.engagement import Event, EventKind
from course.models.feedback import Bounce
from course.models.subscribers import SignupRequest, Subscriber, SubscriberStatus, email_hash
from course.schedule import Schedule

log = logging.getLogger(__name__)


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
    if email == EmailKind.CONFIRMATION and status not in (
        SubscriberStatus.PENDING.value,
        SubscriberStatus.UNSUBSCRIBED.value,
    ):
        return f"a confirmation for a subscriber who is {status}"
    if status in (SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value):
        return f"the subscriber is {status}"
    return None


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
    confirmed_at: datetime | None


def outgoing(session: Session, delivery_ids: list[int]) -> list[Outgoing]:
    """The deliveries with their subscribers (and a confirmation's request), in the order of the ids."""
    rows = session.execute(
        select(Delivery.id, Delivery.email, Delivery.step, Delivery.enrolment, Delivery.template_version,
               Delivery.created_at, Delivery.signup_request_id, Subscriber.id, Subscriber.course_slug,
               Subscriber.email, Subscriber.first_name, SignupRequest.first_name, Subscriber.timezone,
               Subscriber.send_time, Subscriber.confirmed_at)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .outerjoin(SignupRequest, SignupRequest.id == Delivery.signup_request_id)
        .where(Delivery.id.in_(delivery_ids))
    )  # fmt: skip
    found = {}
    for (delivery_id, email, step, enrolment, version, created_at, request_id, subscriber_id, slug, address,
         first_name, request_first_name, timezone, send_time, confirmed_at) in rows:  # fmt: skip
        if email == EmailKind.CONFIRMATION:
            first_name = request_first_name
        found[delivery_id] = Outgoing(delivery_id, email, step, enrolment, version, created_at, request_id,
                                      subscriber_id, slug, address, first_name, timezone, send_time,
                                      confirmed_at)  # fmt: skip
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
        current_step=case((_subscribers.current_step == any_(bindparam("later", type_=ARRAY(Integer))),
                           _subscribers.current_step), else_=bindparam("step")),
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
    steps = [one for one in sent if one.item.step is not None]
    if steps:
        session.execute(_ADVANCE, [
            _advanced(session, one.item.subscriber_id, one.item.course_slug, one.release, one.item.timezone,
                      one.item.send_time, one.item.confirmed_at, one.item.step, now, timing)
            for one in steps if one.item.step is not None
        ])  # fmt: skip
    confirmations = [item for item in sent_items if item.email == EmailKind.CONFIRMATION]
    if confirmations:
        session.execute(
            _CONFIRMATION_SENT, [{"subscriber_id": item.subscriber_id, "now": now} for item in confirmations]
        )


def _advanced(session: Session, subscriber_id: int, course_slug: str, release: str | None, timezone: str,
              send_time: time_of_day, confirmed_at: datetime | None, step: int, now: datetime,
              timing: Timing) -> dict[str, object]:  # fmt: skip
    """``_ADVANCE``'s parameters for one subscriber whose ``step`` was sent (or failed for good): the course
    of the release it went with says which email comes next and when (its wait); ``later`` are the emails
    after this one, so that a place further on is never taken back (a resend of an earlier email)."""
    course = course_at(session, course_slug, parse_release(release))
    following = course.following(step)
    upcoming = following[0] if following else None
    schedule = Schedule.for_subscriber(timezone, send_time, timing.day_seconds)
    return {
        "subscriber_id": subscriber_id, "step": step, "now": now, "last": upcoming is None,
        "later": [later.number for later in following],
        "next_send_at": None if upcoming is None else schedule.after_wait(upcoming.wait, now, confirmed_at),
    }  # fmt: skip


def mark_skipped(delivery: Delivery, reason: str, now: datetime) -> None:
    move(delivery, DeliveryState.SKIPPED)
    delivery.last_reply = reason
    delivery.lease_until = None
    delivery.updated_at = now


def hold_for_pause(delivery: Delivery, pause: SendingPause) -> None:
    """Back to the queue until the pause ends; the attempt does not count against the subscriber."""
    move(delivery, DeliveryState.CLAIMED)
    delivery.attempts = max(0, delivery.attempts - 1)
    delivery.due_at = pause.until
    delivery.lease_until = None


def mark_failed(
    session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing, *, bounced: bool = True
) -> None:
    """A permanent failure of this one message: record it; the course goes on tomorrow.

    ``bounced``: the receiving server refused it (a bounce event), rather than our not being able to build it.
    """
    move(delivery, DeliveryState.FAILED)
    delivery.last_reply = reply
    delivery.lease_until = None
    if bounced:
        session.add(Event(subscriber_id=delivery.subscriber_id, delivery_id=delivery.id, kind=EventKind.BOUNCE.value,
                          step=delivery.step, value=Bounce.REFUSED.value, detail=reply, created_at=now))  # fmt: skip
    if delivery.step is not None:
        subscriber = delivery.subscriber
        session.execute(_ADVANCE, [_advanced(session, subscriber.id, subscriber.course_slug, delivery.template_version,
                                             subscriber.timezone, subscriber.send_time, subscriber.confirmed_at,
                                             delivery.step, now, timing)])  # fmt: skip
        session.expire(subscriber)  # the statement changed it behind the session's back


def mark_bad_address(session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing) -> None:
    """5.1.x: the mailbox does not exist. Suppress the address; nothing more goes to it."""
    move(delivery, DeliveryState.FAILED)
    delivery.last_reply = reply
    delivery.lease_until = None
    subscriber = delivery.subscriber
    stop(session, subscriber, SubscriberStatus.BOUNCED, f"the address {SubscriberStatus.BOUNCED.value}", now)
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
    move(delivery, DeliveryState.CLAIMED)
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
