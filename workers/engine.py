"""What the beat tick and the send_batch task do, free of Celery so that tests can drive it directly.

A :class:`Runtime` holds one process's resources (database, sender, throttle, renderers); the Celery
tasks in :mod:`workers.tasks` build one per worker process and call :func:`tick` and
:func:`send_batch`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import redis
from sqlalchemy.orm import Session, sessionmaker

from course.curriculum import course_slugs, load_course
from course.db import make_engine, make_sessionmaker
from course.deliveries import (
    CONFIRMATION_EMAIL,
    Timing,
    active_pause,
    begin_sending,
    claim_due_ids,
    claim_due_subscribers,
    hold_for_pause,
    in_flight,
    mark_bad_address,
    mark_failed,
    mark_sent,
    mark_skipped,
    pause_sending,
    reason_not_to_send,
    release_abandoned,
    retry_later,
)
from course.engagement import answers_so_far
from course.models import Delivery, SendingPause, Subscriber
from course.settings import Settings
from course.subscriptions import resume_ended_pauses
from emails.compiler import TemplateError
from emails.mime import Envelope, MessageBuilder, UnsafeHeaderValue
from emails.rendering import Recipient, Renderer
from emails.senders import Connection, Outcome, Sender, SendResult, sender_from_url
from emails.store import current_release, parse_release, release_name, templates_at
from workers.throttle import LocalTokenBucket, RedisTokenBucket, Throttle

log = logging.getLogger(__name__)

# Renderers kept per process, one per (course, release): the live release and the few before it.
RELEASES_KEPT = 32
# How many claim rounds one tick may run before leaving the rest to the next tick.
# A tick claims round after round for at most this share of the interval: a long backlog is worked
# through by consecutive ticks, and a tick never overlaps the next.
TICK_BUDGET = 0.8


class Runtime:
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
        self.timing = Timing(
            address_key=settings.address_key,
            day_seconds=settings.course_day_seconds,
            lease_seconds=settings.delivery_lease_seconds,
            sending_pause_seconds=settings.sending_pause_seconds,
        )
        self.sessions = sessions or make_sessionmaker(make_engine(settings.database_url))
        self.sender: Sender = sender or sender_from_url(settings.smtp_url, settings.smtp_timeout_seconds)
        self.throttle = throttle or make_throttle(settings)
        self._enqueue = enqueue
        self.clock = clock or (lambda: datetime.now(UTC))
        self._writers: dict[tuple[str, int], tuple[Renderer, MessageBuilder]] = {}

    def now(self) -> datetime:
        return self.clock()

    def enqueue(self, delivery_ids: Iterable[int]) -> None:
        """Queue send_batch tasks, in batches. Call only after the transaction that made them committed."""
        ids = list(delivery_ids)
        size = self.settings.send_batch_size
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            if self._enqueue is not None:
                self._enqueue(chunk)
            else:
                from workers.tasks import send_batch  # the Celery task; imported late: tasks import us

                send_batch.delay(chunk)

    def writers(self, session: Session, course_slug: str, release: int) -> tuple[Renderer, MessageBuilder]:
        """The renderer of a course's release (see emails/store.py). A release never changes, so its
        templates are read once per process; the most recent few are kept."""
        key = (course_slug, release)
        if key not in self._writers:
            while len(self._writers) >= RELEASES_KEPT:
                self._writers.pop(next(iter(self._writers)))
            course = load_course(course_slug)
            self._writers[key] = (
                Renderer(course, self.settings, templates_at(session, course_slug, release)),
                MessageBuilder(self.settings, course.slug, course.title),
            )
        return self._writers[key]

    def envelope_for(
        self, session: Session, delivery: Delivery, subscriber: Subscriber, now: datetime,
        answers: dict[str, str] | None = None,
    ) -> Envelope:  # fmt: skip
        # The release the beat claimed it under (a publish since then does not change it); a delivery
        # made outside the beat (a confirmation, the welcome) goes with the release of now.
        release = parse_release(delivery.template_version)
        if release is None:
            release = current_release(session, subscriber.course_slug)
        renderer, builder = self.writers(session, subscriber.course_slug, release)
        first_name = subscriber.first_name
        if delivery.email == CONFIRMATION_EMAIL:
            # Only what this confirmation's requester typed: the address may not be theirs.
            request = delivery.signup_request
            first_name = request.first_name if request is not None else None
        # A course step may speak to the reader's answers so far (a confirmation has none yet).
        answers = (answers or {}) if delivery.step is not None else {}
        recipient = Recipient(subscriber.id, subscriber.email, first_name, delivery.signup_request_id, answers)
        rendered = renderer.render(delivery.email, recipient)
        delivery.template_version = release_name(release)
        # Fixed per (subscriber, enrolment, step): a resend of one delivery carries the same Message-ID.
        if delivery.step is None:
            key: int | str = f"{delivery.email}-{delivery.id}"
        else:
            key = delivery.step if delivery.enrolment == 1 else f"{delivery.enrolment}.{delivery.step}"
        return builder.build(
            rendered,
            to_address=subscriber.email,
            to_name=first_name,
            message_id=builder.message_id(subscriber.id, key),
            date=now,
        )


def make_throttle(settings: Settings) -> Throttle:
    if settings.redis is None:
        return LocalTokenBucket(settings.send_rate_per_second)
    client = redis.Redis.from_url(settings.redis)
    return RedisTokenBucket(client, f"{settings.celery_queue}:send-rate", settings.send_rate_per_second)


def _last_tick_key(settings: Settings) -> str:
    return f"{settings.celery_queue}:last-tick"


def record_tick(settings: Settings) -> None:
    """Note that a tick ran, for the beat's health check (beat -> broker -> worker -> database)."""
    if settings.redis is not None:
        redis.Redis.from_url(settings.redis).set(_last_tick_key(settings), datetime.now(UTC).timestamp(), ex=86400)


