from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy.orm import Session

from bench.screens import CHROMIUM_ARGS
from course.curriculum import Course, load_course
from course.db import make_engine, make_sessionmaker
from course.settings import Settings, load_settings

from .support import calendar
from .support.databases import database_from, template_database
from .support.smtp import ScriptedHandler, smtp_server

TEST_SECRET = "test-secret-key-0123456789abcdef-0123456789"


def pytest_configure(config: pytest.Config) -> None:
    calendar.start()  # TESTS_DAYS_AHEAD: the whole run on a later day (tests/support/calendar.py)


def pytest_report_header(config: pytest.Config) -> str | None:
    days = calendar.days_ahead()
    return f"calendar: {days} days ahead of this machine's ({calendar.ENVIRONMENT})" if days else None


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "base_url": "https://course.example.org",
        "secret_key": TEST_SECRET,
        "mail_from": "South Denver Therapy <course@mail.example.org>",
        "mail_reply_to": "Kayla Crane <care@example.org>",
        "practice_postal_address": "100 Example Street, Castle Rock, CO 80104",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def course() -> Course:
    return load_course()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """One database migrated with Alembic per run; each test gets a copy of it."""
    with template_database() as name:
        yield name


@pytest.fixture
def database_url(postgres_template: str) -> Iterator[str]:
    with database_from(postgres_template) as url:
        yield url


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """A session on the test's own PostgreSQL database."""
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def smtp() -> Iterator[tuple[ScriptedHandler, int]]:
    with smtp_server() as server:
        yield server


# The Redis every test that needs one uses (each under names of its own).
REDIS_URL = "redis://127.0.0.1:6379/0"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, driven by Playwright; no browser download. Missing is a failure, not a skip."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
