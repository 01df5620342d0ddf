"""The Celery application: JSON only, late acknowledgement, and the beat's tick.

Course days are never scheduled with ETA or countdown: Redis hands a message that waits longer than
its visibility timeout to a second worker, so it would run twice. Time lives in the database
(``next_send_at``, ``due_at``) and the beat tick claims what is due.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import beat_init

from course.settings import Settings, get_settings


def create_app(settings: Settings) -> Celery:
    app = Celery("course", broker=settings.broker_url, include=["workers.tasks"])
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
        beat_schedule={
            "tick": {
                "task": "workers.tasks.tick",
                "schedule": settings.tick_interval_seconds,
                # A tick that waited longer than the next one is pointless: drop it rather than let
                # ticks pile up in front of the send_batch tasks.
                "options": {"expires": settings.tick_interval_seconds},
            },
        },
        # The tick is the only entry and it is frequent: the schedule lives in memory, with no state
        # file (Celery's default shelve file fails in a folder that does not exist, and is not needed).
        beat_scheduler="celery.beat:Scheduler",
        beat_max_loop_interval=max(1.0, settings.tick_interval_seconds),
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
    )
    return app


app = create_app(get_settings())


def _tick_at_start(sender: Any, **_: Any) -> None:
    """The first tick goes out as the beat starts, not one interval later: a beat (re)started at 08:00
    sends the 08:00 emails now."""
    settings = get_settings()
    sender.app.send_task("workers.tasks.tick", queue=settings.celery_queue,
                         expires=settings.tick_interval_seconds)  # fmt: skip


beat_init.connect(_tick_at_start)
