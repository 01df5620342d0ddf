"""The Celery task: wake a worker to send from the send queue. It carries no arguments: the queue is the
database's (``send_batches``); a wake-up takes the next batch in the queue's order, and the next, while
there are any, for up to a tick (workers/engine.py).

The tick is not a task: it runs in the beat's own process (workers/beat.py). The task is given to the
app the composition root made (cli/root.py), with the way to reach this process's :class:`Runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu.exceptions import ChannelError

from workers.engine import Runtime, send_while_queued

# The names queued messages carry: they stay, whatever the module is called. SEND_BATCH is the task of the
# versions that queued delivery ids: a message of theirs still in the broker after an upgrade wakes a
# worker like any other (its ids mean nothing now: the deliveries are in the queue's batches).
SEND_NEXT = "workers.tasks.send_next"
SEND_BATCH = "workers.tasks.send_batch"


def register(app: Celery, runtime: Callable[[], Runtime]) -> Any:
    """Give ``app`` the send_next task; ``runtime`` gives the process's Runtime, made on first use (in a
    prefork worker: in the child, after the fork, so that no connection is shared between processes)."""

    # No Celery retry (it would use a countdown): if the database or Redis is away, the task fails, its
    # batch stays in the queue (or is handed out again), and the beat wakes a worker for it at its next
    # tick. Not shared: Celery would give a shared task (and the runtime it reaches) to every app made
    # after this one.
    @app.task(name=SEND_NEXT, shared=False, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def send_next_batch() -> dict[str, int]:
        found = runtime()
        return send_while_queued(found, found.settings.tick_interval_seconds)

    @app.task(name=SEND_BATCH, shared=False, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def send_batch(delivery_ids: list[int] | None = None) -> dict[str, int]:
        found = runtime()
        return send_while_queued(found, found.settings.tick_interval_seconds)

    return send_next_batch


def wake(app: Celery, wakeups: int) -> None:
    """Queue ``wakeups`` send_next tasks, on one connection to the broker."""
    task = app.tasks[SEND_NEXT]
    with app.producer_or_acquire() as producer:
        for _ in range(wakeups):
            task.apply_async(producer=producer)


def waiting(app: Celery, queue: str) -> int:
    """How many tasks wait in the broker's ``queue`` (not those a worker has reserved). A queue the broker
    does not know (Redis keeps no empty list) holds none."""
    with app.connection_for_read() as connection:
        try:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        except ChannelError:
            return 0
    return int(declared.message_count)
