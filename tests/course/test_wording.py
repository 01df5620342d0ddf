"""Words files: the course's wording over its shipped text, read strictly, never changing its shape."""

from __future__ import annotations

import pytest

from course.curriculum import Course
from course.settings import Settings
from course.wording import SHARED, apply, dump, read, shipped, shipped_files, words_items
from emails.compiler import TemplateError, TemplateSet, default_templates
from emails.rendering import Recipient, Renderer
from emails.validation import check

DAY_3 = "_words/day-03.yaml"
READER = Recipient(subscriber_id=1, email="reader@example.com", first_name="Robin")


def with_words(item: str, text: str) -> TemplateSet:
    return default_templates().with_file(item, text)


def edited(course: Course, item: str, **changes: object) -> str:
    return dump({**shipped(course, item), **changes})


def test_every_email_with_wording_has_a_words_file_and_the_shipped_text_reads_back_unchanged(course: Course) -> None:
    items = words_items(course)
    assert items[0] == "_words/confirmation.yaml" and items[-1] == SHARED and len(items) == 1 + 20 + 1
    for item in items:  # the shipped wording, written out and read back strictly, is unchanged
        assert read(item, shipped_files(course, item)[item]) == shipped(course, item)
    templates = default_templates()
    for item in items:  # the shipped wording as a words file changes nothing
        templates = templates.with_file(item, dump(shipped(course, item)))
    assert apply(course, templates.files) == course


def test_a_days_words_change_its_email_and_no_other(course: Course, settings: Settings) -> None:
    templates = with_words(DAY_3, edited(course, DAY_3, subject="Your ritual", preview="Two minutes, every day.",
                                         teaser="Tomorrow: *phones*."))  # fmt: skip
    renderer = Renderer(course, settings, templates)
    day3 = renderer.render("day-03", READER)
    assert day3.subject == "Your ritual" and day3.preview == "Two minutes, every day."
    assert "Tomorrow: <em>phones</em>." in day3.html and "Tomorrow: *phones*." in day3.text
    assert renderer.render("day-04", READER).subject == course.day(4).subject
    assert Renderer(course, settings).render("day-03", READER).subject == course.day(3).subject


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("title: [unclosed", None, "not valid YAML"),
        ("- a list", None, "expected the fields"),
        (None, "title", "is empty: write something here"),
        (None, "body.0.paragraphs", "needs at least 1 of them"),
        (None, "body.0.kind", "is not a kind of block ('text', 'list'"),
        (None, "checklist", "is not a field this email has (take it out)"),
        (None, "teaser", "HTML is not accepted"),
    ],
)
def test_a_broken_words_file_is_refused_with_its_field_or_line(
    course: Course, settings: Settings, text: str | None, field: str | None, message: str
) -> None:
    if text is None:
        data = shipped(course, DAY_3)
        if field == "title":
            data["title"] = ""
        elif field == "body.0.paragraphs":
            data["body"][0]["paragraphs"] = []
        elif field == "body.0.kind":
            data["body"][0]["kind"] = "poem"
        elif field == "checklist":
            data["checklist"] = "warning-signs"
        else:
            data["teaser"] = "Tomorrow: <b>more</b>"
        text = dump(data)
    with pytest.raises(TemplateError) as refused:
        Renderer(course, settings, with_words(DAY_3, text))
    assert message in refused.value.message and refused.value.file == DAY_3
    if field is not None and field != "body.0.kind":
        assert refused.value.field == field
    if text.startswith("title: [unclosed"):
        assert refused.value.line == 1
    problems = check(with_words(DAY_3, text), course, settings)  # what publishing would say
    assert len(problems) == 1 and message in problems[0].message


def test_the_shared_words_keep_the_checklists_items_bands_and_resources(course: Course, settings: Settings) -> None:
    data = shipped(course, SHARED)
    data["checklists"]["warning-signs"]["items"].pop()
    with pytest.raises(TemplateError, match="keep 8 items"):
        Renderer(course, settings, with_words(SHARED, dump(data)))
    data = shipped(course, SHARED)
    data["checklists"]["warning-signs"]["bands"][0]["key"] = "fine"
    with pytest.raises(TemplateError, match="the bands are fixed"):
        Renderer(course, settings, with_words(SHARED, dump(data)))
    data = shipped(course, SHARED)
    data["resources"]["a-new-quiz"] = data["resources"]["emotional-bids-quiz"]  # words cannot add a guide
    assert "a-new-quiz" not in Renderer(course, settings, with_words(SHARED, dump(data))).course.resources
    # A checklist the course gained after these words were written keeps its own words (and renders).
    data = shipped(course, SHARED)
    grown = course.model_copy(update={"checklists": {**course.checklists, "extra": course.checklists[
        "warning-signs"].model_copy(update={"key": "extra", "title": "An extra checklist"})}})  # fmt: skip
    assert Renderer(grown, settings, with_words(SHARED, dump(data))).course.checklists["extra"].title == (
        "An extra checklist")  # fmt: skip
    data = shipped(course, SHARED)
    data["checklists"]["warning-signs"]["bands"][2]["meaning"] = "Talk to someone this week."
    changed = Renderer(course, settings, with_words(SHARED, dump(data))).course
    band = changed.checklists["warning-signs"].bands[2]
    assert band.meaning == "Talk to someone this week." and (band.min, band.max) == (4, None)


def test_a_words_file_for_an_email_the_course_does_not_have_is_refused(course: Course, settings: Settings) -> None:
    with pytest.raises(TemplateError, match="has no email called 'day-40'"):
        Renderer(course, settings, with_words("_words/day-40.yaml", dump(shipped(course, DAY_3))))
