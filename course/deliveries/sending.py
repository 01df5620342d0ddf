"""Sending a batch: a worker takes it from the queue, sends it chunk by chunk, records each chunk.

- A worker takes a batch with ``FOR UPDATE SKIP LOCKED`` (:func:`take_batch`): two workers never take one
  batch, and a task delivered twice finds nothing left to take. The batch holds the lease and the key of
  the worker's lock (course/senders.py), not each email.
- Before each chunk of SEND_CHUNK_SIZE the worker reads, in one query, whether the batch is still its own,
  what of the chunk was already recorded (by its first worker, before it died), and whether each reader
  may still get mail (:func:`check_chunk`); it sends the chunk, then records it in one statement
  (:func:`record_sent`): a course step's record is its delivery row, inserted as sent. A worker killed in
  between can duplicate only that chunk.
- The beat moved the reader on when it claimed the email (course/deliveries/claim.py); what did not go
  after all (skipped, refused for good, put off) gets a row of its own here, and a skipped step gives the
  reader their place back (:func:`give_back_place`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as time_of_day
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from course.catalog import course_at, parse_release
from course.deliveries.suppressions import suppress
from course.deliveries.timing import MAX_ATTEMPTS, NextTimes, Timing, schedule_for
from course.lifecycle import EmailKind, SuppressionReason, is_course_email, move, stop
from course.models.deliveries import Delivery, DeliveryState, SendBatch, SendingPause
from course.models.engagement import Event, EventKind
from course.models.feedback import Bounce
from course.models.subscribers import ENROLLED, SignupRequest, Subscriber, SubscriberStatus, email_hash, subscribers
from course.schedule import Schedule

log = logging.getLogger(__name__)


def take_batch(session: Session, now: datetime, timing: Timing, sender_key: int | None) -> SendBatch | None:
    """The next batch in the queue, taken by this worker (``sender_key``: the lock it holds for it, see
    course/senders.py): a batch handed out again and the emails a person waits for first, then the
    claim's in order. None: the queue is empty. A batch of deliveries with rows of their own has them
    moved claimed -> sending. The caller commits before anything reaches SMTP."""
    batch = session.scalar(
        select(SendBatch)
        .where(SendBatch.taken_at.is_(None))
        .order_by(SendBatch.lane, SendBatch.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if batch is None:
        return None
    batch.taken_at = now
    batch.lease_until = now + timing.lease
    batch.sender_key = sender_key
    batch.attempts += 1
    if batch.delivery_ids is not None:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(batch.delivery_ids), Delivery.batch_id == batch.id,
                   Delivery.state == DeliveryState.CLAIMED.value)
            .values(state=DeliveryState.SENDING.value, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    session.flush()
    return batch


def finish_batch(session: Session, batch: SendBatch) -> None:
    """The batch is done: out of the queue (in the transaction of its last chunk's record)."""
    session.execute(
        delete(SendBatch)
        .where(SendBatch.id == batch.id, SendBatch.sender_key == batch.sender_key)
        .execution_options(synchronize_session=False)
    )


def keep_lease(session: Session, batch: SendBatch, now: datetime, timing: Timing) -> None:
    """A batch that goes slowly (a server that stalls, a low SEND_RATE_PER_SECOND) renews its lease when
    half of it is spent: one row written now and then, not one per chunk."""
    if batch.lease_until is not None and batch.lease_until - now > timing.lease / 2:
        return
    batch.lease_until = now + timing.lease
    session.execute(
        update(SendBatch)
        .where(SendBatch.id == batch.id, SendBatch.sender_key == batch.sender_key)
        .values(lease_until=batch.lease_until)
        .execution_options(synchronize_session=False)
    )


def active_pause(session: Session, now: datetime) -> SendingPause | None:
    return session.scalar(
        select(SendingPause).where(SendingPause.until > now).order_by(SendingPause.until.desc()).limit(1)
    )


def _why_not(item: Outgoing, status: str, enrolment: int, place: int | None, suppressed: str | None) -> str | None:
    """Why an email must not go out, from its reader's status, place and suppression; None: send it."""
    if item.step is not None:
        if suppressed is not None:
            return "the address is suppressed"
        if enrolment != item.enrolment:
            return "the reader started the course again"
        # The claim of the course's last email completed its reader: that email still goes.
        if status == SubscriberStatus.COMPLETED.value and place == item.step:
            return None
        if status != SubscriberStatus.ACTIVE.value:
            return f"the subscriber is {status}"
        return None
    if is_course_email(item.email):  # a course email the studio sends again: the course's rules, not a service's
        if suppressed is not None:
            return "the address is suppressed"
        return None if status in ENROLLED else f"the subscriber is {status}"
    # Emails the person asked for just now. An erasure does not stop them: they are the way back in.
    if SuppressionReason.is_permanent(suppressed):
        return "the address is suppressed"
    # Someone who unsubscribed stays unsubscribed until they confirm again: their confirmation may go.
    if item.email == EmailKind.CONFIRMATION and status not in (
        SubscriberStatus.PENDING.value,
        SubscriberStatus.UNSUBSCRIBED.value,
    ):
        return f"a confirmation for a subscriber who is {status}"
    if status in (SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value):
        return f"the subscriber is {status}"
    return None


@dataclass(frozen=True)
class Outgoing:
    """What a worker needs to send one email: read for a whole batch in one query. ``delivery_id`` is None
    for a course step the beat claimed: its row is written when it is sent."""

    delivery_id: int | None
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


def outgoing(session: Session, batch: SendBatch) -> list[Outgoing]:
    """The batch's emails with their readers (and a confirmation's request), in the batch's order. A reader
    erased in the meantime has nothing left to send."""
    if batch.subscriber_ids is not None:
        return _claimed_steps(session, batch)
    rows = session.execute(
        select(Delivery.id, Delivery.email, Delivery.step, Delivery.enrolment, Delivery.template_version,
               Delivery.created_at, Delivery.signup_request_id, subscribers.c.id, subscribers.c.course_slug,
               subscribers.c.email, subscribers.c.first_name, SignupRequest.first_name, subscribers.c.timezone,
               subscribers.c.send_time, subscribers.c.confirmed_at)
        .join(subscribers, subscribers.c.id == Delivery.subscriber_id)
        .outerjoin(SignupRequest, SignupRequest.id == Delivery.signup_request_id)
        .where(Delivery.id.in_(batch.delivery_ids or []), Delivery.batch_id == batch.id,
               Delivery.state == DeliveryState.SENDING.value)
    )  # fmt: skip
    found = {}
    for (delivery_id, email, step, enrolment, version, created_at, request_id, subscriber_id, slug, address,
         first_name, request_first_name, timezone, send_time, confirmed_at) in rows:  # fmt: skip
        if email == EmailKind.CONFIRMATION:
            first_name = request_first_name
        found[delivery_id] = Outgoing(delivery_id, email, step, enrolment, version, created_at, request_id,
                                      subscriber_id, slug, address, first_name, timezone, send_time,
                                      confirmed_at)  # fmt: skip
    return [found[delivery_id] for delivery_id in batch.delivery_ids or [] if delivery_id in found]


def _claimed_steps(session: Session, batch: SendBatch) -> list[Outgoing]:
    readers = {
        row.id: row
        for row in session.execute(
            # who they are alone: where they are in the course is read just before each chunk (check_chunk)
            select(subscribers.c.id, subscribers.c.email, subscribers.c.first_name, subscribers.c.timezone,
                   subscribers.c.send_time, subscribers.c.confirmed_at)
            .where(subscribers.c.id.in_(batch.subscriber_ids or []))
        )
    }  # fmt: skip
    items = []
    for subscriber_id, enrolment, step, email in zip(
        batch.subscriber_ids or [], batch.enrolments or [], batch.steps or [], batch.emails or [], strict=True
    ):
        reader = readers.get(subscriber_id)
        if reader is not None:
            items.append(Outgoing(None, email, step, enrolment, batch.release, batch.created_at, None, subscriber_id,
                                  batch.course_slug or "", reader.email, reader.first_name, reader.timezone,
                                  reader.send_time, reader.confirmed_at))  # fmt: skip
    return items


@dataclass(frozen=True)
class ChunkCheck:
    """What a worker reads just before a chunk's SMTP transactions."""

    ours: bool  # the batch is still this worker's (not handed out again while it went slowly)
    recorded: set[Outgoing]  # sent (or refused) already, by the batch's earlier worker: not again
    stops: dict[Outgoing, str]  # must not go, with why (an unsubscribe, a suppression, an erasure)


# Per email of a chunk: its reader's status, enrolment and place, and any record of the step already.
_CHUNK = text("""
SELECT u.i, s.status, s.enrolment, s.current_step, d.state,
       (SELECT x.reason FROM suppressions AS x WHERE x.email_hash = u.hash) AS suppressed,
       (SELECT b.sender_key FROM send_batches AS b WHERE b.id = :batch) AS holder
FROM unnest(CAST(:readers AS bigint[]), CAST(:enrolments AS int[]), CAST(:steps AS int[]), CAST(:hashes AS text[]))
     WITH ORDINALITY AS u(reader, enrolment, step, hash, i)
LEFT JOIN progress AS s ON s.subscriber_id = u.reader
LEFT JOIN deliveries AS d ON d.subscriber_id = u.reader AND d.enrolment = u.enrolment AND d.step = u.step
                          AND d.state <> 'skipped'
""")


def check_chunk(session: Session, batch: SendBatch, items: list[Outgoing], timing: Timing) -> ChunkCheck:
    if not items:
        return ChunkCheck(True, set(), {})
    # A step with a row of its own is that row (this batch's, in sending); only the claim's have none yet.
    # One statement: the batch's holder, and for each email its reader, its record and its address's
    # suppression.
    rows = session.execute(_CHUNK, {
        "batch": batch.id, "readers": [item.subscriber_id for item in items],
        "enrolments": [item.enrolment for item in items],
        "steps": [item.step if item.delivery_id is None else None for item in items],
        "hashes": [email_hash(item.address, timing.address_key) for item in items],
    }).all()  # fmt: skip
    ours = bool(rows) and rows[0].holder == batch.sender_key and batch.sender_key is not None
    recorded: set[Outgoing] = set()
    stops: dict[Outgoing, str] = {}
    for row in rows:
        item = items[row.i - 1]
        if row.state is not None:
            recorded.add(item)
        elif row.status is None:
            stops[item] = "the subscriber is gone"
        elif why := _why_not(item, row.status, row.enrolment, row.current_step, row.suppressed):
            stops[item] = why
    return ChunkCheck(ours, recorded, stops)


@dataclass(frozen=True)
class Sent:
    """One message the server accepted: its Message-ID, the server's reply, the release it was made with,
    and when the server said 250 (each message its own moment: a reader's click is measured from it)."""

    item: Outgoing
    message_id: str
    reply: str
    release: str
    at: datetime


# The record of a chunk of the claim's course steps: one statement, one row each. A step skipped before
# (its reader paused, then came back) has a row already: it becomes the record.
_RECORD_STEPS = text("""
INSERT INTO deliveries AS d (subscriber_id, enrolment, step, email, template_version, state, attempts, due_at,
                             created_at, sent_at, updated_at, message_id, last_reply)
SELECT u.reader, u.enrolment, u.step, u.email, u.release, 'sent', 1, :claimed, :claimed, u.sent_at, :now,
       u.message_id, u.reply
FROM unnest(CAST(:readers AS bigint[]), CAST(:enrolments AS int[]), CAST(:steps AS int[]), CAST(:emails AS text[]),
            CAST(:releases AS text[]), CAST(:sent_at AS timestamptz[]), CAST(:message_ids AS text[]),
            CAST(:replies AS text[])) AS u(reader, enrolment, step, email, release, sent_at, message_id, reply)
ON CONFLICT (subscriber_id, enrolment, step) DO UPDATE
    SET state = 'sent', template_version = excluded.template_version, attempts = d.attempts + 1,
        sent_at = excluded.sent_at, message_id = excluded.message_id, last_reply = excluded.last_reply,
        updated_at = excluded.updated_at
    WHERE d.state = 'skipped'
""")

_DELIVERIES = cast(Table, Delivery.__table__)

_MARK_SENT = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("delivery_id"))
    .values(state=DeliveryState.SENT.value, message_id=bindparam("message_id"), last_reply=bindparam("reply"),
            sent_at=bindparam("sent_at"), template_version=bindparam("release"), updated_at=bindparam("now"))
)  # fmt: skip

