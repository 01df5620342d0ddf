"""Making emails due: the service emails a person asks for, and the beat's claim of the course's emails.

The beat claims due readers with ``FOR UPDATE SKIP LOCKED`` and moves each one's place and next time on in
the same transaction (:func:`claim_due`), so that a reader is claimed once per email (two beats at once
claim apart); their emails wait in the send queue, the database's ``send_batches``, until a worker takes
them. A batch whose worker died, or kept it past its lease, is handed out again at the next tick, ahead of
new work (:func:`recover_batches`); the broker only wakes the workers, so a broker that lost its messages
loses no email (workers/engine.py tops its wake-ups up). Nothing is ever lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Result, TextClause, exists, func, or_, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.util.typing import TupleAny

from course.curriculum import Course
from course.db import hand_over_after_commit
from course.deliveries.timing import NextTimes, Timing, counts_from_signup, wait_after
from course.lifecycle import EmailKind, complete, move
from course.models.deliveries import AHEAD, COURSE_DAYS, Delivery, DeliveryState, SendBatch
from course.models.subscribers import SignupRequest, Subscriber
from course.senders import sender_gone

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def _waiting(session: Session, subscriber: Subscriber, step: int | None, email: str, now: datetime) -> Delivery:
    """A new delivery with a row of its own, due now."""
    delivery = Delivery(
        subscriber=subscriber,
        enrolment=subscriber.enrolment,
        step=step,
        email=email,
        state=DeliveryState.CLAIMED.value,
        due_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery


def queue_service_email(session: Session, subscriber: Subscriber, email: str, now: datetime, due: datetime) -> Delivery:
    """A confirmation or a preferences link. Due now, it is put in a batch of its own, which the workers
    take once the caller commits; due later (confirmations are paced per mailbox), the beat puts it in one
    when its time comes."""
    delivery = _waiting(session, subscriber, None, email, now)
    if due > now:
        delivery.due_at = due
    else:
        send_now(session, [delivery], now)
    return delivery


def send_again(session: Session, subscriber: Subscriber, email: str, release: str | None, now: datetime) -> Delivery:
    """A course email the reader had, sent again now (they lost it; the studio sends it for them): a delivery of
    no step, so that it is a message of its own (its own Message-ID) and the email's figures count it once;
    made with the release the first one was, and sent only while the reader is on the course."""
    delivery = _waiting(session, subscriber, None, email, now)
    delivery.template_version = release
    send_now(session, [delivery], now)
    return delivery


def queue_confirmation(
    session: Session, subscriber: Subscriber, request: SignupRequest, now: datetime, due: datetime
) -> Delivery:
    delivery = queue_service_email(session, subscriber, EmailKind.CONFIRMATION, now, due)
    delivery.signup_request_id = request.id
    return delivery


def claim_next_step(
    session: Session, subscriber: Subscriber, course: Course, now: datetime, timing: Timing
) -> Delivery | None:
    """Send the subscriber's next course email now (the welcome, as they confirm; the caller holds the row
    lock), moving their place and next time on as the beat's claim does (:func:`claim_due`).

    Their place is the last email they got, by who it is, not by its number in the course: an email put in
    after that place comes in its turn, one taken out is skipped, one they had already and that was moved
    later is not sent again."""
    had: set[int] = set()
    if course.moved:  # an email moved later may have reached them before the move
        had = set(
            session.scalars(
                select(Delivery.step).where(
                    Delivery.subscriber_id == subscriber.id,
                    Delivery.enrolment == subscriber.enrolment,
                    Delivery.step.in_(course.moved),
                    Delivery.state != DeliveryState.SKIPPED.value,
                )
            )
        )
    step = course.next_step(subscriber.current_step, had)
    if step is None:
        complete(subscriber, now)
        return None
    existing = session.scalar(
        select(Delivery).where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.enrolment == subscriber.enrolment,
            Delivery.step == step.number,
        )
    )
    if existing is not None and existing.state != DeliveryState.SKIPPED.value:
        return None  # on its way or sent already: never a second delivery of one email
    subscriber.current_step = step.number
    subscriber.last_sent_at = now
    subscriber.next_send_at = NextTimes(course, now, timing).after(
        step, subscriber.timezone, subscriber.send_time, subscriber.confirmed_at
    )
    if subscriber.next_send_at is None:
        complete(subscriber, now)
    if existing is None:
        delivery = _waiting(session, subscriber, step.number, step.email, now)
    else:  # skipped when they paused or unsubscribed before it went out: it goes now instead
        move(existing, DeliveryState.CLAIMED)
        existing.due_at = now
        existing.last_reply = None
        delivery = existing
    send_now(session, [delivery], now)
    return delivery


# The claim of a round, on PostgreSQL, in two statements and one transaction (``claim_due``):
#
# 1. ``_DUE`` locks due subscribers nobody else holds (SKIP LOCKED) and works out each one's next email.
#    The course's emails are the arrays :numbers and :emails, in order (1-based); a reader whose last
#    email was N (-1: none yet) goes on from index :starts[N + 2] (past the end: nothing left), which the
#    course works out for emails taken out too (Course.place_after). An email that was ever moved later
#    (:checks) may have reached them before: for it alone the claim looks at their deliveries, and passes
#    over it when they had it. The readers come back in groups that share a next email, a zone and an hour
#    (and a confirmation time where the wait after that email counts from it, :signup): everything their
#    next time depends on. A group is a count and two array literals, its readers in the order they
#    were due, so that Python asks the schedule once per group and never handles a reader.
# 2. ``_ADVANCE`` moves them on, one row each: their place is the email claimed, their next email's time is
#    the schedule's (worked out in Python, once per group: course/schedule.py is its one owner), and who got
#    the last email, or had nothing left to get, is completed. In the same statement their emails become
#    batch entries (``SendBatch``) of :size, group after group, with no delivery row until they are sent.
#
# A reader is claimed once per email: the lock, and a next_send_at moved on in the same transaction; and
# the unique (subscriber, enrolment, step) makes "never two" the database's rule when the sent record is
# written. What a worker finds not sent (skipped: they paused or left in the meantime) gives the reader
# their place back (:func:`course.deliveries.sending.give_back_place`).
_DUE = text("""
WITH due AS (
    SELECT p.subscriber_id AS id, p.enrolment, COALESCE(p.current_step, -1) AS place, p.next_send_at AS due_at,
           s.timezone, s.send_time, s.confirmed_at
    FROM progress AS p
    JOIN subscribers AS s ON s.id = p.subscriber_id
    WHERE p.status = 'active' AND p.next_send_at <= :now AND s.course_slug = :slug
      -- a reader whose last email, claimed within the lease, is still on its way (no record of it yet: a
      -- wait of 0 days, a retry, compressed days) waits for it; every other reader is read from the index
      AND (p.last_sent_at IS NULL OR p.last_sent_at < :recent OR p.current_step IS NULL OR EXISTS (
          SELECT 1 FROM deliveries AS y
          WHERE y.subscriber_id = p.subscriber_id AND y.enrolment = p.enrolment
            AND y.step = p.current_step AND y.state IN ('sent', 'failed')))
    ORDER BY p.next_send_at
    LIMIT :limit
    -- their progress rows alone: who they are is only read
    FOR UPDATE OF p SKIP LOCKED
), placed AS (
    SELECT due.*, COALESCE((CAST(:starts AS int[]))[place + 2], :past) AS start
    FROM due
), chosen AS MATERIALIZED (  -- worked out once a reader: its group and its confirmation time both read it
    SELECT id, enrolment, due_at, timezone, send_time, confirmed_at,
           CASE WHEN start > :steps THEN NULL
                WHEN NOT (CAST(:checks AS boolean[]))[start] THEN start
                ELSE (SELECT i FROM generate_series(start, :steps) AS i
                      WHERE NOT (CAST(:checks AS boolean[]))[i] OR NOT EXISTS (
                          SELECT 1 FROM deliveries AS x
                          WHERE x.subscriber_id = placed.id AND x.enrolment = placed.enrolment
                            AND x.step = (CAST(:numbers AS int[]))[i] AND x.state <> 'skipped')
                      ORDER BY i LIMIT 1)
           END AS i
    FROM placed
)
SELECT i, timezone, send_time, CASE WHEN (CAST(:signup AS boolean[]))[i] THEN confirmed_at END AS since,
       count(*), CAST(array_agg(id ORDER BY due_at, id) AS text), CAST(array_agg(enrolment ORDER BY due_at, id) AS text)
