"""A subscriber's whole journey in a real browser (Debian's chromium) at phone size, against the real
web app, PostgreSQL and an SMTP server: sign up, confirm from the email, a day's email, exercise done,
a checklist answer, the consultation, pause and resume, unsubscribe. Screenshots are kept in
test-artefacts/journey/. The browser must report no Content-Security-Policy violation and no script
error on the way: that is the check that nothing inline was left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy import select

from bench.net import free_port
from course.curriculum import load_course
from course.db import make_engine, make_sessionmaker
from course.models.engagement import Event
from course.models.subscribers import Subscriber, SubscriberStatus
from web.app import create_app
from workers.engine import Runtime, send_next, tick
from workers.throttle import LocalTokenBucket

from ..conftest import make_settings
from ..support.sites import ForeignPage
from ..support.smtp import ScriptedHandler
from ..support.waiting import wait_until
from ..web.conftest import _Hrefs
from ..workers.conftest import Clock
from .watch import BrowserProblems

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "journey"
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


class Journey:
    def __init__(self, runtime: Runtime, clock: Clock, smtp: ScriptedHandler, base: str) -> None:
        self.runtime, self.clock, self.smtp, self.base = runtime, clock, smtp, base
        self.shots = 0

    def links(self, subject_starts: str) -> list[str]:
        messages = [m for m in self.smtp.to("alex@example.com") if m.subject.startswith(subject_starts)]
        assert messages, f"no email starting {subject_starts!r}"
        body = messages[-1].message.get_body(preferencelist=("html",))
        assert body is not None
        parser = _Hrefs()
        parser.feed(body.get_content())
        return parser.hrefs

    def link(self, subject_starts: str, path: str) -> str:
        found = [href for href in self.links(subject_starts) if f"{self.base}{path}" in href]
        assert found, f"no {path} link in {subject_starts!r}"
        return found[0]

    def shot(self, page: Page, name: str) -> None:
        """Keep a screenshot, and check the page: no sideways scrolling, no serious accessibility problem."""
        self.shots += 1
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / f"{self.shots:02d}-{name}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, name
        # axe-core comes with every document (init_axe): our CSP rightly refuses an injected <script>.
        violations = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id + ': ' + v.help)"
        )
        assert violations == [], f"{name}: {violations}"

    @staticmethod
    def init_axe(context: BrowserContext) -> None:
        assert AXE.exists(), f"{AXE} is missing: npm ci --prefix tests/e2e (make test does it)"
        context.add_init_script(path=str(AXE))

    def subscriber(self) -> Subscriber:
        with self.runtime.sessions() as session:
            found = session.scalars(select(Subscriber)).one()
            session.expunge(found)
            return found


class _BookingPage(ForeignPage):
    """The practice's booking site, which is not ours: a page that says where the reader landed."""

    def page(self, path: str) -> str:
        return "<!doctype html><title>Booking</title><h1>Book a free consultation</h1>"


@pytest.fixture
def booking_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BookingPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/free-consultation"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def journey(database_url: str, smtp: tuple[ScriptedHandler, int], booking_site: str) -> Iterator[Journey]:
    handler, smtp_port = smtp
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        database_url=database_url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        broker_url="memory://",
        base_url=base,
        consultation_url=booking_site,
        # The practice's quizzes and guides: the same stand-in site (this machine reaches no other).
        resource_urls={key: booking_site for key in load_course().resources},
    )
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    clock = Clock()

    def send_now(wakeups: int) -> None:
        for _ in range(wakeups):
            send_next(runtime)

    runtime = Runtime(settings, sessions=sessions, throttle=LocalTokenBucket(10_000), clock=clock, enqueue=send_now)
    app = create_app(settings, sessions=sessions, enqueue=runtime.enqueue, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, what="the web server")
    yield Journey(runtime, clock, handler, base)
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


