"""Someone who has never seen the studio makes a three-email course with a checklist and a consultation
button, previews it on a phone, publishes it and signs up to it; the first email arrives. In a real browser,
against the journey's running service (PostgreSQL, Redis, a worker and the beat, an SMTP server).

The screenshots it keeps (test-artefacts/first-course/) are the studio guide's (docs/studio-guide.md), and it
prints how long the steps took (the guide's target is under a minute; a figure, not a timed assertion)."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import func, select

from course.catalog import course_at
from course.insights import measures, summing
from course.models.insights import InsightCount

from ..support.waiting import wait_until
from .test_course_building import publisher_at
from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .watch import check_page

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "first-course"
(ARTEFACTS / "guide").mkdir(parents=True, exist_ok=True)


def shot(page: Page, name: str, width: int = 1280) -> None:
    check_page(page, ARTEFACTS, name, width)


def guide(page: Page, name: str, at: Locator | None = None) -> None:
    """A picture for the studio guide: what the window shows (``at`` scrolled to its top)."""
    if at is not None:
        at.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTEFACTS / "guide" / f"{name}.png"))


def test_a_first_course_from_nothing_to_the_first_email(journey: Journey, browser: Browser) -> None:  # noqa: F811
    started = time.monotonic()
    context, page, problems = publisher_at(journey, browser, "/studio/courses/new")

    # 1. A new course: blank, so it has a welcome, one lesson and a completion (three emails).
    page.get_by_label("Title", exact=True).fill("Steady Evenings")
    page.get_by_label("The emails come from").fill("Anna Berg")
    shot(page, "1-new-course")
    guide(page, "1-new-course")
    page.get_by_role("button", name="Make the course").click()
    page.get_by_role("heading", name="The emails").wait_for()

    # 2. The course's page: a checklist of its own, open to sign-ups, the first lesson the day after.
    page.get_by_role("navigation", name="Studio").get_by_role("link", name="The course").click()
    page.get_by_role("heading", name="Steady Evenings").wait_for()
    with page.expect_navigation():
        page.get_by_role("button", name="Add a checklist").click()
    page.get_by_label("Title", exact=True).nth(1).fill("How our evenings went")
    page.get_by_label("Items, one per line").fill("We ate together\nWe talked without phones\nWe went to bed together")
    page.get_by_label("Open to sign-ups").check()
    page.get_by_label("Accent: buttons and links").fill("#2e6b4f")  # a look of its own, beside the shipped course's
    shot(page, "2-course-and-checklist")
    guide(page, "2-checklist", page.locator("fieldset.checklist"))
    with page.expect_navigation():
        page.get_by_role("button", name="Save the draft").click()
    page.get_by_text("Draft saved.").wait_for()
    page.get_by_label("What changed").fill("a checklist, and open")
    with page.expect_navigation():
        page.get_by_role("button", name="Publish this version").click()
    page.get_by_text("is live.").wait_for()

    # 3. The welcome: the checklist and a consultation button added as blocks, previewed on a phone.
    page.get_by_role("navigation", name="Studio").get_by_role("link", name="The emails").click()
    page.get_by_role("link", name="Edit the words of Welcome").click()
    page.get_by_role("heading", name="Welcome").first.wait_for()
    page.get_by_label("Add a block at the end").select_option("checklist")
    with page.expect_navigation():
        page.get_by_role("button", name="Add it", exact=True).click()
    page.get_by_label("Add a block at the end").select_option("button")
    with page.expect_navigation():
        page.get_by_role("button", name="Add it", exact=True).click()
    expect(page.locator("fieldset.block")).to_have_count(3)
    page.get_by_label("Show", exact=True).select_option("phone")
    frame = page.frame_locator("figure[data-view=phone] iframe")
    # The preview follows the form (a fetch, then the frame's own load): wait for what it shows, not a while.
    expect(frame.locator("body")).to_contain_text("How our evenings went", timeout=20_000)
    expect(frame.locator("body")).to_contain_text("Book a free consultation")
    shot(page, "3-welcome-blocks-and-phone-preview")
    guide(page, "3-blocks-and-phone-preview", page.locator("fieldset.block").nth(1))
    page.get_by_label("What changed (for the history)").fill("a checklist and the call to book")
    with page.expect_navigation():
        page.get_by_role("button", name="Publish what is in the form").click()
    page.get_by_text("Published as version").wait_for()
    with journey.runtime.sessions() as session:
        course = course_at(session, "steady-evenings")
    assert course.open and len(course.steps) == 3 and course.welcome.checklist == "a-new-checklist"
    studio_done = time.monotonic() - started

    # 4. A reader signs up on a phone, confirms, and the welcome arrives with its answers and the call to book.
    reader = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, timezone_id="Europe/Paris")
    problems.watch(reader)
    journey.init_axe(reader)
    phone = reader.new_page()
    phone.goto(journey.base + "/c/steady-evenings")
    guide(phone, "4-the-course-page-on-a-phone")
    phone.get_by_label("Your email address").fill("alex@example.com")
    phone.get_by_role("button", name="Send me the first email").click()
    phone.get_by_role("heading", name="Check your inbox").wait_for()
    wait_until(lambda: journey.smtp.to("alex@example.com"), timeout=30, what="the confirmation email")
    phone.goto(journey.link("", "/confirm/"))
    phone.get_by_role("button", name="Yes, start the course").click()
    wait_until(lambda: len(journey.smtp.to("alex@example.com")) >= 2, timeout=30, what="the welcome")
    elapsed = time.monotonic() - started
    welcome = journey.smtp.to("alex@example.com")[-1]
    assert welcome.subject.startswith("Welcome") and "Steady Evenings" in welcome.subject
    html_part = welcome.message.get_body(preferencelist=("html",))
    assert html_part is not None and "#2e6b4f" in html_part.get_content()  # in its own colour
    links = journey.links("Welcome")
    assert sum("/answer/" in link for link in links) >= 2  # a link per band of the checklist (and one by one)
    assert any("/consultation/" in link for link in links)
    body = welcome.message.get_body(preferencelist=("html",))
    assert body is not None
    inbox = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)  # a mail app, not our site
    mail = inbox.new_page()
    mail.set_content(body.get_content())  # the welcome as a phone shows it
    guide(mail, "5-the-welcome-on-a-phone", mail.get_by_text("How our evenings went"))
    inbox.close()
    # Its own insights: the two courses' figures summed apart (one worker fleet and beat sent both).
    with journey.runtime.sessions() as session:
        for slug in ("steady-evenings", journey.runtime.settings.course_slug):
            summing.refresh(session, course_at(session, slug), journey.clock())
        session.commit()
        signed_up = dict(session.execute(
            select(InsightCount.course_slug, func.sum(InsightCount.value))
            .where(InsightCount.measure == measures.PEOPLE).group_by(InsightCount.course_slug)
        ).all())  # fmt: skip
    assert signed_up.get("steady-evenings") == 1 and not signed_up.get(journey.runtime.settings.course_slug)
    page.goto(journey.base + "/studio/insights?course=steady-evenings")
    page.get_by_text("Figures summed at").wait_for()
    assert "Steady Evenings" in page.locator("main").inner_text()
    assert problems.found == [], problems.found
    (ARTEFACTS / "timing.txt").write_text(
        f"studio steps {studio_done:.1f} s; to the first email {elapsed:.1f} s (target: under 60 s)\n"
    )
    print(f"first course: studio steps {studio_done:.1f} s, first email after {elapsed:.1f} s")
    reader.close()
    context.close()
