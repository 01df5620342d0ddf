"""The Celery task: send a batch of deliveries. Arguments are ids and JSON primitives, never ORM objects.

The tick is not a task: it runs in the beat's own process (workers/beat.py).
"""

from __future__ import annotations

import functools

from course.settings import get_settings
from workers.app import app
from workers.engine import Runtime
from workers.engine import send_batch as send_batch_now


@functools.cache
def runtime() -> Runtime:
    # Built on first use inside the worker process (after a prefork fork), then reused.
    return Runtime(get_settings())


# No Celery retry (it would use a countdown): if the database or Redis is away, the task fails and
# its deliveries stay claimed; the beat hands them out again when their lease runs out.
@app.task(name="workers.tasks.send_batch", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_batch(delivery_ids: list[int]) -> dict[str, int]:
    return send_batch_now(runtime(), [int(delivery_id) for delivery_id in delivery_ids])