FROM chosen
GROUP BY 1, 2, 3, 4
ORDER BY min(due_at), 1, 2, 3, 4
""")

# The claim's one write per reader, to their progress row (their address and details are not rewritten):
# status 'active' -> 'completed' is the one move of a status here, as course/lifecycle.py's MOVES allows
# (the claim reads active subscribers only). Who gets nothing more has no next time: they complete. And
# the round's emails into the send queue: batches of :size, made by the database (one statement, whatever
# the number of batches); each step's email is the course's.
# The groups go as lists (a few a round); their readers as the array literals ``_DUE`` gave, untouched, and
# the next times as microseconds since the epoch.
_ADVANCE = text("""
WITH claimed AS (
    SELECT r.id, r.enrolment, g.step, g.next_at, g.n, r.k
    FROM unnest(CAST(:ids AS text[]), CAST(:enrolments AS text[]), CAST(:steps AS int[]), CAST(:next_at AS bigint[]))
         WITH ORDINALITY AS g(ids, enrolments, step, next_at, n),
         unnest(CAST(g.ids AS bigint[]), CAST(g.enrolments AS int[])) WITH ORDINALITY AS r(id, enrolment, k)
), moved AS (
    UPDATE progress AS p
    SET current_step = COALESCE(c.step, p.current_step),
        next_send_at = timestamptz 'epoch' + c.next_at * interval '1 microsecond',
        last_sent_at = CASE WHEN c.step IS NULL THEN p.last_sent_at ELSE :now END,
        status = CASE WHEN c.next_at IS NULL THEN 'completed' ELSE p.status END,
        completed_at = CASE WHEN c.next_at IS NULL THEN :now ELSE p.completed_at END
    FROM claimed AS c
    WHERE p.subscriber_id = c.id
), queued AS (
    SELECT id, enrolment, step, row_number() OVER (ORDER BY n, k) AS i
    FROM claimed
    WHERE step IS NOT NULL
)
INSERT INTO send_batches (course_slug, release, created_at, lane, attempts, size, subscriber_ids, enrolments,
                          steps, emails)