_CONFIRMATION_SENT = (
    update(subscribers)
    .where(subscribers.c.id == bindparam("subscriber_id"))
    .values(confirmation_sent_at=bindparam("now"), updated_at=bindparam("now"))
)

# A reader's next time, worked out again from when their email went, where it may differ from the claim's:
# a course email sent on a later day than it was claimed for (a fault, a sending pause, a long queue), and
# one that was put off (a retry, a pause of sending), for which the course waited (no next time). The next
# email counts from when this one went, never from the claim: two never go on one local day.
_NEXT_TIME = text("""
UPDATE progress AS s SET next_send_at = u.next_at, last_sent_at = u.sent_at
FROM unnest(CAST(:readers AS bigint[]), CAST(:enrolments AS int[]), CAST(:steps AS int[]),
            CAST(:next_at AS timestamptz[]), CAST(:sent_at AS timestamptz[]))
     AS u(reader, enrolment, step, next_at, sent_at)
WHERE s.subscriber_id = u.reader AND s.enrolment = u.enrolment AND s.current_step = u.step AND s.status = 'active'
  AND (s.next_send_at IS NULL OR s.next_send_at < u.next_at)
""")


def record_sent(session: Session, batch: SendBatch, sent: list[Sent], now: datetime, timing: Timing) -> None:
    """Record that these emails were sent, each at its own moment: one statement for the claim's course
    steps (their rows), one for the rest. The caller commits. ``now``: when the chunk is recorded."""
    if not sent:
        return
    steps = [one for one in sent if one.item.delivery_id is None]
    if steps:
        session.execute(_RECORD_STEPS, {
            "readers": [one.item.subscriber_id for one in steps], "enrolments": [one.item.enrolment for one in steps],
            "steps": [one.item.step for one in steps], "emails": [one.item.email for one in steps],
            "releases": [one.release for one in steps], "sent_at": [one.at for one in steps],
            "message_ids": [one.message_id for one in steps], "replies": [one.reply for one in steps],
            "claimed": batch.created_at, "now": now,
        })  # fmt: skip
    next_times_from(session, [(one.item, one.at) for one in sent], now, timing)
    rows = [one for one in sent if one.item.delivery_id is not None]
    if rows:
        session.execute(_MARK_SENT, [
            {"delivery_id": one.item.delivery_id, "message_id": one.message_id, "reply": one.reply,
             "release": one.release, "sent_at": one.at, "now": now}
            for one in rows
        ])  # fmt: skip
    confirmations = [one.item for one in rows if one.item.email == EmailKind.CONFIRMATION]
    if confirmations:
        session.execute(
            _CONFIRMATION_SENT, [{"subscriber_id": item.subscriber_id, "now": now} for item in confirmations]
        )


