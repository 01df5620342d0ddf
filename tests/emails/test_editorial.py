"""The emails as a demanding email marketer reads them: what the inbox shows (subject, preview line),
one main action each, the first screens on a phone, both colour schemes, the spam score, and the
copy slips an earlier audit found, held so they do not come back."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from markupsafe import escape
from playwright.sync_api import Browser, Page

from bench.screens import PHONE_WIDTH, SCREEN_HEIGHT
from course.curriculum import Course
from course.settings import Settings
from emails.mime import MessageBuilder
from emails.rendering import Recipient, RenderedEmail, Renderer

from .conftest import ALEX
from .test_rendering import EMAIL_NAMES, plain, words

AXE = Path(__file__).resolve().parents[1] / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "emails"
# A reader who answered the welcome's checklist with four signs or more: the consultation is their next step.
WORRIED = Recipient(subscriber_id=11, email="sam@example.com", first_name="Sam",
                    answers={"warning-signs": "significant"})  # fmt: skip
# What a filled button (the email's main action) is drawn with; an outlined one has a white fill.
FILLED = 'bgcolor="#a3472a"'


@pytest.fixture(scope="module")
def for_worried(renderer: Renderer) -> dict[str, RenderedEmail]:
    return {name: renderer.render(name, WORRIED) for name in renderer.email_names()}


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.?!])\s", text.strip(), maxsplit=1)[0]


def body_start(email: RenderedEmail) -> str:
    """The text part's first paragraph after the greeting: where a client without a preview would look."""
    after_greeting = email.text.split("Hi Alex,", 1)[1]
    return " ".join(after_greeting.strip().split("\n\n", 1)[0].split())


# --- The inbox: subject and preview line ------------------------------------------------------------


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_the_subject_fits_a_phone_with_its_promise_first(rendered_emails: dict[str, RenderedEmail], name: str) -> None:
    subject = rendered_emails[name].subject
    assert len(subject) <= 50, f"{name}: {len(subject)} characters: {subject}"
    # Only a short label ("Day 12: ") comes before the promise, which so starts well within 35 characters.
    promise = re.sub(r"^Day \d+: ", "", subject)
    assert len(subject) - len(promise) <= len("Day 18: ")
    assert "!" not in subject and subject == subject.strip()


