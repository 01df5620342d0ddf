"""A course's people in a real browser, on a phone and a desktop: a marketer finds a reader who called,
reads their story and pauses them with a reason, with no CSP violation, nothing scrolling sideways and no
serious accessibility problem. Screenshots in test-artefacts/audience/."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from course.imports import run_import, take_next
from course.models.subscribers import SignupRequest, Subscriber
from course.subscriptions import Consent, confirm, subscribe
from workers.engine import tick

from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .test_studio import make_user, open_browser, sign_in
from .watch import check_page

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "audience"
SLUG = "building-emotional-intimacy"


def readers(journey: Journey, names: list[str]) -> None:  # noqa: F811
    """Each name signs up, confirms and gets the welcome."""
    now = journey.clock()
    for name in names:
        with journey.runtime.sessions() as session:
            made = subscribe(session, course_slug=SLUG, email=f"{name.lower()}@example.com", first_name=name,
                             timezone="Europe/Paris", send_time=time(8),
                             consent=Consent(at=now, ip="203.0.113.9", user_agent="Firefox", form="landing"),
                             timing=journey.runtime.timing)  # fmt: skip
            session.commit()
        assert made.subscriber_id is not None
        with journey.runtime.sessions() as session:  # by the link of their confirmation email
            request = session.query(SignupRequest).filter_by(subscriber_id=made.subscriber_id).one()
            confirm(session, made.subscriber_id, now=now, timing=journey.runtime.timing, request_id=request.id)
            session.commit()
        journey.clock.advance(minutes=1)
        now = journey.clock()
    tick(journey.runtime)


def test_a_marketer_finds_a_reader_reads_their_story_and_pauses_them(journey: Journey, browser: Browser) -> None:  # noqa: F811
    readers(journey, ["Alex", "Sam", "Kim", "Joanna"])
    make_user(journey)
    for width in (375, 1280):
        context, page, problems = open_browser(journey, browser, width)
        page.goto(journey.base + "/studio/sign-in")
        sign_in(page)
        page.get_by_role("link", name="People").click()
        page.get_by_role("heading", name="People").wait_for()
        expect(page.get_by_text("4 people match")).to_be_visible()
        check_page(page, ARTEFACTS, "people", width)
        page.get_by_label("Address or name").fill("joan")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_text("1 person matches")).to_be_visible()
        page.get_by_role("link", name="joanna@example.com").click()
        page.get_by_role("heading", name="joanna@example.com").wait_for()
        expect(page.get_by_role("cell", name="Welcome email sent")).to_be_visible()
        expect(page.get_by_text("on landing from 203.0.113.9, confirmed by the link")).to_be_visible()
        check_page(page, ARTEFACTS, "person", width)
        if width == 375:
            page.locator("#why-pause").fill("Called: away for two weeks")
            page.get_by_role("button", name="Pause the course").click()
            expect(page.get_by_text("Done: you paused them.")).to_be_visible()
            expect(page.get_by_role("cell", name="kayla@example.org paused them in the studio")).to_be_visible()
            check_page(page, ARTEFACTS, "person-paused", width)
        assert problems.found == [], problems.found
        context.close()
    with journey.runtime.sessions() as session:
        joanna = session.query(Subscriber).filter_by(email="joanna@example.com").one()
        assert joanna.status == "paused"


def test_a_publisher_imports_a_list_on_a_phone(journey: Journey, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    make_user(journey)
    listed = tmp_path / "list.csv"
    listed.write_text("Email,First name,Time zone\nana@example.org,Ana,Europe/Paris\nnot an address,Sam,\n"
                      "ana@example.org,Ana,\nlee@example.org,Lee,Asia/Tokyo\n")  # fmt: skip
    context, page, problems = open_browser(journey, browser, 375)
    page.goto(journey.base + "/studio/sign-in")
    sign_in(page)
    page.goto(journey.base + "/studio/subscribers")
    page.get_by_role("link", name="Import a list").click()
    page.get_by_role("heading", name="Import a list").wait_for()
    check_page(page, ARTEFACTS, "import", 375)
    page.get_by_label("A CSV file").set_input_files(str(listed))
    page.get_by_role("button", name="Read it").click()
    page.get_by_role("heading", name="list.csv").wait_for()
    expect(page.get_by_role("cell", name="will be added")).to_have_count(2)
    check_page(page, ARTEFACTS, "import-mapping", 375)
    page.get_by_role("button", name="Start the import").click()
    expect(page.get_by_text("Importing:")).to_be_visible()
    with journey.runtime.sessions() as session:
        import_id = take_next(session, journey.runtime.now())
        session.commit()
    assert import_id is not None
    run_import(journey.runtime.sessions, import_id, journey.runtime.now, journey.runtime.timing)
    expect(page.get_by_text("2 added, 2 refused")).to_be_visible(timeout=10_000)  # the page follows it
    check_page(page, ARTEFACTS, "import-done", 375)
    assert problems.found == [], problems.found
    context.close()
