"""A worker holds an advisory lock while it sends a batch (course/senders.py): when its process dies, its
connection closes, PostgreSQL frees the lock, and the beat hands the batch out again at its next tick,
not a lease (10 minutes) later. While the worker lives, nothing of its batch is handed out before the
lease runs out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy
from sqlalchemy import select, text
from sqlalchemy.pool import NullPool

from course.deliveries.sending import take_batch
from course.models.deliveries import Delivery, DeliveryState, SendBatch
from course.senders import LOCK_SPACE
from workers.engine import send_next, tick

from ..support.waiting import wait_until
from .conftest import Harness
from .test_engine import enrol
from .test_lease import Stalling

LEASE = 600  # the production lease: any hand-out in these tests before it runs out is the lock's doing


def _due_batch(harness: Harness, readers: int) -> list[int]:
    for number in range(readers):
        enrol(harness, f"reader{number}@example.com")
    harness.clock.advance(days=1)
    batch = harness.claim_one_batch()
    harness.wakeups.clear()
    assert len(batch) == readers
    return batch


def _our_locks(engine: sqlalchemy.Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.scalars(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = CAST(:space AS oid)"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"space": LOCK_SPACE}))  # fmt: skip


def test_the_batch_of_a_worker_that_died_is_handed_out_at_the_next_tick(
    harness_factory: Callable[..., Harness], database_url: str
) -> None:
    harness = harness_factory(delivery_lease_seconds=LEASE)
    batch = _due_batch(harness, 3)
    # A worker in another process: its own connection, its lock, the batch taken under its key.
    worker = sqlalchemy.create_engine(database_url, poolclass=NullPool)
    lock = worker.connect().execution_options(isolation_level="AUTOCOMMIT")
    assert lock.scalar(text("SELECT pg_try_advisory_lock(:space, 4242)"), {"space": LOCK_SPACE})
    with harness.runtime.sessions() as session:
        taken = take_batch(session, harness.clock(), harness.runtime.timing, 4242)
        assert taken is not None and taken.subscriber_ids == batch
        session.commit()

    harness.clock.advance(seconds=LEASE - 1)
    assert tick(harness.runtime).recovered == 0
    assert harness.wakeups == [], "a living worker's batch waits for its lease"

    lock.close()  # the worker's process dies: its kernel closes the connection
    worker.dispose()
    wait_until(lambda: _our_locks(harness.runtime.sessions.kw["bind"]) == [], timeout=10, what="the lock to go")
    assert tick(harness.runtime).recovered == 1, "handed out again at the next tick"
    assert harness.woken == 1
    with harness.runtime.sessions() as session:
        (again,) = session.scalars(select(SendBatch))
    assert (again.sender_key, again.taken_at, again.lane) == (None, None, 0), "nobody's until a worker takes it"
    harness.drain()
    assert Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1")) == Counter(
        {f"reader{number}@example.com": 1 for number in range(3)}
    )


def test_a_worker_lets_go_of_its_lock_once_its_batch_is_recorded(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(delivery_lease_seconds=LEASE)
    batch = _due_batch(harness, 2)
    seen: list[tuple[int | None, list[int]]] = []
    engine = harness.runtime.sessions.kw["bind"]

    def look() -> None:  # while the batch's first message goes: the lock is held, its key on the batch
        with harness.runtime.sessions() as session:
            key = session.scalar(select(SendBatch.sender_key))
        seen.append((key, _our_locks(engine)))

    runtime: Any = harness.runtime
    runtime.sender = Stalling(runtime.sender, look)
    assert send_next(harness.runtime) == {"accepted": 2}
    (key, holders), = seen  # fmt: skip
    assert key is not None and len(holders) == 1
    assert _our_locks(engine) == [], "let go after the last commit"
    with harness.runtime.sessions() as session:
        states = session.scalars(select(Delivery.state).where(Delivery.subscriber_id.in_(batch))
                                 .where(Delivery.step == 1)).all()  # fmt: skip
        assert session.scalar(select(SendBatch)) is None, "out of the queue"
    assert states == [DeliveryState.SENT.value] * 2


def test_a_worker_whose_lock_connection_is_killed_leaves_the_rest_of_its_batch_to_another(
    harness_factory: Callable[..., Harness],
) -> None:
    # pg_terminate_backend on the lock's connection (or the database restarted): the worker lives on,
    # but the beat sees the lock gone and hands the batch out; the worker must send only the chunk
    # under way, and leave the rest to whoever took it, as with a lease run out.
    harness = harness_factory(delivery_lease_seconds=LEASE, send_chunk_size=1)
    _due_batch(harness, 3)
    engine = harness.runtime.sessions.kw["bind"]

    def terminate_and_take_over() -> None:
        (pid,) = _our_locks(engine)
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        wait_until(lambda: _our_locks(engine) == [], timeout=10, what="the terminated lock to go")
        harness.tick_and_send()  # no clock change: only the lock says the batch is abandoned

    runtime: Any = harness.runtime
    runtime.sender = Stalling(runtime.sender, terminate_and_take_over)
    assert send_next(harness.runtime)["taken back"] == 2  # the lock's connection is gone when it lets go: no error
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))
    assert set(day_one) == {f"reader{number}@example.com" for number in range(3)}
    assert sorted(day_one.values()) == [1, 1, 2], "only the message under way goes twice"
