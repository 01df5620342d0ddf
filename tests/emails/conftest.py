from __future__ import annotations

import pytest

from course.curriculum import Course
from course.settings import Settings
from emails.rendering import Recipient, RenderedEmail, Renderer

ALEX = Recipient(subscriber_id=7, email="alex@example.com", first_name="Alex")


@pytest.fixture(scope="session")
def renderer(course: Course, settings: Settings) -> Renderer:
    return Renderer(course, settings)


@pytest.fixture(scope="session")
def rendered_emails(renderer: Renderer) -> dict[str, RenderedEmail]:
    return {name: renderer.render(name, ALEX) for name in renderer.email_names()}
