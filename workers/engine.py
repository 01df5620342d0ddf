"""What the beat's tick and the send_batch task do, free of Celery so that tests can drive it directly.

A :class:`Runtime` holds one process's resources (database, sender, throttle, renderers). The beat
(:mod:`workers.beat`) builds one and calls :func:`tick`; the Celery task in :mod:`workers.tasks` builds
one per worker process and calls :func:`send_batch`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from course.catalog import course_at, parse_release, release_name, slugs
from course.clock import DatabaseClock
from course.db import hand_over_after_commit, hand_over_with, make_engine, make_sessionmaker
from course.deliveries.claim import claim_due_ids, in_flight, release_abandoned
from course.deliveries.sending import (
    Outgoing,
    Sent,
    active_pause,
    begin_sending,
    hold_for_pause,
    mark_bad_address,
    mark_failed,
    mark_sent_many,
    mark_skipped,
    outgoing,
    pause_sending,
    reasons_not_to_send,
    retry_later,
)
from course.deliveries.timing import Timing
from course.engagement.answers import answers_so_far
from course.models.deliveries import Delivery, DeliveryState, SendingPause
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


def batches(delivery_ids: Iterable[int], size: int) -> Iterator[list[int]]:
    """The ids in send_batch tasks of at most ``size`` (SEND_BATCH_SIZE)."""
    ids = list(delivery_ids)
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class Runtime:
    """One process's resources for sending: the database, the sender, the throttle, the clock, the queue.

    The composition root (cli/root.py) makes one per process from the resources it built; tests make theirs
    with a clock, a sender or a queue of their own. Without ``enqueue`` nothing is queued: what a commit
    hands over waits for the beat, which hands out a claimed delivery nobody took once its lease runs out.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sender: Sender | None = None,
        throttle: Throttle | None = None,
        enqueue: Callable[[list[int]], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self.settings = settings
        self.timing = Timing.of(settings)
        self.sessions = sessions or make_sessionmaker(make_engine(settings.database_url))
        self.engine: Engine = self.sessions.kw["bind"]
        self._enqueue = enqueue
        if enqueue is not None:
            hand_over_with(self.sessions, self.enqueue)
        self.sender: Sender = sender or sender_from_url(settings.smtp_url, settings.smtp_timeout_seconds)
        self.throttle = throttle or make_throttle(settings)
        self.clock = clock or DatabaseClock(self.engine, settings.clock_check_seconds)
        self._writers: dict[tuple[str, int], tuple[Renderer, Preparer, MessageBuilder]] = {}

    def now(self) -> datetime:
        return self.clock()

    def enqueue(self, delivery_ids: Iterable[int]) -> None:
        """Queue send_batch tasks of at most SEND_BATCH_SIZE. Its sessions do it when a transaction that
        handed deliveries over commits (course/db.py's hand_over_after_commit)."""
        if self._enqueue is not None:
            for chunk in batches(delivery_ids, self.settings.send_batch_size):
                self._enqueue(chunk)

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
        # A course step may speak to the reader's answers so far (a confirmation has none yet).
        answers = (answers or {}) if item.step is not None else {}
        recipient = Recipient(
            item.subscriber_id,
            item.address,
            item.first_name,
            item.signup_request_id,
            answers,
            item.enrolment if item.step is not None else None,
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
    queued: int  # deliveries queued for the workers
    more_due: bool  # the tick's time ran out while more was due (the next tick may start at once)


def tick(runtime: Runtime) -> TickOutcome:
    """The beat: claim due subscribers, then abandoned deliveries, committing and then enqueueing each
    round, until nothing is due, the workers have enough to do (MAX_IN_FLIGHT), or the tick's time is
    spent (the next tick goes on). Paused sending claims nothing."""
    budget_ends = time.monotonic() + runtime.settings.tick_interval_seconds * TICK_BUDGET
    batch = runtime.settings.claim_batch_size
    with runtime.sessions() as session:
        now = runtime.now()
        pause = active_pause(session, now)
        if pause is not None:
            log.warning("sending is paused until %s: %s", pause.until.isoformat(), pause.reason)
            return TickOutcome(0, more_due=False)
        resume_ended_pauses(session, now=now, timing=runtime.timing, limit=batch)
        session.commit()
        room = runtime.settings.max_in_flight - in_flight(session, now)
    claimed, more_due = _claim(runtime, room, batch, budget_ends)
    if more_due:
        return TickOutcome(claimed, more_due=True)
    queued = claimed
    while True:  # then what dead workers left behind
        with runtime.sessions() as session:
            found = release_abandoned(session, runtime.now(), batch, runtime.timing)
            hand_over_after_commit(session, found)
            session.commit()
        queued += len(found)
        if len(found) < batch:
            return TickOutcome(queued, more_due=False)
        if time.monotonic() > budget_ends:
            return TickOutcome(queued, more_due=True)


def _claim(runtime: Runtime, room: int, batch: int, budget_ends: float) -> tuple[int, bool]:
    """Claim rounds until nothing is due, ``room`` is used up or the time is: how many were claimed, and
    whether more was due when the time ran out. On PostgreSQL, CLAIMERS connections claim side by side
    (SKIP LOCKED gives each its own subscribers, and the database's share, most of a claim, spreads
    over its cores); each commits its round, then enqueues it."""
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
                found = _claim_round(session, runtime.now(), wanted, runtime.timing)
                hand_over_after_commit(session, found)
                session.commit()
            with lock:
                left["claimed"] += len(found)
                left["room"] += wanted - len(found)
                if len(found) < wanted:
                    left["done"] = True  # nothing more is due
                elif time.monotonic() > budget_ends:
                    left["done"] = left["more_due"] = True

    with ThreadPoolExecutor(CLAIMERS, thread_name_prefix="claim") as pool:
        for done in [pool.submit(claimer) for _ in range(CLAIMERS)]:
            done.result()  # a claimer's error (the database away) is the tick's
    return int(left["claimed"]), bool(left["more_due"])


def _claim_round(session: Session, now: datetime, limit: int, timing: Timing) -> list[int]:
    """One round's claim: one statement per course (course/deliveries/claim.py's ``_CLAIM``)."""
    claimed: list[int] = []
    for slug in slugs(session):
        release = current_release(session, slug)
        course = course_at(session, slug, release)
        claimed += claim_due_ids(session, course, now, limit - len(claimed), timing, release_name(release))
        if len(claimed) >= limit:
            break
    return claimed


def send_batch(runtime: Runtime, delivery_ids: list[int]) -> dict[str, int]:
    """Send the deliveries this worker manages to take; safe to run twice, and two at once.

    Chunk by chunk (SEND_CHUNK_SIZE): read whether each chunk's readers may still get mail (an
    unsubscribe or a suppression committed before that stops them), send the chunk, then record what
    was sent in a few statements and commit. A worker killed mid-chunk has sent at most that chunk
    without recording it: those few go again at the beat's next tick, when PostgreSQL has freed the
    dead worker's lock (course/senders.py), or else when their lease runs out (the duplicate bound, per
    batch in flight when a worker dies), and nothing is lost.
    """
    tally: dict[str, int] = {}
    # The lock first, and let go after the last commit: while it is held, the beat knows this worker lives.
    with batch_lock(runtime.engine) as sender_key, runtime.sessions() as session:
        began = runtime.now()
        owned = begin_sending(session, delivery_ids, began, runtime.timing, sender_key)
        session.commit()  # "sending" is on disk before anything reaches SMTP
        if not owned:
            return tally
        # Looked up once a batch, and set by the batch itself on a 5.7.x: then the rest waits too.
        pause = active_pause(session, runtime.now())
        items = outgoing(session, owned)
        answers = answers_so_far(session, owned)  # what each email may say of its reader's answers
        tally["gone"] = len(owned) - len(items)  # erased with their subscriber in the meantime
        size = runtime.settings.send_chunk_size
        lease, ours = began + runtime.timing.lease, set(owned)
        with runtime.sender.connect() as connection:
            for start in range(0, len(items), size):
                chunk = [item for item in items[start : start + size] if item.delivery_id in ours]
                if len(chunk) < len(items[start : start + size]):
                    tally["taken back"] = tally.get("taken back", 0) + len(items[start : start + size]) - len(chunk)
                pause = _send_chunk(runtime, session, connection, chunk, pause, answers, tally)
                rest = [item.delivery_id for item in items[start + size :]]
                if rest:  # a slow batch (a server that stalls) must not outlive its lease unseen
                    lease, ours = _keep_lease(session, rest, lease, runtime)
                session.commit()  # the chunk recorded and the rest's lease renewed: one commit
    return {outcome: count for outcome, count in tally.items() if count}


def _keep_lease(
    session: Session, delivery_ids: list[int], lease: datetime, runtime: Runtime
) -> tuple[datetime, set[int]]:
    """Renew the lease of the batch's deliveries still to send, and return those still this worker's.

    A delivery whose lease ran out while the batch went slowly was handed out again by the beat (and
    may be with another worker, under a lease of its own): this worker leaves it alone, so a slow batch
    costs at most the chunk under way, never the rest of the batch sent twice.
    """
    renewed = runtime.now() + runtime.timing.lease
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.state == DeliveryState.SENDING.value,
               Delivery.lease_until == lease)
        .values(lease_until=renewed)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    return renewed, {row[0] for row in result}


def _send_chunk(
    runtime: Runtime, session: Session, connection: Connection, chunk: list[Outgoing], pause: SendingPause | None,
    answers: dict[int, dict[str, str]], tally: dict[str, int],
) -> SendingPause | None:  # fmt: skip
    now = runtime.now()
    stops = reasons_not_to_send(session, chunk, runtime.timing)  # read last, just before SMTP
    ready: list[tuple[Outgoing, Envelope, str]] = []
    for item in chunk:
        outcome: str | None
        if item.delivery_id in stops or (pause is not None and pause.until > now):
            delivery = _delivery(session, item)
            if delivery is None:
                outcome = "gone"
            elif item.delivery_id in stops:
                mark_skipped(delivery, stops[item.delivery_id], now)
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
    for item, envelope, release in ready:
        if pause is not None and pause.until > runtime.now():  # a 5.7.x earlier in this chunk: hold the rest
            if (held := _delivery(session, item)) is not None:
                hold_for_pause(held, pause)
            tally["held"] = tally.get("held", 0) + 1
            continue
        result: SendResult = connection.send(envelope)
        now = runtime.now()
        reply = result.describe()
        tally[result.outcome.value] = tally.get(result.outcome.value, 0) + 1
        if result.outcome is Outcome.ACCEPTED:
            sent.append(Sent(item, envelope.message_id, reply, release, now))
            continue
        delivery = _delivery(session, item)
        if delivery is None:  # erased while it was being sent: nothing left to record
            continue
        delivery.template_version = release
        if result.outcome is Outcome.RETRY:
            log.info("delivery %s: temporary failure, retrying: %s", item.delivery_id, reply)
            retry_later(session, delivery, reply, now, runtime.timing)
        elif result.outcome is Outcome.BAD_ADDRESS:
            log.info("delivery %s: the address does not exist, suppressing it: %s", item.delivery_id, reply)
            mark_bad_address(session, delivery, reply, now, runtime.timing)
        elif result.outcome is Outcome.SENDER_BLOCKED:
            pause = pause_sending(session, delivery, reply, now, runtime.timing)
        else:
            log.info("delivery %s: refused for good: %s", item.delivery_id, reply)
            mark_failed(session, delivery, reply, now, runtime.timing)
    mark_sent_many(session, sent, runtime.now(), runtime.timing)
    return pause


def _build(
    runtime: Runtime, session: Session, item: Outgoing, now: datetime, answers: dict[int, dict[str, str]],
    ready: list[tuple[Outgoing, Envelope, str]],
) -> str | None:  # fmt: skip
    """The message of one delivery, added to ``ready``; or the outcome when it cannot be built."""
    try:
        envelope, release = runtime.envelope_for(session, item, now, answers.get(item.subscriber_id))
    except (UnsafeHeaderValue, TemplateError) as error:
        delivery = _delivery(session, item)
        if delivery is None:
            return "gone"
        if isinstance(error, UnsafeHeaderValue):
            mark_failed(session, delivery, f"cannot address this message: {error}", now, runtime.timing, bounced=False)
            return "failed"
        log.error("delivery %s: template %s is broken: %s", item.delivery_id, item.email, error)
        retry_later(session, delivery, f"template error: {error}", now, runtime.timing)
        return "retry"
    ready.append((item, envelope, release))
    return None


def _delivery(session: Session, item: Outgoing) -> Delivery | None:
    """The delivery as an ORM object, for the outcomes other than "sent" (rare: one statement each); None
    when its subscriber was erased in the meantime."""
    return session.get(Delivery, item.delivery_id, populate_existing=True)
