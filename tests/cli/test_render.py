"""`course render` as an operator runs it: the installed console script, configured by the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from course.curriculum import Course

from ..conftest import TEST_SECRET

COURSE = Path(sys.executable).parent / "course"
ENVIRONMENT = {
    "ENVIRONMENT": "test",
    "BASE_URL": "https://learn.example.net",
    "SECRET_KEY": TEST_SECRET,
    "MAIL_FROM": "South Denver Therapy <course@send.example.net>",
    "MAIL_REPLY_TO": "Care <care@example.net>",
    "PRACTICE_POSTAL_ADDRESS": "1 Test Way, Castle Rock, CO",
}


def run(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENVIRONMENT, **environment}
    return subprocess.run(  # noqa: S603 - our own console script
        [str(COURSE), *arguments], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def rendering(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("render")
    result = run("render", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "22 of 22 emails written" in result.stdout
    return out, result.stdout


@pytest.fixture(scope="module")
def rendered(rendering: tuple[Path, str]) -> Path:
    return rendering[0]


def parse(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_it_writes_every_message(rendered: Path) -> None:
    names = sorted(path.stem for path in rendered.glob("*.eml"))
    expected = ["confirmation", "welcome", "completion", "preferences-link", *[f"day-{n:02d}" for n in range(1, 19)]]
    assert names == sorted(expected)


@pytest.mark.parametrize("name", ["confirmation", "welcome", "day-01", "day-09", "day-18", "completion"])
def test_each_message_is_complete_with_absolute_links(rendered: Path, name: str) -> None:
    message = parse(rendered / f"{name}.eml")
    assert message.defects == []
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe", "Reply-To"):
        assert message[header], f"{name} lacks {header}"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].endswith("@send.example.net>")
    text, html = (part.get_content() for part in message.iter_parts())
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert hrefs and all(href.startswith("https://learn.example.net/") for href in hrefs)
    assert "1 Test Way, Castle Rock, CO" in text


@pytest.mark.parametrize("number", [1, 10, 18])
def test_each_day_message_carries_its_day(rendered: Path, course: Course, number: int) -> None:
    day = course.day(number)
    message = parse(rendered / f"day-{number:02d}.eml")
    assert message["Subject"] == day.subject
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and day.exercise is not None and day.exercise.title in text.get_content()


def test_the_index_shows_every_email(rendered: Path) -> None:
    index = (rendered / "index.html").read_text()
    for eml in rendered.glob("*.eml"):
        assert f'href="{eml.stem}.html"' in index and f'href="{eml.name}"' in index


def test_one_day_only(tmp_path: Path) -> None:
    result = run("render", "--out", str(tmp_path), "--day", "3")
    assert result.returncode == 0, result.stderr
    assert [path.name for path in tmp_path.glob("*.eml")] == ["day-03.eml"]


def test_a_day_outside_the_course_is_refused(tmp_path: Path) -> None:
    result = run("render", "--out", str(tmp_path), "--day", "19")
    assert result.returncode == 2
    assert "--day takes 1..18" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_bad_setting_stops_it_with_the_variable_named(tmp_path: Path) -> None:
    result = run("render", "--out", str(tmp_path), BASE_URL="learn dot example")
    assert result.returncode != 0
    assert "BASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_it_prints_what_the_inbox_shows(rendering: tuple[Path, str]) -> None:
    _out, printed = rendering
    assert printed.count("  subject (") == printed.count("  preview (") == 22
