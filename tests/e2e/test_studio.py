"""The studio in a real browser: signing in and the list of emails, on a desktop and a phone, with no
CSP violation and no serious accessibility problem. Screenshots in test-artefacts/studio/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from email.message import EmailMessage
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy import select

from course.catalog import release_name
from course.models.deliveries import Delivery
from course.models.studio import StudioRole
from course.models.subscribers import Subscriber
from course.studio import add_user
from course.subscriptions import Consent, confirm, subscribe
from emails.compiler import default_templates
from emails.store import current_release, files_of, save_draft
from web.studio.auth import sign_in_link
from workers.engine import tick

from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .watch import BrowserProblems, check_page

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "studio"
PASSWORD = "a long studio passphrase"
SENTENCE = "Beyond daily check-ins, emotionally intimate couples have rituals that are uniquely theirs."
NEW_SENTENCE = "Beyond check-ins, close couples keep *small rituals* that belong to them alone."


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
    page.wait_for_load_state("load")  # the page's scripts have run


def check(page: Page, name: str, width: int) -> None:
    check_page(page, ARTEFACTS, name, width)


def test_a_marketer_signs_in_and_sees_the_emails(journey: Journey, browser: Browser) -> None:  # noqa: F811
    make_user(journey)
    for width in (1280, 375):
        context, page, problems = open_browser(journey, browser, width)
        page.goto(journey.base + "/studio")
        page.get_by_role("heading", name="Sign in to edit the emails").wait_for()  # no session: the sign-in page
        check(page, "sign-in", width)
        sign_in(page)
        page.get_by_role("heading", name="The emails").wait_for()
        assert page.get_by_role("row", name=re.compile("^Day 3 Day 3")).count() == 1  # and its words below
        assert "Confirm your place in Building Emotional Intimacy" in page.content()
        check(page, "list", width)
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in to edit the emails").wait_for()
        assert problems.found == [], problems.found
        context.close()


def test_the_studio_shows_its_moments_in_the_viewers_own_zone(journey: Journey, browser: Browser) -> None:  # noqa: F811
    make_user(journey)
    files = {"welcome/subject.txt": "Welcome, {{ subscriber.first_name or 'friend' }}"}
    with journey.runtime.sessions() as session:
        draft = save_draft(session, course_slug=journey.runtime.settings.course_slug, item="welcome",
                           files={**files_of(default_templates(), "welcome"), **files}, expected_revision=0,
                           based_on=0, author="kayla@example.org",
                           now=datetime(2026, 7, 1, 18, 30, tzinfo=UTC))  # fmt: skip
        session.commit()
    assert draft.revision == 1
    for zone, shown in (
        ("America/Denver", re.compile(r"01 Jul.* 12:30.*(MDT|GMT-6)")),
        ("Asia/Tokyo", re.compile(r"02 Jul.* 03:30.*(GMT\+9|JST)")),
    ):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=zone, locale="en-GB")
        page = context.new_page()
        page.goto(journey.base + "/studio")
        sign_in(page)
        moment = page.get_by_role("row", name=re.compile("^Welcome")).first.locator("time")
        expect(moment).to_have_text(shown)  # once the page's script has run: wait for it, never race it
        assert moment.get_attribute("title") == "01 Jul 18:30 UTC"  # what shows without JavaScript
        context.close()


def code(page: Page, path: str) -> Locator:
    """The text box behind the code editor of ``path`` (the editor writes every change back into it)."""
    label = page.locator("label", has_text=re.compile(f"^{re.escape(path)}$"))
    return page.locator(f"#{label.get_attribute('for')}")


def type_code(page: Page, path: str, text: str, *, at_end_minus: int | None = None) -> None:
    """Type into the code editor of ``path``: all of it replaced, or ``text`` inserted at the start of
    the line ``at_end_minus`` lines above the last."""
    box = code(page, path)
    page.locator(f"#{box.get_attribute('id')} + .code-editor .ace_content").click()
    if at_end_minus is None:
        page.keyboard.press("Control+A")
    else:
        page.keyboard.press("Control+End")
        for _ in range(at_end_minus):
            page.keyboard.press("ArrowUp")
        page.keyboard.press("Home")
    page.keyboard.insert_text(text)


def enrol(journey: Journey, email: str, hour: int) -> int:  # noqa: F811
    """A confirmed subscriber in Paris, at ``hour`` o'clock, as the sign-up page makes one; returns its id."""
    runtime = journey.runtime
    with runtime.sessions() as session:
        consent = Consent(at=journey.clock(), ip="203.0.113.9", user_agent="e2e", form="test")
        result = subscribe(session, course_slug=runtime.settings.course_slug, email=email, first_name="Robin",
                           timezone="Europe/Paris", send_time=time(hour, 0), timing=runtime.timing,
                           consent=consent)  # fmt: skip
        session.commit()
    assert result.subscriber_id is not None
    with runtime.sessions() as session:
        confirm(session, result.subscriber_id, now=journey.clock(), timing=runtime.timing)
        session.commit()
    return result.subscriber_id


