"""The Celery task: send a batch of deliveries. Arguments are ids and JSON primitives, never ORM objects.

The tick is not a task: it runs in the beat's own process (workers/beat.py). The task is given to the
app the composition root made (cli/root.py), with the way to reach this process's :class:`Runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from workers.engine import Runtime
from workers.engine import send_batch as send_batch_now

# The name queued messages carry: it stays, whatever the module is called, so that messages queued by an
# earlier version still find their task.
SEND_BATCH = "workers.tasks.send_batch"


def register(app: Celery, runtime: Callable[[], Runtime]) -> Any:
    """Give ``app`` the send_batch task; ``runtime`` gives the process's Runtime, made on first use (in a
    prefork worker: in the child, after the fork, so that no connection is shared between processes)."""

    # No Celery retry (it would use a countdown): if the database or Redis is away, the task fails and
    # its deliveries stay claimed; the beat hands them out again when their lease runs out. Not shared:
    # Celery would give a shared task (and the runtime it reaches) to every app made after this one.
    @app.task(name=SEND_BATCH, shared=False, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def send_batch(delivery_ids: list[int]) -> dict[str, int]:
        return send_batch_now(runtime(), [int(delivery_id) for delivery_id in delivery_ids])

    return send_batch
