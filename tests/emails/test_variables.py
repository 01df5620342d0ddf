"""The variables a template may use: the documented contract and the renderer's context agree, and a
template that reads a variable its email does not have is caught before rendering."""

from __future__ import annotations

from typing import Any

import pytest

from course.lifecycle import EmailKind, kind_of
from emails.compiler import default_templates
from emails.rendering import Renderer
from emails.variables import unknown_variables, variables_for

from .conftest import ALEX

# The dicts whose keys the contract lists one by one; deeper data (day.exercise.blocks...) is the course's.
LISTED_ONE_BY_ONE = ("links", "subscriber", "step")


def context_of(renderer: Renderer, email: str) -> dict[str, Any]:
    context = renderer.context(email, ALEX)
    context["subject"] = "(the rendered subject)"  # added by render() before the bodies
    return context


def resolve(context: dict[str, Any], name: str) -> Any:
    value: Any = context
    for part in name.split("."):
        value = value[part]
    return value


def present(context: dict[str, Any]) -> set[str]:
    """The names a template can really use: top-level values that are not None, and the listed dicts' keys."""
    names = {key for key, value in context.items() if value is not None}
    for parent in LISTED_ONE_BY_ONE:
        names |= {f"{parent}.{key}" for key in context[parent]}
    return names


@pytest.mark.parametrize("email", ["confirmation", "welcome", "day-01", "day-18", "completion", "preferences-link"])
def test_the_contract_lists_exactly_what_the_renderer_gives(renderer: Renderer, email: str) -> None:
    context = context_of(renderer, email)
    documented = variables_for(email)
    listed = {v.name for v in documented if "." not in v.name or v.name.split(".")[0] in LISTED_ONE_BY_ONE}
    # Everything the renderer gives is documented for this email...
    assert present(context) <= listed, present(context) - listed
    # ...and everything documented is there (KeyError if not); only an optional one may be empty or none.
    for variable in documented:
        value = resolve(context, variable.name)
        assert variable.optional or value is not None or "none" in variable.type, variable.name


def test_every_email_has_a_kind_and_every_kind_has_the_required_links(renderer: Renderer) -> None:
    for email in renderer.email_names():
        names = {variable.name for variable in variables_for(email)}
        assert {"links.unsubscribe", "links.preferences", "postal_address"} <= names, email
    assert kind_of("day-07") is EmailKind.DAY and kind_of("welcome") is EmailKind.WELCOME
    assert "links.exercise_done" in {v.name for v in variables_for("day-03")}
    assert "links.exercise_done" not in {v.name for v in variables_for("welcome")}


def test_the_templates_read_only_their_emails_variables(renderer: Renderer) -> None:
    templates = default_templates()
    for email in renderer.email_names():
        assert unknown_variables(templates, email) == {"subject.txt": set(), "body.mjml": set(), "body.txt": set()}


def test_a_typo_or_another_emails_variable_is_named_with_its_file() -> None:
    edited = default_templates().with_file("day-03/subject.txt", "Day {{ day.number }}: {{ letter.title }} {{ dya }}")
    assert unknown_variables(edited, "day-03")["subject.txt"] == {"letter", "dya"}
    # A shared section used by every email may not read a day's variable.
    footer = default_templates().source("_base/footer.mjml") + "{{ day.title }}"
    shared = default_templates().with_file("_base/footer.mjml", footer)
    assert unknown_variables(shared, "welcome")["body.mjml"] == {"day"}
    assert unknown_variables(shared, "day-02")["body.mjml"] == set()
    # The subject is not known while the subject itself is rendered.
    selfish = default_templates().with_file("welcome/subject.txt", "{{ subject }}")
    assert unknown_variables(selfish, "welcome")["subject.txt"] == {"subject"}
