"""The welcome's longer read, on the web: the page its short email links to."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest
import yaml

from course import wording as words
from course.curriculum import load_course
from emails.store import PublishRefused, publish

from .conftest import Site

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def headings(html: str) -> list[int]:
    main = html.split("<main", 1)[1]
    return [int(level) for level in re.findall(r"<h([1-6])[\s>]", main)]


def test_the_welcome_links_to_the_page_that_holds_what_it_left_out(site: Site) -> None:
    course = load_course("building-emotional-intimacy")
    site.sign_up_and_confirm("robin@example.com")
    site.tick()
    assert "/about" in site.links("robin@example.com", "Welcome")
    page = site.client.get("/about")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert course.welcome.page is not None and course.welcome.page.title in text
    # The article's longer material: what intimacy is, the research and its figures, why it matters.
    longer = (
        "What Is Emotional Intimacy?",
        "What Research Says About Emotional Intimacy",
        "75%",
        "Gottman Institute, Journal of Marriage and Family",
        "Physical Intimacy vs. Emotional Intimacy",
    )
    for fragment in longer:
        assert fragment in text, fragment
    # The questions meant for the welcome (and for no email) are answered here, not in the email.
    for entry in course.faq:
        assert (entry.question in text) == (entry.shown_in in ("welcome", None)), entry.question
    welcome = site.smtp.to("robin@example.com")[-1].message.get_body(preferencelist=("html",))
    assert welcome is not None and "How long does it take to build emotional intimacy?" not in welcome.get_content()
    # One h1, then sections: no level skipped, as a screen reader's outline expects.
    levels = headings(text)
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(later - earlier <= 1 for earlier, later in itertools.pairwise(levels)), levels
    assert site.client.head("/about").status_code == 200


def test_the_page_shows_the_published_wording_and_a_page_taken_away_is_not_found(site: Site) -> None:
    course = load_course("building-emotional-intimacy")
    data = yaml.safe_load(words.dump(words.shipped(course, "_words/welcome.yaml")))
    data["page"]["title"] = "Why closeness matters, in more words"
    with site.session() as session:
        publish(session, course=course, settings=site.runtime.settings, item="_words/welcome.yaml",
                files={"_words/welcome.yaml": words.dump(data)}, note="retitled", author=None, now=NOW)  # fmt: skip
        session.commit()
    assert "Why closeness matters, in more words" in site.client.get("/about").text
    del data["page"]
    with site.session() as session, pytest.raises(PublishRefused, match="no web page for a button to open"):
        publish(session, course=course, settings=site.runtime.settings, item="_words/welcome.yaml",
                files={"_words/welcome.yaml": words.dump(data)}, note="no page", author=None, now=NOW)  # fmt: skip
    data["body"] = [part for part in data["body"] if part.get("action") != "about"]  # its button goes with it
    with site.session() as session:
        publish(session, course=course, settings=site.runtime.settings, item="_words/welcome.yaml",
                files={"_words/welcome.yaml": words.dump(data)}, note="no page", author=None, now=NOW)  # fmt: skip
        session.commit()
    gone = site.client.get("/about")
    assert gone.status_code == 404 and "no such page" in gone.text
    site.sign_up_and_confirm("sky@example.com")
    site.tick()
    assert "/about" not in site.links("sky@example.com", "Welcome")  # and the welcome no longer links to it
