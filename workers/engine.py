"""What the beat's tick and the send_next task do, free of Celery so that tests can drive it directly.

A :class:`Runtime` holds one process's resources (database, sender, throttle, renderers). The beat
(:mod:`workers.beat`) builds one and calls :func:`tick`; the Celery task in :mod:`workers.tasks` builds
one per worker process and calls :func:`send_next`.

The send queue is the database's (``send_batches``): the broker carries only wake-ups, and a wake-up does
not say which batch (the next in the queue's order, then the next while any is left, for up to a tick).
So a broker that loses its messages (a restart without persistence, a flush) loses no email: a worker at
work goes on through the queue, and the beat wakes a worker for each batch nobody was woken for at its
next tick; a batch handed out again goes ahead of new work, whatever order the wake-ups come in; and a
batch waiting its turn has no lease to run out, however long the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from course.catalog import course_at, parse_release, release_name, slugs
from course.clock import DatabaseClock
from course.db import hand_over_with, make_engine, make_sessionmaker
from course.deliveries.claim import batch_due_deliveries, claim_due, in_flight, recover_batches
from course.deliveries.sending import (
    ChunkCheck,
    Outgoing,
    Sent,
    active_pause,
    check_chunk,
    delivery_row,
    finish_batch,
    hold_for_pause,
    keep_lease,
    mark_bad_address,
    mark_failed,
    mark_skipped,
    outgoing,
    pause_sending,
    record_sent,
    retry_later,
    take_batch,
)
from course.deliveries.timing import Timing
from course.engagement.answers import answers_so_far
from course.lifecycle import is_course_email
from course.models.deliveries import SendBatch, SendingPause
from course.senders import batch_lock
from course.settings import Settings
from course.subscriptions import resume_ended_pauses
from emails.compiler import TemplateError
from emails.mime import Envelope, MessageBuilder, UnsafeHeaderValue
from emails.prepared import Preparer
from emails.rendering import Recipient, Renderer
from emails.senders import Connection, Outcome, Sender, SendResult, sender_from_url
from emails.store import current_release, templates_at
from workers.throttle import LocalTokenBucket, RedisTokenBucket, Throttle

log = logging.getLogger(__name__)

# Renderers kept per process, one per (course, release): the live release and the few before it.
RELEASES_KEPT = 32
# A tick claims round after round for at most this share of the interval, then hands over to the next
# tick: it records that it ran (the beat's health check), and a long backlog is worked through by
# consecutive ticks.
TICK_BUDGET = 0.8
# Connections that claim side by side on PostgreSQL (see _claim).
CLAIMERS = 2


class Runtime:
    """One process's resources for sending: the database, the sender, the throttle, the clock, the broker.

    The composition root (cli/root.py) makes one per process from the resources it built; tests make theirs
    with a clock, a sender or a broker of their own. ``enqueue`` wakes that many workers (a wake-up for each
    batch a commit queued); ``waiting_wakeups`` says how many wake-ups wait in the broker, so that the beat
    can wake a worker for each batch whose wake-up was lost. Without ``enqueue`` nobody is woken: the
    batches wait in the database until a process that can wake the workers sees them.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sender: Sender | None = None,
        throttle: Throttle | None = None,
        enqueue: Callable[[int], None] | None = None,
        waiting_wakeups: Callable[[], int] | None = None,
        clock: Callable[[], datetime] | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self.settings = settings
        self.timing = Timing.of(settings)
        self.sessions = sessions or make_sessionmaker(make_engine(settings.database_url, plan_each_time=True))
        self.engine: Engine = self.sessions.kw["bind"]
        self._enqueue = enqueue
        self.waiting_wakeups = waiting_wakeups
        if enqueue is not None:
            hand_over_with(self.sessions, self.enqueue)
        self.sender: Sender = sender or sender_from_url(settings.smtp_url, settings.smtp_timeout_seconds)
        self.throttle = throttle or make_throttle(settings)
        self.clock = clock or DatabaseClock(self.engine, settings.clock_check_seconds)
        self._writers: dict[tuple[str, int], tuple[Renderer, Preparer, MessageBuilder]] = {}

    def now(self) -> datetime:
        return self.clock()

    def enqueue(self, wakeups: int) -> None:
        """Wake ``wakeups`` workers, one for each batch queued. Its sessions do it when a transaction that
        queued batches commits (course/db.py's hand_over_after_commit)."""
        if self._enqueue is not None and wakeups > 0:
            self._enqueue(wakeups)

    def writers(self, session: Session, course_slug: str, release: int) -> tuple[Renderer, Preparer, MessageBuilder]:
        """The renderer of a course's release (see emails/store.py). A release never changes, so its
        templates are read once per process; the most recent few are kept."""
        key = (course_slug, release)
        if key not in self._writers:
            while len(self._writers) >= RELEASES_KEPT:
                self._writers.pop(next(iter(self._writers)))
            course = course_at(session, course_slug, release)
            renderer = Renderer(course, self.settings, templates_at(session, course_slug, release))
            self._writers[key] = (
                renderer,
                Preparer(renderer),
                MessageBuilder(
                    self.settings,
                    course.slug,
                    course.title,
                    renderer.course.practice.signer,
                    sender_name=renderer.course.sender_name,
                    reply_to=renderer.course.reply_to,
                ),
            )
        return self._writers[key]

    def envelope_for(
        self, session: Session, item: Outgoing, now: datetime, answers: dict[str, str] | None = None
    ) -> tuple[Envelope, str]:
        """The message of one delivery, and the release of the templates it was made with."""
        # The release the beat claimed it under (a publish since then does not change it); a delivery
        # made outside the beat (a confirmation, the welcome) goes with the release of now.
        release = parse_release(item.template_version)
        if release is None:
            release = current_release(session, item.course_slug)
        renderer, preparer, builder = self.writers(session, item.course_slug, release)
        # A course email may speak to the reader's answers so far (a confirmation has none yet); its links
        # count in the time through the course it was sent in (one sent again: the reader's present one).
        course_email = is_course_email(item.email)
        recipient = Recipient(
            item.subscriber_id,
            item.address,
            item.first_name,
            item.signup_request_id,
            (answers or {}) if course_email else {},
            item.enrolment if course_email else None,
        )
        # Fixed per (subscriber, enrolment, step): a resend of one delivery carries the same Message-ID.
        if item.step is None:
            key: int | str = f"{item.email}-{item.delivery_id}"
        else:
            key = item.step if item.enrolment == 1 else f"{item.enrolment}.{item.step}"
        message_id = builder.message_id(item.subscriber_id, key)
        values = renderer.reader_values(item.email, recipient)
        prepared = preparer.prepared(item.email, recipient, values)
        if prepared is not None:
            envelope = builder.build_prepared(
                prepared, values, to_address=item.address, to_name=item.first_name, message_id=message_id, date=now
            )
        else:  # a template that needs the whole render for each reader
            rendered = renderer.render_with(item.email, renderer.context(item.email, recipient, values))
            envelope = builder.build(
                rendered, to_address=item.address, to_name=item.first_name, message_id=message_id, date=now
            )
        return envelope, release_name(release)


