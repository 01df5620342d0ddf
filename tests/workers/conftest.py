from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from course.catalog import course_at, release_name
from course.db import make_engine, make_sessionmaker
from course.deliveries.claim import claim_due
from course.models.deliveries import SendBatch
from emails.store import current_release
from workers.engine import Runtime, send_next, tick
from workers.throttle import LocalTokenBucket

from ..conftest import make_settings
from ..support.smtp import ScriptedHandler


@dataclass
class Clock:
    """Injected time: tests move it, nobody sleeps for a day."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 27, 15, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def to(self, instant: datetime) -> None:
        assert instant >= self.now, "time only moves forward"
        self.now = instant


@dataclass
class Harness:
    runtime: Runtime
    clock: Clock
    smtp: ScriptedHandler
    wakeups: list[int]  # the wake-ups sent to the workers (one number per commit that woke them)

    @property
    def woken(self) -> int:
        return sum(self.wakeups)

    def drain(self) -> int:
        """Run a send_next for every wake-up sent, as the workers would, until none is left: how many ran."""
        batches = 0
        while self.wakeups:
            self.wakeups[0] -= 1
            if self.wakeups[0] <= 0:
                self.wakeups.pop(0)
            send_next(self.runtime)
            batches += 1
        return batches

    def claim_one_batch(self) -> list[int]:
        """One round of the claim, in one transaction: every due reader's email in one batch (up to
        SEND_BATCH_SIZE), in the batch's order (a tick's claimers, side by side, may split them)."""

        with self.runtime.sessions() as session:
            release = current_release(session, "building-emotional-intimacy")
            course = course_at(session, "building-emotional-intimacy", release)
            claimed = claim_due(
                session,
                course,
                self.clock(),
                self.runtime.settings.send_batch_size,
                self.runtime.timing,
                release_name(release),
                self.runtime.settings.send_batch_size,
            )
            session.commit()
            assert claimed.batches == 1
            batch = session.scalars(select(SendBatch).order_by(SendBatch.id.desc()).limit(1)).one()
            return list(batch.subscriber_ids or [])

    def tick_and_send(self) -> None:

        tick(self.runtime)
        self.drain()


@pytest.fixture
def harness_factory(database_url: str, smtp: tuple[ScriptedHandler, int]) -> Iterator[Callable[..., Harness]]:
    engines = []

    def build(**overrides: object) -> Harness:
        handler, port = smtp
        settings = make_settings(
            database_url=database_url, smtp_url=f"smtp://127.0.0.1:{port}", send_rate_per_second=10_000, **overrides
        )
        engine = make_engine(settings.database_url, plan_each_time=True)
        engines.append(engine)
        clock = Clock()
        wakeups: list[int] = []
        runtime = Runtime(
            settings,
            sessions=make_sessionmaker(engine),
            throttle=LocalTokenBucket(10_000),
            enqueue=wakeups.append,
            waiting_wakeups=lambda: sum(wakeups),
            clock=clock,
        )
        return Harness(runtime, clock, handler, wakeups)

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()
