"""Hostile templates are refused at validation, in bounded time, and the process that asked stays well."""

from __future__ import annotations

import time

import pytest

from emails.compiler import default_templates
from emails.sandbox import MAX_INPUT_BYTES, CheckFailed, check_bounded

SLUG = "building-emotional-intimacy"


def welcome_subject(text: str) -> dict[str, str]:
    files = dict(default_templates().files)
    files["welcome/subject.txt"] = text
    return files


def test_the_shipped_templates_pass() -> None:
    assert check_bounded(default_templates().files, SLUG) == []


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "unsafe"),
        ("{{ self.__init__.__globals__ }}", "unsafe"),
        ("{{ lipsum.__globals__['os'] }}", "unsafe"),
        ("{{ namespace.__init__.__globals__ }}", "unsafe"),
        ("{{ config }}", "unknown variable: config"),
        ("{% for i in range(10**6) %}x{% endfor %}", "Range too big"),
        ("{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}{{ again(0) }}", "RecursionError"),
        ('{% include "welcome/subject.txt" %}', "RecursionError"),
    ],
)
def test_a_sandbox_escape_or_a_runaway_template_is_named(template: str, said: str) -> None:
    problems = check_bounded(welcome_subject(template), SLUG)
    assert any(problem.email == "welcome" and said in problem.message for problem in problems), problems


@pytest.mark.parametrize(
    "template",
    [
        '{{ "A" * 10**9 }}',  # a gigabyte of text: the memory limit stops it
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",  # 10**10 turns
    ],
)
def test_a_resource_bomb_is_stopped_by_the_limits_in_bounded_time(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(CheckFailed):
        check_bounded(welcome_subject(template), SLUG, timeout=5)
    assert time.monotonic() - started < 60  # a generous bound: the point is that it ends


def test_ten_megabytes_of_text_are_refused_before_any_work() -> None:
    with pytest.raises(CheckFailed, match="KB"):
        check_bounded(welcome_subject("A" * 10 * 1024 * 1024), SLUG)
    assert MAX_INPUT_BYTES < 10 * 1024 * 1024
