"""``python -m bench insights SUBSCRIBERS``: the studio's insights on a big list.

A year of sign-ups: SUBSCRIBERS spread over 52 weeks, most confirmed, each gone as far through the
course as a spread of drop-offs takes them (half to the end), their deliveries sent under three
template versions, about EVENTS_PER_SUBSCRIBER events each (clicks by people and by scanners,
exercises done, consultations, guides, unsubscribes and pauses) and their checklist answers. All of it
is inserted with set-based statements in a database of its own. Then it times, with the figures'
sums as the beat and the studio make them: summing every week, summing the weeks still in the course
(the beat's every few minutes), and the page itself (the app in this process, a signed-in user) for
every week and for one week, and a table's CSV.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy

from bench.harness import RESULTS, database_now, own_database, studio_client

EVENTS_PER_SUBSCRIBER = 20
PASSWORD = "a long benchmark passphrase"  # noqa: S105 - a throwaway account in a throwaway database

# Each subscriber's furthest step: half finish (19, the completion), the rest stop anywhere before.
_SUBSCRIBERS = """
WITH spread AS (
    SELECT n, CAST(:start AS timestamptz) + (n * interval '365 days') / :count AS at
    FROM generate_series(1, :count) AS n
), who AS (
    INSERT INTO subscribers (course_slug, email, first_name, timezone, send_time, confirmed_at, consent_at,
                             consent_form, created_at, updated_at)
    SELECT :slug, 'reader' || n || '@bench.example', 'Alex', 'Europe/Paris', '08:00',
           CASE WHEN n % 10 = 0 THEN NULL ELSE at + interval '1 hour' END, at, 'bench', at, at
    FROM spread
    RETURNING id, email
)
INSERT INTO progress (subscriber_id, status, enrolment, current_step, completed_at)
SELECT who.id,
       CASE WHEN n % 10 = 0 THEN 'pending' WHEN n % 2 = 0 THEN 'completed' ELSE 'active' END, 1,
       CASE WHEN n % 10 = 0 THEN NULL WHEN n % 2 = 0 THEN 19 ELSE (CAST(n AS bigint) * 7919) % 19 END,
       CASE WHEN n % 10 <> 0 AND n % 2 = 0 THEN at + interval '20 days' END
FROM who JOIN spread ON who.email = 'reader' || n || '@bench.example'
"""
_DELIVERIES = """
INSERT INTO deliveries (subscriber_id, enrolment, step, email, template_version, state, attempts, due_at,
                        sent_at, created_at, updated_at)
SELECT s.id, 1, step, 'step-' || step, 'r' || (1 + (step + s.id / 50000) % 3),
       CASE WHEN (s.id + step) % 97 = 0 THEN 'failed' ELSE 'sent' END, 1,
       s.created_at + step * interval '1 day', s.created_at + step * interval '1 day',
       s.created_at + step * interval '1 day', s.created_at + step * interval '1 day'
FROM subscribers AS s JOIN progress AS p ON p.subscriber_id = s.id, generate_series(0, p.current_step) AS step
WHERE p.current_step IS NOT NULL
"""
# The events of each delivery, enough of them per subscriber to reach EVENTS_PER_SUBSCRIBER on average.
_EVENTS = """
INSERT INTO events (subscriber_id, enrolment, kind, step, value, automated, seconds_since_delivery, created_at)
SELECT d.subscriber_id, 1,
       (ARRAY['click', 'click', 'exercise-done', 'consultation', 'resource', 'click', 'unsubscribed', 'paused'])
           [1 + (d.id + i) % 8],
       d.step, CASE WHEN (d.id + i) % 8 IN (0, 1, 5) THEN 'exercise' END, (d.id + i) % 5 = 0,
       60.0 * i, d.sent_at + i * interval '1 minute'
FROM deliveries AS d, generate_series(1, 2) AS i
WHERE i = 1 OR d.id % 100 < :second_percent
"""
_ANSWERS = """
INSERT INTO answers (subscriber_id, enrolment, step, checklist, band, created_at)
SELECT s.id, 1, step.n, 'warning-signs', (ARRAY['normal', 'prioritise', 'significant'])[1 + (s.id + step.n) % 3],
       s.created_at + step.n * interval '1 day'