def seconds_since_last_tick(settings: Settings) -> float | None:
    if settings.redis is None:
        return None
    value = redis.Redis.from_url(settings.redis, socket_timeout=3).get(_last_tick_key(settings))
    return None if value is None else datetime.now(UTC).timestamp() - float(value)


def tick(runtime: Runtime) -> int:
    """The beat: claim due subscribers and abandoned deliveries, commit, then enqueue, round after round
    until nothing is due, the workers have enough to do (MAX_IN_FLIGHT), or the tick's time is spent
    (the next tick goes on). Returns how many."""
    queued = 0
    budget_ends = time.monotonic() + runtime.settings.tick_interval_seconds * TICK_BUDGET
    batch = runtime.settings.claim_batch_size
    with runtime.sessions() as session:
        room = runtime.settings.max_in_flight - in_flight(session, runtime.now())
    while True:
        now = runtime.now()
        with runtime.sessions() as session:
            pause = active_pause(session, now)
            if pause is not None:
                log.warning("sending is paused until %s: %s", pause.until.isoformat(), pause.reason)
                return queued
            resume_ended_pauses(session, now=now, timing=runtime.timing, limit=batch)
            wanted = min(batch, room)
            claimed = _claim_round(session, now, wanted, runtime.timing) if wanted > 0 else []
            released = release_abandoned(session, now, batch, runtime.timing)
            session.commit()
        runtime.enqueue(claimed + released)  # only now: a worker must find them committed
        queued += len(claimed) + len(released)
        room -= len(claimed)
        more_due = wanted > 0 and len(claimed) == wanted
        if (not more_due and len(released) < batch) or time.monotonic() > budget_ends:
            return queued


def _claim_round(session: Session, now: datetime, limit: int, timing: Timing) -> list[int]:
    """One round's claim: set-based on PostgreSQL (a statement per course), row by row elsewhere (SQLite,
    the one-process demo, where nobody else claims)."""
    if session.get_bind().dialect.name != "postgresql":
        deliveries = claim_due_subscribers(session, now, limit, timing)
        stamp_release(session, deliveries)
        return [delivery.id for delivery in deliveries]
    claimed: list[int] = []
    for slug in course_slugs():
        release = release_name(current_release(session, slug))
        claimed += claim_due_ids(session, load_course(slug), now, limit - len(claimed), timing, release)
        if len(claimed) >= limit:
            break
    return claimed