SELECT :slug, :release, :now, :lane, 0, count(*), array_agg(q.id ORDER BY q.i), array_agg(q.enrolment ORDER BY q.i),
       array_agg(q.step ORDER BY q.i),
       array_agg((CAST(:emails AS text[]))[array_position(CAST(:numbers AS int[]), q.step)] ORDER BY q.i)
FROM queued AS q
GROUP BY (q.i - 1) / :size
ORDER BY (q.i - 1) / :size
""")


def _microseconds(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return (moment - EPOCH) // ONE_MICROSECOND


def sequence_parameters(course: Course) -> dict[str, object]:
    """The course's order as the claim reads it (see ``_DUE``)."""
    steps = course.steps
    known = [-1, *(step.number for step in steps), *course.retired]
    starts = [len(steps) + 1] * (max(known) + 2)
    for number in known:
        starts[number + 1] = course.place_after(None if number == -1 else number) + 1
    moved = set(course.moved)
    return {
        "numbers": [step.number for step in steps],
        "emails": [step.email for step in steps],
        "checks": [step.number in moved for step in steps],
        "signup": [counts_from_signup(wait_after(course, step.number)) for step in steps],
        "starts": starts,
        "steps": len(steps),
        "past": len(steps) + 1,
    }


def _run_due(session: Session, statement: TextClause, course: Course, now: datetime, limit: int,
             timing: Timing) -> Result[*TupleAny]:  # fmt: skip
    """``statement`` (``_DUE``, or its EXPLAIN) with a round's parameters."""
    # The plan's cost, inflated by the search for a moved email (generate_series), would have PostgreSQL
    # compile the statement (JIT) at every round: 1.5 s for a claim that runs in milliseconds.
    session.execute(text("SET LOCAL jit = off"))
    return session.execute(statement, {
        "now": now, "recent": now - timing.lease, "slug": course.slug, "limit": limit, **sequence_parameters(course),
    })  # fmt: skip


def due_plan(session: Session, course: Course, now: datetime, limit: int, timing: Timing) -> list[str]:
    """PostgreSQL's plan for a round's choice of due readers (``_DUE``, as :func:`claim_due` runs it): what
    the benchmarks show, to see it read the index and not the table."""
    return [str(row[0]) for row in _run_due(session, text("EXPLAIN " + _DUE.text), course, now, limit, timing)]


@dataclass(frozen=True)
class Claimed:
    """One round's claim of one course: the batches it queued, how many emails they hold, and how many
    readers it moved on (with those who had nothing left to get)."""

    batches: int
    emails: int
    readers: int


