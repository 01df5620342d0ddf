"""The words form: a marketer changes what an email says without touching its layout."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from course.curriculum import load_course
from course.links import LinkSigner, Purpose
from course.models.studio import StudioRole
from emails.rendering import Recipient
from emails.store import current_release

from ..conftest import TEST_SECRET
from .conftest import Site
from .test_studio_access import csrf_of
from .test_studio_editing import publish, signed_in

DAY_3 = "_words/day-03.yaml"
DAY_3_SUBJECT = "Day 3: Pick a ritual that is just yours"
SHARED = "_words/shared.yaml"
SENTENCE = "Beyond daily check-ins, emotionally intimate couples have rituals that are uniquely theirs."
NEW_SENTENCE = "Beyond check-ins, close couples keep *small rituals* that belong to them alone."
_INPUT = re.compile(r'<input id="[^"]*" name="w\.([^"]+)" type="text" value="([^"]*)"')
_TEXTAREA = re.compile(r'<textarea id="[^"]*" name="w\.([^"]+)"[^>]*>(.*?)</textarea>', re.S)


def words_form(client: TestClient, item: str) -> tuple[str, int, dict[str, str]]:
    """The form as a browser would post it back: every wording field with the value shown."""
    page = client.get(f"/studio/edit?item={item}")
    assert page.status_code == 200, page.text
    fields = {f"w.{name}": html.unescape(value) for name, value in _INPUT.findall(page.text)}
    fields |= {f"w.{name}": html.unescape(value) for name, value in _TEXTAREA.findall(page.text)}
    revision = re.search(r'name="revision" value="(\d+)"', page.text)
    assert revision and fields
    return csrf_of(page.text), int(revision.group(1)), fields


def save_words(client: TestClient, item: str, changes: dict[str, str]) -> tuple[int, str]:
    csrf, revision, fields = words_form(client, item)
    for name in changes:
        assert name in fields, f"the form has no field {name}"
    response = client.post("/studio/save", data={"csrf": csrf, "item": item, "revision": revision,
                                                  **fields, **changes})  # fmt: skip
    return response.status_code, response.text


def render_live(site: Site, email: str) -> tuple[str, str, str]:
    """The email as the worker renders it now: with the renderer of the course's current release."""
    slug = site.runtime.settings.course_slug
    with site.session() as session:
        _, preparer, _ = site.runtime.writers(session, slug, current_release(session, slug))
    rendered = preparer.render(email, Recipient(subscriber_id=1, email="reader@example.com"))
    return rendered.subject, rendered.html, rendered.text


def test_the_form_shows_each_part_of_the_day_as_a_field_with_its_markup_help(site: Site) -> None:
    client = signed_in(site, "sam@example.org", StudioRole.EDITOR)
    _, revision, fields = words_form(client, DAY_3)
    assert revision == 0
    assert fields["w.title"] == "Create Rituals of Connection"
    day = load_course(site.runtime.settings.course_slug).day(3)
    assert fields["w.subject"] == day.subject and fields["w.preview"] == day.preview  # written for the inbox
    assert fields["w.body.0.paragraphs"].startswith(SENTENCE + "\n\nThe specific ritual")
    assert fields["w.body.1.blocks.0.items"].splitlines()[0] == "Coffee together every morning before the day starts"
    assert "w.teaser" in fields and "w.body.1.title" in fields
    page = client.get(f"/studio/edit?item={DAY_3}").text
    assert "Day 3 · words" in page and "Blank line: new paragraph. *emphasis*" in page
    assert "w.number" not in page and "w.kind" not in page  # the course's shape is not a field