def _late(item: Outgoing, at: datetime, timing: Timing) -> bool:
    """Whether a claimed course email went on a later day than the one it was claimed on."""
    if timing.day_seconds is not None:
        return at > item.created_at
    schedule = Schedule.for_subscriber(item.timezone, item.send_time, None)
    return schedule.local_date(at) != schedule.local_date(item.created_at)


def next_times_from(session: Session, done: list[tuple[Outgoing, datetime]], now: datetime, timing: Timing) -> None:
    """Work the readers' next times out again from when these course emails went (or failed for good); a
    write only for them: a claimed email sent on its day costs none (see ``_NEXT_TIME``)."""
    values: dict[str, list[object]] = {"readers": [], "enrolments": [], "steps": [], "next_at": [], "sent_at": []}
    for item, at in done:
        if item.step is None or (item.delivery_id is None and not _late(item, at, timing)):
            continue
        course = course_at(session, item.course_slug, parse_release(item.template_version))
        if not course.has_step(item.step):
            continue
        following = NextTimes(course, at, timing).after(
            course.step(item.step), item.timezone, item.send_time, item.confirmed_at
        )
        if following is None:
            continue
        for name, value in zip(values, (item.subscriber_id, item.enrolment, item.step, following, at), strict=True):
            values[name].append(value)
    if values["readers"]:
        session.execute(_NEXT_TIME, {**values, "now": now})


