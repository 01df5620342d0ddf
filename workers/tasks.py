"""The Celery tasks. Arguments are ids and JSON primitives, never ORM objects."""

from __future__ import annotations

import functools

from course.settings import get_settings
from workers.app import app
from workers.engine import Runtime, record_tick
from workers.engine import send_batch as send_batch_now
from workers.engine import tick as tick_now


@functools.cache
def runtime() -> Runtime:
    # Built on first use inside the worker process (after a prefork fork), then reused.
    return Runtime(get_settings())


@app.task(name="workers.tasks.tick", acks_late=True, ignore_result=True)
def tick() -> int:
    queued = tick_now(runtime())
    record_tick(runtime().settings)
    return queued


# No Celery retry (it would use a countdown): if the database or Redis is away, the task fails and
# its deliveries stay claimed; the beat hands them out again when their lease runs out.
@app.task(name="workers.tasks.send_batch", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_batch(delivery_ids: list[int]) -> dict[str, int]:
    return send_batch_now(runtime(), [int(delivery_id) for delivery_id in delivery_ids])
