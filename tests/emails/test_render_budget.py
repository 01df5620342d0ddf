"""Every render is metered (emails/compiler.py): a template that asks for too much stops with a named
problem in whichever process renders it, the worker and the studio's list included, for any reader.

The runaway templates here are sized so that without the budget they would still finish (in seconds,
making far more than any email): the tests then fail instead of hanging."""

from __future__ import annotations

import time

import pytest

from course.curriculum import Course
from course.settings import Settings
from emails import compiler
from emails.compiler import MAX_STEPS, MAX_TEXT, MAX_VALUE, TemplateError, TemplateSet, default_templates
from emails.prepared import Preparer
from emails.rendering import SAMPLE, Recipient, Renderer
from emails.validation import check

STEPS = f"more than {MAX_STEPS:,} steps"
TEXT = f"more than {MAX_TEXT:,} characters"
VALUE = f"more than {MAX_VALUE:,}"
DIGITS = "more than 4,300 digits"
MALLORY = Recipient(subscriber_id=9, email="mallory@example.com", first_name="Mallory")


def with_subject(subject: str) -> TemplateSet:
    return default_templates().with_file("welcome/subject.txt", subject)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}Hi", STEPS),
        ("{% macro twice(n) %}{% if n < 18 %}{{ twice(n + 1) }}{{ twice(n + 1) }}{% endif %}{% endmacro %}"
         "{{ twice(0) }}Hi", STEPS),
        ("{% for x in [1] recursive %}{{ loop(range(2, 100002)) if x == 1 }}{% endfor %}Hi", STEPS),
        ("{% for i in range(20000) %}" + "x" * 1000 + "{% endfor %}", TEXT),
        ("{% set ns = namespace(s='ab') %}{% for i in range(27) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
         "{{ ns.s | length }}", TEXT),
        ("{% set ns = namespace(l=[1]) %}{% for i in range(22) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
         "{{ ns.l }}", VALUE),
        ("{% set l = range(10000) | list %}{% for i in range(10000) %}{% if -1 in l %}{% endif %}{% endfor %}Hi",
         TEXT),
        ('{{ "A" * 10**8 }}', VALUE),
        ('{{ "{:>100000000}".format("Hi") }}', VALUE),
        ('{{ "%*s" % (100000000, "Hi") }}', VALUE),
        ('{{ "%100000000s" | format("Hi") }}', VALUE),
        ('{{ "Hi" | center(100000000) }}', VALUE),
        ('{{ ("x" * 10000) | replace("x", "y" * 10000) }}', VALUE),
        ('{{ ("x" * 10000).replace("", "y" * 10000) }}', VALUE),
        ('{{ range(10000) | map("string") | join("x" * 10000) }}', VALUE),
        ('{{ ("\t" * 100000).expandtabs(1000) }}', VALUE),
        ('{{ ("x\n" * 100000) | indent("y" * 1000) }}', VALUE),
        ("{{ lipsum(2000, max=2000) }}", VALUE),
        ('{{ ("[a](" * 100000) | markup }}', TEXT),  # the course's markup reads slowly: it costs more
        ("{{ 10 ** 100000 > 1 }}Hi", DIGITS),
        ("{% set ns = namespace(n=3) %}{% for i in range(25) %}{% set ns.n = ns.n * ns.n %}{% endfor %}"
         "{{ ns.n > 1 }}", DIGITS),
        ("{% for i in range(100) %}{{ {'a': 'x' * 100000}.items() }}{% endfor %}", TEXT),
        # An included template spends from the same budget as the one that includes it.
        ("{% for i in range(60000) %}{% endfor %}{% include '_base/turns.txt' %}", STEPS),
        ("{% for i in range(2000) %}{% include '_base/long.txt' %}{% endfor %}", TEXT),
    ],
)  # fmt: skip
def test_a_runaway_template_is_stopped_by_the_budget_wherever_it_renders(
    course: Course, settings: Settings, template: str, says: str
) -> None:
    templates = with_subject(template).with_file("_base/turns.txt", "{% for i in range(60000) %}{% endfor %}Hi")
    renderer = Renderer(course, settings, templates.with_file("_base/long.txt", "y" * 10000))
    started = time.monotonic()
    with pytest.raises(TemplateError) as stopped:
        renderer.render("welcome", SAMPLE)  # what the studio's list and a worker's full render run
    assert time.monotonic() - started < 10
    assert stopped.value.file == "subject.txt"
    assert says in stopped.value.message, stopped.value.message


def test_a_template_that_passed_the_check_cannot_run_away_for_another_reader_in_the_worker(
    course: Course, settings: Settings
) -> None:
    """The check renders for a sample reader; a worker renders for each reader. A loop that only one
    reader's name sets off is stopped by the budget there, and the worker retries the delivery later."""
    runaway = "{% for i in range(3000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}"
    templates = with_subject(
        "{% if subscriber.first_name == 'Mallory' %}" + runaway + "{% endif %}Welcome to {{ course.title }}"
    )
    assert check(templates, course, settings) == []
    preparer = Preparer(Renderer(course, settings, templates))  # what workers/engine.py sends with
    assert preparer.render("welcome", SAMPLE).subject.startswith("Welcome")
    started = time.monotonic()
    with pytest.raises(TemplateError, match=STEPS):
        preparer.render("welcome", MALLORY)
    assert time.monotonic() - started < 10


def test_every_render_has_a_budget_of_its_own(course: Course, settings: Settings) -> None:
    """Most of the budget, spent by each of many renders in a row."""
    renderer = Renderer(course, settings, with_subject("{% for i in range(80000) %}{% endfor %}Hi"))
    for _ in range(3):
        assert renderer.render("welcome", SAMPLE).subject == "Hi"


def test_the_shipped_emails_render_on_a_twentieth_of_the_budget(
    course: Course, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget is far above what a real email asks for (about 700 steps and 150,000 characters)."""
    monkeypatch.setattr(compiler, "MAX_STEPS", MAX_STEPS // 20)
    monkeypatch.setattr(compiler, "MAX_TEXT", MAX_TEXT // 20)
    monkeypatch.setattr(compiler, "MAX_VALUE", MAX_VALUE // 20)
    renderer = Renderer(course, settings)
    readers = [SAMPLE, MALLORY, Recipient(3, "sam@example.com", None, None, {"warning-signs": "significant"})]
    for email in renderer.email_names():
        for reader in readers:
            assert renderer.render(email, reader).html
