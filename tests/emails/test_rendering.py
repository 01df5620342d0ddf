"""Every email renders, carries its day's content, and links only to signed, absolute URLs."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from course.curriculum import Course
from course.links import LINK_PATHS, LinkSigner, Purpose
from course.settings import Settings
from emails import markup
from emails.rendering import Recipient, RenderedEmail, Renderer

from .conftest import ALEX

EMAIL_NAMES = [
    "confirmation",
    "welcome",
    *[f"day-{n:02d}" for n in range(1, 19)],
    "completion",
    "preferences-link",
]


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "link":
            self.stylesheets.append(values.get("href") or "")


def anchors(markup: str) -> _Anchors:
    parser = _Anchors()
    parser.feed(markup)
    return parser


def plain(markup: str) -> str:
    """The visible text of an HTML part, whitespace collapsed."""
    text = re.sub(r"<(style|title)[^>]*>.*?</\1>", " ", markup, flags=re.S)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def words(text: str) -> str:
    return " ".join(text.split())


def strings_of(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() if key not in {"kind", "key", "url", "tone"} for s in strings_of(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_of(item)]
    return []


def test_the_course_has_its_twenty_one_emails_and_the_preferences_link(renderer: Renderer) -> None:
    assert renderer.email_names() == EMAIL_NAMES


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_every_email_renders_with_a_one_line_subject_and_both_parts(
    rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    email = rendered_emails[name]
    assert email.subject and "\n" not in email.subject and len(email.subject) < 90
    assert "{{" not in email.html and "{%" not in email.html
    assert "{{" not in email.text and "{%" not in email.text
    assert "Hi Alex," in email.text and "Hi Alex," in plain(email.html)


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_every_link_is_absolute_signed_and_for_this_subscriber(
    rendered_emails: dict[str, RenderedEmail], settings: Settings, name: str
) -> None:
    email = rendered_emails[name]
    signer = LinkSigner(settings.secret_key, str(settings.base_url))
    purposes = {path: purpose for purpose, path in LINK_PATHS.items()}
    hrefs = anchors(email.html).hrefs
    assert hrefs
    for href in hrefs:
        if href == "https://course.example.org/about":  # the welcome's web page: the same for everyone
            assert name == "welcome" and href in email.text
            continue
        match = re.fullmatch(r"https://course\.example\.org/([a-z-]+)/([A-Za-z0-9_.-]+)", href)
        assert match, f"{name}: {href} is not an absolute link on BASE_URL"
        claim = signer.verify(purposes[match.group(1)], match.group(2))
        assert claim.subscriber_id == ALEX.subscriber_id
        assert claim.step == email.step or claim.purpose in {Purpose.PREFERENCES, Purpose.CONFIRM}
        # The plain-text part offers the same links.
        assert href in email.text, f"{name}: the text part lacks {href}"


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_every_email_can_be_read_without_remote_images_or_fonts(
    rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    email = rendered_emails[name]
    found = anchors(email.html)
    assert found.images == [] and found.stylesheets == []
    assert "url(" not in email.html and "@import" not in email.html


@pytest.mark.parametrize("name", [name for name in EMAIL_NAMES if name != "confirmation"])
def test_every_email_shows_a_visible_unsubscribe_link_and_the_postal_address(
    rendered_emails: dict[str, RenderedEmail], settings: Settings, name: str
) -> None:
    email = rendered_emails[name]
    assert re.search(r'<a href="https://course\.example\.org/unsubscribe/[^"]+"[^>]*>Unsubscribe</a>', email.html)
    assert email.unsubscribe_url in email.text
    assert settings.practice_postal_address in plain(email.html)
    assert settings.practice_postal_address in email.text


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_the_wording_is_calm_not_spammy(rendered_emails: dict[str, RenderedEmail], name: str) -> None:
    email = rendered_emails[name]
    for text in (email.subject, email.text, plain(email.html)):
        text = re.sub(r"https?://\S+", "", text)  # signed tokens are random letters, not wording
        assert "!!" not in text
        assert not re.search(r"\bFREE\b", text)
        # No shouting: an all-caps word of four letters or more. The seed's own "YOUR" in a quoted
        # line of dialogue ("You think YOUR day was hard?") and the signer's credential are the exceptions.
        shouted = set(re.findall(r"\b[A-Z]{4,}\b", text)) - {"YOUR", "LMFT"}
        assert not shouted, f"{name}: {shouted}"


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_every_html_part_stays_below_gmails_clipping_size(rendered_emails: dict[str, RenderedEmail], name: str) -> None:
    # Gmail clips messages whose HTML is over about 102 KB, hiding the footer and its unsubscribe link.
    assert len(rendered_emails[name].html.encode()) < 100_000


@pytest.mark.parametrize("number", range(1, 19))
def test_each_day_carries_its_strategy_and_exercise_in_both_parts(
    rendered_emails: dict[str, RenderedEmail], course: Course, number: int
) -> None:
    day = course.day(number)
    email = rendered_emails[f"day-{number:02d}"]
    html_text, text = plain(email.html), words(email.text)
    assert email.subject == day.subject and email.subject.startswith(f"Day {number}: ")
    assert f"Day {number} of 18" in html_text and f"Day {number} of 18" in text
    for fragment in strings_of(day.model_dump(include={"title", "teaching", "exercise", "teaser"})):
        # The HTML shows the markup's meaning (emphasis, not asterisks); the text part keeps the asterisks.
        assert words(markup.plain(fragment)) in html_text, f"day {number} HTML lacks {fragment!r}"
        assert words(fragment) in text, f"day {number} text lacks {fragment!r}"
    assert "I did today's exercise" in html_text


def test_the_welcome_carries_the_baseline_checklist_with_one_link_per_band(
    rendered_emails: dict[str, RenderedEmail], course: Course, settings: Settings
) -> None:
    welcome = rendered_emails["welcome"]
    checklist = course.checklists["warning-signs"]
    assert len(checklist.items) == 8
    for item in checklist.items:
        assert words(item.text) in plain(welcome.html) and words(item.text) in words(welcome.text)
    signer = LinkSigner(settings.secret_key, str(settings.base_url))
    answers = [
        signer.verify(Purpose.ANSWER, href.rsplit("/", 1)[1])
        for href in anchors(welcome.html).hrefs
        if "/answer/" in href
    ]
    assert [(claim.step, claim.value) for claim in answers] == [
        (0, "normal"),
        (0, "prioritise"),
        (0, "significant"),
        (0, None),  # the interactive checklist page
    ]


def test_the_completion_email_retakes_the_checklist_and_lists_the_eighteen_ways(
    rendered_emails: dict[str, RenderedEmail], course: Course
) -> None:
    completion = rendered_emails["completion"]
    text = plain(completion.html)
    for day in course.days:
        assert day.short_title in text and day.short_title in completion.text
    for takeaway in course.key_takeaways:
        assert words(takeaway) in text
    assert "Warning Signs" in text and "/answer/" in completion.text
    assert completion.step == 19


def test_day_eighteen_carries_the_professional_support_checklist(rendered_emails: dict[str, RenderedEmail]) -> None:
    day = rendered_emails["day-18"]
    assert "Signs You May Need Professional Support" in plain(day.html)
    assert day.html.count("/answer/") == 3  # "none", "any" and the interactive page


def test_the_confirmation_asks_for_a_click_and_offers_the_course_nothing_else(
    rendered_emails: dict[str, RenderedEmail],
) -> None:
    confirmation = rendered_emails["confirmation"]
    hrefs = anchors(confirmation.html).hrefs
    assert any("/confirm/" in href for href in hrefs)
    # Not yet a subscriber: nothing to book, do, pause or leave; ignoring the email is enough.
    for path in ("/consultation/", "/exercise/", "/preferences/", "/unsubscribe/"):
        assert not any(path in href for href in hrefs) and path not in confirmation.text, path
    assert "If that was not you, ignore it" in plain(confirmation.html) and "ignore it" in confirmation.text
    assert confirmation.step is None


def test_a_subscriber_without_a_first_name_is_greeted_kindly(renderer: Renderer) -> None:
    email = renderer.render("day-01", Recipient(subscriber_id=8, email="sam@example.com"))
    assert "Hi there," in email.text and "Hi there," in plain(email.html)
    assert "None" not in email.text


def test_a_first_name_is_escaped_in_the_html_part(renderer: Renderer) -> None:
    hostile = Recipient(subscriber_id=9, email="eve@example.com", first_name='<script>alert("x")</script>')
    email = renderer.render("day-02", hostile)
    assert "<script>" not in email.html
    assert "&lt;script&gt;" in email.html
    assert '<script>alert("x")</script>' in email.text  # plain text shows it as typed, harmlessly


def test_resource_links_go_through_our_tracked_redirect(rendered_emails: dict[str, RenderedEmail]) -> None:
    day_two = rendered_emails["day-02"]
    assert "/resource/" in day_two.html
    assert "southdenvertherapy.com" not in " ".join(anchors(day_two.html).hrefs)
