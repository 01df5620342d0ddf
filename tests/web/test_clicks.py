"""A link opened again and again counts once a minute (on the app's own clock), and one link keeps a
bounded number of clicks: 300 requests of a consultation link are one person's one click."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.pool import NullPool

from course.engagement.clicks import CLICK_AT_ONCE, CLICKS_KEPT_PER_LINK, REPEAT_CLICK_WINDOW, click_at_once_parameters
from course.links import LinkSigner, Purpose
from course.models.engagement import Event, EventKind
from course.models.subscribers import subscribers
from web.scanners import HUMAN_DELAY_SECONDS

from ..conftest import TEST_SECRET
from .conftest import Site


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
    parameters = click_at_once_parameters(
        subscriber_id=alex.id, step=1, enrolment=None, kind=EventKind.CONSULTATION, value=None,
        user_agent="a scanner", agent_automated=True, human_delay=HUMAN_DELAY_SECONDS, now=site.clock(),
    )  # fmt: skip
    with engine.connect() as first:
        assert first.execute(CLICK_AT_ONCE, parameters).one()[1] == 1  # recorded, its transaction still open
        pid = first.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        results: list[int] = []

        def again() -> None:
            with engine.connect() as second:
                results.append(second.execute(CLICK_AT_ONCE, parameters).one()[1])
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
    assert results == [0]
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
        parameters = click_at_once_parameters(
            subscriber_id=alex.id, step=1, enrolment=None, kind=EventKind.RESOURCE, value=f"guide-{place}",
            user_agent="a scanner", agent_automated=True, human_delay=HUMAN_DELAY_SECONDS, now=site.clock(),
        )  # fmt: skip

        def open_link(parameters: dict[str, object] = parameters) -> int:
            with engine.connect() as connection:
                start.wait(timeout=20)
                recorded = int(connection.execute(CLICK_AT_ONCE, parameters).one()[1])
                connection.commit()
                return recorded

        with ThreadPoolExecutor(16) as pool:
            assert sum(pool.map(lambda _: open_link(), range(16))) == 1, place
    engine.dispose()
    assert sorted(value or "" for _, value, _, _ in clicks(site)) == [f"guide-{place}" for place in range(10)]