def make_throttle(settings: Settings) -> Throttle:
    if settings.redis is None:
        return LocalTokenBucket(settings.send_rate_per_second)
    client = redis.Redis.from_url(settings.redis)
    return RedisTokenBucket(client, f"{settings.celery_queue}:send-rate", settings.send_rate_per_second)


def _last_tick_key(settings: Settings) -> str:
    return f"{settings.celery_queue}:last-tick"


def record_tick(settings: Settings) -> None:
    """Note that a tick ran, for the beat's health check (the beat reached the database and the broker)."""
    if settings.redis is not None:
        redis.Redis.from_url(settings.redis).set(_last_tick_key(settings), datetime.now(UTC).timestamp(), ex=86400)


def seconds_since_last_tick(settings: Settings) -> float | None:
    if settings.redis is None:
        return None
    value = redis.Redis.from_url(settings.redis, socket_timeout=3).get(_last_tick_key(settings))
    return None if value is None else datetime.now(UTC).timestamp() - float(value)


@dataclass(frozen=True)
class TickOutcome:
    queued: int  # emails put in the send queue (claimed, and deliveries whose time came)
    more_due: bool  # the tick's time ran out while more was due (the next tick may start at once)
    recovered: int = 0  # batches handed out again (their worker died or stalled)
    woken: int = 0  # wake-ups sent for batches nobody was woken for (the broker lost them)


