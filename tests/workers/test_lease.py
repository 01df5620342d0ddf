"""A batch that goes slowly past its lease (a server that stalls) is handed out again by the beat: the
worker that was sending it must leave the rest of it to whoever took it, or the rest goes twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from emails.mime import Envelope
from emails.senders import Connection, Sender, SendResult
from workers.engine import send_batch, tick

from .conftest import Harness
from .test_engine import enrol


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


class _Stalled:
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
    tick(harness.runtime)
    batch = [delivery_id for queued in harness.queued for delivery_id in queued]
    harness.queued.clear()
    assert len(batch) == 3

    def stall() -> None:
        # The first message hangs past the lease: the beat hands the batch out again, another worker sends it.
        harness.clock.advance(seconds=61)
        harness.tick_and_send()

    runtime: Any = harness.runtime
    runtime.sender = Stalling(runtime.sender, stall)
    send_batch(harness.runtime, batch)
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))
    assert set(day_one) == set(readers)
    # The message under way when the lease ran out goes twice (the chunk in flight); the rest go once.
    assert sorted(day_one.values()) == [1, 1, 2], day_one
