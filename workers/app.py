"""The Celery application: JSON only, late acknowledgement.

Course days are never scheduled with ETA or countdown: Redis hands a message that waits longer than
its visibility timeout to a second worker, so it would run twice. Time lives in the database
(``next_send_at``, ``due_at``) and the beat (workers/beat.py, not Celery's beat) claims what is due.

Nothing here is built on import: the composition root (cli/root.py) makes the app from its settings and
gives it the task (workers/tasks.py).
"""

from __future__ import annotations

from celery import Celery

from course.settings import Settings


def create_app(settings: Settings) -> Celery:
    app = Celery("course", broker=settings.broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # Acknowledge after the task ran, and give a task back if its worker died: with idempotent
        # tasks a redelivery is harmless, a loss is not.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        # Tasks are short; an hour covers any batch, and no course task waits in the queue for a time.
        # The in-process broker of the demo polls: ask it to look often.
        broker_transport_options={"visibility_timeout": 3600, "polling_interval": 0.1},
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
    )
    return app