def tick(runtime: Runtime) -> TickOutcome:
    """The beat: hand out again what dead workers left; claim due readers, committing and then waking the
    workers each round, until nothing is due, the workers have enough to do (MAX_IN_FLIGHT), or the tick's
    time is spent (the next tick goes on); batch the deliveries whose time came; and wake a worker for
    every batch in the queue that no wake-up waits for (lost with the broker, or never sent: a beat killed
    between its commit and its wake-ups). Paused sending claims nothing."""
    budget_ends = time.monotonic() + runtime.settings.tick_interval_seconds * TICK_BUDGET
    batch = runtime.settings.claim_batch_size
    with runtime.sessions() as session:
        recovered = recover_batches(session, runtime.now())
        session.commit()
    with runtime.sessions() as session:
        now = runtime.now()
        pause = active_pause(session, now)
        if pause is not None:
            log.warning("sending is paused until %s: %s", pause.until.isoformat(), pause.reason)
            return TickOutcome(0, more_due=False, recovered=len(recovered), woken=wake_for_waiting(runtime))
        resume_ended_pauses(session, now=now, timing=runtime.timing, limit=batch)
        session.commit()
        room = runtime.settings.max_in_flight - in_flight(session)
    claimed, more_due = _claim(runtime, room, batch, budget_ends)
    queued = claimed
    while not more_due:  # then the deliveries whose time came
        with runtime.sessions() as session:
            found = batch_due_deliveries(session, runtime.now(), batch, runtime.settings.send_batch_size)
            session.commit()
        queued += found
        if found < batch:
            break
        more_due = time.monotonic() > budget_ends
    return TickOutcome(queued, more_due, recovered=len(recovered), woken=wake_for_waiting(runtime))


def wake_for_waiting(runtime: Runtime) -> int:
    """Wake a worker for each batch in the queue that no wake-up in the broker stands for: how many were
    sent. A wake-up that finds nothing left does nothing, so erring towards more is harmless; the count of
    those in the broker leaves out the few a worker has reserved, so a few more than lost may be sent."""
    if runtime.waiting_wakeups is None:
        return 0
    with runtime.sessions() as session:
        untaken = int(session.scalar(select(func.count()).where(SendBatch.taken_at.is_(None))) or 0)
    missing = untaken - runtime.waiting_wakeups()
    if missing > 0:
        runtime.enqueue(missing)
        log.info("beat: %s batches had no wake-up in the broker: woke a worker for each", missing)
    return max(0, missing)


def _claim(runtime: Runtime, room: int, batch: int, budget_ends: float) -> tuple[int, bool]:
    """Claim rounds until nothing is due, ``room`` is used up or the time is: how many were claimed, and
    whether more was due when the time ran out. On PostgreSQL, CLAIMERS connections claim side by side
    (SKIP LOCKED gives each its own subscribers, and the database's share, most of a claim, spreads
    over its cores); each commits its round, which wakes the workers for its batches."""
    lock = threading.Lock()
    left = {"room": room, "claimed": 0, "done": False, "more_due": False}

    def claimer() -> None:
        while True:
            with lock:
                wanted = min(batch, left["room"])
                if left["done"] or wanted <= 0:
                    return
                left["room"] -= wanted  # taken for this round; what it does not claim is given back
            with runtime.sessions() as session:
                found, readers = _claim_round(session, runtime.now(), wanted, runtime)
                session.commit()
            with lock:
                left["claimed"] += found
                left["room"] += wanted - found
                if readers < wanted:
                    left["done"] = True  # nothing more is due
                elif time.monotonic() > budget_ends:
                    left["done"] = left["more_due"] = True

    with ThreadPoolExecutor(CLAIMERS, thread_name_prefix="claim") as pool:
        for done in [pool.submit(claimer) for _ in range(CLAIMERS)]:
            done.result()  # a claimer's error (the database away) is the tick's
    return int(left["claimed"]), bool(left["more_due"])