def test_publishing_words_changes_the_next_email_and_rolling_back_restores_them(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    _, _, fields = words_form(client, DAY_3)
    paragraphs = fields["w.body.0.paragraphs"].replace(SENTENCE, NEW_SENTENCE)
    status, page = save_words(client, DAY_3, {"w.subject": "Day 3: a ritual of your own",
                                              "w.body.0.paragraphs": paragraphs})  # fmt: skip
    assert status == 200 and "Every email renders with it." in page
    assert render_live(site, "day-03")[0] == DAY_3_SUBJECT  # a draft changes nothing
    assert publish(client, DAY_3, "a shorter first sentence") == 303

    subject, body, text = render_live(site, "day-03")
    assert subject == "Day 3: a ritual of your own"
    assert "close couples keep <em>small rituals</em> that belong to them alone." in body
    assert "close couples keep *small rituals* that belong" in " ".join(text.split())
    assert SENTENCE not in body
    assert render_live(site, "day-04")[0] == "Day 4: One simple change: put the phone away"  # the others keep theirs
    listing = client.get("/studio").text
    assert "Day 3: a ritual of your own" in listing

    diff = html.unescape(client.get(f"/studio/diff?item={DAY_3}&before=0&after=1").text).replace("\xa0", " ")
    assert "a ritual of your own" in diff and "uniquely" in diff and "small rituals" in diff

    csrf = csrf_of(client.get(f"/studio/edit?item={DAY_3}").text)
    back = client.post("/studio/roll-back", data={"csrf": csrf, "item": DAY_3, "number": 0}, follow_redirects=False)
    assert back.status_code == 303
    subject, body, _ = render_live(site, "day-03")
    assert subject == DAY_3_SUBJECT and SENTENCE in body


def test_an_empty_required_field_is_named_beside_it_and_cannot_be_published(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    status, page = save_words(client, DAY_3, {"w.title": "  "})
    assert status == 200 and "It does not render yet" in page
    field = re.search(r'<div class="field has-problem">\s*<label for="w-title">Title</label>(.*?)</div>', page, re.S)
    assert field, "the problem is not beside the title"
    assert "is empty: write something here" in field.group(1) and 'aria-invalid="true"' in field.group(1)
    _, _, fields = words_form(client, DAY_3)
    assert fields["w.title"] == ""  # the draft kept what was typed
    assert publish(client, DAY_3, "no title") == 400
    assert render_live(site, "day-03")[0] == DAY_3_SUBJECT


def test_html_and_links_to_elsewhere_are_refused_with_the_field_named(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    _, page = save_words(client, DAY_3, {"w.teaser": "Tomorrow: <script>alert(1)</script> more"})
    assert "HTML is not accepted" in page and 'id="w-teaser-problem-1"' in page
    own = f"{site.runtime.settings.base_url}".rstrip("/") + "/c/building-emotional-intimacy/about"
    for typed, said in (
        ("read [this](https://elsewhere.example/x).", "“https://elsewhere.example/x” is another site"),
        ("read [this](//elsewhere.example/x).", "“//elsewhere.example/x” is another site"),
        ("read [this](javascript:alert(1)).", "“javascript:alert(1)” is not a link an email may carry"),
        ("read [this](data:text/html,hi).", "“data:text/html,hi” is not a link an email may carry"),
    ):
        _, page = save_words(client, DAY_3, {"w.teaser": f"Tomorrow: {typed}"})
        text = html.unescape(page)
        assert "It does not render yet" in page and f"Tomorrow's teaser: {said}" in text, (
            typed
        )  # named as the form names it
        field = re.search(r'<div class="field has-problem">\s*<label for="w-teaser">(.*?)</div>', text, re.S)
        assert field and said in field.group(1), typed  # and beside the field
        assert "body.mjml" not in text.split("It does not render yet")[1].split("</ul>")[0], typed  # not the layout's
        assert publish(client, DAY_3, "an outside link") == 400
        # As typed: the preview says so before any save, with a link to the field.
        csrf, _, fields = words_form(client, DAY_3)
        typed_form = {"csrf": csrf, "item": DAY_3, "email": "day-03", **fields, "w.teaser": f"Later: {typed}"}
        preview = html.unescape(client.post("/studio/preview", data=typed_form).text)
        assert "A save would refuse this:" in preview and '<a href="#w-teaser">' in preview and said in preview
    status, page = save_words(
        client, DAY_3, {"w.teaser": f"Tomorrow: [the course's page]({own}), or [write](mailto:a@example.org)."}
    )
    assert status == 200 and "It does not render yet" not in page, html.unescape(page)
    assert publish(client, DAY_3, "its own links") == 303


def test_a_posted_form_cannot_change_the_courses_shape(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    status, _ = save_words(client, DAY_3, {"w.title": "Rituals", "w.subject": ""})
    assert status == 200
    csrf, revision, fields = words_form(client, DAY_3)
    forged = {**fields, "w.number": "9", "w.body.7.paragraphs": "An extra part", "w.checklist": "warning-signs",
              "w.body.0.kind": "quote"}  # fmt: skip
    response = client.post("/studio/save", data={"csrf": csrf, "item": DAY_3, "revision": revision, **forged})
    assert response.status_code == 200
    assert publish(client, DAY_3, "shape") == 303
    subject, body, _ = render_live(site, "day-03")
    assert subject == "Day 3: Rituals" and "An extra part" not in body
    course = load_course(site.runtime.settings.course_slug)
    assert course.day(3).checklist is None and len(course.days) == 18


def test_shared_words_reach_every_email_and_the_pages_they_link_to(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    _, _, fields = words_form(client, SHARED)
    assert fields["w.checklists.warning-signs.bands.0.meaning"].startswith("Some seasons of life")
    status, page = save_words(client, SHARED, {
        "w.practice.consultation_title": "Talk with us, free",
        "w.practice.consultation_note": "Would a therapist help?",
        "w.checklists.warning-signs.bands.0.meaning": "All is **well**: seasons come and go.",
        "w.resources.emotional-bids-quiz.url": "https://quiz.example.org/bids",
    })  # fmt: skip
    assert status == 200 and "Every email renders with it." in page, page
    assert publish(client, SHARED, "new consultation title") == 303

    for email in ("day-18", "completion"):  # where booking is the next step: its block, with its title
        assert "Talk with us, free" in render_live(site, email)[1]
    assert "P.S. Would a therapist help?" in render_live(site, "day-01")[1]  # elsewhere the quiet line
    site.sign_up_and_confirm()  # the welcome goes out through the engine, with the published words
    welcome = site.smtp.to("alex@example.com")[-1]
    assert welcome.subject.startswith("Welcome") and "Would a therapist help?" in welcome.message.as_string()
    answer = site.client.get(site.link("alex@example.com", "/answer/", "Welcome"))
    assert "All is <strong>well</strong>: seasons come and go." in answer.text  # its page says what it says
    alex = site.subscriber("alex@example.com")
    quiz = LinkSigner(TEST_SECRET, "https://course.example.org").url(
        Purpose.RESOURCE, alex.id, 2, "emotional-bids-quiz"
    )
    redirect = site.client.get(quiz.removeprefix("https://course.example.org"), follow_redirects=False)
    assert redirect.headers["location"].startswith("https://quiz.example.org/bids?")


def test_the_shared_words_keep_the_checklists_items_and_bands(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    csrf, revision, fields = words_form(client, SHARED)
    del fields["w.checklists.warning-signs.items.7.text"]  # a missing field keeps its text
    fields["w.checklists.warning-signs.bands.3.key"] = "extra"
    response = client.post("/studio/save", data={"csrf": csrf, "item": SHARED, "revision": revision, **fields})
    assert response.status_code == 200 and "Every email renders with it." in response.text
    assert publish(client, SHARED, "same shape") == 303
    assert "You have separate lives." in render_live(site, "welcome")[1]


def test_the_exercise_page_shows_the_wording_published_since_it_was_first_opened(site: Site) -> None:
    """The exercise page reads the release in the statement that records its click: a publish reaches the
    page at its next visit, through the cached wording of each release."""
    site.sign_up_and_confirm()
    alex = site.subscriber("alex@example.com")
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    exercise = signer.url(Purpose.EXERCISE_DONE, alex.id, 3).removeprefix("https://course.example.org")
    before = site.client.get(exercise)
    assert before.status_code == 200 and "<h1>Choose a ritual together</h1>" in before.text
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert save_words(client, DAY_3, {"w.body.1.title": "Your own small ritual"})[0] == 200
    assert "Choose a ritual together" in site.client.get(exercise).text  # a draft changes nothing
    assert publish(client, DAY_3, "a warmer exercise title") == 303
    after = site.client.get(exercise)
    assert after.status_code == 200 and "<h1>Your own small ritual</h1>" in after.text


def test_the_welcomes_form_has_its_parts_after_the_checklist_and_its_web_page_but_no_verdicts(site: Site) -> None:
    client = signed_in(site, "sam@example.org", StudioRole.EDITOR)
    _, _, fields = words_form(client, "_words/welcome.yaml")
    assert fields["w.body.2.paragraphs"].startswith("One email a day for 18 days")
    assert fields["w.page.title"] == "What emotional intimacy is, and why it matters"
    assert "w.page.blocks.0.paragraphs" in fields
    page = client.get("/studio/edit?item=_words/welcome.yaml").text
    assert "Block 3: text (How this course works)" in page and "The web page the letter links to" in page
    _, _, day2 = words_form(client, "_words/day-02.yaml")
    assert "w.body.1.blocks.0.cards.0.rows.0.text" in day2
    assert not [name for name in day2 if name.endswith(".tone")]  # good or bad is the course's shape


def test_the_list_shows_each_emails_own_words_state_not_the_shared_layouts(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert save_words(client, DAY_3, {"w.title": "Rituals of your own"})[0] == 200
    assert publish(client, DAY_3, "day 3's title") == 303
    assert save_words(client, "_words/day-05.yaml", {"w.title": "A draft of day 5"})[0] == 200
    rows = {
        html.unescape(re.sub(r"<[^>]+>", "", label)).strip(): " ".join(
            html.unescape(re.sub(r"<[^>]+>", "", cells)).split()
        )
        for label, cells in re.findall(r'<tr>\s*<th scope="row">(.*?)</th>(.*?)</tr>', client.get("/studio").text, re.S)
    }
    day3 = next(cells for label, cells in rows.items() if label.startswith("Day 3"))
    day4 = next(cells for label, cells in rows.items() if label.startswith("Day 4"))
    day5 = next(cells for label, cells in rows.items() if label.startswith("Day 5"))
    assert "version 1 (kayla@example.org" in day3 and "a draft" not in day3
    assert "version 0 (as shipped)" in day4 and "a draft" not in day4  # day 3's publish is day 3's alone
    assert "version 0 (as shipped)" in day5 and "a draft saved by kayla@example.org" in day5
    assert "shared by every day" in day3  # and the layout is said to be shared, not given day 3's state
