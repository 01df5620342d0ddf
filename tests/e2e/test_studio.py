"""The studio in a real browser: signing in and the list of emails, on a desktop and a phone, with no
CSP violation and no serious accessibility problem. Screenshots in test-artefacts/studio/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, Page

from course.models import StudioRole
from course.studio import add_user

from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .watch import BrowserProblems

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "studio"
PASSWORD = "a long studio passphrase"


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
    with journey.runtime.sessions() as session:
        add_user(session, "kayla@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=datetime.now(UTC))
        session.commit()
    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 900})
        problems = BrowserProblems()
        problems.watch(context)
        journey.init_axe(context)
        page = context.new_page()
        page.goto(journey.base + "/studio")
        page.get_by_role("heading", name="Sign in to edit the emails").wait_for()  # no session: the sign-in page
        check(page, "sign-in", width)
        page.get_by_label("Email").fill("kayla@example.org")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="The emails").wait_for()
        assert page.get_by_role("row", name="Day 3").count() == 1
        assert "Please confirm your place in Building Emotional Intimacy" in page.content()
        check(page, "list", width)
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in to edit the emails").wait_for()
        assert problems.found == [], problems.found
        context.close()
