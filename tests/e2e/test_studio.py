"""The studio in a real browser: signing in and the list of emails, on a desktop and a phone, with no
CSP violation and no serious accessibility problem. Screenshots in test-artefacts/studio/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page

from course.models import StudioRole
from course.studio import add_user

from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .watch import BrowserProblems

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "studio"
PASSWORD = "a long studio passphrase"


def make_user(journey: Journey, role: StudioRole = StudioRole.PUBLISHER) -> None:  # noqa: F811
    with journey.runtime.sessions() as session:
        add_user(session, "kayla@example.org", role=role, password=PASSWORD, now=datetime.now(UTC))
        session.commit()


def open_browser(
    journey: Journey,  # noqa: F811 - the fixture's value, passed along
    browser: Browser,
    width: int = 1280,
) -> tuple[BrowserContext, Page, BrowserProblems]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    problems = BrowserProblems()
    problems.watch(context)
    journey.init_axe(context)
    return context, context.new_page(), problems


def sign_in(page: Page) -> None:
    """On the sign-in page: sign in, and wait for wherever it leads."""
    page.get_by_label("Email").fill("kayla@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def check(page: Page, name: str, width: int) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id + ': ' + v.help)"
    )
    assert violations == [], f"{name}: {violations}"


def test_a_marketer_signs_in_and_sees_the_emails(journey: Journey, browser: Browser) -> None:  # noqa: F811
    make_user(journey)
    for width in (1280, 375):
        context, page, problems = open_browser(journey, browser, width)
        page.goto(journey.base + "/studio")
        page.get_by_role("heading", name="Sign in to edit the emails").wait_for()  # no session: the sign-in page
        check(page, "sign-in", width)
        sign_in(page)
        page.get_by_role("heading", name="The emails").wait_for()
        assert page.get_by_role("row", name="Day 3").count() == 1
        assert "Please confirm your place in Building Emotional Intimacy" in page.content()
        check(page, "list", width)
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in to edit the emails").wait_for()
        assert problems.found == [], problems.found
        context.close()


def test_a_publisher_edits_checks_publishes_and_compares_in_the_browser(journey: Journey, browser: Browser) -> None:  # noqa: F811
    make_user(journey)
    context, page, problems = open_browser(journey, browser)
    page.goto(journey.base + "/studio/sign-in")
    sign_in(page)
    page.get_by_role("link", name="Day 3", exact=True).click()
    page.get_by_role("heading", name="day", exact=True).wait_for()
    subject = page.get_by_label("day/subject.txt")
    assert subject.input_value().strip() == "Day {{ day.number }}: {{ day.title }}"
    # The live preview: which email, then the text as typed, without a page load.
    page.locator(".inbox-subject", has_text="Day 1: Practice Daily Check-Ins").wait_for()
    page.get_by_label("Which email").select_option("day-03")
    page.locator(".inbox-subject", has_text="Day 3: Create Rituals of Connection").wait_for()
    page.evaluate("window.notReloaded = true")
    subject.fill("Day {{ day.number }} (a preview): {{ day.title }}")
    page.locator(".inbox-subject", has_text="Day 3 (a preview): Create Rituals of Connection").wait_for()
    assert page.evaluate("window.notReloaded") is True
    page.frame_locator("iframe.desktop-frame").get_by_text("Hi Sam,").wait_for()
    page.frame_locator("iframe.phone-frame").last.get_by_text("Hi Sam,").wait_for()
    page.locator(".preview").screenshot(path=str(ARTEFACTS / "preview-panel.png"))
    check(page, "editor", 1280)

    subject.fill("Day {{ day.number }}: {{ day.subtitle }}")  # a variable the days do not have
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_role("heading", name="It does not render yet").wait_for()
    assert "subject.txt" in page.get_by_role("alert").inner_text()
    check(page, "failed-check", 1280)

    page.get_by_label("day/subject.txt").fill("Day {{ day.number }}, today: {{ day.title }}")
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_text("Draft saved. Every email renders with it.").wait_for()
    page.get_by_role("link", name="Compare the draft with what is live").click()
    page.get_by_role("heading", name="Version 0 and the draft").wait_for()
    check(page, "diff", 1280)
    page.get_by_role("link", name="day", exact=True).click()
    page.get_by_label("What changed (for the history)").fill("say 'today'")
    page.get_by_role("button", name="Publish the saved draft").click()
    page.get_by_text("Published as version 1").wait_for()
    page.get_by_role("link", name="The emails").first.click()
    assert page.get_by_role("row", name="Day 3").inner_text().count("Day 3, today: Create Rituals of Connection") == 1
    assert problems.found == [], problems.found
    context.close()


def test_text_typed_when_the_session_ended_comes_back_after_signing_in(journey: Journey, browser: Browser) -> None:  # noqa: F811
    make_user(journey, StudioRole.EDITOR)
    context, page, problems = open_browser(journey, browser)
    page.goto(journey.base + "/studio/edit?item=welcome")
    sign_in(page)  # and back to the editor it asked for
    page.get_by_role("heading", name="welcome", exact=True).wait_for()
    page.get_by_label("welcome/subject.txt").fill("Typed before the session ended")
    context.clear_cookies()  # the session ends (eight hours, or a new password elsewhere)
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_role("heading", name="Sign in to edit the emails").wait_for()
    sign_in(page)
    page.goto(journey.base + "/studio/edit?item=welcome")
    page.get_by_text("Text you typed here earlier and had not saved is back").wait_for()
    assert page.get_by_label("welcome/subject.txt").input_value() == "Typed before the session ended"
    check(page, "restored", 1280)
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_text("Draft saved").wait_for()
    page.goto(journey.base + "/studio/edit?item=welcome")
    assert page.locator("#restored").is_hidden()  # saved: nothing left to bring back
    assert page.get_by_label("welcome/subject.txt").input_value().strip() == "Typed before the session ended"
    assert problems.found == [], problems.found
    context.close()
