"""Compiling templates: errors name the email and the file, and a broken template never compiles quietly."""

from __future__ import annotations

import re

import pytest

from course.curriculum import Course
from course.settings import Settings
from emails.compiler import DAY_FOLDER, EMAIL_FILES, TemplateError, TemplateSet, compile_email, default_templates
from emails.rendering import Renderer

from .conftest import ALEX


def broken(path: str, text: str) -> TemplateSet:
    return default_templates().with_file(path, text)


def render_with(templates: TemplateSet, course: Course, settings: Settings, email: str) -> None:
    Renderer(course, settings, templates).render(email, ALEX)


def test_every_email_the_course_sends_has_its_files_and_every_folder_is_used(renderer: Renderer) -> None:
    templates = default_templates()
    for email in renderer.email_names():
        for file in EMAIL_FILES:
            templates.email_path(email, file)  # raises KeyError when missing
    assert set(templates.emails()) <= {*renderer.email_names(), DAY_FOLDER}


def test_the_days_share_one_template_and_a_day_may_override_a_file(
    course: Course, settings: Settings, renderer: Renderer
) -> None:
    templates = default_templates()
    assert [templates.email_path(f"day-{n:02d}", "body.mjml") for n in (1, 18)] == ["day/body.mjml"] * 2
    # One change to the daily layout reaches every day.
    shared = templates.with_file("day/subject.txt", "Today, day {{ day.number }}: {{ day.title }}")
    subjects = [Renderer(course, settings, shared).render(f"day-{n:02d}", ALEX).subject for n in (1, 7, 18)]
    assert subjects == [
        "Today, day 1: Practice Daily Check-Ins",
        "Today, day 7: Share Your Dreams and Fears",
        "Today, day 18: Get Professional Support",
    ]
    # A day's own file wins for that day only; its other files still come from day/.
    own = shared.with_file("day-07/subject.txt", "A special day {{ day.number }}")
    assert own.email_path("day-07", "subject.txt") == "day-07/subject.txt"
    assert own.email_path("day-07", "body.txt") == "day/body.txt"
    seven, eight = (Renderer(course, settings, own).render(f"day-{n:02d}", ALEX) for n in (7, 8))
    assert (seven.subject, eight.subject) == ("A special day 7", "Today, day 8: Create Shared Meaning")
    assert seven.html.count("Share Your Dreams and Fears") >= 1
    # The welcome, completion and service emails never borrow the day template.
    without_welcome_subject = {path: text for path, text in templates.files.items() if path != "welcome/subject.txt"}
    with pytest.raises(KeyError):
        TemplateSet(without_welcome_subject).email_path("welcome", "subject.txt")


def test_jinja_placeholders_survive_mjml_compilation() -> None:
    compiled = compile_email(default_templates(), "day-03")
    assert '<a href="{{ next.href }}"' in compiled.html_source  # the exercise's button, in its box
    assert "{% for band in checklist.bands %}" in compiled.html_source


def test_every_section_keeps_the_600px_email_width() -> None:
    # MRML drops the body width for sections that come from <mj-include>; we inline includes ourselves.
    html = compile_email(default_templates(), "day-01").html_source
    sections = re.findall(r'<div class="[^"]*(?:card|page)[^"]*" style="([^"]*)"', html)
    assert len(sections) >= 6
    assert all("max-width:600px" in style for style in sections)


def test_no_remote_font_is_linked() -> None:
    # MJML links Google Fonts for families it knows (Roboto is in our stack) unless told not to.
    assert "fonts.googleapis.com" not in compile_email(default_templates(), "welcome").html_source


def test_compiling_is_cached_per_template_version() -> None:
    templates = default_templates()
    assert compile_email(templates, "day-05") is compile_email(templates, "day-05")
    edited = templates.with_file("day-05/subject.txt", "Day five: {{ day.title }}")
    assert edited.version != templates.version
    assert compile_email(edited, "day-05") is not compile_email(templates, "day-05")
    assert TemplateSet(templates.files).version == templates.version


def test_broken_mjml_is_refused_with_the_email_and_file_named() -> None:
    templates = broken("day-03/body.mjml", "<mjml><mj-body><mj-section>")
    with pytest.raises(TemplateError) as error:
        compile_email(templates, "day-03")
    assert (error.value.email, error.value.file) == ("day-03", "body.mjml")
    assert "MJML" in error.value.message


def test_a_missing_include_is_named() -> None:
    source = default_templates().source("day/body.mjml").replace("_base/body.mjml", "_base/bodi.mjml")
    with pytest.raises(TemplateError, match=r"bodi\.mjml"):
        compile_email(broken("day-04/body.mjml", source), "day-04")


def test_an_include_loop_is_refused() -> None:
    templates = broken("_base/footer.mjml", '<mj-include path="_base/footer.mjml" />')
    with pytest.raises(TemplateError, match="nests deeper"):
        compile_email(templates, "day-02")