def test_every_subject_and_preview_line_is_its_own(rendered_emails: dict[str, RenderedEmail]) -> None:
    subjects = [email.subject for email in rendered_emails.values()]
    previews = [email.preview for email in rendered_emails.values()]
    assert len(set(subjects)) == len(subjects)
    assert len(set(previews)) == len(previews)


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_the_preview_line_is_written_for_the_inbox_not_copied_from_the_body(
    rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    email = rendered_emails[name]
    assert 40 <= len(email.preview) <= 90, f"{name}: {len(email.preview)}: {email.preview}"
    opening = body_start(email)
    assert first_sentence(opening) != email.preview and not opening.startswith(email.preview)
    assert email.preview not in email.text, f"{name}: the preview repeats a line of the body"
    assert email.preview != email.subject


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_the_preview_is_hidden_without_tricks_a_spam_filter_scores_and_padded(
    rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    html = rendered_emails[name].html
    body = html.split("<body", 1)[1]
    hidden = re.search(r'<div class="preview" style="([^"]*)">(.*?)</div>', body, re.S)
    assert hidden is not None, "the preview is missing"
    style, content = hidden.groups()
    assert body.index('class="preview"') < body.index('class="page"')  # the first text of the body
    assert "display:none" in style and "mso-hide:all" in style
    # White 1 px text is what SpamAssassin's HTML_FONT_LOW_CONTRAST scores: hidden, never camouflaged.
    assert "font-size:1px" not in style and "color:" not in style
    assert content.startswith(str(escape(rendered_emails[name].preview)))
    # Padding after it, so the inbox does not spill the header's words into the preview.
    assert content.count("&zwnj;&nbsp;") >= 80


# --- One main action ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EMAIL_NAMES)
@pytest.mark.parametrize("reader", ["new", "worried"])
def test_each_email_has_exactly_one_main_action(
    rendered_emails: dict[str, RenderedEmail], for_worried: dict[str, RenderedEmail], name: str, reader: str
) -> None:
    email = (rendered_emails if reader == "new" else for_worried)[name]
    filled = email.html.count(FILLED)
    if name == "welcome":
        # The welcome's one action is its checklist: the answer buttons, one tap each; nothing competes.
        assert filled == 0 and email.html.count('class="answer"') == 3
    else:
        assert filled == 1, f"{name} ({reader}): {filled} filled buttons"


@pytest.mark.parametrize("number", range(1, 18))
def test_on_an_ordinary_day_the_exercise_leads_and_the_consultation_is_a_quiet_line(
    rendered_emails: dict[str, RenderedEmail], number: int
) -> None:
    email = rendered_emails[f"day-{number:02d}"]
    filled = email.html.index(FILLED)
    assert "/exercise/" in email.html[filled : filled + 800]  # the one filled button is the exercise's
    assert email.html.count("/exercise/") == 1 and email.text.count("/exercise/") == 1
    assert email.html.count("/consultation/") == 1 and email.text.count("/consultation/") == 1
    assert "P.S. Would it help to work on this with a couples therapist?" in plain(email.html)
    assert "Ready to Deepen Your Connection?" not in plain(email.html)


def test_after_a_worrying_answer_the_consultation_gets_its_own_block_but_the_exercise_still_leads(
    for_worried: dict[str, RenderedEmail],
) -> None:
    email = for_worried["day-05"]
    text = plain(email.html)
    assert "Ready to Deepen Your Connection?" in text
    assert 'You answered "4+ checked": emotional distance is significant.' in text
    assert 'You answered "4+ checked": emotional distance is significant.' in email.text
    filled = email.html.index(FILLED)
    assert "/exercise/" in email.html[filled : filled + 800]
    assert "P.S." not in text  # the block replaces the quiet line


def test_on_day_18_the_consultation_leads_and_the_exercise_button_follows_its_checklist(
    rendered_emails: dict[str, RenderedEmail],
) -> None:
    email = rendered_emails["day-18"]
    filled = email.html.index(FILLED)
    assert "/consultation/" in email.html[filled : filled + 800]
    last_answer = email.html.rindex("/answer/")
    assert email.html.index("/exercise/") > last_answer
    assert email.text.index("/exercise/") > email.text.rindex("/answer/")


def test_the_completion_retakes_the_checklist_first_and_compares_it_with_the_start(
    rendered_emails: dict[str, RenderedEmail], renderer: Renderer
) -> None:
    email = rendered_emails["completion"]
    text = plain(email.html)
    assert text.index("Warning Signs") < text.index("The 18 ways at a glance") < text.index("Key takeaways")
    assert text.index("Warning Signs") < text.index("Emotional intimacy is a practice")
    reader = Recipient(subscriber_id=12, email="kim@example.com", first_name="Kim",
                       answers={"warning-signs": "prioritise"})  # fmt: skip
    again = renderer.render("completion", reader)
    baseline = "Last time you answered 2-3 checked: time to prioritize connection."
    shown = plain(again.html).replace(" .", ".")  # tags become spaces: "<strong>...</strong>."
    assert baseline in shown and baseline in " ".join(again.text.split())
    assert shown.index(baseline) < shown.index("You stop sharing the small things.")
    assert "Last time you answered" not in text  # nobody is compared with an answer they did not give


@pytest.mark.parametrize("number", range(1, 19))
def test_every_day_carries_its_exercise_link_and_every_answer_link(
    renderer: Renderer, course: Course, number: int
) -> None:
    name = f"day-{number:02d}"
    values = renderer.reader_values(name, ALEX)
    email = renderer.render_with(name, renderer.context(name, ALEX, values))
    assert values["links.exercise_done"] in email.html and values["links.exercise_done"] in email.text
    for key, url in values.items():
        if key == "checklist" or key.startswith("checklist."):
            assert url in email.html and url in email.text, key
    assert (course.day(number).checklist is not None) == ("checklist" in values)


# --- Words and examples ------------------------------------------------------------------------------


def test_good_and_bad_examples_differ_by_sign_word_and_shape_in_both_parts(
    rendered_emails: dict[str, RenderedEmail],
) -> None:
    day2, day13, day14 = (rendered_emails[name] for name in ("day-02", "day-13", "day-14"))
    for email, good, bad in ((day2, 3, 6), (day13, 1, 1), (day14, 1, 1)):
        assert email.html.count('class="good"') == good and email.html.count('class="bad"') == bad
        assert email.html.count("&#10003;") == good and email.html.count("&#10007;") == bad
        assert "border-left:4px solid" in email.html and "border-left:4px dashed" in email.html
    assert "✓ Turn toward:" in day2.text and "✗ Turn away:" in day2.text and "✗ Turn against:" in day2.text
    assert "✗ Criticism (creates defensiveness)" in day13.text and "✓ Direct need (creates" in day13.text
    assert "✓ Do\n" in day14.text and "✗ Do not\n" in day14.text


def test_the_copy_slips_stay_fixed(rendered_emails: dict[str, RenderedEmail], course: Course) -> None:
    texts = {name: email.text for name, email in rendered_emails.items()}
    htmls = {name: plain(email.html) for name, email in rendered_emails.items()}
    assert "receiving your partner's vulnerability well" in words(texts["day-13"])
    # Day 2's exercise title has a colon of its own: the text part's heading does not add a second.
    assert "\nToday's exercise\nBids for Connection: What They Look Like\n" in texts["day-02"]
    for name in texts:
        assert "::" not in texts[name], name
        # An email speaks as a course, not as the article it came from.
        assert "this guide" not in texts[name].lower() and "this guide" not in htmls[name].lower(), name
    # Day 16's step titles end before their text, in both parts.
    for title in ("Cool down first.", "Take responsibility.", "Listen to understand.", "Reconnect physically."):
        assert title in texts["day-16"] and title in htmls["day-16"]
    # Each guide or quiz is offered once: in "To go further", not again in the lesson.
    assert htmls["day-03"].count("Exercise Guide") == 0 and htmls["day-03"].count("20+ connection activities") == 1
    assert htmls["day-16"].lower().count("stonewalling quiz") == 1
    assert htmls["day-16"].lower().count("fair fighting") == 1
    twelve = course.day(12).exercise
    assert twelve is not None
    exercise = " ".join(strings for strings in twelve.blocks[0].model_dump()["paragraphs"])
    assert "pursuer-withdrawer" not in exercise
    completion = texts["completion"]
    assert "Start with one practice" not in completion and completion.count("one or two") <= 1


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_headings_never_skip_a_level(rendered_emails: dict[str, RenderedEmail], name: str) -> None:
    levels = [int(level) for level in re.findall(r"<h([1-6])[\s>]", rendered_emails[name].html)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(later - earlier <= 1 for earlier, later in itertools.pairwise(levels)), (name, levels)


@pytest.mark.parametrize("name", [name for name in EMAIL_NAMES if name not in ("confirmation", "preferences-link")])
def test_a_person_signs_every_course_email(
    rendered_emails: dict[str, RenderedEmail], course: Course, name: str
) -> None:
    email = rendered_emails[name]
    signature = f"Warmly, {course.practice.signer} {course.practice.signer_role}"
    assert signature in plain(email.html) and signature in words(email.text)
    assert f"Reply to this email to reach {course.practice.signer}" in plain(email.html)


# --- On a phone, in light and dark ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone(browser: Browser) -> Iterator[dict[str, Page]]:
    assert AXE.exists(), f"{AXE} is missing: npm ci --prefix tests/e2e (make test does it)"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)  # each test may keep a screenshot, whichever runs first
    pages = {
        scheme: browser.new_page(viewport={"width": PHONE_WIDTH, "height": SCREEN_HEIGHT}, color_scheme=scheme)
        for scheme in ("light", "dark")
    }
    yield pages
    for page in pages.values():
        page.close()


def show(page: Page, html: str) -> None:
    page.set_content(html)
    page.add_script_tag(path=str(AXE))


SERIOUS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
    .filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => `${v.id}: ${v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')}`)"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_axe_finds_nothing_serious_in_either_colour_scheme(
    phone: dict[str, Page], rendered_emails: dict[str, RenderedEmail], name: str, scheme: str
) -> None:
    page = phone[scheme]
    show(page, rendered_emails[name].html)
    assert page.evaluate(SERIOUS) == [], f"{name} in {scheme} mode"