def stamp_release(session: Session, deliveries: list[Delivery]) -> None:
    """Each delivery keeps the templates of the release it was claimed under, whatever is published later."""
    releases: dict[str, int] = {}
    for delivery in deliveries:
        slug = delivery.subscriber.course_slug
        if slug not in releases:
            releases[slug] = current_release(session, slug)
        delivery.template_version = release_name(releases[slug])


def send_batch(runtime: Runtime, delivery_ids: list[int]) -> dict[str, int]:
    """Send the deliveries this worker manages to take; safe to run twice, and two at once."""
    tally: dict[str, int] = {}
    with runtime.sessions() as session:
        owned = begin_sending(session, delivery_ids, runtime.now(), runtime.timing)
        session.commit()  # "sending" is on disk before anything reaches SMTP
        if not owned:
            return tally
        # Looked up once a batch, and set by the batch itself on a 5.7.x: then the rest waits too.
        pause = active_pause(session, runtime.now())
        answers = answers_so_far(session, owned)  # what each email may say of its reader's answers
        with runtime.sender.connect() as connection:
            for delivery_id in owned:
                outcome, pause = _send_one(runtime, session, connection, delivery_id, pause, answers)
                session.commit()  # "sent" right after SMTP accepted it: a crash duplicates one at most
                tally[outcome] = tally.get(outcome, 0) + 1
    return tally


def _send_one(
    runtime: Runtime, session: Session, connection: Connection, delivery_id: int, pause: SendingPause | None,
    answers: dict[int, dict[str, str]],
) -> tuple[str, SendingPause | None]:  # fmt: skip
    now = runtime.now()
    delivery = session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None:  # erased with its subscriber in the meantime
        return "gone", pause
    subscriber = delivery.subscriber
    session.refresh(subscriber)  # an unsubscribe a moment ago must be seen here, before SMTP
    reason = reason_not_to_send(session, delivery, runtime.timing)
    if reason is not None:
        mark_skipped(delivery, reason, now)
        return "skipped", pause
    if pause is not None and pause.until > now:
        hold_for_pause(delivery, pause)
        return "held", pause
    try:
        envelope = runtime.envelope_for(session, delivery, subscriber, now, answers.get(subscriber.id))
    except UnsafeHeaderValue as error:
        mark_failed(session, delivery, f"cannot address this message: {error}", now, runtime.timing, bounced=False)
        return "failed", pause
    except TemplateError as error:
        log.error("delivery %s: template %s is broken: %s", delivery.id, delivery.email, error)
        retry_later(session, delivery, f"template error: {error}", now, runtime.timing)
        return "retry", pause
    runtime.throttle.acquire()
    result: SendResult = connection.send(envelope)
    now = runtime.now()
    reply = result.describe()
    if result.outcome is Outcome.ACCEPTED:
        mark_sent(delivery, envelope.message_id, reply, now, runtime.timing)
    elif result.outcome is Outcome.RETRY:
        log.info("delivery %s: temporary failure, retrying: %s", delivery.id, reply)
        retry_later(session, delivery, reply, now, runtime.timing)
    elif result.outcome is Outcome.BAD_ADDRESS:
        log.info("delivery %s: the address does not exist, suppressing it: %s", delivery.id, reply)
        mark_bad_address(session, delivery, reply, now, runtime.timing)
    elif result.outcome is Outcome.SENDER_BLOCKED:
        pause = pause_sending(session, delivery, reply, now, runtime.timing)
    else:
        log.info("delivery %s: refused for good: %s", delivery.id, reply)
        mark_failed(session, delivery, reply, now, runtime.timing)
    return result.outcome.value, pause
