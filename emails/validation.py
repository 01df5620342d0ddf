"""What a set of templates must pass before it is saved or published (:func:`check`), and what each email
says with it (:func:`contents`, how the insights tell which publications changed an email). Both run in
the sandbox's limited child (emails/sandbox.py), never in the web app's process.
"""

from __future__ import annotations

import dataclasses
import hashlib

import jinja2

from course.curriculum import Course
from course.settings import Settings
from emails.checks import content_problems, typed_links, words_link_problems
from emails.compiler import TemplateError, TemplateSet
from emails.rendering import SAMPLE, Renderer
from emails.variables import first_use, unknown_variables


def check(templates: TemplateSet, course: Course, settings: Settings) -> list[TemplateError]:
    """Every problem that would stop an email of the course from being sent with these templates."""
    try:
        renderer = Renderer(course, settings, templates)
    except TemplateError as error:  # the wording does not read: nothing can render
        return [error]
    problems = words_link_problems(templates.files, str(settings.base_url))
    said = typed_links(templates.files)
    for email in renderer.email_names():
        try:
            unknown = unknown_variables(templates, email)
        except (KeyError, ValueError, jinja2.TemplateError):
            unknown = {}  # a missing file or a syntax error: rendering below names it, with its line
        for file, names in unknown.items():
            for name in sorted(names):
                line = first_use(templates, email, file, name)
                problems.append(TemplateError(email, file, f"unknown variable: {name}", line))
        try:
            context = renderer.context(email, SAMPLE)
            rendered = renderer.render_with(email, context)
        except TemplateError as error:
            named = {f"undefined: '{name}' is undefined" for names in unknown.values() for name in names}
            if error.message not in named:  # not said twice: the unknown variable is named above, with its line
                problems.append(error)
        except (RecursionError, OverflowError, ArithmeticError, TypeError, ValueError) as error:
            # What the sandbox stops (a range too large, a template that includes itself) or a value
            # the template cannot work with: the email would never send.
            problems.append(
                TemplateError(
                    email,
                    "",
                    "it cannot be rendered: a loop or include without end, or a "
                    f"value it cannot work with ({type(error).__name__})",
                )
            )
        else:
            problems += content_problems(rendered, context, str(settings.base_url), said)
    return problems


def contents(templates: TemplateSet, course: Course, settings: Settings) -> dict[str, str]:
    """What each email of the course says with these templates, as a digest per email: its subject,
    preview line, text and HTML, rendered for a sample reader with each answer the course can record
    (none, and every band of every checklist), their links and address left as stand-ins. Two template
    sets give an email the same digest when no reader could tell its two versions apart: the insights
    split an email only by the publications that changed it (``TemplatePublication.changed``)."""
    renderer = Renderer(course, settings, templates)
    answers: list[dict[str, str]] = [{}]
    answers += [{key: band.key} for key, checklist in renderer.course.checklists.items() for band in checklist.bands]
    found = {}
    for email in renderer.email_names():
        digest = hashlib.sha256()
        stand_ins = {key: f"[{key}]" for key in renderer.reader_values(email, SAMPLE)}
        for given in answers:
            reader = dataclasses.replace(SAMPLE, answers=given)
            rendered = renderer.render_with(email, renderer.context(email, reader, stand_ins))
            for part in (rendered.subject, rendered.preview, rendered.text, rendered.html):
                digest.update(part.encode() + b"\0")
        found[email] = digest.hexdigest()[:32]
    return found
