"""A course's theme (its colours and font, set in the studio) is its emails' look, in every email."""

from __future__ import annotations

import pytest

from course.curriculum import Course, Theme
from course.settings import Settings
from emails.checks import content_problems
from emails.rendering import Renderer, tint

from .conftest import ALEX

BLUE = Theme(accent="#1f5f8b", background="#eef4f8", text="#1d2a33", font="Georgia, 'Times New Roman', serif")


@pytest.fixture(scope="module")
def blue(course: Course, settings: Settings) -> Renderer:
    return Renderer(course.model_copy(update={"theme": BLUE}), settings)


@pytest.mark.parametrize("email", ["confirmation", "welcome", "day-02", "day-18", "completion", "preferences-link"])
def test_every_email_wears_the_courses_theme_and_nothing_of_the_shipped_one(blue: Renderer, email: str) -> None:
    html = blue.render(email, ALEX).html
    assert "#a3472a" not in html and "#f5efe9" not in html and "#2b2622" not in html  # the shipped palette
    assert "background-color:#eef4f8" in html and "color:#1d2a33" in html
    assert "font-family:Georgia, &#39;Times New Roman&#39;, serif" in html or "font-family:Georgia, 'Times" in html
    if email != "preferences-link":
        assert "color:#1f5f8b" in html  # its links and outlined buttons
    if email not in ("preferences-link", "welcome"):  # (the welcome's one action is its checklist: outlined)
        assert 'bgcolor="#1f5f8b"' in html  # its filled button


def test_the_exercise_box_is_a_wash_of_the_accent_and_a_themed_email_passes_every_check(
    blue: Renderer, settings: Settings
) -> None:
    assert tint("#1f5f8b") == "#edf2f6" and tint("#ffffff") == "#ffffff"
    context = blue.context("day-03", ALEX)
    rendered = blue.render_with("day-03", context)
    assert "background-color:#edf2f6" in rendered.html
    assert content_problems(rendered, context, str(settings.base_url)) == []
