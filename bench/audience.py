"""``python -m bench audience SUBSCRIBERS``: the studio's list of a course's people, and one person's story,
on a big list.

SUBSCRIBERS people of one course (a few of another), signed up over a year, of every status in the share a
list of that size has (most active or completed; some paused, waiting, unsubscribed, bounced, a few
complaints), at every place in the course, with addresses on a handful of providers and a few dozen first
names; about 20 emails each, their clicks and answers, for the story. All of it inserted with set-based
statements in a database of its own. Then it asks the app in this process (a signed-in publisher) for each
kind of page a marketer opens, five times each, and prints the median; and PostgreSQL's plan of each
statement behind the slowest ones, with its own timing.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy

from bench.harness import RESULTS, database_now, own_database, studio_client

PASSWORD = "a long benchmark passphrase"  # noqa: S105 - a throwaway account in a throwaway database
RUNS = 5

_PEOPLE = """
WITH made AS (
    INSERT INTO subscribers (course_slug, email, first_name, timezone, send_time, confirmed_at, consent_at,
                             consent_form, created_at, updated_at)
    SELECT CASE WHEN n % 50 = 0 THEN 'another-course' ELSE :slug END,
           (ARRAY['alex', 'sam', 'kim', 'jo', 'lee', 'pat', 'noa', 'ria', 'mateo', 'yuki'])[1 + n % 10]
               || '.' || n || '@'
               || (ARRAY['gmail.com', 'example.org', 'outlook.com', 'yahoo.com', 'mail.example'])
                  [1 + (CAST(n AS bigint) * 7919) % 5],
           (ARRAY['Alex', 'Sam', 'Kim', 'Joanna', 'Lee', 'Pat', 'Noa', 'Ria', 'Mateo', 'Yuki', 'Ana', 'Tom'])
               [1 + (n * 7) % 12],
           (ARRAY['Europe/Paris', 'America/New_York', 'Asia/Tokyo'])[1 + n % 3], '08:00',
           :start + n * :spacing, :start + n * :spacing, 'bench', :start + n * :spacing, :start + n * :spacing
    FROM generate_series(1, :count) AS n
    RETURNING id
)
INSERT INTO progress (subscriber_id, status, enrolment, current_step, next_send_at, last_sent_at)
SELECT id, status, 1,
       CASE WHEN status = 'pending' THEN NULL ELSE CAST((id / 20) % 20 AS integer) END,
       CASE WHEN status = 'active' THEN date_trunc('minute', :now) + (id % 3) * interval '1 hour' END,
       CASE WHEN status = 'pending' THEN NULL
            ELSE date_trunc('minute', :now) - ((id / 20) % 20) * interval '1 day' END
FROM (
    SELECT id, CASE WHEN id % 200 = 7 THEN 'complained' WHEN id % 50 = 3 THEN 'bounced'
                    WHEN id % 20 = 1 THEN 'paused' WHEN id % 20 = 2 THEN 'unsubscribed'
                    WHEN id % 20 = 5 THEN 'pending' WHEN id % 20 IN (6, 9, 13) THEN 'completed'
                    ELSE 'active' END AS status
    FROM made
) AS chosen
"""
# The story's records, for a few hundred people (the story reads one person's; its size, not the table's, counts).
_STORY = (
    """
INSERT INTO deliveries (subscriber_id, enrolment, step, email, template_version, state, attempts, due_at, sent_at,
                        message_id, last_reply, created_at, updated_at)
SELECT p.subscriber_id, 1, step, 'day-' || lpad(CAST(step AS text), 2, '0'), 'r1', 'sent', 1,
       sent.at, sent.at, '<' || p.subscriber_id || '.' || step || '@bench>', '250 2.0.0 queued', sent.at, sent.at
FROM progress AS p, generate_series(1, 19) AS step,
     LATERAL (SELECT p.last_sent_at - (p.current_step - step) * interval '1 day' AS at) AS sent
WHERE p.subscriber_id % 1000 = 383 AND step <= p.current_step
""",
    """
INSERT INTO events (subscriber_id, enrolment, kind, step, value, automated, seconds_since_delivery, created_at)
SELECT d.subscriber_id, 1, (ARRAY['click', 'exercise-done', 'consultation'])[1 + (d.step + i) % 3], d.step,
       'exercise', i = 1, 3.0 + 600 * (i - 1), d.sent_at + (i - 1) * interval '10 minutes'
