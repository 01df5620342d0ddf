"""The course's small markup: what it makes of a marketer's text, in each part, and what it refuses to make."""

from __future__ import annotations

import re

import pytest

from emails.markup import inline_html, inline_text, markup_html, markup_text, plain, punctuated


def test_paragraphs_emphasis_lists_and_links_in_html_with_the_templates_styles() -> None:
    html = markup_html("One *two* **three**.\n\n- a\n- b [c](https://x.example/d)\n\n1. first\n2. second",
                       p="P", list="L", li="I", a="A")  # fmt: skip
    assert html == (
        '<p style="P">One <em>two</em> <strong>three</strong>.</p>\n'
        '<ul style="L">\n<li style="I">a</li>\n'
        '<li style="I">b <a href="https://x.example/d" style="A">c</a></li>\n</ul>\n'
        '<ol style="L">\n<li style="I">first</li>\n<li style="I">second</li>\n</ol>'
    )


def test_the_text_part_wraps_paragraphs_indents_lists_and_writes_each_links_address() -> None:
    text = markup_text("One *two* [three](https://x.example/3).\n\n- a\n- b\n\nLast " + "word " * 20)
    assert text.splitlines()[:5] == ["One *two* three (https://x.example/3).", "", "  - a", "  - b", ""]
    assert all(len(line) <= 72 for line in text.splitlines())
    assert markup_text("See [https://x.example](https://x.example)") == "See https://x.example"  # not twice


@pytest.mark.parametrize(
    "typed",
    [
        "<script>alert(1)</script>",
        '<img src="https://tracker.example/p.gif">',
        "[click](javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        '<a href="https://x.example" onclick="x()">x</a>',
        "![a picture](https://tracker.example/p.gif)",
        "# a heading\n\n> a quote\n\n    code",
        "<https://autolink.example>",
    ],
)
def test_nothing_else_becomes_markup(typed: str) -> None:
    for rendered in (markup_html(typed), inline_html(typed)):
        # Typed tags arrive escaped, as text; the only elements are paragraphs and links to web pages
        # (an image's syntax is a link: the content checks then refuse its address as not ours).
        for tag in re.findall(r"<[^>]+>", rendered):
            assert re.fullmatch(r'</?p>|</a>|<a href="https?://[^"<>]+">', tag), (typed, tag)


def test_short_fields_take_emphasis_and_links_but_no_paragraphs_or_lists() -> None:
    assert inline_html("- *one*\n\ntwo") == "- <em>one</em>\n\ntwo"
    assert inline_text("a **b** [c](https://x.example)") == "a *b* c (https://x.example)"


def test_a_backslash_keeps_an_asterisk_and_the_preview_line_has_no_markup() -> None:
    assert markup_html(r"5 \* 3") == "<p>5 * 3</p>"
    assert plain("Hello *you*, see [the guide](https://x.example/g).\n\n- one") == "Hello you, see the guide. one"


def test_a_title_run_into_its_text_ends_as_a_sentence() -> None:
    assert punctuated("Cool down first") == "Cool down first."
    for already in ("Done.", "Why?", "Now!", "Steps:", ""):
        assert punctuated(already) == already