# The row of a course step the claim made, for what is not "sent": skipped, refused, put off. In sending,
# as a worker has it; a step skipped before has its row already, which takes its place.
_STEP_ROW = text("""
WITH reader AS (  -- still there (an erasure committed meanwhile leaves nothing to record), and kept until commit
    SELECT id FROM subscribers WHERE id = CAST(:reader AS bigint) FOR KEY SHARE
)
INSERT INTO deliveries AS d (subscriber_id, enrolment, step, email, template_version, state, attempts, due_at,
                             created_at, updated_at)
SELECT reader.id, CAST(:enrolment AS integer), CAST(:step AS integer), CAST(:email AS varchar),
       CAST(:release AS varchar), 'sending', 1, CAST(:claimed AS timestamptz), CAST(:claimed AS timestamptz),
       CAST(:now AS timestamptz)
FROM reader
ON CONFLICT (subscriber_id, enrolment, step) DO UPDATE
    SET state = 'sending', template_version = excluded.template_version, attempts = d.attempts + 1,
        due_at = excluded.due_at, last_reply = NULL, updated_at = excluded.updated_at
    WHERE d.state = 'skipped'
RETURNING d.id
""")


def delivery_row(session: Session, item: Outgoing, now: datetime) -> Delivery | None:
    """The email's delivery as an ORM object, for the outcomes other than "sent" (rare: a statement or two
    each): a claimed course step gets its row now. None: its reader was erased, or another worker recorded
    it in the meantime."""
    delivery_id = item.delivery_id
    if delivery_id is None:
        delivery_id = session.scalar(_STEP_ROW, {
            "reader": item.subscriber_id, "enrolment": item.enrolment, "step": item.step, "email": item.email,
            "release": item.template_version, "claimed": item.created_at, "now": now,
        })  # fmt: skip
        if delivery_id is None:
            return None
    return session.get(Delivery, delivery_id, populate_existing=True)