def _claim_round(session: Session, now: datetime, limit: int, runtime: Runtime) -> tuple[int, int]:
    """One round's claim, course by course (course/deliveries/claim.py): the emails queued, and the readers
    claimed (with those who had nothing left to get and were completed)."""
    emails = readers = 0
    for slug in slugs(session):
        release = current_release(session, slug)
        course = course_at(session, slug, release)
        claimed = claim_due(session, course, now, limit - readers, runtime.timing, release_name(release),
                            runtime.settings.send_batch_size)  # fmt: skip
        emails += claimed.emails
        readers += claimed.readers
        if readers >= limit:
            break
    return emails, readers


def send_while_queued(runtime: Runtime, seconds: float) -> dict[str, int]:
    """A wake-up's work: send batch after batch while the queue has any, for at most ``seconds`` (then the
    task ends, so that a worker's warm shutdown never waits long). A worker woken once keeps going through
    a backlog, so wake-ups the broker lost cost nothing while any worker is at work; and a wake-up that finds
    the queue empty does nothing, so one too many is harmless."""
    deadline = time.monotonic() + seconds
    tally: dict[str, int] = {}
    while True:
        sent = send_next(runtime)
        for outcome, count in sent.items():
            tally[outcome] = tally.get(outcome, 0) + count
        if not sent or time.monotonic() > deadline:
            return tally


def send_next(runtime: Runtime) -> dict[str, int]:
    """Take the next batch in the queue and send it (a wake-up's work); nothing when the queue is empty, so
    that a wake-up delivered twice, or one too many, is harmless.

    Chunk by chunk (SEND_CHUNK_SIZE): read whether the batch is still this worker's, what of the chunk is
    recorded already, and whether each reader may still get mail (an unsubscribe or a suppression
    committed before that stops them); send the chunk, then record what was sent in one statement and
    commit. A worker killed mid-chunk has sent at most that chunk without recording it: the batch is
    handed out again at the beat's next tick, when PostgreSQL has freed the dead worker's lock
    (course/senders.py), or else when its lease runs out, and its next worker sends what was not
    recorded (the duplicate bound: one chunk per worker process killed), and nothing is lost.
    """
    tally: dict[str, int] = {}
    # The lock first, and let go after the last commit: while it is held, the beat knows this worker lives.
    with batch_lock(runtime.engine) as sender_key, runtime.sessions() as session:
        batch = take_batch(session, runtime.now(), runtime.timing, sender_key)
        session.commit()  # taken, on disk before anything reaches SMTP
        if batch is None:
            return tally
        session.expunge(batch)  # this worker's copy: written by statements that check it is still its own
        # Looked up once a batch, and set by the batch itself on a 5.7.x: then the rest waits too.
        pause = active_pause(session, runtime.now())
        items = outgoing(session, batch)
        # What each email may say of its reader's answers.
        answers = answers_so_far(session, [item.subscriber_id for item in items])
        tally["gone"] = batch.size - len(items)  # erased with their subscriber in the meantime
        size = runtime.settings.send_chunk_size
        with runtime.sender.connect() as connection:
            for start in range(0, len(items), size):
                chunk = items[start : start + size]
                check = check_chunk(session, batch, chunk, runtime.timing)  # read last, just before SMTP
                if not check.ours:  # handed out again while it went slowly: its new worker sends the rest
                    tally["taken back"] = len(items) - start
                    break
                pause = _send_chunk(runtime, session, batch, connection, chunk, check, pause, answers, tally)
                if start + size >= len(items):
                    finish_batch(session, batch)
                else:  # a slow batch (a server that stalls) must not outlive its lease unseen
                    keep_lease(session, batch, runtime.now(), runtime.timing)
                session.commit()  # the chunk recorded (and the batch done): one commit
            else:
                if not items:
                    finish_batch(session, batch)
                    session.commit()
    return {outcome: count for outcome, count in tally.items() if count}


