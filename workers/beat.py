"""``course beat``: the tick, in a process of its own.

The tick claims what is due and queues ``send_batch`` tasks (:func:`workers.engine.tick`). It runs here,
in the beat's process, not as a Celery task: a tick queued behind thousands of ``send_batch`` tasks would
wait until they were done (and the workers ran dry meanwhile), and a tick running in a worker takes a
slot that could be sending. So the beat needs the database and the broker.

The first tick runs as the beat starts, then one every ``TICK_SECONDS``; a tick that stopped because its
time ran out while more was due is followed by the next at once. A tick that fails (the database or the
broker away) is logged and tried again at the next interval: the beat never dies of it. Two beats at once
are harmless (the claim skips what the other holds), only pointless.

Beside the tick, a thread of its own sums the studio's insights: every sign-up week as it starts and once
a day, the weeks still in the course every ``INSIGHTS_REFRESH_SECONDS`` (:mod:`course.insights`). A slow
sum never delays a tick. Another runs the lists the studio imports (:mod:`course.imports`), one at a time,
a chunk a transaction: a beat that dies leaves its import to be resumed where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time

from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from course.catalog import course_at, slugs
from course.imports import run_import, take_next
from course.insights import measures, summing
from workers.engine import Runtime, record_tick, tick

log = logging.getLogger(__name__)


def run(runtime: Runtime, stop: threading.Event) -> None:
    """Tick until ``stop`` is set (SIGTERM, Ctrl+C); the tick under way finishes first."""
    insights = threading.Thread(target=refresh_insights, args=(runtime, stop), name="insights", daemon=True)
    insights.start()
    lists = threading.Thread(target=run_imports, args=(runtime, stop), name="imports", daemon=True)
    lists.start()
    interval = runtime.settings.tick_interval_seconds
    log.info("beat: a tick now, then every %ss", f"{interval:g}")
    while not stop.is_set():
        started = time.monotonic()
        more = False
        try:
            outcome = tick(runtime)
            record_tick(runtime.settings)
            more = outcome.more_due
            if outcome.queued:
                log.info("beat: %s deliveries queued in %.2f s", outcome.queued, time.monotonic() - started)
        except (SQLAlchemyError, RedisError, BrokerError, OSError) as error:
            log.error("beat: the tick failed, trying again in %ss: %s", f"{interval:g}", error)
        if not more:
            stop.wait(max(0.0, interval - (time.monotonic() - started)))


def refresh_insights(runtime: Runtime, stop: threading.Event) -> None:
    """Sum the insights: every cohort as the beat starts and once a day (FULL_SUM_EVERY), the cohorts
    still in the course every INSIGHTS_REFRESH_SECONDS in between."""
    interval = runtime.settings.insights_refresh_seconds
    full_sum_due = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        everything = started >= full_sum_due
        try:
            with runtime.sessions() as session:
                courses = slugs(session)
        except (SQLAlchemyError, OSError) as error:
            courses, everything = [], False
            log.error("beat: could not list the courses to sum their insights: %s", error)
        for slug in courses:
            try:
                with runtime.sessions() as session:
                    course, now = course_at(session, slug), runtime.now()
                    if everything:
                        cohorts = summing.refresh(session, course, now)
                    else:
                        cohorts = summing.refresh_active(session, course, now)
                    session.commit()
                log.info("beat: insights of %s summed for %s cohorts in %.2f s", slug, cohorts,
                         time.monotonic() - started)  # fmt: skip
            except (SQLAlchemyError, OSError) as error:
                everything = False  # tried again at the next interval, not a day later
                log.error("beat: the insights' sums failed, trying again in %ss: %s", f"{interval:g}", error)
        if everything:
            full_sum_due = started + measures.FULL_SUM_EVERY.total_seconds()
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


IMPORT_POLL_SECONDS = 2.0


def run_imports(runtime: Runtime, stop: threading.Event) -> None:
    """Run each import the studio starts (or one whose runner died), as it comes."""
    while not stop.is_set():
        try:
            with runtime.sessions() as session:
                import_id = take_next(session, runtime.now())
                session.commit()
            if import_id is not None:
                started = time.monotonic()
                run_import(runtime.sessions, import_id, runtime.now, runtime.timing)
                log.info("beat: import %s ran in %.1f s", import_id, time.monotonic() - started)
                continue
        except (SQLAlchemyError, OSError) as error:
            log.error("beat: an import stopped, to be resumed: %s", error)
        stop.wait(IMPORT_POLL_SECONDS)