FROM subscribers AS s JOIN progress AS p ON p.subscriber_id = s.id
     JOIN (VALUES (0), (19)) AS step (n) ON step.n <= p.current_step
"""


def measure_insights(server_url: str, subscribers: int, course_slug: str, say: Callable[[str], None] = print,
                     results: Path = RESULTS) -> dict[str, Any]:  # fmt: skip

    from cli.database import upgrade
    from course.curriculum import load_course
    from course.db import make_engine, make_sessionmaker
    from course.insights import measures, summing
    from course.models.studio import StudioRole
    from course.studio import add_user

    course = load_course(course_slug)
    with own_database(server_url) as database_url:
        upgrade(database_url)
        now = database_now(database_url)
        engine = sqlalchemy.create_engine(database_url)
        started = time.perf_counter()
        with engine.begin() as connection:
            year = {"slug": course_slug, "count": subscribers, "start": now - timedelta(days=365)}
            connection.execute(sqlalchemy.text(_SUBSCRIBERS), year)
            connection.execute(sqlalchemy.text(_DELIVERIES))
            deliveries = connection.execute(sqlalchemy.text("SELECT count(*) FROM deliveries")).scalar_one()
            # One event per delivery, and a second for enough of them to make EVENTS_PER_SUBSCRIBER on average.
            second = round(100 * (EVENTS_PER_SUBSCRIBER * subscribers / max(1, deliveries) - 1))
            connection.execute(sqlalchemy.text(_EVENTS), {"second_percent": max(0, min(100, second))})
            connection.execute(sqlalchemy.text(_ANSWERS))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum leaves tables a day old
            events = connection.execute(sqlalchemy.text("SELECT count(*) FROM events")).scalar_one()
        engine.dispose()
        say(f"Seeded {subscribers:,} subscribers over 52 weeks, {deliveries:,} deliveries, {events:,} events "
            f"in {time.perf_counter() - started:.0f} s")  # fmt: skip

        engine = make_engine(database_url)
        sessions = make_sessionmaker(engine)
        figures: dict[str, Any] = {"subscribers": subscribers, "deliveries": deliveries, "events": events}
        for name, since in (("sum_every_week_s", None), ("sum_active_weeks_s", (now - measures.ACTIVE_COHORTS).date())):
            with sessions() as session:
                started = time.perf_counter()
                cohorts = summing.refresh(session, course, now, since=since)
                session.commit()
                figures[name] = round(time.perf_counter() - started, 2)
            say(f"  {name.replace('_', ' ').removesuffix(' s')}: {cohorts} weeks in {figures[name]:.2f} s")
        with sessions() as session:
            add_user(session, "bench@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=now)
            session.commit()
            rows = session.execute(sqlalchemy.text("SELECT count(*) FROM insight_counts")).scalar_one()
        figures["insight_rows"] = rows
        with studio_client(database_url, course_slug, "bench@example.org", PASSWORD) as client:
            one_week = (now - timedelta(days=60)).date()
            week = one_week - timedelta(days=one_week.weekday())
            for name, path in (("page_every_week_ms", "/studio/insights"),
                               ("page_one_week_ms", f"/studio/insights?cohort={one_week.isoformat()}&day=3"),
                               ("csv_days_ms", "/studio/insights.csv?table=days"),
                               # A number of the page opens the list of the people behind it (web/studio/audience.py).
                               ("people_behind_one_week_ms",
                                f"/studio/subscribers?figure=exercise&figure_step=3&cohort={week.isoformat()}"),
                               ("people_behind_every_week_ms",
                                "/studio/subscribers?figure=delivered&figure_step=3")):  # fmt: skip
                timings = []
                for _ in range(5):
                    started = time.perf_counter()
                    response = client.get(path)
                    timings.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"{path} answered {response.status_code}")
                figures[name] = round(statistics.median(timings), 1)
                say(f"  {path}: {figures[name]:,.0f} ms (median of 5)")
        engine.dispose()
    say(f"  {rows:,} rows of sums for {subscribers:,} subscribers and {events:,} events")
    results.mkdir(parents=True, exist_ok=True)
    written = results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-insights-{subscribers}.json"
    written.write_text(json.dumps(figures, indent=2) + "\n")
    say(f"Written to {written}")
    return figures