def next_email(journey: Journey, subscriber_id: int) -> Delivery:  # noqa: F811
    """Move the clock to the subscriber's next email and let the engine send what is due."""
    with journey.runtime.sessions() as session:
        due = session.get(Subscriber, subscriber_id)
        assert due is not None and due.next_send_at is not None
        journey.clock.to(due.next_send_at)
    tick(journey.runtime)
    with journey.runtime.sessions() as session:
        sent = session.scalars(
            select(Delivery).where(Delivery.subscriber_id == subscriber_id, Delivery.state == "sent")
            .order_by(Delivery.step.desc().nulls_last())
        ).first()  # fmt: skip
        assert sent is not None
        session.expunge(sent)
        return sent


def day_3_to(journey: Journey, address: str) -> EmailMessage:  # noqa: F811
    found = [m for m in journey.smtp.to(address) if m.subject.startswith("Day 3")]
    assert len(found) == 1, [m.subject for m in journey.smtp.to(address)]
    return found[0].message


def test_a_publisher_changes_day_3_in_words_and_layout_and_the_engine_sends_it(
    journey: Journey,  # noqa: F811
    browser: Browser,
) -> None:
    make_user(journey)
    # Two readers a day apart: the first gets day 3 after the publish, the second after the roll-back.
    # Two readers: the first (mornings) gets day 3 after the publish, the second (evenings) after the roll-back.
    first, second = enrol(journey, "first@example.com", 8), enrol(journey, "second@example.com", 20)
    while next_email(journey, first).step != 2:
        pass

    context, page, problems = open_browser(journey, browser)
    page.goto(journey.base + "/studio/sign-in")
    sign_in(page)
    page.get_by_role("link", name="Day 3", exact=True).click()
    page.get_by_role("heading", name="Day 3 · words").wait_for()
    page.locator(".inbox-subject", has_text="Day 3: Pick a ritual that is just yours").wait_for()
    page.evaluate("window.notReloaded = true")
    page.locator("#w-subject").fill("Day 3: a ritual of your own")
    teaching = page.locator("#w-body-0-paragraphs")
    teaching.fill(teaching.input_value().replace(SENTENCE, NEW_SENTENCE))
    page.locator(".inbox-subject", has_text="Day 3: a ritual of your own").wait_for()  # the preview follows
    page.get_by_label("Show", exact=True).select_option("desktop")  # one view at a time, beside the form
    page.frame_locator("iframe.desktop-frame").locator("p", has_text="keep small rituals that belong").wait_for()
    page.get_by_label("Show", exact=True).select_option("dark")
    page.frame_locator("iframe.phone-frame").last.locator("p", has_text="keep small rituals").wait_for()
    assert page.evaluate("window.notReloaded") is True
    page.get_by_label("Show", exact=True).select_option("desktop")
    form, desktop = page.locator(".editing-form").bounding_box(), page.locator("iframe.desktop-frame").bounding_box()
    assert form and desktop and desktop["x"] >= form["x"] + form["width"] and desktop["width"] == 600  # side by side
    page.locator("iframe.desktop-frame").scroll_into_view_if_needed()  # frames out of view are not painted
    page.screenshot(path=str(ARTEFACTS / "preview-panel.png"))
    check(page, "words", 1280)
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_text("Draft saved. Every email renders with it.").wait_for()
    page.get_by_label("What changed (for the history)").fill("a shorter first sentence")
    page.get_by_role("button", name="Publish what is in the form").click()
    page.get_by_text("Published as version 1").wait_for()

    # The layout, in the code editor: an unknown variable is caught at its line, then fixed.
    page.get_by_role("link", name="The emails").first.click()
    page.get_by_role("row", name=re.compile("^Day 3 Day 3")).get_by_role("link", name="day", exact=True).click()
    page.get_by_role("heading", name="Every day · layout").wait_for()
    page.locator(".code-editor .ace_gutter-cell").first.wait_for()  # line numbers: the editor is there
    line = "<mj-text>{{ greting }}</mj-text>"  # short enough not to wrap beside the preview
    type_code(page, "day/body.mjml", f"<mj-section><mj-column>\n{line}\n</mj-column></mj-section>\n",
              at_end_minus=2)  # before </mj-body>  # fmt: skip
    lines = code(page, "day/body.mjml").input_value().splitlines()
    number = [typed.strip() for typed in lines].index(line) + 1
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_role("heading", name="It does not render yet").wait_for()
    beside = page.locator(".line-problems").inner_text()
    assert f"Line {number}: unknown variable: greting" in beside, beside
    assert page.locator(".ace_gutter-cell.ace_error").inner_text().strip() == str(number)
    check(page, "failed-check", 1280)
    page.get_by_role("button", name=f"Go to line {number}").click()
    page.keyboard.press("Home")
    page.keyboard.press("Shift+End")
    page.keyboard.insert_text("<mj-text>One ritual, kept, is enough.</mj-text>")
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_text("Draft saved. Every email renders with it.").wait_for()
    check(page, "layout-editor", 1280)
    page.get_by_label("What changed (for the history)").fill("a closing line")
    page.get_by_role("button", name="Publish what is in the form").click()
    page.get_by_text("Published as version 1").wait_for()

    # The engine sends the first reader's day 3 with the new words, the new line and the new release.
    with journey.runtime.sessions() as session:
        release = current_release(session, journey.runtime.settings.course_slug)
    sent = next_email(journey, first)
    assert sent.step == 3 and sent.template_version == release_name(release)
    message = day_3_to(journey, "first@example.com")
    body = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = " ".join(message.get_body(preferencelist=("plain",)).get_content().split())  # type: ignore[union-attr]
    assert message["Subject"] == "Day 3: a ritual of your own"
    assert "keep <em>small rituals</em> that belong to them alone." in body and "One ritual, kept, is enough." in body
    assert "keep *small rituals* that belong to them alone." in text

    # The words' history: what changed, then back to the words as shipped. The clock went on to day 3, and
    # a session left idle that long has ended: signing in again leads back to the page.
    page.goto(journey.base + "/studio/edit?item=_words/day-03.yaml")
    page.get_by_role("heading", name="Sign in to edit the emails").wait_for()
    sign_in(page)
    page.get_by_role("link", name="What changed").first.click()
    page.get_by_role("heading", name="Version 0 and version 1").wait_for()
    check(page, "diff", 1280)
    page.go_back()
    page.get_by_text("Go back to the text as shipped…").click()  # it asks first, and why
    page.get_by_label("Why (for the history)").fill("the old ritual read better")
    page.get_by_role("button", name="Go back to the text as shipped now").click()
    page.get_by_text("Rolled back to version 0").first.wait_for()
    page.get_by_role("row", name=re.compile("^Rolled back to version 0 .*the old ritual read better")).wait_for()
    page.get_by_text("Make version 1 live…").click()  # open, for the picture and the checks: it asks why
    check(page, "history", 1280)
    assert not [m for m in journey.smtp.to("second@example.com") if m.subject.startswith("Day 3")]
    while (sent := next_email(journey, second)).step != 3:
        assert sent.step is not None and sent.step < 3
    message = day_3_to(journey, "second@example.com")
    body = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert message["Subject"] == "Day 3: Pick a ritual that is just yours" and SENTENCE in body
    assert "One ritual, kept, is enough." in body  # the layout stays as published
    with journey.runtime.sessions() as session:
        assert sent.template_version == release_name(current_release(session, journey.runtime.settings.course_slug))
    assert problems.found == [], problems.found
    context.close()


