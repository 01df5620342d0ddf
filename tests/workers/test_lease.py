"""A batch that goes slowly past its lease (a server that stalls) is handed out again by the beat: the
worker that was sending it must leave the rest of it to whoever took it, or the rest goes twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from course.models.deliveries import DeliveryState
from emails.mime import Envelope
from emails.senders import Connection, OneAtATime, Sender, SendResult
from workers.engine import send_next, tick

from .conftest import Harness
from .test_engine import DAY_ONE, deliveries, enrol, subscriber


class Stalling:
    """The runtime's sender, with something done (once) before the first message goes: the stall."""

    def __init__(self, sender: Sender, stall: Callable[[], None]) -> None:
        self.sender = sender
        self.stall: Callable[[], None] | None = stall

    def connect(self) -> AbstractContextManager[Connection]:
        return self._connect()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self.sender.connect() as connection:
            yield _Stalled(connection, self)


class _Stalled(OneAtATime):
    def __init__(self, connection: Connection, owner: Stalling) -> None:
        self.connection = connection
        self.owner = owner

    def send(self, envelope: Envelope) -> SendResult:
        stall, self.owner.stall = self.owner.stall, None
        if stall is not None:
            stall()
        return self.connection.send(envelope)


def test_a_batch_that_outlives_its_lease_leaves_the_rest_to_the_worker_that_took_it_over(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(delivery_lease_seconds=60, send_chunk_size=1)
    readers = [f"reader{n}@example.com" for n in range(3)]
    for reader in readers:
        enrol(harness, reader)
    harness.clock.advance(days=1)
    assert len(harness.claim_one_batch()) == 3
    harness.wakeups.clear()

    def stall() -> None:
        # The first message hangs past the lease: the beat hands the batch out again, another worker sends it.
        harness.clock.advance(seconds=61)
        harness.tick_and_send()

    runtime: Any = harness.runtime
    runtime.sender = Stalling(runtime.sender, stall)
    assert send_next(harness.runtime)["taken back"] == 2
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))
    assert set(day_one) == set(readers)
    # The message under way when the lease ran out goes twice (the chunk in flight); the rest go once.
    assert sorted(day_one.values()) == [1, 1, 2], day_one


def test_a_worker_whose_clock_reads_behind_the_beats_sends_what_the_beat_handed_out(harness: Harness) -> None:
    """Each process keeps its own offset to the database's clock (course/clock.py); the beat's may read a
    little ahead of a worker's. What the beat claimed is due by the beat's clock, and goes at once: it
    does not wait out its lease in the queue."""
    alex = enrol(harness, "alex@example.com")
    harness.clock.to(subscriber(harness, alex).next_send_at)  # type: ignore[arg-type]
    harness.clock.advance(seconds=0.3)  # the beat's clock
    tick(harness.runtime)
    harness.wakeups.clear()
    harness.clock.advance(seconds=-0.3)  # the worker's, a little behind
    assert send_next(harness.runtime) == {"accepted": 1}
    assert [m.subject for m in harness.smtp.to("alex@example.com")].count(DAY_ONE) == 1


def test_a_stale_task_does_not_send_a_retry_before_its_time(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    harness.smtp.plan("alex@example.com", "data", "421 4.7.0 Try again later")
    harness.clock.to(subscriber(harness, alex).next_send_at)  # type: ignore[arg-type]
    tick(harness.runtime)
    harness.wakeups.clear()
    assert send_next(harness.runtime) == {"retry": 1}  # 421: waits a minute for its retry
    harness.clock.advance(seconds=30)
    assert send_next(harness.runtime) == {}  # the same task again, delivered twice by the broker
    assert tick(harness.runtime).queued == 0  # nor does the beat hand it out before its time
    (day_one,) = [d for d in deliveries(harness, alex) if d.step == 1]
    assert day_one.state == DeliveryState.CLAIMED.value and day_one.attempts == 1
    assert [m.subject for m in harness.smtp.to("alex@example.com")].count(DAY_ONE) == 0
    harness.clock.advance(seconds=31)
    assert tick(harness.runtime).queued == 1  # its time came: in a batch of its own
    harness.drain()
    assert [m.subject for m in harness.smtp.to("alex@example.com")].count(DAY_ONE) == 1
