"""The template store on PostgreSQL: versions, releases, refusals and roll-backs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course.curriculum import Course
from course.models.templates import TemplatePublication, TemplateVersion
from course.settings import Settings
from emails.compiler import default_templates
from emails.store import (
    Published,
    PublishRefused,
    current_release,
    files_of,
    items,
    publish,
    roll_back,
    templates_at,
    with_item,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def welcome_files(subject: str) -> dict[str, str]:
    files = files_of(default_templates(), "welcome")
    files["welcome/subject.txt"] = subject
    return files


def test_items_are_the_email_folders_then_the_shared_files() -> None:
    found = items(default_templates())
    assert found[:6] == ["completion", "confirmation", "day", "preferences-link", "welcome", "_base/at-a-glance.mjml"]
    assert "_base/footer.mjml" in found
    assert files_of(default_templates(), "_base/footer.mjml").keys() == {"_base/footer.mjml"}
    with pytest.raises(ValueError, match="not a file of"):
        with_item(default_templates(), "welcome", {"day/subject.txt": "x"})


def test_publishing_numbers_versions_and_makes_a_release(session: Session, course: Course, settings: Settings) -> None:
    assert current_release(session, course.slug) == 0
    assert templates_at(session, course.slug, 0) == default_templates()

    def publish_subject(subject: str, note: str) -> Published:
        return publish(session, course=course, settings=settings, item="welcome", files=welcome_files(subject),
                       note=note, author="kayla@example.org", now=NOW)  # fmt: skip

    first = publish_subject("Hello {{ course.title }}", "shorter")
    second = publish_subject("Hi {{ course.title }}", "warmer")
    session.commit()
    assert (first.version.number, second.version.number) == (1, 2)
    assert current_release(session, course.slug) == second.publication.id
    assert templates_at(session, course.slug, first.publication.id).source("welcome/subject.txt") == (
        "Hello {{ course.title }}"
    )
    assert templates_at(session, course.slug, second.publication.id).source("welcome/subject.txt") == (
        "Hi {{ course.title }}"
    )
    assert templates_at(session, course.slug, 0) == default_templates()  # earlier releases never change
    back = roll_back(session, course=course, settings=settings, item="welcome", number=1, author=None, now=NOW)
    session.commit()
    assert templates_at(session, course.slug, back.id).source("welcome/subject.txt") == "Hello {{ course.title }}"
    original = roll_back(session, course=course, settings=settings, item="welcome", number=0, author=None, now=NOW)
    session.commit()
    assert templates_at(session, course.slug, original.id) == default_templates()
    with pytest.raises(LookupError):
        roll_back(session, course=course, settings=settings, item="welcome", number=9, author=None, now=NOW)


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("Welcome {{ subscriber.nickname }}", "undefined"),
        ("Welcome {{ day.title }}", "unknown variable: day"),
        ("Welcome {% if %}", "Jinja"),
        ("", "the subject is empty"),
    ],
)
def test_a_template_that_would_not_send_is_refused_and_nothing_is_stored(
    session: Session, course: Course, settings: Settings, subject: str, problem: str
) -> None:
    with pytest.raises(PublishRefused) as refused:
        publish(session, course=course, settings=settings, item="welcome", files=welcome_files(subject),
                note="", author=None, now=NOW)  # fmt: skip
    assert any(error.email == "welcome" and problem in error.message for error in refused.value.problems), refused.value
    session.rollback()
    assert session.scalar(select(func.count()).select_from(TemplateVersion)) == 0
    assert session.scalar(select(func.count()).select_from(TemplatePublication)) == 0


def test_a_shared_section_that_breaks_any_email_is_refused(
    session: Session, course: Course, settings: Settings
) -> None:
    footer = "<mj-section><mj-column><mj-text>{{ day.title }}</mj-text></mj-column></mj-section>"
    with pytest.raises(PublishRefused) as refused:
        publish(session, course=course, settings=settings, item="_base/footer.mjml",
                files={"_base/footer.mjml": footer}, note="", author=None, now=NOW)  # fmt: skip
    assert {error.email for error in refused.value.problems} >= {"confirmation", "welcome", "completion"}
