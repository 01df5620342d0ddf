"""A marketer makes a course in the studio, in a real browser, and a reader signs up to it: the courses list, a
new blank course, its settings, look and emails in order (an email added, one dragged to its place), publish,
then its own page in its own colours, the sign-up, the confirmation and the welcome. Screenshots in
test-artefacts/course-building/; every page checked for serious accessibility problems at its width."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page

from course.catalog import course_at
from course.models.studio import StudioRole
from course.studio import add_user

from ..support.waiting import wait_until
from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .watch import BrowserProblems, check_page

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "course-building"
PASSWORD = "a long studio passphrase"


def check(page: Page, name: str, width: int) -> None:
    check_page(page, ARTEFACTS, name, width)


def publisher_at(journey: Journey, browser: Browser, path: str) -> tuple[BrowserContext, Page, BrowserProblems]:  # noqa: F811
    """A publisher's desktop browser, signed in on its way to ``path``; axe is in every document."""
    with journey.runtime.sessions() as session:
        add_user(session, "kayla@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=datetime.now(UTC))
        session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems = BrowserProblems()
    problems.watch(context)
    journey.init_axe(context)
    page = context.new_page()
    page.goto(journey.base + path)
    page.get_by_label("Email").fill("kayla@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return context, page, problems


def test_a_marketer_makes_a_course_and_a_reader_gets_its_welcome(journey: Journey, browser: Browser) -> None:  # noqa: F811
    context, page, problems = publisher_at(journey, browser, "/studio/courses")
    page.get_by_role("heading", name="The courses").wait_for()
    check(page, "courses", 1280)

    # A new, blank course.
    page.get_by_role("link", name="Make a new course").click()
    page.get_by_label("Title", exact=True).fill("Calm Mornings")
    page.get_by_label("The emails come from").fill("Anna Berg")
    check(page, "new-course", 1280)
    page.get_by_role("button", name="Make the course").click()
    page.get_by_role("heading", name="The emails").wait_for()
    assert "course=calm-mornings" in page.url

    # Its settings, look and emails: open it, a colour of its own, an email added and moved first.
    page.get_by_role("navigation", name="Studio").get_by_role("link", name="The course").click()
    page.get_by_role("heading", name="Calm Mornings").wait_for()
    with page.expect_navigation():
        page.get_by_role("button", name="Add an email after this: The first lesson").click()
    page.get_by_text("Draft saved.").wait_for()
    rows = page.locator("[data-sortable] > li")
    assert rows.count() == 2
    with page.expect_navigation():  # a row's buttons save at once (a drag waits for Save: see below)
        page.get_by_role("button", name="Move up: A new email").click()
    assert "A new email" in page.locator("[data-sortable] h3").first.inner_text()  # moved first
    page.get_by_label("Open to sign-ups").check()
    page.get_by_label("Accent: buttons and links").fill("#1f5f8b")
    page.get_by_label("Wait (days)").nth(1).fill("0")
    with page.expect_navigation():  # (the page it comes back to says "Draft saved." too: wait for the new one)
        page.get_by_role("button", name="Save the draft").click()
    page.get_by_text("Draft saved.").wait_for()
    check(page, "course", 1280)  # (after the click: a full-page screenshot resizes the page under the mouse)
    assert "A new email" in page.locator("[data-sortable] h3").first.inner_text()  # still first
    page.get_by_label("What changed").fill("two emails, open")
    with page.expect_navigation():
        page.get_by_role("button", name="Publish this version").click()
    page.get_by_text("is live.").wait_for()
    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("cell", name="made a course").wait_for()
    check(page, "audit", 1280)
    with journey.runtime.sessions() as session:
        course = course_at(session, "calm-mornings")
    assert [step.email for step in course.steps] == ["welcome", "day-03", "day-01", "completion"]  # (2: the completion)
    assert course.open and course.theme.accent == "#1f5f8b"

    # A reader on a phone: the course's page in its own colour, the sign-up, the confirmation, the welcome.
    reader = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, timezone_id="Europe/Paris")
    problems.watch(reader)
    journey.init_axe(reader)
    phone = reader.new_page()
    phone.goto(journey.base + "/")
    phone.get_by_role("link", name="Calm Mornings").first.click()
    phone.get_by_role("heading", name="Calm Mornings").wait_for()
    colour = phone.get_by_role("link", name="Start the course").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(31, 95, 139)"
    check(phone, "course-page", 375)
    phone.get_by_label("Your email address").fill("alex@example.com")
    phone.get_by_role("button", name="Send me the first email").click()
    phone.get_by_role("heading", name="Check your inbox").wait_for()
    wait_until(lambda: journey.smtp.to("alex@example.com"), timeout=30, what="the confirmation email")
    confirmation = journey.smtp.to("alex@example.com")[-1]
    assert "Calm Mornings" in confirmation.subject and "Anna Berg" in str(confirmation.message["From"])
    phone.goto(journey.link("", "/confirm/"))
    phone.get_by_role("button", name="Yes, start the course").click()
    wait_until(lambda: len(journey.smtp.to("alex@example.com")) >= 2, timeout=30, what="the welcome")
    welcome = journey.smtp.to("alex@example.com")[-1]
    assert welcome.subject.startswith("Welcome")
    html = welcome.message.get_body(preferencelist=("html",))
    assert html is not None and "color:#1f5f8b" in html.get_content()  # the email in the course's own colour
    assert problems.found == [], problems.found
    reader.close()
    context.close()


def test_an_email_dragged_to_its_place_posts_the_new_order(journey: Journey, browser: Browser) -> None:  # noqa: F811
    """Dragging (SortableJS) reorders the rows and the hidden order fields they carry; the page says to save.
    (The last step: a page left in the middle of the browser's own drag may not hear the next click.)"""
    context, page, problems = publisher_at(journey, browser, "/studio/course")
    rows = page.locator("[data-sortable] > li")
    rows.first.wait_for()
    order = page.locator("[data-sortable] input[name=order]")
    assert order.evaluate_all("inputs => inputs.map(i => i.value)")[:3] == ["1", "2", "3"]
    rows.nth(1).locator(".drag").drag_to(rows.nth(0).locator("h3"))
    page.locator("[data-unsaved]").wait_for(state="visible")
    assert order.evaluate_all("inputs => inputs.map(i => i.value)")[:3] == ["2", "1", "3"]
    assert problems.found == [], problems.found
    context.close()