def test_for_a_worried_reader_too(phone: dict[str, Page], for_worried: dict[str, RenderedEmail]) -> None:
    for scheme in ("light", "dark"):
        show(phone[scheme], for_worried["day-05"].html)
        assert phone[scheme].evaluate(SERIOUS) == [], scheme


def test_the_welcome_is_about_three_screens_with_its_checklist_in_the_first_two(
    phone: dict[str, Page], rendered_emails: dict[str, RenderedEmail]
) -> None:
    page = phone["light"]
    page.set_content(rendered_emails["welcome"].html)
    height = page.evaluate("document.documentElement.scrollHeight")
    checklist = page.evaluate("""() => [...document.querySelectorAll('h2')]
        .find(h => h.textContent.startsWith('Warning Signs')).getBoundingClientRect().top""")
    assert height <= 4 * SCREEN_HEIGHT, f"{height} px is {height / SCREEN_HEIGHT:.1f} screens"
    assert checklist < 2 * SCREEN_HEIGHT - 200, checklist  # its heading and first signs in the first two
    page.screenshot(path=str(ARTEFACTS / "welcome-light.png"), full_page=True)


COLOURS = """() => {
  const colour = (el, prop) => el ? getComputedStyle(el)[prop] : null;
  const box = document.querySelector('.box td');
  const card = document.querySelector('div.card td');
  const note = document.querySelector('.note');
  const eyebrow = document.querySelector('.accent div');
  const rule = document.querySelector('.rule p');
  return {box: colour(box, 'backgroundColor'), card: colour(card, 'backgroundColor'),
          note: note && colour(note, 'backgroundColor'), noteEdge: note && colour(note, 'borderLeftColor'),
          eyebrow: colour(eyebrow, 'color'), text: colour(document.querySelector('div.card p'), 'color'),
          rule: rule && colour(rule, 'borderTopColor'), body: colour(document.body, 'backgroundColor')};
}"""


