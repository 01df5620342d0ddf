"""The words' one merge tag, ``{first_name|friend}``: the reader's first name, or the fallback for a reader
without one; filled in after rendering, so a name is never read as markup, a link or a template; the fast
path (emails/prepared.py) gives the very bytes of the full render; any other tag is refused beside its field."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest

from course.curriculum import Course
from course.settings import Settings
from course.wording import dump, shipped
from emails.checks import words_link_problems
from emails.compiler import default_templates
from emails.prepared import Preparer
from emails.rendering import Recipient, Renderer

from .test_prepared import AWKWARD, READERS

DAY_3 = "_words/day-03.yaml"


@pytest.fixture(autouse=True)
def still_clock() -> Iterator[None]:
    with mock.patch("itsdangerous.timed.time.time", return_value=1_800_000_000):
        yield


def tagged(course: Course) -> Renderer:
    words = shipped(course, DAY_3)
    words["subject"] = "{first_name|Friend}, a ritual of your own"
    words["title"] = "A ritual for you, {first_name|friend}"
    first_text = next(block for block in words["body"] if block.get("kind", "text") == "text" and "paragraphs" in block)
    first_text["paragraphs"][0] = "**{first_name|Dear reader}**, " + first_text["paragraphs"][0]
    return Renderer(course, Settings(environment="test", secret_key="k" * 32),
                    default_templates().with_file(DAY_3, dump(words)))  # fmt: skip


def test_the_tag_is_the_readers_name_or_the_fallback_and_never_markup(course: Course) -> None:
    renderer = tagged(course)
    alex = renderer.render("day-03", Recipient(7, "alex@example.com", "Alex"))
    assert alex.subject == "Alex, a ritual of your own" and "A ritual for you, Alex" in alex.html
    assert "<strong>Alex</strong>," in alex.html and "*Alex*," in alex.text
    nobody = renderer.render("day-03", Recipient(8, "no.name@example.com", None))
    assert nobody.subject == "Friend, a ritual of your own" and "A ritual for you, friend" in nobody.html
    assert "<strong>Dear reader</strong>" in nobody.html and "{first_name" not in nobody.html + nobody.text
    hostile = renderer.render(
        "day-03", Recipient(9, "h@example.com", "[x](https://evil.example) <b>*Al*</b> {{ 7*7 }}")
    )
    assert "[x](https://evil.example) &lt;b&gt;*Al*&lt;/b&gt; {{ 7*7 }}" in hostile.html  # as text, escaped
    assert 'href="https://evil.example' not in hostile.html and "49" not in hostile.subject
    assert "[x](https://evil.example) <b>*Al*</b> {{ 7*7 }}, a ritual" in hostile.subject  # the subject is text


@pytest.mark.parametrize("reader", [*READERS, *(Recipient(7, "a@example.com", name) for name in AWKWARD)])
def test_the_fast_path_gives_the_full_renders_bytes_with_the_tag(course: Course, reader: Recipient) -> None:
    renderer = tagged(course)
    assert Preparer(renderer).render("day-03", reader) == renderer.render("day-03", reader)


def test_any_other_tag_is_refused_beside_its_field(course: Course) -> None:
    words = shipped(course, DAY_3)
    words["title"] = "Hello {last_name}, and {first_name|friend}"
    words["teaser"] = "Tomorrow, { subscriber.email }: more."
    problems = words_link_problems({DAY_3: dump(words)}, "https://course.example.org")
    assert [(problem.field, problem.message.split(":")[1].strip()) for problem in problems] == [
        ("title", "“{last_name}” is not a tag the words take"),
        ("teaser", "“{ subscriber.email }” is not a tag the words take"),
    ]