FROM deliveries AS d, generate_series(1, 2) AS i
""",
)
CASES: list[tuple[str, str]] = [
    ("the first page", ""),
    ("by last email", "order=last-email"),
    ("by last email, oldest first", "order=last-email&oldest=true"),
    ("oldest first", "oldest=true"),
    ("active", "status=active"),
    ("paused", "status=paused"),
    ("complained (rare)", "status=complained"),
    ("at day 5", "place=5"),
    ("no email yet", "place=none"),
    ("paused, at day 5", "status=paused&place=5"),
    ("search: a provider (common)", "q=gmail"),
    ("search: a name", "q=Joanna"),
    ("search: two letters", "q=jo"),
    ("search: a number (rare)", "q=777777"),
    ("search: nobody", "q=zzqx"),
    ("search: common, paused", "q=outlook&status=paused"),
    ("search: common, by last email", "q=gmail&order=last-email"),
]


def _median_ms(get: Callable[[], Any]) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        get()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 1)


@contextmanager
def _statements(engine: sqlalchemy.Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements ``engine`` runs in the block, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)


def measure_audience(server_url: str, subscribers: int, course_slug: str, say: Callable[[str], None] = print,
                     results: Path = RESULTS) -> dict[str, Any]:  # fmt: skip
    from cli.database import upgrade
    from course.audience import Filters, Order, page
    from course.db import make_engine, make_sessionmaker
    from course.models.studio import StudioRole
    from course.models.subscribers import SubscriberStatus
    from course.studio import add_user

    with own_database(server_url) as database_url:
        upgrade(database_url)
        now = database_now(database_url)
        engine = sqlalchemy.create_engine(database_url)
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(_PEOPLE), {
                "slug": course_slug, "count": subscribers, "start": now - timedelta(days=365),
                "spacing": timedelta(days=365) / subscribers, "now": now,
            })  # fmt: skip
            for statement in _STORY:
                connection.execute(sqlalchemy.text(statement))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum leaves tables a day old
            story_id = connection.execute(sqlalchemy.text(
                "SELECT subscriber_id FROM deliveries GROUP BY subscriber_id ORDER BY count(*) DESC LIMIT 1"
            )).scalar_one()  # fmt: skip
        engine.dispose()
        say(f"Seeded {subscribers:,} people in {time.perf_counter() - started:.0f} s")
        app_engine = make_engine(database_url)
        with make_sessionmaker(app_engine)() as session:
            add_user(session, "bench@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=now)
            session.commit()
        app_engine.dispose()

        figures: dict[str, Any] = {"subscribers": subscribers, "runs": RUNS, "pages_ms": {}}
        with studio_client(database_url, course_slug, "bench@example.org", PASSWORD) as client:

            def get(path: str) -> str:
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                return str(response.text)

            base = f"/studio/subscribers?course={quote(course_slug)}"
            cases = list(CASES)
            # The 20th page, as a marketer who pressed "Next" nineteen times reaches it.
            deep = base
            for _ in range(19):
                text = get(deep)
                deep = text.split('rel="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            someone = subscribers // 2 + 8  # (n % 10 == 8: a Mateo)
            domain = ["gmail.com", "example.org", "outlook.com", "yahoo.com", "mail.example"][someone * 7919 % 5]
            address = f"mateo.{someone}@{domain}"
            cases.append(("an exact address", f"q={quote(address)}"))
            for name, query in cases:
                figures["pages_ms"][name] = _median_ms(functools.partial(get, f"{base}&{query}"))
            figures["pages_ms"]["the 20th page"] = _median_ms(lambda: get(deep))
            figures["pages_ms"]["one person's story"] = _median_ms(
                lambda: get(f"/studio/subscribers/{story_id}?course={course_slug}")
            )
        width = max(len(name) for name in figures["pages_ms"])
        say(f"  {'page':<{width}}  median ms of {RUNS}")
        for name, ms in figures["pages_ms"].items():
            say(f"  {name:<{width}}  {ms:>8,.1f}")

        # The plans of the slowest pages' statements, as PostgreSQL runs them.
        engine = make_engine(database_url)
        plans: dict[str, list[str]] = {}
        slowest = sorted(CASES, key=lambda case: figures["pages_ms"][case[0]], reverse=True)[:3]
        choices = {"the first page": Filters(), "by last email": Filters(order=Order.LAST_EMAIL)}
        for name, query in slowest:
            chosen = dict(part.split("=", 1) for part in query.split("&") if part)
            choices[name] = Filters(
                search=chosen.get("q", ""), status=SubscriberStatus(chosen["status"]) if "status" in chosen else None,
                order=Order(chosen.get("order", "signup")), newest_first=chosen.get("oldest") != "true",
                place=None if "place" not in chosen else -1 if chosen["place"] == "none" else int(chosen["place"]),
            )  # fmt: skip
        for name, filters in choices.items():
            with make_sessionmaker(engine)() as session, _statements(engine) as seen:
                page(session, course_slug, filters)
            asked = [(statement, parameters) for statement, parameters in seen
                     if statement.lstrip().upper().startswith("SELECT") and "set_config" not in statement
                     and "current_setting" not in statement]  # fmt: skip
            for number, (statement, parameters) in enumerate(asked):
                with engine.connect() as connection:
                    found = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", parameters)
                    plans[f"{name} #{number + 1}"] = [str(row[0]) for row in found]
        engine.dispose()
        figures["plans"] = plans
        for name, lines in plans.items():
            say(f"  plan of {name}:\n      " + "\n      ".join(lines))
    figures["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results.mkdir(parents=True, exist_ok=True)
    written = results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-audience-{subscribers}.json"
    written.write_text(json.dumps(figures, indent=2) + "\n")
    say(f"Written to {written}")
    return figures