def test_boxes_callouts_accents_and_rules_stay_visible_in_both_schemes(
    phone: dict[str, Page], rendered_emails: dict[str, RenderedEmail]
) -> None:
    light, dark = phone["light"], phone["dark"]
    light.set_content(rendered_emails["day-01"].html)  # an exercise box holding a "Pro tip" callout
    seen = light.evaluate(COLOURS)
    assert seen["box"] != seen["card"]
    assert seen["note"] != seen["box"] and seen["noteEdge"] == "rgb(163, 71, 42)"  # the tip has its own box
    dark.set_content(rendered_emails["day-01"].html)
    seen = dark.evaluate(COLOURS)
    assert seen["card"] == "rgb(42, 36, 32)" and seen["box"] not in (seen["card"], "rgb(251, 241, 236)")
    assert seen["note"] != seen["box"] and seen["noteEdge"] == "rgb(232, 164, 136)"
    assert seen["eyebrow"] == "rgb(232, 164, 136)" != seen["text"]  # the accent survives
    assert seen["rule"] == "rgb(90, 76, 67)"  # a quiet divider, not a bright line
    dark.set_content(rendered_emails["confirmation"].html)  # a short email: the page below it stays dark
    assert dark.evaluate(COLOURS)["body"] == "rgb(31, 26, 23)"
    dark.screenshot(path=str(ARTEFACTS / "confirmation-dark.png"), full_page=True)
    dark.set_content(rendered_emails["day-02"].html)
    dark.screenshot(path=str(ARTEFACTS / "day-02-dark.png"), full_page=True)


# --- Spam filters --------------------------------------------------------------------------------------


def test_spamassassin_scores_every_email_at_most_half_a_point(
    renderer: Renderer, settings: Settings, course: Course
) -> None:
    assert shutil.which("spamassassin"), "spamassassin is missing: apt-get install spamassassin"
    builder = MessageBuilder(settings, course.slug, course.title, course.practice.signer)
    date = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    messages = {}
    for name in renderer.email_names():
        for reader in (ALEX, WORRIED):
            rendered = renderer.render(name, reader)
            messages[f"{name} for {reader.first_name}"] = builder.build(
                rendered, to_address=reader.email, to_name=reader.first_name,
                message_id=builder.message_id(reader.subscriber_id, name), date=date,
            ).data  # fmt: skip

    def score(message: bytes) -> tuple[float, str]:
        # -L: local tests only (no DNS or network lists); -t: the report, with each rule that fired.
        report = subprocess.run(["spamassassin", "-L", "-t"], input=message, capture_output=True,  # noqa: S607
                                timeout=120, check=True).stdout.decode()  # fmt: skip
        found = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
        assert found, report[-2000:]
        return float(found.group(1)), report.split("Content analysis details:", 1)[1]

    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = dict(zip(messages, pool.map(score, messages.values()), strict=True))
    too_high = {name: details for name, (points, details) in scores.items() if points > 0.5}
    assert not too_high, too_high