def claim_due(
    session: Session, course: Course, now: datetime, limit: int, timing: Timing, release: str | None, batch_size: int
) -> Claimed:
    """One round of the beat for one course, set-based: lock up to ``limit`` due readers, move each on to
    their next email (or complete them), and queue those emails in batches of ``batch_size`` carrying
    ``release``, the templates they are sent with. The caller commits; the batches are handed to the
    workers when it does."""
    groups = _run_due(session, _DUE, course, now, limit, timing).all()
    if not groups:
        return Claimed(0, 0, 0)
    times = NextTimes(course, now, timing)
    steps = course.steps
    parameters: dict[str, list[object]] = {"ids": [], "enrolments": [], "steps": [], "next_at": []}
    readers = emails = 0
    for index, timezone, send_time, since, count, ids, enrolments in groups:
        parameters["ids"].append(ids)
        parameters["enrolments"].append(enrolments)
        readers += count
        if index is None:  # nothing left to get: the course is over for them
            parameters["steps"].append(None)
            parameters["next_at"].append(None)
            continue
        step = steps[index - 1]
        parameters["steps"].append(step.number)
        parameters["next_at"].append(_microseconds(times.after(step, timezone, send_time, since)))  # None: the last
        emails += count
    session.execute(_ADVANCE, {
        **parameters, "now": now, "slug": course.slug, "release": release, "lane": COURSE_DAYS, "size": batch_size,
        "numbers": [step.number for step in steps], "emails": [step.email for step in steps],
    })  # fmt: skip
    batches = -(-emails // batch_size)
    hand_over_after_commit(session, batches)
    return Claimed(batches, emails, readers)


def send_now(session: Session, deliveries: list[Delivery], now: datetime) -> SendBatch | None:
    """Put deliveries that have a row of their own (a confirmation, the welcome, a retry whose time came)
    in a batch of their own, ahead of the course days waiting: the workers take it once the caller's
    transaction commits."""
    if not deliveries:
        return None
    session.flush()
    batch = SendBatch(delivery_ids=[delivery.id for delivery in deliveries], size=len(deliveries), lane=AHEAD,
                      created_at=now)  # fmt: skip
    session.add(batch)
    session.flush()
    for delivery in deliveries:
        delivery.batch_id = batch.id
    hand_over_after_commit(session, 1)
    return batch


def in_flight(session: Session) -> int:
    """The emails in the send queue, waiting for a worker or with one: the work not finished."""
    return int(session.scalar(select(func.coalesce(func.sum(SendBatch.size), 0))) or 0)


def recover_batches(session: Session, now: datetime) -> list[int]:
    """Batches whose worker is gone (it no longer holds its lock: course/senders.py) or kept them past
    their lease (stalled): back in the queue, ahead of new work. What their worker had sent and recorded
    stays sent (a worker checks that before each chunk); the chunk it may have been sending when it died
    is the duplicate bound."""
    stale = session.scalars(
        update(SendBatch)
        .where(SendBatch.taken_at.is_not(None), or_(SendBatch.lease_until < now, sender_gone()))
        .values(taken_at=None, lease_until=None, sender_key=None, lane=AHEAD)
        .returning(SendBatch.id)
        .execution_options(synchronize_session=False)
    ).all()
    if stale:
        log.warning("batches %s were left by a worker gone or stalled: handed out again", list(stale))
        # Their own deliveries (a confirmation, a retry) wait for the batch's next worker.
        session.execute(
            update(Delivery)
            .where(Delivery.batch_id.in_(stale), Delivery.state == DeliveryState.SENDING.value)
            .values(state=DeliveryState.CLAIMED.value)
            .execution_options(synchronize_session=False)
        )
        hand_over_after_commit(session, len(stale))
    return list(stale)


def batch_due_deliveries(session: Session, now: datetime, limit: int, size: int) -> int:
    """Deliveries with a row of their own whose time came (a paced confirmation, a retry, one held through
    a sending pause) and that no batch carries: into batches of ``size``, ahead of new work. How many."""
    due = session.scalars(
        select(Delivery)
        .where(
            Delivery.state == DeliveryState.CLAIMED.value,
            Delivery.due_at <= now,
            or_(Delivery.batch_id.is_(None), ~exists().where(SendBatch.id == Delivery.batch_id)),
        )
        .order_by(Delivery.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Delivery)
    ).all()
    for start in range(0, len(due), size):
        send_now(session, list(due[start : start + size]), now)
    return len(due)
