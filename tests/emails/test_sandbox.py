"""Hostile templates are refused at validation, in bounded time, and the process that asked stays well."""

from __future__ import annotations

import json
import re
import time

import pytest

from course.links import LinkSigner, Purpose
from emails import sandbox
from emails.compiler import default_templates
from emails.rendering import Recipient
from emails.sandbox import MAX_INPUT_BYTES, CheckFailed, check_bounded, render_bounded

from ..conftest import TEST_SECRET, make_settings

SLUG = "building-emotional-intimacy"
SETTINGS = make_settings()


def welcome_subject(text: str) -> dict[str, str]:
    files = dict(default_templates().files)
    files["welcome/subject.txt"] = text
    return files


def test_the_shipped_templates_pass() -> None:
    assert check_bounded(default_templates().files, SLUG, settings=SETTINGS) == []


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "unsafe"),
        ("{{ self.__init__.__globals__ }}", "unsafe"),
        ("{{ lipsum.__globals__['os'] }}", "unsafe"),
        ("{{ namespace.__init__.__globals__ }}", "unsafe"),
        ("{{ config }}", "unknown variable: config"),
        ("{% for i in range(10**6) %}x{% endfor %}", "line 1: a loop over more than 100,000 steps"),
        ("{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}{{ again(0) }}", "calls itself without end"),
        ('{% include "welcome/subject.txt" %}', "calls itself without end"),
    ],
)
def test_a_sandbox_escape_or_a_runaway_template_is_named(template: str, said: str) -> None:
    problems = check_bounded(welcome_subject(template), SLUG, settings=SETTINGS)
    assert any(problem.email == "welcome" and said in str(problem) for problem in problems), problems
    assert not any("Error" in str(problem) for problem in problems), problems  # in words, not Python's


@pytest.mark.parametrize(
    "template",
    [
        '{{ "A" * 10**9 }}',  # a gigabyte of text
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",  # 10**10 turns
    ],
)
def test_a_resource_bomb_is_stopped_in_bounded_time(template: str) -> None:
    """The render budget (emails/compiler.py) stops and names it before the child's limits are reached."""
    started = time.monotonic()
    problems = check_bounded(
        welcome_subject(template), SLUG, settings=SETTINGS, timeout=50
    )  # past a busy machine's slowest
    assert any(problem.email == "welcome" and "more than" in problem.message for problem in problems), problems
    assert time.monotonic() - started < 60  # a generous bound: the point is that it ends


def test_a_check_that_outlasts_its_time_is_stopped() -> None:
    """The child's own limits stay, around what the budget does not meter (MJML, Jinja's compiler)."""
    with pytest.raises(CheckFailed, match="took longer"):
        check_bounded(default_templates().files, SLUG, settings=SETTINGS, timeout=0.05)


def test_ten_megabytes_of_text_are_refused_before_any_work() -> None:
    with pytest.raises(CheckFailed, match="KB"):
        check_bounded(welcome_subject("A" * 10 * 1024 * 1024), SLUG, settings=SETTINGS)
    assert MAX_INPUT_BYTES < 10 * 1024 * 1024


# Every optional secret set, as a production deployment with webhooks and a bounce mailbox has them.
SECRETS = {
    "metrics_token": "metrics-token-0123456789abcdef",
    "feedback_webhook_token": "feedback-token-0123456789abcdef",
    "postmark_webhook_password": "postmark-password-0123456789",
    "bounce_mailbox_url": "imaps://bounces:mailbox-password-0123@imap.example.org/INBOX",
    "database_url": "postgresql://course:database-password-0123@db.example.org/course",
}


def test_the_child_gets_what_rendering_needs_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(**SECRETS)
    for name, value in {**SECRETS, "secret_key": TEST_SECRET}.items():
        monkeypatch.setenv(name.upper(), value)  # as a deployment's environment holds them
    environment = sandbox._environment()
    request = json.dumps(sandbox._rendering_settings(settings))
    for value in (*SECRETS.values(), TEST_SECRET, "database-password-0123", "mailbox-password-0123"):
        assert all(value not in held for held in environment.values()), value
        assert value not in request, value
    assert not {"SECRET_KEY", "DATABASE_URL", "FEEDBACK_WEBHOOK_TOKEN", "METRICS_TOKEN"} & environment.keys()
    # The studio's checks pass with every secret set (they failed on `**********` before).
    assert check_bounded(default_templates().files, SLUG, settings=settings) == []


def test_a_draft_renders_with_links_signed_by_the_real_key_though_the_child_never_had_it() -> None:
    settings = make_settings(**SECRETS)
    recipient = Recipient(subscriber_id=42, email="sam@example.com", first_name="Sam", answers={})
    rendered = render_bounded(default_templates().files, SLUG, "day-03", recipient, settings=settings)
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    assert signer.verify(Purpose.UNSUBSCRIBE, rendered.unsubscribe_url.rsplit("/", 1)[1]).subscriber_id == 42
    done = re.search(r"https://course\.example\.org/exercise/([A-Za-z0-9_.\-]+)", rendered.html)
    assert done is not None and signer.verify(Purpose.EXERCISE_DONE, done.group(1)).step == 3
