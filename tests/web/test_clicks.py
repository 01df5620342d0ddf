"""A link opened again and again counts once a minute (on the app's own clock), and one link keeps a
bounded number of clicks: 300 requests of a consultation link are one person's one click."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool

from course.engagement.clicks import (
    CLICKS_AT_ONCE,
    CLICKS_KEPT_PER_LINK,
    REPEAT_CLICK_WINDOW,
    Click,
    Clicked,
    clicks_parameters,
)
from course.links import LinkSigner, Purpose
from course.models.engagement import Event, EventKind
from course.models.subscribers import subscribers
from web.context import CLICK_SETTINGS, WebContext
from web.scanners import HUMAN_DELAY_SECONDS

from ..conftest import TEST_SECRET
from .conftest import BROWSER, Site


def clicks(site: Site) -> list[tuple[str, str | None, int | None, bool]]:
    with site.session() as session:
        return [
            (e.kind, e.value, e.step, e.automated)
            for e in session.scalars(select(Event).where(Event.kind != "confirmed").order_by(Event.id))
        ]


def test_three_hundred_requests_of_one_link_are_one_click(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    consultation = site.link("alex@example.com", "/consultation/", "Day 1")
    for _ in range(300):
        assert site.client.get(consultation, follow_redirects=False).status_code == 303
    assert clicks(site) == [("consultation", None, 1, False)]
    assert 'course_clicks{kind="consultation",who="human"} 1.0' in site.client.get("/metrics").text


def test_the_minute_is_counted_from_the_last_recorded_click_on_the_injected_clock(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    exercise = site.link("alex@example.com", "/exercise/", "Day 1")
    site.client.get(exercise)
    site.clock.advance(seconds=REPEAT_CLICK_WINDOW.total_seconds() - 1)
    site.client.get(exercise)
    assert len(clicks(site)) == 1
    site.clock.advance(seconds=1)  # a minute after the recorded one: a new click
    site.client.get(exercise)
    site.clock.advance(seconds=30)
    site.client.get(exercise)
    assert clicks(site) == [("click", "exercise", 1, False)] * 2


def test_different_links_and_a_scanner_before_the_person_are_counted_apart(site: Site) -> None:
    site.sign_up_and_confirm()
    alex = site.subscriber("alex@example.com")
    assert alex.next_send_at is not None
    site.clock.to(alex.next_send_at)
    site.tick()
    site.clock.advance(seconds=2)
    exercise = site.link("alex@example.com", "/exercise/", "Day 1")
    consultation = site.link("alex@example.com", "/consultation/", "Day 1")
    site.client.head(exercise)  # the mail gateway's scanner, seconds after delivery
    site.clock.advance(seconds=20)  # and the person, within the minute
    site.client.get(exercise)
    site.client.get(consultation, follow_redirects=False)
    band_links = [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")]
    for href in band_links[:2]:
        site.client.get(href)
    assert clicks(site) == [
        ("click", "exercise", 1, True),
        ("click", "exercise", 1, False),
        ("consultation", None, 1, False),
        ("click", "normal", 0, False),
        ("click", "prioritise", 0, False),
    ]


def test_one_link_keeps_a_bounded_number_of_clicks(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    resource = site.link("alex@example.com", "/unsubscribe/", "Day 1")
    for _ in range(CLICKS_KEPT_PER_LINK + 10):
        site.client.get(resource)
        site.client.head(resource)
        site.clock.advance(minutes=2)
    kept = clicks(site)
    assert kept.count(("click", "unsubscribe", 1, False)) == CLICKS_KEPT_PER_LINK
    assert kept.count(("click", "unsubscribe", 1, True)) == CLICKS_KEPT_PER_LINK
    assert len(kept) == 2 * CLICKS_KEPT_PER_LINK


def test_an_old_emails_link_counts_in_its_own_time_through_the_course(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    exercise = site.link("alex@example.com", "/exercise/", "Day 1")
    site.client.get(exercise)
    preferences = site.link("alex@example.com", "/preferences/", "Day 1")
    site.client.post(f"{preferences}/restart")
    site.clock.advance(seconds=REPEAT_CLICK_WINDOW.total_seconds() + 1)
    site.client.get(exercise)  # the old email's link, after starting again: still the first time's
    with site.session() as session:
        enrolments = [e.enrolment for e in session.scalars(select(Event).where(Event.value == "exercise"))]
    assert enrolments == [1, 1]


def test_a_redirect_click_in_one_statement_keeps_the_rules_of_a_page_click(site: Site) -> None:
    """The consultation link and the exercise page record their clicks in one SQL statement on the event
    loop (each its own); the unsubscribe page through the session. The same visits give all the same clicks."""
    site.sign_up_and_confirm()
    alex = site.subscriber("alex@example.com")
    assert alex.next_send_at is not None
    site.clock.to(alex.next_send_at)
    site.tick()
    links = {"consultation": site.link("alex@example.com", "/consultation/", "Day 1"),
             "exercise": site.link("alex@example.com", "/exercise/", "Day 1"),
             "unsubscribe": site.link("alex@example.com", "/unsubscribe/", "Day 1")}  # fmt: skip

    def visit(method: str) -> None:
        for link in links.values():
            site.client.request(method, link, follow_redirects=False)

    site.clock.advance(seconds=2)
    visit("GET")  # seconds after delivery: a scanner, whatever its agent says
    site.clock.advance(seconds=18)
    visit("GET")  # the person
    site.clock.advance(seconds=30)
    visit("GET")  # the person again, within the minute: the same click
    visit("HEAD")  # a scanner's HEAD, also within its own minute
    for _ in range(CLICKS_KEPT_PER_LINK + 3):  # then, minutes apart, more than a link keeps
        site.clock.advance(minutes=2)
        visit("GET")
    recorded = clicks(site)
    by_link = {name: [automated for kind, value, _, automated in recorded if kind == name or value == name]
               for name in links}  # fmt: skip
    assert by_link["consultation"] == by_link["exercise"] == by_link["unsubscribe"]
    # The scanner, then the person, whose later visits count each minute apart up to what a link keeps.
    assert by_link["consultation"] == [True] + [False] * CLICKS_KEPT_PER_LINK


def test_a_redirect_click_of_someone_who_left_is_followed_but_not_recorded_and_of_no_one_is_a_404(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    consultation = site.link("alex@example.com", "/consultation/", "Day 1")
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Day 1")
    assert site.client.post(unsubscribe).status_code == 200
    before = clicks(site)
    assert site.client.get(consultation, follow_redirects=False).status_code == 303
    assert clicks(site) == before
    with site.session() as session:
        session.execute(delete(subscribers))  # and their progress, by its foreign key
        session.commit()
    response = site.client.get(consultation, follow_redirects=False)
    assert response.status_code == 404 and "no longer exists" in response.text


def test_a_link_without_a_step_keeps_the_same_rules(site: Site) -> None:
    """The unsubscribe link of the confirmation or of a preferences-link email names no course step: no
    delivery judges it, and the same statement records it once a minute (it used to be the ORM twin's)."""
    site.sign_up_and_confirm()
    alex = site.subscriber("alex@example.com")
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    unsubscribe = signer.url(Purpose.UNSUBSCRIBE, alex.id).removeprefix("https://course.example.org")
    for _ in range(3):
        assert site.client.get(unsubscribe).status_code == 200
        site.clock.advance(seconds=20)
    site.client.head(unsubscribe)  # a scanner's HEAD: its own click
    site.clock.advance(seconds=REPEAT_CLICK_WINDOW.total_seconds())
    site.client.get(unsubscribe)  # a minute after the last recorded one: a new click
    assert clicks(site) == [("click", "unsubscribe", None, False), ("click", "unsubscribe", None, True),
                            ("click", "unsubscribe", None, False)]  # fmt: skip
    with site.session() as session:  # counted in the subscriber's own time through the course
        assert set(session.scalars(select(Event.enrolment).where(Event.value == "unsubscribe"))) == {1}


def test_a_link_of_someone_erased_records_nothing_and_says_so(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    answer = next(href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/"))
    with site.session() as session:
        session.execute(delete(Event))
        session.execute(delete(subscribers))  # and their progress, by its foreign key
        session.commit()
    response = site.client.get(answer)
    assert response.status_code == 404 and "no longer exists" in response.text
    assert clicks(site) == []


def test_clicks_on_one_link_that_race_are_one_click(site: Site) -> None:
    """A scanner opens a link several times at once: each request's statement reads in its own snapshot, so
    a check for a recent click alone lets every one that raced in. Here one click is recorded and not yet
    committed when the same link is opened again: the second waits for it, and records nothing."""
    site.sign_up_and_confirm()
    site.to_day_one()
    alex = site.subscriber("alex@example.com")
    engine = site.runtime.sessions.kw["bind"]
    click = Click(subscriber_id=alex.id, step=1, enrolment=None, kind=EventKind.CONSULTATION, value=None,
                  user_agent="a scanner", agent_automated=True, now=site.clock())  # fmt: skip
    parameters = clicks_parameters([click], human_delay=HUMAN_DELAY_SECONDS)
    with engine.connect() as first:
        assert first.execute(CLICKS_AT_ONCE, parameters).one().recorded  # recorded, its transaction still open
        pid = first.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        results: list[bool] = []

        def again() -> None:
            with engine.connect() as second:
                results.append(second.execute(CLICKS_AT_ONCE, parameters).one().recorded)
                second.commit()

        racing = threading.Thread(target=again)
        racing.start()
        deadline = time.monotonic() + 20
        while racing.is_alive():  # until it finished, or waits for the first (the race, made certain)
            with engine.connect() as watcher:
                waiting = watcher.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"), {"pid": pid}
                ).scalar_one()
            if waiting:
                break
            assert time.monotonic() < deadline, "the second click neither finished nor waited"
            time.sleep(0.01)
        first.commit()
        racing.join(timeout=20)
    assert results == [False]
    assert clicks(site) == [("consultation", None, 1, True)]


def test_a_burst_of_simultaneous_requests_of_each_link_records_each_once(site: Site) -> None:
    """Sixteen threads open each of ten links of one reader at the same moment, as a mail gateway does."""
    site.sign_up_and_confirm()
    site.to_day_one()
    alex = site.subscriber("alex@example.com")
    engine = site.runtime.sessions.kw["bind"]
    engine = create_engine(engine.url, poolclass=NullPool)  # a connection each, whatever the site's pool holds
    start = threading.Barrier(16)
    for place in range(10):
        click = Click(subscriber_id=alex.id, step=1, enrolment=None, kind=EventKind.RESOURCE, value=f"guide-{place}",
                      user_agent="a scanner", agent_automated=True, now=site.clock())  # fmt: skip
        parameters = clicks_parameters([click], human_delay=HUMAN_DELAY_SECONDS)

        def open_link(parameters: dict[str, object] = parameters) -> int:
            with engine.connect() as connection:
                start.wait(timeout=20)
                recorded = int(connection.execute(CLICKS_AT_ONCE, parameters).one().recorded)
                connection.commit()
                return recorded

        with ThreadPoolExecutor(16) as pool:
            assert sum(pool.map(lambda _: open_link(), range(16))) == 1, place
    engine.dispose()
    assert sorted(value or "" for _, value, _, _ in clicks(site)) == [f"guide-{place}" for place in range(10)]


def _readers_on_day_one(site: Site) -> dict[str, int]:
    """Alex (who marked day 1's exercise done), Bea, and Chris (who unsubscribed), all sent day 1; their ids,
    and one of nobody."""
    for email in ("alex@example.com", "bea@example.com", "chris@example.com"):
        site.sign_up_and_confirm(email)
    site.to_day_one()
    assert site.client.post(site.link("alex@example.com", "/exercise/", "Day 1")).status_code == 200
    assert site.client.post(site.link("chris@example.com", "/unsubscribe/", "Day 1")).status_code == 200
    ids = {name: site.subscriber(f"{name}@example.com").id for name in ("alex", "bea", "chris")}
    return {**ids, "nobody": max(ids.values()) + 1000}


def _together(site: Site, clicks: list[Click]) -> tuple[list[Clicked | BaseException], int]:
    """``clicks`` as requests that arrive at once on the web app's event loop: each one's answer (or its
    error), and how many statements recorded them."""
    web: WebContext = site.client.app.state.context  # type: ignore[attr-defined]
    statements = 0
    run = web._statement

    async def counted(taken: list[Click]) -> list[Clicked]:
        nonlocal statements
        statements += 1
        return await run(taken)

    async def at_once() -> list[Clicked | BaseException]:
        try:
            return await asyncio.gather(*(web.record_click(click) for click in clicks), return_exceptions=True)
        finally:
            await web.dispose()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(web, "_statement", counted)
        return asyncio.run(at_once()), statements


def test_clicks_that_arrive_together_go_in_one_statement_and_each_request_has_its_own_answer(site: Site) -> None:
    ids = _readers_on_day_one(site)
    before = clicks(site)
    now = site.clock()

    def click(who: str, kind: EventKind, value: str | None, day: int | None = None) -> Click:
        return Click(subscriber_id=ids[who], step=1, enrolment=1, kind=kind, value=value, user_agent=BROWSER,
                     agent_automated=False, now=now, day=day)  # fmt: skip

    exercise = [click(who, EventKind.CLICK, "exercise", day=1) for who in ("alex", "alex", "bea", "alex")]
    others = [click("chris", EventKind.CONSULTATION, None), click("nobody", EventKind.CONSULTATION, None),
              click("alex", EventKind.CONSULTATION, None)]  # fmt: skip
    answers, statements = _together(site, exercise + others)
    assert statements == 1
    slug = site.runtime.settings.course_slug
    assert answers == [
        Clicked(known=True, recording=True, recorded=True, course=slug, release=0, done=True),
        Clicked(known=True, recording=True, recorded=False, course=slug, release=0, done=True),  # its repeat
        Clicked(known=True, recording=True, recorded=True, course=slug, release=0, done=False),
        Clicked(known=True, recording=True, recorded=False, course=slug, release=0, done=True),
        Clicked(known=True, recording=False, recorded=False, course=slug, release=0, done=False),  # left
        Clicked(known=False, recording=False, recorded=False, course=None, release=0, done=False),
        Clicked(known=True, recording=True, recorded=True, course=slug, release=0, done=False),  # no day asked
    ]
    assert clicks(site)[len(before) :] == [("click", "exercise", 1, False), ("click", "exercise", 1, False),
                                           ("consultation", None, 1, False)]  # fmt: skip


def test_a_click_the_database_refuses_fails_alone_and_the_clicks_beside_it_are_recorded(site: Site) -> None:
    """One click of a batch that its statement cannot take (here a value longer than the column): the batch
    is refused whole, then each click is tried on its own, and only that request fails."""
    ids = _readers_on_day_one(site)
    before = clicks(site)
    now = site.clock()
    together = [
        Click(subscriber_id=ids["bea"], step=1, enrolment=1, kind=EventKind.RESOURCE, value=value, user_agent=BROWSER,
              agent_automated=False, now=now)
        for value in ("a-guide", "x" * 300, "another-guide")
    ]  # fmt: skip
    answers, statements = _together(site, together)
    assert statements == 1 + 3  # the batch, then each alone
    assert isinstance(answers[1], psycopg.errors.StringDataRightTruncation)
    assert [answer.recorded for answer in answers if isinstance(answer, Clicked)] == [True, True]
    assert clicks(site)[len(before) :] == [("resource", "a-guide", 1, False), ("resource", "another-guide", 1, False)]


# The tables that grow with the list and its sends, each with the column that names a reader.
GROWING = {"subscribers": "id", "progress": "subscriber_id", "deliveries": "subscriber_id",
           "clicked_links": "subscriber_id", "events": "subscriber_id"}  # fmt: skip


def _scans(node: dict[str, object]) -> Iterator[dict[str, object]]:
    yield node
    for child in node.get("Plans", []):  # type: ignore[attr-defined]
        yield from _scans(child)


def test_the_click_statements_plan_made_on_empty_tables_looks_each_readers_rows_up_by_their_key(
    database_url: str,
) -> None:
    """The web's click connections keep the click statement's plan for as long as they live (CLICK_SETTINGS,
    web/context.py), made on the tables as they were when it first ran: a new deployment's, empty. Even
    then it must reach each growing table through the reader's key, never by reading (or hashing, or
    merging) a whole table or all rows of a kind, which would cost more with every email sent."""
    dialect = postgresql.psycopg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
    statement = CLICKS_AT_ONCE.compile(dialect=dialect)
    names = list(statement.positiontup or [])
    parameters = clicks_parameters(
        [Click(subscriber_id=1, step=1, enrolment=None, kind=EventKind.CLICK, value="exercise", user_agent="ua",
               agent_automated=False, now=datetime.now(UTC), day=1)],
        human_delay=HUMAN_DELAY_SECONDS,
    )  # fmt: skip
    engine = create_engine(database_url, poolclass=NullPool)
    _, connect = engine.dialect.create_connect_args(engine.url)  # as the click connections connect
    with psycopg.connect(**connect, autocommit=True) as connection:
        connection.execute("ANALYZE")
        for name, value in CLICK_SETTINGS.items():
            connection.execute(f"SET {name} = {value}")
        connection.execute(f"PREPARE click AS {statement}")
        cursor = psycopg.ClientCursor(connection)
        cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE click({', '.join(['%s'] * len(names))})",
                       [parameters[name] for name in names])  # fmt: skip
        row = cursor.fetchone()
    assert row is not None
    (plan,) = row
    reached = set()
    for node in _scans(plan[0]["Plan"]):
        table = node.get("Relation Name")
        if table not in GROWING or node["Node Type"] == "ModifyTable":
            continue
        reached.add(table)
        condition = str(node.get("Index Cond", ""))
        assert f"({GROWING[table]} = " in condition, (table, node["Node Type"], condition or "no index condition")
    assert reached == set(GROWING)