def test_every_studio_page_is_accessible_on_a_phone(journey: Journey, browser: Browser) -> None:  # noqa: F811
    with journey.runtime.sessions() as session:
        user = add_user(session, "new@example.org", role=StudioRole.PUBLISHER, password=None, now=datetime.now(UTC))
        session.commit()
        link = sign_in_link(journey.runtime.settings, user)
    context, page, problems = open_browser(journey, browser, 375)
    page.goto(link)  # the one-time link the command prints
    page.get_by_role("heading", name="Welcome, new@example.org").wait_for()
    check(page, "set-password", 375)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_role("button", name="Set my password and sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
    page.wait_for_load_state("load")  # the page's scripts have run
    pages = [("/studio", "list"), ("/studio/courses", "courses"), ("/studio/courses/new", "new-course"),
             ("/studio/course", "course"), ("/studio/edit?item=_words/day-03.yaml", "words"),
             ("/studio/edit?item=_words/welcome.yaml", "letter-words"),
             ("/studio/edit?item=_words/shared.yaml", "shared-words"), ("/studio/edit?item=day", "layout"),
             ("/studio/edit?item=_base/footer.mjml", "shared-section"),
             ("/studio/diff?item=day&before=0&after=0", "diff-none"), ("/studio/insights", "insights"),
             ("/studio/audit", "audit"), ("/studio/account", "account")]  # fmt: skip
    for width, height in ((375, 812), (1280, 900)):  # every page, on a phone and on a desktop
        page.set_viewport_size({"width": width, "height": height})
        for path, name in pages:
            page.goto(journey.base + path)
            page.locator("main h1").first.wait_for()
            if "edit" in path:
                page.locator(".preview .inbox-row, .preview .problems").first.wait_for()  # the preview is in
            check(page, name, width)
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(link)  # used once: it no longer works
    check(page, "link-expired", 375)
    page.goto(journey.base + "/studio/edit?item=day")
    page.evaluate("document.querySelector('#editor input[name=csrf]').value = 'forged'")
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_role("heading", name="That form had expired").wait_for()
    check(page, "refused", 375)
    assert problems.found == [], problems.found
    context.close()


def test_text_typed_when_the_session_ended_comes_back_after_signing_in(journey: Journey, browser: Browser) -> None:  # noqa: F811
    make_user(journey, StudioRole.EDITOR)
    context, page, problems = open_browser(journey, browser)
    page.goto(journey.base + "/studio/edit?item=welcome")
    sign_in(page)  # and back to the editor it asked for
    page.get_by_role("heading", name="Welcome · layout", exact=True).wait_for()
    type_code(page, "welcome/subject.txt", "Typed before the session ended")
    # Its preview in, frames and all: a request still under way when the session ends would set its
    # cookie again on the way back.
    page.locator(".preview .inbox-row").get_by_text("Typed before the session ended").wait_for()
    page.wait_for_load_state("networkidle")
    context.clear_cookies()  # the session ends (eight hours, or a new password elsewhere)
    type_code(page, "welcome/subject.txt", "Typed before the session ended")
    # Its preview, asked signed out, is told so (a 401): no sign-in page rendered behind the person's back.
    page.locator("#preview").get_by_text("Your session has ended: sign in again in another tab").wait_for()
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_role("heading", name="Sign in to edit the emails").wait_for()
    sign_in(page)
    page.goto(journey.base + "/studio/edit?item=welcome")
    page.get_by_text("Text you typed here earlier and had not saved is back").wait_for()
    assert code(page, "welcome/subject.txt").input_value() == "Typed before the session ended"
    assert page.locator(".code-editor .ace_content").first.inner_text().strip() == "Typed before the session ended"
    check(page, "restored", 1280)
    page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_text("Draft saved").wait_for()
    page.goto(journey.base + "/studio/edit?item=welcome")
    assert page.locator("#restored").is_hidden()  # saved: nothing left to bring back
    assert code(page, "welcome/subject.txt").input_value().strip() == "Typed before the session ended"
    assert problems.found == [], problems.found
    context.close()


def test_a_marketer_reads_the_insights_picks_a_cohort_and_a_day_and_downloads_a_csv(
    journey: Journey,  # noqa: F811
    browser: Browser,
) -> None:
    """Two people through the welcome and day 1, the figures summed by the button; on a desktop and a
    phone: the charts drawn, a cohort and a day chosen, a table downloaded; axe finds nothing serious."""
    make_user(journey, StudioRole.EDITOR)
    for address, hour in (("robin@example.org", 8), ("kim@example.org", 9)):
        subscriber_id = enrol(journey, address, hour)
        next_email(journey, subscriber_id)  # day 1
    page_signed_out = browser.new_page()
    page_signed_out.goto(journey.base + "/studio/insights")
    assert "/studio/sign-in" in page_signed_out.url
    page_signed_out.close()
    for width in (1280, 375):
        context, page, problems = open_browser(journey, browser, width)
        page.goto(journey.base + "/studio/insights")
        sign_in(page)
        page.get_by_role("heading", name="Insights").wait_for()
        page.get_by_role("button", name="Sum these weeks again now").click()
        page.get_by_text("Figures summed at").wait_for()
        assert page.locator("svg.chart").count() == 4
        reached = page.get_by_role("row", name=re.compile(r"^Reached day 1 ")).locator("td").first
        assert reached.inner_text() == "2"
        cohort = page.get_by_label("Sign-up week (cohort)")
        cohort.select_option(index=1)  # the one week there is
        page.get_by_label("Email to look at closely").select_option(label="Day 1")
        page.get_by_role("button", name="Show").click()
        page.get_by_role("heading", name="Day 1, version by version").wait_for()
        assert "cohort=" in page.url and "day=1" in page.url
        check(page, "insights", width)
        for section in ("funnel", "retention", "days", "answers"):  # each chart as it is seen, for a look
            page.locator(f"section[aria-labelledby={section}-heading]").screenshot(
                path=str(ARTEFACTS / f"insights-{section}-{width}.png")
            )
        with page.expect_download() as download:
            page.locator("#days-heading ~ p.downloads a").click()
        saved = download.value.path()
        assert saved is not None
        assert Path(saved).read_text().splitlines()[0].startswith("email,sent,reached,hard_bounced_or_refused")
        assert problems.found == [], problems.found
        context.close()


def test_a_save_behind_a_colleagues_is_merged_field_by_field_in_the_browser(journey: Journey, browser: Browser) -> None:  # noqa: F811
    """Two browsers on day 3's words: the second to save is shown the merge (yours, theirs, both for what you
    both changed), readable and accessible on a desktop and a phone, and saves it."""
    make_user(journey)
    pages = []
    for _ in range(2):
        context, page, problems = open_browser(journey, browser)
        page.goto(journey.base + "/studio/edit?item=_words/day-03.yaml")
        sign_in(page)
        page.locator("#w-title").wait_for()
        pages.append((context, page, problems))
    (first, anna, anna_problems), (second, ben, ben_problems) = pages
    anna.locator("#w-title").fill("Rituals of your own")
    with anna.expect_navigation():
        anna.get_by_role("button", name="Save the draft and check it").click()
    ben.locator("#w-title").fill("A ritual for two")
    ben.get_by_label("Tomorrow's teaser").fill("Tomorrow: the phone, put away.")
    with ben.expect_navigation():
        ben.get_by_role("button", name="Save the draft and check it").click()
    ben.get_by_role("heading", name="Merge your text with theirs").wait_for()
    for width in (1280, 375):
        ben.set_viewport_size({"width": width, "height": 900})
        check(ben, "merge", width)
    ben.set_viewport_size({"width": 1280, "height": 900})
    clash = ben.get_by_role("group", name="Title: you both changed it")
    clash.get_by_role("radio", name=re.compile("^Theirs")).check()
    with ben.expect_navigation():
        ben.get_by_role("button", name="Save the merge as the draft").click()
    ben.get_by_text("Draft saved.").wait_for()
    assert ben.locator("#w-title").input_value() == "Rituals of your own"
    assert ben.get_by_label("Tomorrow's teaser").input_value() == "Tomorrow: the phone, put away."
    assert anna_problems.found == [] and ben_problems.found == [], (anna_problems.found, ben_problems.found)
    first.close()
    second.close()
