from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from course.db import make_engine, make_sessionmaker
from workers.engine import Runtime
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
    queued: list[list[int]]

    def drain(self) -> int:
        """Run every queued send_batch, as a worker would, until the queue is empty."""
        batches = 0
        while self.queued:
            from workers.engine import send_batch

            send_batch(self.runtime, self.queued.pop(0))
            batches += 1
        return batches

    def tick_and_send(self) -> None:
        from workers.engine import tick

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
        engine = make_engine(settings.database_url)
        engines.append(engine)
        clock = Clock()
        queued: list[list[int]] = []
        runtime = Runtime(
            settings,
            sessions=make_sessionmaker(engine),
            throttle=LocalTokenBucket(10_000),
            enqueue=queued.append,
            clock=clock,
        )
        return Harness(runtime, clock, handler, queued)

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()