def test_an_include_outside_the_template_set_is_refused() -> None:
    source = default_templates().source("day/body.mjml").replace("_base/footer.mjml", "../../course/settings.py")
    with pytest.raises(TemplateError, match="does not exist"):
        compile_email(broken("day-06/body.mjml", source), "day-06")


def test_a_jinja_syntax_error_names_the_file_and_line() -> None:
    templates = broken("day-07/body.txt", '{% extends "_base/day.txt" %}\n{% if day %}\n')
    with pytest.raises(TemplateError) as error:
        compile_email(templates, "day-07")
    assert error.value.file == "body.txt" and error.value.line == 2  # the unclosed {% if %}


def test_a_jinja_syntax_error_in_the_html_body_is_refused_at_its_line_in_the_file_as_written() -> None:
    source = default_templates().source("day/body.mjml").replace("{% set heading = day.title %}", "{{ day.title }")
    assert source.splitlines()[5].strip() == "{{ day.title }"
    with pytest.raises(TemplateError) as error:
        compile_email(broken("day-08/body.mjml", source), "day-08")
    assert error.value.file == "body.mjml" and error.value.line == 6  # not a line of MJML's output


def test_a_missing_file_is_named() -> None:
    files = dict(default_templates().files)
    del files["day/subject.txt"]
    with pytest.raises(TemplateError, match=r"subject\.txt: file is missing"):
        compile_email(TemplateSet(files), "day-09")


def test_an_undefined_variable_is_an_error_not_a_blank(course: Course, settings: Settings) -> None:
    templates = broken("day-10/subject.txt", "Day {{ day.number }}: {{ day.subtitle }}")
    with pytest.raises(TemplateError, match="undefined"):
        render_with(templates, course, settings, "day-10")


def test_an_undefined_variable_in_a_shared_section_is_an_error(course: Course, settings: Settings) -> None:
    footer = default_templates().source("_base/footer.mjml").replace("{{ postal_address }}", "{{ postal_adress }}")
    with pytest.raises(TemplateError, match="postal_adress"):
        render_with(broken("_base/footer.mjml", footer), course, settings, "day-11")


def test_a_broken_shared_macro_file_is_an_error(course: Course, settings: Settings) -> None:
    with pytest.raises(TemplateError, match="Jinja"):
        render_with(broken("_base/blocks.html", "{% macro render(blocks) %}"), course, settings, "day-12")


@pytest.mark.parametrize(
    "expression",
    [
        "{{ course.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ links.update({'unsubscribe': 'https://evil.example'}) }}",
    ],
)
def test_templates_cannot_reach_python_internals_or_change_the_data(
    course: Course, settings: Settings, expression: str
) -> None:
    with pytest.raises(TemplateError):
        render_with(broken("day-13/subject.txt", expression), course, settings, "day-13")


def test_an_empty_subject_is_refused(course: Course, settings: Settings) -> None:
    with pytest.raises(TemplateError, match="subject is empty"):
        render_with(broken("day-14/subject.txt", "{# nothing #}  \n"), course, settings, "day-14")


def test_a_multi_line_subject_becomes_one_line(course: Course, settings: Settings) -> None:
    renderer = Renderer(course, settings, broken("day-15/subject.txt", "Day {{ day.number }}:\n{{ day.title }}\n"))
    assert renderer.render("day-15", ALEX).subject == "Day 15: Acknowledge the Distance"


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ('<mj-section><mj-column><mj-text paddng="0 16px">x</mj-text></mj-column></mj-section>',
         "<mj-text> has no attribute 'paddng': 'padding'?"),
        ('<mj-section><mj-column><mj-text colr="red">x</mj-text></mj-column></mj-section>',
         "<mj-text> has no attribute 'colr': 'color'?"),
        ("<mj-sectoin><mj-column><mj-text>x</mj-text></mj-column></mj-sectoin>",
         "<mj-sectoin> is not an MJML tag: <mj-section>?"),
        ('<mj-section><mj-column><mj-buton href="https://course.example.org/x">x</mj-buton></mj-column></mj-section>',
         "<mj-buton> is not an MJML tag: <mj-button>?"),
    ],
)  # fmt: skip
def test_a_misspelt_mjml_name_is_refused_at_its_line(typed: str, said: str) -> None:
    """MRML passes a name it does not know over without a word; a likely misspelling is named, with its line."""
    source = default_templates().source("welcome/body.mjml")
    footer = '    <mj-include path="_base/footer.mjml" />'
    assert footer in source
    line = source.count("\n", 0, source.index(footer)) + 1
    templates = default_templates().with_file("welcome/body.mjml", source.replace(footer, f"    {typed}\n{footer}"))
    with pytest.raises(TemplateError) as refused:
        compile_email(templates, "welcome")
    assert said in refused.value.message and refused.value.file == "body.mjml"
    assert refused.value.line == line


def test_every_mjml_name_the_shipped_layouts_use_is_known() -> None:
    from emails.mjml_names import misspellings

    templates = default_templates()
    for path in templates.files:
        if path.endswith(".mjml"):
            assert list(misspellings(templates.source(path))) == [], path