def test_a_subscriber_goes_from_sign_up_to_unsubscribe_on_a_phone(journey: Journey, browser: Browser) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True, timezone_id="America/Denver",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    )  # fmt: skip
    problems = BrowserProblems()
    problems.watch(context)
    journey.init_axe(context)
    page = context.new_page()

    # Sign up: the time zone comes from the device (web/static/landing.js).
    page.goto(journey.base + "/")
    assert page.get_by_label("Your time zone").input_value() == "America/Denver"
    page.get_by_label("Your email address").fill("alex@example.com")
    page.get_by_label("Your first name").fill("Alex")
    page.get_by_label("When should each email arrive?").select_option("07:30")
    journey.shot(page, "landing")
    page.get_by_role("button", name="Send me the first email").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    journey.shot(page, "check-your-inbox")

    # Confirm from the email: the page asks; the button confirms.
    wait_until(lambda: journey.smtp.to("alex@example.com"), timeout=30, what="the confirmation email")
    page.goto(journey.link("Confirm your place", "/confirm/"))
    assert journey.subscriber().status == SubscriberStatus.PENDING.value
    journey.shot(page, "confirm")
    page.get_by_role("button", name="Yes, start the course").click()
    page.get_by_role("heading", name="You are in").wait_for()
    journey.shot(page, "confirmed")
    assert journey.subscriber().status == SubscriberStatus.ACTIVE.value

    # Day 1 arrives at 07:30 Denver time; the reader opens it half an hour later.
    alex = journey.subscriber()
    assert alex.next_send_at is not None
    journey.clock.to(alex.next_send_at)
    tick(journey.runtime)
    journey.clock.advance(minutes=30)
    page.goto(journey.link("Day 1", "/exercise/"))
    journey.shot(page, "exercise")
    page.get_by_role("button", name="I did it").click()
    page.get_by_text("It is recorded").wait_for()
    journey.shot(page, "exercise-done")

    # The welcome's checklist: "2-3 checked", then save it.
    page.goto([href for href in journey.links("Welcome") if "/answer/" in href][1])
    page.get_by_text("Time to prioritize connection").first.wait_for()
    journey.shot(page, "checklist-answer")
    page.get_by_role("button", name="Save my answer").click()
    page.get_by_text("Saved.").wait_for()

    # Or tick the items one by one: the score follows as they tick (web/static/answer.js).
    page.get_by_role("link", name="Tick the items one by one").click()
    live = page.locator("#live-score")
    live.filter(has_text="0 checked. 0-1 checked").wait_for()
    for checkbox in page.get_by_role("checkbox").all()[:2]:
        checkbox.check()
    live.filter(has_text="2 checked. 2-3 checked: Time to prioritize connection").wait_for()
    journey.shot(page, "checklist")
    page.get_by_role("button", name="Save and see what it means").click()
    page.get_by_text("Saved.").wait_for()

    # The welcome's longer read waits on the web: the research, why it matters, the questions.
    page.goto(journey.link("Welcome", "/about"))
    page.get_by_role("heading", name="What emotional intimacy is, and why it matters").wait_for()
    page.get_by_role("heading", name="What Research Says About Emotional Intimacy").wait_for()
    journey.shot(page, "about")

    # The consultation: our redirect, then the practice's page.
    page.goto(journey.link("Day 1", "/consultation/"))
    page.get_by_role("heading", name="Book a free consultation").wait_for()
    assert "/free-consultation?utm_source=email-course&utm_medium=email" in page.url

    # Preferences: pause for a week, then resume.
    page.goto(journey.link("Day 1", "/preferences/"))
    page.get_by_role("button", name="Pause for a week").click()
    page.get_by_text("Paused for a week").wait_for()
    journey.shot(page, "paused")
    assert journey.subscriber().status == SubscriberStatus.PAUSED.value
    page.get_by_role("button", name="Resume the course").click()
    page.get_by_text("Resumed.").wait_for()
    assert journey.subscriber().status == SubscriberStatus.ACTIVE.value

    # Unsubscribe from the footer link: a page, a button, done.
    page.goto(journey.link("Day 1", "/unsubscribe/"))
    journey.shot(page, "unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    journey.shot(page, "unsubscribed")
    assert journey.subscriber().status == SubscriberStatus.UNSUBSCRIBED.value

    with journey.runtime.sessions() as session:
        recorded = {(event.kind, event.automated) for event in session.scalars(select(Event))}
    assert {("confirmed", False), ("exercise-done", False), ("answer", False), ("consultation", False)} <= recorded
    assert ("unsubscribed", False) in recorded
    context.close()
    assert problems.found == []


def test_a_scanner_running_javascript_opens_every_link_and_changes_nothing(journey: Journey, browser: Browser) -> None:
    runtime = journey.runtime
    from course.subscriptions import Consent, confirm, subscribe

    with runtime.sessions() as session:
        signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                              timezone="UTC", consent=Consent(at=journey.clock()), timing=runtime.timing)  # fmt: skip
        session.commit()
        assert signed_up.subscriber_id is not None
        confirm(session, signed_up.subscriber_id, now=journey.clock(), timing=runtime.timing)
        session.commit()  # the confirmation and the welcome go to the workers as each commit happens
    journey.clock.advance(seconds=20)  # a security gateway opens everything within the first minute
    scanner = browser.new_context()  # Playwright's own agent: "HeadlessChrome"
    problems = BrowserProblems()
    problems.watch(scanner)
    page = scanner.new_page()
    links = journey.links("Welcome")
    assert len(links) >= 6
    for href in links:
        page.goto(href)
        page.wait_for_load_state("load")  # scripts on the page have run
    scanner.close()
    assert problems.found == []
    alex = journey.subscriber()
    assert alex.status == SubscriberStatus.ACTIVE.value  # the unsubscribe page was only looked at
    with runtime.sessions() as session:
        recorded = list(session.scalars(select(Event).where(Event.kind != "confirmed")))
    assert recorded, "the clicks are still recorded"
    assert all(event.automated for event in recorded)
    assert not any(event.kind in ("answer", "exercise-done", "unsubscribed") for event in recorded)
