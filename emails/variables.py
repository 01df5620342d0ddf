"""What a template may use: the variables :class:`emails.rendering.Renderer` gives each kind of email.

This is the contract between the templates (which marketers edit in the studio) and the code that
renders them. The studio lists :func:`variables_for` an email beside its editor, and validation refuses
a template that names a top-level variable its email does not have (:func:`unknown_variables`), before
any subscriber could get a blank. ``tests/emails/test_variables.py`` keeps this list and the renderer's
context in step, in both directions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Environment, meta, nodes

from course.lifecycle import EmailKind, kind_of
from emails.compiler import EMAIL_FILES, TemplateSet, environments, kept, resolve_includes

ALL = frozenset(EmailKind)
COURSE_STEPS = frozenset({EmailKind.WELCOME, EmailKind.DAY, EmailKind.COMPLETION})
LETTERS = frozenset({EmailKind.CONFIRMATION, EmailKind.WELCOME, EmailKind.COMPLETION})
CONFIRMATION = frozenset({EmailKind.CONFIRMATION})
DAYS = frozenset({EmailKind.DAY})
COURSE_LETTERS = frozenset({EmailKind.WELCOME, EmailKind.COMPLETION})


@dataclass(frozen=True)
class Variable:
    name: str  # as a template writes it: "links.unsubscribe"
    type: str  # in a reader's words: "text", "link", "list of ..."
    meaning: str
    emails: frozenset[EmailKind] = ALL
    # Defined for these emails but may be empty or none for some of them (a day without a checklist).
    optional: bool = False


VARIABLES: tuple[Variable, ...] = (
    # --- Everywhere ---
    Variable("course", "the course", "The course's data: its title, practice, categories, days, checklists and FAQ."),
    Variable("course.title", "text", "The course's name, as in every subject and header."),
    Variable("course.practice", "the practice", "The practice's name, tagline, consultation wording and author."),
    Variable("course.days", "list of days", "Every day of the course, in order (course.days | length is 18)."),
    Variable(
        "theme",
        "the course's look",
        "Its colours (accent, background, text; tint: the accent as a pale "
        "wash) and font stack, as the studio sets them: theme.accent, theme.font; its logo's address "
        "(theme.logo_url, none without one) and words (theme.logo_alt).",
    ),
    Variable("subscriber", "the reader", "Who the email is for."),
    Variable("subscriber.first_name", "text or none", "The first name they gave, if any: greet without it."),
    Variable("subscriber.email", "email address", "The address the email goes to."),
    Variable("postal_address", "text", "The practice's postal address, required in every footer."),
    Variable("links", "links", "The reader's own signed links; never build a link by hand."),
    Variable("links.unsubscribe", "link", "Stops every email at once (required in all but the confirmation)."),
    Variable("links.preferences", "link", "Their settings: pause, time (required in all but the confirmation)."),
    Variable(
        "links.data",
        "link",
        "Download or delete their data: for an hour, once (required where it is defined).",
        frozenset({EmailKind.PREFERENCES_LINK}),
    ),
    Variable("step", "the email", "Which email this is."),
    Variable("step.kind", "text", "confirmation, welcome, day, completion or preferences-link."),
    Variable("step.email", "text", "The email's name: confirmation, welcome, day-01 ... day-18, completion."),
    Variable("step.number", "number or none", "Who the email is: 0 the welcome, a day's number, the completion's."),
    Variable("preview", "text", "The inbox preview line."),
    Variable("subject", "text", "The rendered subject (in the bodies only, not in subject.txt)."),
    Variable(
        "body",
        "list of blocks",
        "The email's body in order (_base/body.mjml shows it): text blocks, the exercise, the checklist, buttons "
        "(each with href and text), the call to book, guides (items), images (src, alt, width), dividers.",
        COURSE_STEPS | CONFIRMATION,
    ),
    Variable("faq", "list of questions", "The course's questions answered in this email.", optional=True),
    Variable("resources", "list of resources", "This email's guides and quizzes, with signed links.", optional=True),
    Variable(
        "consultation",
        "text or none",
        'How the call to book shows: "leads" (the body holds it: a box or a button), "suggested" (a box after the '
        'body: the reader\'s answers suggest it) or "quiet" (a line under the signature). None in the '
        "confirmation and the settings link.",
        optional=True,
    ),
    # --- The course's steps ---
    Variable("links.consultation", "link", "Books the free consultation.", COURSE_STEPS),
    # --- Letters (not a day) ---
    Variable("letter", "the letter", "The letter's wording from the course: its preview and blocks.", LETTERS),
    Variable("letter.subject", "text or none", "The letter's own subject; none: the layout's.", LETTERS),
    Variable("letter.body", "list of blocks", "The letter's blocks as the course holds them (see body).", LETTERS),
    Variable("letter.blocks", "list of blocks", "Its text blocks before the checklist (older layouts).", LETTERS),
    Variable(
        "letter.after", "list of blocks", "Its text blocks after the checklist (older layouts).", LETTERS, optional=True
    ),
    Variable("letter.page", "the page or none", "A web page for the longer read: its title and link words.", LETTERS),
    Variable("links.page", "link or none", "Opens the course's web page (none: it has none)."),
    # --- The confirmation ---
    Variable("links.confirm", "link", "Opens the page that confirms the subscription.", CONFIRMATION),
    # --- A course day ---
    Variable("day", "the day", "Today's strategy: number, title, body, teaser.", DAYS),
    Variable("day.number", "number", "Who the day is (its email is day-NN): it never changes when days move.", DAYS),
    Variable("day.position", "number", 'Its place among the days, 1 the first: what "Day N" says.', DAYS),
    Variable("day.title", "text", "The strategy's title.", DAYS),
    Variable("day.subject", "text or none", "The subject written for the day; none: Day N and the title.", DAYS),
    Variable("day.preview", "text or none", "The preview line written for the day; none: its first words.", DAYS),
    Variable("day.body", "list of blocks", "The day's blocks as the course holds them (see body).", DAYS),
    Variable("day.teaching", "list of blocks", "Its text blocks before the exercise (older layouts).", DAYS),
    Variable("day.exercise", "the exercise or none", "Its exercise: title and blocks (none: it has none).", DAYS),
    Variable("day.teaser", "text", "One line about tomorrow.", DAYS),
    Variable("category", "the category", "The group of ways the day belongs to (title, intro).", DAYS),
    Variable("links.exercise_done", "link", "Marks today's exercise done.", DAYS),
    Variable(
        "answers",
        "answers by checklist",
        "The reader's latest answer to each checklist so far, as its band (key, label, title, meaning): "
        '{% if "warning-signs" in answers and answers["warning-signs"].key == "significant" %}. Empty in the '
        "confirmation and the settings link.",
        optional=True,
    ),
    # --- A checklist (the welcome's baseline, day 18, the completion's retake) ---
    Variable(
        "checklist",
        "the checklist",
        "Its title, prompt, items and score bands, each band with its one-click answer link (band.url).",
        COURSE_STEPS | CONFIRMATION,
        optional=True,
    ),
)
# Names Jinja provides itself, and the macros the shared sections import.
BUILT_INS = frozenset({"range", "loop", "dict", "lipsum", "cycler", "joiner", "namespace", "blocks", "self"})


def variables_for(email: str) -> list[Variable]:
    kind = kind_of(email)
    return [variable for variable in VARIABLES if kind in variable.emails]


def top_level_names(email: str) -> frozenset[str]:
    return frozenset(variable.name for variable in variables_for(email) if "." not in variable.name)


def unknown_variables(templates: TemplateSet, email: str) -> dict[str, set[str]]:
    """For each of the email's files, the top-level names it reads that the email does not have: a
    typo, or another email's variable. Empty sets: all is well.

    A file is read with every template it extends, includes or imports (``_base/layout.txt``); a name
    that any of them sets (``{% set heading = ... %}``) counts as defined. Raises jinja2's
    TemplateSyntaxError, or KeyError for a file that does not exist, as compiling would.
    """
    envs = environments(templates)
    known = top_level_names(email) | BUILT_INS
    found: dict[str, set[str]] = {}
    for file in EMAIL_FILES:
        source = templates.source(templates.email_path(email, file))
        environment = envs.html if file == "body.mjml" else envs.text
        if file == "body.mjml":
            source = resolve_includes(source, templates.source)
        used: set[str] = set()
        assigned: set[str] = set()
        pending, seen = [source], set()
        while pending:
            reads, sets, references = _names(environment, pending.pop())
            used |= reads
            assigned |= sets
            for referenced in references:
                if referenced not in seen:
                    seen.add(referenced)
                    pending.append(templates.source(referenced))
        # The subject is rendered first: only the bodies can use it.
        found[file] = used - assigned - (known - {"subject"} if file == "subject.txt" else known)
    return found


@functools.lru_cache(maxsize=256)
def _names(environment: Environment, source: str) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """What one template source reads, what it sets, and the templates it names. Cached: the days of a
    course share most of their files, so a check of every email would otherwise parse each 18 times; and
    kept on disk for the next check's new process (emails/compiler.py ``kept``)."""
    reads, sets, references = kept(environment, "names", source, lambda: _read_names(environment, source))
    return frozenset(reads), frozenset(sets), tuple(references)


def _read_names(environment: Environment, source: str) -> tuple[list[str], list[str], list[str]]:
    parsed = environment.parse(source)
    targets = [node.target for node in parsed.find_all(nodes.Assign)]
    targets += [node.target for node in parsed.find_all(nodes.AssignBlock)]
    assigned = set()
    for target in targets:
        names = [target] if isinstance(target, nodes.Name) else list(target.find_all(nodes.Name))
        assigned |= {name.name for name in names}
    referenced = [name for name in meta.find_referenced_templates(parsed) if name is not None]
    return sorted(meta.find_undeclared_variables(parsed)), sorted(assigned), referenced


def first_use(templates: TemplateSet, email: str, file: str, name: str) -> int | None:
    """The line of the email's own ``file`` where it first reads the top-level ``name``; None when only a
    file it includes does (the problem then names the email's file, without a line)."""
    envs = environments(templates)
    environment = envs.html if file == "body.mjml" else envs.text
    parsed = environment.parse(templates.source(templates.email_path(email, file)))
    lines = [node.lineno for node in parsed.find_all(nodes.Name) if node.name == name and node.ctx == "load"]
    return min(lines) if lines else None
