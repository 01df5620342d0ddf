"""Before publishing: the links and the address every email needs, and nothing it must not carry."""

from __future__ import annotations

import pytest

from course.curriculum import Course
from course.settings import Settings
from emails.compiler import TemplateSet, default_templates
from emails.validation import check


def edited(path: str, old: str, new: str) -> TemplateSet:
    source = default_templates().source(path)
    assert old in source, f"{old!r} is not in {path}"
    return default_templates().with_file(path, source.replace(old, new))


def problems_of(templates: TemplateSet, course: Course, settings: Settings) -> set[tuple[str, str, str]]:
    return {(problem.email, problem.file, problem.message) for problem in check(templates, course, settings)}


def test_the_shipped_templates_pass_every_check(course: Course, settings: Settings) -> None:
    assert check(default_templates(), course, settings) == []


@pytest.mark.parametrize(
    ("path", "old", "new", "email", "file", "says"),
    [
        ("_base/footer.mjml", '<a href="{{ links.unsubscribe }}">Unsubscribe</a> · ', "", "welcome", "body.mjml",
         "the unsubscribe link is missing"),
        ("_base/layout.txt", "Unsubscribe:\n{{ links.unsubscribe }}", "", "day-04", "body.txt",
         "the unsubscribe link is missing from the plain-text part"),
        ("_base/footer.mjml", "· {{ postal_address }}", "", "completion", "body.mjml",
         "the practice's postal address is missing"),
        ("_base/body.mjml", '<mj-button href="{{ next.href }}" css-class="primary">',
         '<mj-button href="{{ links.preferences }}" css-class="primary">', "day-09",
         "body.mjml", "the link that marks the exercise done is missing"),
        ("_base/checklist.mjml", "{{ band.url }}", "{{ checklist.page_url }}", "welcome", "body.mjml",
         "the answer link for '0-1 checked' is missing"),
        ("welcome/body.mjml", '<mj-include path="_base/footer.mjml" />',
         '<mj-include path="_base/footer.mjml" /><mj-section><mj-column>'
         '<mj-image src="https://tracker.example/p.gif" /></mj-column></mj-section>', "welcome", "body.mjml",
         "no remote images or files"),
        ("welcome/body.mjml", '<mj-include path="_base/footer.mjml" />',
         '<mj-include path="_base/footer.mjml" /><mj-raw><script>alert(1)</script></mj-raw>', "welcome",
         "body.mjml", "<script> is not allowed in an email"),
        ("welcome/body.mjml", '<mj-include path="_base/footer.mjml" />',
         '<mj-include path="_base/footer.mjml" /><mj-raw><form action="https://evil.example"></form></mj-raw>',
         "welcome", "body.mjml", "<form> is not allowed in an email"),
        ("welcome/body.mjml", '<mj-include path="_base/footer.mjml" />',
         '<mj-include path="_base/footer.mjml" /><mj-section><mj-column><mj-button href="https://evil.example/login">'
         "Log in</mj-button></mj-column></mj-section>", "welcome", "body.mjml",
         "links go to the course's own pages only"),
    ],
)  # fmt: skip
def test_a_missing_or_forbidden_part_is_named(
    course: Course, settings: Settings, path: str, old: str, new: str, email: str, file: str, says: str
) -> None:
    found = problems_of(edited(path, old, new), course, settings)
    assert any(e == email and f == file and says in message for e, f, message in found), found