def give_back_place(
    session: Session, subscriber: Subscriber, step: int, enrolment: int, template_version: str | None
) -> None:
    """A course step that did not reach its reader after all (skipped: they paused, left or were suppressed
    before it went): their place goes back to the email before it, so that it is the one they get if they
    come back, and a completion its claim made is undone; nothing is due until then (resuming, or
    confirming again, sets their next time)."""
    if subscriber.enrolment != enrolment or subscriber.current_step != step:
        return  # started again, or moved on since: nothing of theirs to give back
    course = course_at(session, subscriber.course_slug, parse_release(template_version))
    subscriber.current_step = course.place_before(step)
    subscriber.next_send_at = None
    if not course.following(step) and subscriber.status != SubscriberStatus.COMPLETED.value:
        subscriber.completed_at = None  # the claim of the last email completed them; they left before it went


def mark_skipped(session: Session, delivery: Delivery, reason: str, now: datetime) -> None:
    move(delivery, DeliveryState.SKIPPED)
    delivery.last_reply = reason
    delivery.updated_at = now
    if delivery.step is not None:
        give_back_place(session, delivery.subscriber, delivery.step, delivery.enrolment, delivery.template_version)


def _course_waits(delivery: Delivery) -> None:
    """A course step put off (a retry, a pause of sending): the reader's course waits for it (no next
    time) until it goes or fails for good (:func:`next_times_from`): never two course emails at once."""
    subscriber = delivery.subscriber
    if delivery.step is not None and subscriber.enrolment == delivery.enrolment \
            and subscriber.current_step == delivery.step:  # fmt: skip
        subscriber.next_send_at = None


def hold_for_pause(delivery: Delivery, pause: SendingPause) -> None:
    """Back to the queue until the pause ends; the attempt does not count against the subscriber."""
    move(delivery, DeliveryState.CLAIMED)
    delivery.attempts = max(0, delivery.attempts - 1)
    delivery.due_at = pause.until
    _course_waits(delivery)


def mark_failed(
    session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing, *, bounced: bool = True,
    item: Outgoing | None = None,
) -> None:  # fmt: skip
    """A permanent failure of this one message: record it; the course goes on tomorrow.

    ``bounced``: the receiving server refused it (a bounce event), rather than our not being able to build it.
    """
    move(delivery, DeliveryState.FAILED)
    delivery.last_reply = reply
    if bounced:
        session.add(Event(subscriber_id=delivery.subscriber_id, delivery_id=delivery.id, kind=EventKind.BOUNCE.value,
                          step=delivery.step, value=Bounce.REFUSED.value, detail=reply, created_at=now))  # fmt: skip
    if delivery.step is not None and delivery.subscriber.next_send_at is None:  # the course waited for it
        subscriber = delivery.subscriber
        session.flush()
        next_times_from(session, [(item or _outgoing_of(delivery), now)], now, timing)
        session.expire(subscriber)  # the statement changed it behind the session's back


def _outgoing_of(delivery: Delivery) -> Outgoing:
    subscriber = delivery.subscriber
    return Outgoing(delivery.id, delivery.email, delivery.step, delivery.enrolment, delivery.template_version,
                    delivery.created_at, delivery.signup_request_id, subscriber.id, subscriber.course_slug,
                    subscriber.email, subscriber.first_name, subscriber.timezone, subscriber.send_time,
                    subscriber.confirmed_at)  # fmt: skip


def mark_bad_address(session: Session, delivery: Delivery, reply: str, now: datetime, timing: Timing) -> None:
    """5.1.x: the mailbox does not exist. Suppress the address; nothing more goes to it."""
    move(delivery, DeliveryState.FAILED)
    delivery.last_reply = reply
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
    _course_waits(delivery)


def pause_sending(
    session: Session, delivery: Delivery | None, reply: str, now: datetime, timing: Timing
) -> SendingPause:
    """5.7.x: the provider refuses *us* (authentication, reputation, policy). Stop everything and alert.
    The refused message's delivery waits for the pause (none: its reader was erased meanwhile; the
    pause is ours all the same)."""
    pause = SendingPause(reason=reply, created_at=now, until=now + timedelta(seconds=timing.sending_pause_seconds))
    session.add(pause)
    if delivery is not None:
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
