"""The fast path (emails/prepared.py, MessageBuilder.build_prepared) makes the very bytes the full render makes.

Signed links carry the time they were made: the clock is held still so that both paths sign alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from course.curriculum import Course
from course.settings import Settings
from emails.compiler import TemplateSet, default_templates
from emails.mime import EncodedBody, MessageBuilder, _quoted_printable
from emails.prepared import Preparer, Slot, fill, reads_reader_plainly
from emails.rendering import Recipient, Renderer

READERS = [
    Recipient(7, "alex@example.com", "Alex"),
    Recipient(8, "no.name@example.com", None),
    Recipient(9, "empty.name@example.com", ""),
    Recipient(10, "ana@example.com", 'Ana <b>&amp;</b> O\'Neil "AJ"'),  # escaped in HTML, as it is in text
    Recipient(11, "zoe@example.com", "Zoë Ångström-Łukasz 李", answers={"warning-signs": "significant"}),
    Recipient(12, "sam@example.com", "Sam", answers={"warning-signs": "normal", "professional-support": "any"}),
    Recipient(13, "request@example.com", "Kim", signup_request_id=42),
    Recipient(14, "old@example.com", "Lee", answers={"warning-signs": "a-band-that-no-longer-exists"}),
]
# Names the fast path must not take as they are: whitespace that a subject or the text would fold or strip.
AWKWARD = ["Alex  Smith", " Alex", "Alex ", "Al\tex", "Al\nex", "Al\x00ex"]


@pytest.fixture(autouse=True)
def still_clock() -> Iterator[None]:
    with mock.patch("itsdangerous.timed.time.time", return_value=1_800_000_000):
        yield


def both(renderer: Renderer, preparer: Preparer, email: str, reader: Recipient) -> tuple[object, object]:
    return renderer.render(email, reader), preparer.render(email, reader)


def test_every_email_prepared_is_the_full_render_for_every_kind_of_reader(renderer: Renderer) -> None:
    preparer = Preparer(renderer)
    for email in renderer.email_names():
        for reader in READERS:
            full, fast = both(renderer, preparer, email, reader)
            assert fast == full, (email, reader)
            # ... and it really was the fast path: the shipped templates print and test names plainly.
            assert preparer.prepared(email, reader, renderer.reader_values(email, reader)) is not None, (email, reader)


def test_every_message_built_from_a_prepared_email_is_byte_for_byte_the_full_build(
    renderer: Renderer, course: Course, settings: Settings
) -> None:
    preparer = Preparer(renderer)
    builder = MessageBuilder(settings, course.slug, course.title)
    date = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    for email in renderer.email_names():
        for reader in READERS:
            address = {"to_address": reader.email, "to_name": reader.first_name, "date": date, "message_id": "<m@x>"}
            full = builder.build(renderer.render(email, reader), **address)  # type: ignore[arg-type]
            values = renderer.reader_values(email, reader)
            prepared = preparer.prepared(email, reader, values)
            assert prepared is not None
            fast = builder.build_prepared(prepared, values, **address)  # type: ignore[arg-type]
            assert fast.data == full.data and fast.message_id == full.message_id, (email, reader)
            # What it says of its lines is true: DATA may skip dot-stuffing only for a message without one.
            assert fast.dot_free == (not full.data.startswith(b".") and b"\n." not in full.data), (email, reader)


@pytest.mark.parametrize("name", AWKWARD)
def test_a_name_the_fast_path_would_not_fold_alike_gets_the_full_render(renderer: Renderer, name: str) -> None:
    preparer = Preparer(renderer)
    reader = Recipient(7, "alex@example.com", name)
    values = renderer.reader_values("day-03", reader)
    assert preparer.prepared("day-03", reader, values) is None
    assert preparer.render("day-03", reader) == renderer.render("day-03", reader)


# Templates that do with the name what only a full render gets right; each must still come out exact.
HOSTILE_GREETINGS = {
    "a filter": "Hi {{ subscriber.first_name | upper }},",
    "its length": "{% if (subscriber.first_name or '') | length > 3 %}Hi {{ subscriber.first_name }},{% endif %}",
    "a comparison": "{% if subscriber.first_name == 'Alex' %}Hi Alex, again!{% else %}Hi,{% endif %}",
    "a variable": "{% set name = subscriber.first_name %}Hi {{ name }},",
    "truncated": "Hi {{ (subscriber.first_name or 'you') | truncate(6, True, '') }},",
    "wrapped": "{% filter fill(20) %}Hi {{ subscriber.first_name }}, this is a long greeting that wraps{% endfilter %}",
    "the address": "Sent to {{ subscriber.email | replace('@', ' at ') }}.",
    "unguarded": "Hi {{ subscriber.first_name }},",  # prints "None" for no name, "" for an empty one
}


@pytest.mark.parametrize("how", sorted(HOSTILE_GREETINGS))
def test_a_template_that_does_more_with_a_name_than_print_it_is_rendered_in_full_and_right(
    course: Course, settings: Settings, how: str
) -> None:
    path = "_base/layout.txt"
    source = default_templates().source(path)
    greeting = "{% if subscriber.first_name %}Hi {{ subscriber.first_name }},{% else %}Hi there,{% endif %}"
    assert greeting in source
    templates = default_templates().with_file(path, source.replace(greeting, HOSTILE_GREETINGS[how]))
    renderer = Renderer(course, settings, templates)
    preparer = Preparer(renderer)
    for reader in (READERS[0], Recipient(20, "alexandra@example.com", "Alexandra"), READERS[1], READERS[2]):
        full, fast = both(renderer, preparer, "day-05", reader)
        assert fast == full, (how, reader)


def test_what_reads_the_name_plainly_and_what_does_not(course: Course, settings: Settings) -> None:
    templates = default_templates()
    assert reads_reader_plainly(templates, "day-05")
    path = "_base/layout.txt"
    for how in ("a comparison", "a variable", "a filter", "its length"):
        changed = TemplateSet({**templates.files, path: templates.source(path) + HOSTILE_GREETINGS[how]})
        assert not reads_reader_plainly(changed, "day-05"), how


def test_a_link_a_template_changes_is_caught_by_its_stand_in_or_its_first_reader(
    course: Course, settings: Settings
) -> None:
    # Not a use of the reader's name, so the static reading lets it through; the stand-ins catch it,
    # or the first reader's full render does (the last: the marker holds no "WzcsN", Alex's link does).
    path = "_base/body.txt"
    source = default_templates().source(path)
    assert "{{ part.href }}" in source  # a button's link: the exercise's, on day 5
    for changed in ("{{ part.href | upper }}", "{{ part.href | truncate(30, True, '') }}",
                    "{{ part.href | replace('/', '|') }}", "{{ part.href | length }}",
                    "{{ part.href | replace('WzcsN', '') }}"):  # fmt: skip
        templates = default_templates().with_file(path, source.replace("{{ part.href }}", changed))
        renderer = Renderer(course, settings, templates)
        preparer = Preparer(renderer)
        reader = READERS[0]
        assert preparer.prepared("day-05", reader, renderer.reader_values("day-05", reader)) is None, changed
        full, fast = both(renderer, preparer, "day-05", reader)
        assert fast == full, changed


_LINE_TEXT = st.text(alphabet=st.sampled_from("ab .=\n\r\t\u00e9"), max_size=200)


@examples(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.one_of(_LINE_TEXT, st.sampled_from([Slot("link", False), Slot("name", True)])), max_size=8),
    link=st.text(alphabet=st.sampled_from("x.:/"), min_size=1, max_size=120),
    name=st.text(alphabet=st.sampled_from("a. "), min_size=1, max_size=90),
)
def test_an_encoded_body_is_the_whole_texts_encoding_and_knows_whether_a_line_starts_with_a_dot(
    parts: list[str | Slot], link: str, name: str
) -> None:
    """Lines that start with a dot: typed so, or pushed to a line's start by a soft line break after a long
    value; a body that says it has none has none."""
    values = {"link": link, "name": name}
    # As a render is cut: text, a slot, text (never two texts side by side); a body's first line ends before
    # anything of the reader's (the whole text's encoder takes its line ending from the first it sees).
    merged: list[str | Slot] = ["Hello\n"]
    for part in parts:
        if merged and isinstance(part, str) and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    encoded, dot_free = EncodedBody(tuple(merged)).encode(values)
    assert encoded == _quoted_printable(fill(tuple(merged), values))
    assert dot_free == (not encoded.startswith(b".") and b"\n." not in encoded)