def _send_chunk(
    runtime: Runtime, session: Session, batch: SendBatch, connection: Connection, chunk: list[Outgoing],
    check: ChunkCheck, pause: SendingPause | None, answers: dict[int, dict[str, str]], tally: dict[str, int],
) -> SendingPause | None:  # fmt: skip
    now = runtime.now()
    ready: list[tuple[Outgoing, Envelope, str]] = []
    for item in chunk:
        outcome: str | None
        if item in check.recorded:
            outcome = "recorded before"
        elif item in check.stops or (pause is not None and pause.until > now):
            delivery = delivery_row(session, item, now)
            if delivery is None:
                outcome = "gone"
            elif item in check.stops:
                mark_skipped(session, delivery, check.stops[item], now)
                outcome = "skipped"
            else:
                hold_for_pause(delivery, pause)  # type: ignore[arg-type]  # pause is set: the test above
                outcome = "held"
        else:
            outcome = _build(runtime, session, item, now, answers, ready)
        if outcome:
            tally[outcome] = tally.get(outcome, 0) + 1
    runtime.throttle.acquire(len(ready))
    sent: list[Sent] = []
    done = 0
    # One round trip a message over SMTP: the next message's commands go out behind this one's end, so the
    # server works on it while its result is recorded here (emails/senders.py, send_each).
    with closing(connection.send_each([envelope for _, envelope, _ in ready])) as results:
        for result in results:
            item, envelope, release = ready[done]
            done += 1
            pause = _record_result(runtime, session, item, envelope, release, result, pause, sent, tally)
    # The exchange ends early after a 5.7.x alone, which started a pause: nothing more was sent, and the rest
    # of the chunk waits for the pause to end.
    for item, _, _ in ready[done:]:
        if pause is not None and (held := delivery_row(session, item, runtime.now())) is not None:
            hold_for_pause(held, pause)
        tally["held"] = tally.get("held", 0) + 1
    record_sent(session, batch, sent, runtime.now(), runtime.timing)
    return pause


def _record_result(
    runtime: Runtime, session: Session, item: Outgoing, envelope: Envelope, release: str, result: SendResult,
    pause: SendingPause | None, sent: list[Sent], tally: dict[str, int],
) -> SendingPause | None:  # fmt: skip
    """What the mail server said of one message, recorded: kept for the chunk's one record of what was
    sent, or the delivery moved on (a retry, a suppression, a failure, the pause a 5.7.x starts)."""
    now = runtime.now()
    reply = result.describe()
    tally[result.outcome.value] = tally.get(result.outcome.value, 0) + 1
    if result.outcome is Outcome.ACCEPTED:
        sent.append(Sent(item, envelope.message_id, reply, release, now))
        return pause
    delivery = delivery_row(session, item, now)
    if result.outcome is Outcome.SENDER_BLOCKED:  # about us, not the reader: sending pauses, whoever it was
        if delivery is not None:
            delivery.template_version = release
        return pause_sending(session, delivery, reply, now, runtime.timing)
    if delivery is None:  # erased while it was being sent: nothing left to record
        return pause
    delivery.template_version = release
    label = item.delivery_id or f"{item.subscriber_id}/{item.step}"
    if result.outcome is Outcome.RETRY:
        log.info("delivery %s: temporary failure, retrying: %s", label, reply)
        retry_later(session, delivery, reply, now, runtime.timing)
    elif result.outcome is Outcome.BAD_ADDRESS:
        log.info("delivery %s: the address does not exist, suppressing it: %s", label, reply)
        mark_bad_address(session, delivery, reply, now, runtime.timing)
    else:
        log.info("delivery %s: refused for good: %s", label, reply)
        mark_failed(session, delivery, reply, now, runtime.timing)
    return pause


def _build(
    runtime: Runtime, session: Session, item: Outgoing, now: datetime, answers: dict[int, dict[str, str]],
    ready: list[tuple[Outgoing, Envelope, str]],
) -> str | None:  # fmt: skip
    """The message of one delivery, added to ``ready``; or the outcome when it cannot be built."""
    try:
        envelope, release = runtime.envelope_for(session, item, now, answers.get(item.subscriber_id))
    except (UnsafeHeaderValue, TemplateError) as error:
        delivery = delivery_row(session, item, now)
        if delivery is None:
            return "gone"
        if isinstance(error, UnsafeHeaderValue):
            mark_failed(session, delivery, f"cannot address this message: {error}", now, runtime.timing, bounced=False)
            return "failed"
        log.error("delivery of %s to %s: template %s is broken: %s", item.step, item.subscriber_id, item.email, error)
        retry_later(session, delivery, f"template error: {error}", now, runtime.timing)
        return "retry"
    ready.append((item, envelope, release))
    return None
