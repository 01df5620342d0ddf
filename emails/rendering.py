"""Render one course email for one subscriber: a one-line subject, a plain-text part and an HTML part.

The course data is dumped to plain dicts once per renderer; per subscriber only the links (signed
tokens) and the greeting change. Every link is absolute, on BASE_URL.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.sandbox import MAX_RANGE

from course.catalog import course_from_files
from course.curriculum import CONTENT_KINDS, Course, CourseStep, Day, Letter
from course.lifecycle import EmailKind
from course.links import LinkSigner, Purpose
from course.settings import Settings
from emails.compiler import CompiledEmail, TemplateError, TemplateSet, compile_email, default_templates
from emails.markup import fill_first_name, plain

# The web page a letter's ``page`` is published at (web/pages.py serves it).
PAGE_PATH = "/about"
# Where the app serves the images uploaded in the studio (web/media.py).
MEDIA_PATH = "/media"
# Which of the reader's links each button opens, and its words when the marketer wrote none (a guide's
# button opens its guide, in the guide's own words).
_BUTTON_LINKS = {"done": "exercise_done", "consultation": "consultation", "about": "page"}
_BUTTON_WORDS = {"done": "I did today's exercise", "about": "Read more"}


def tint(colour: str, share: float = 0.08) -> str:
    """The accent as a pale wash (``share`` of it on white): the exercise box's background."""
    channels = [int(colour[index : index + 2], 16) for index in (1, 3, 5)]
    return "#" + "".join(f"{round(channel * share + 255 * (1 - share)):02x}" for channel in channels)


def _template_data(course: Course) -> dict[str, Any]:
    """The course as the templates see it: its data, and for layouts written before emails had bodies, the
    parts those layouts name (a day's ``teaching`` and ``exercise``, a letter's ``blocks`` and ``after``)."""
    data = course.model_dump(mode="json")
    for model, day in zip(course.days, data["days"], strict=True):
        day["teaching"] = _before_and_after(day["body"], "exercise")[0]
        day["exercise"] = next((part for part in day["body"] if part["kind"] == "exercise"), None)
        day["checklist"], day["resources"] = model.checklist, model.resources
    for name in (EmailKind.CONFIRMATION.value, EmailKind.WELCOME.value, EmailKind.COMPLETION.value):
        letter, model = data[name], getattr(course, name)
        letter["blocks"], letter["after"] = _before_and_after(letter["body"], "checklist")
        letter["checklist"], letter["resources"] = model.checklist, model.resources
    return data


def _before_and_after(body: list[dict[str, Any]], kind: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The text blocks before the body's first ``kind`` of block, and those after it."""
    index = next((index for index, part in enumerate(body) if part["kind"] == kind), len(body))
    words = [part for part in body if part["kind"] in CONTENT_KINDS]
    before = [part for part in body[:index] if part["kind"] in CONTENT_KINDS]
    return before or words[:1], [part for part in body[index + 1 :] if part["kind"] in CONTENT_KINDS]


def email_names(course: Course) -> list[str]:
    """Every email of the course in the order a subscriber meets them, then the one sent on request."""
    return [EmailKind.CONFIRMATION] + [step.email for step in course.steps] + [EmailKind.PREFERENCES_LINK]


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    first_name: str | None = None
    # For a confirmation: the sign-up request its link confirms.
    signup_request_id: int | None = None
    # Their latest answer to each checklist so far, by checklist: {"warning-signs": "significant"}.
    answers: Mapping[str, str] = field(default_factory=dict)
    # Which time through the course the email belongs to: its links say so (course/links.py). None: a
    # preview's sample reader.
    enrolment: int | None = None


# The reader of previews and checks: no real person, no answers yet.
SAMPLE = Recipient(subscriber_id=0, email="sample@example.com", first_name="Sam", signup_request_id=0)


@dataclass(frozen=True)
class RenderedEmail:
    email: str  # the template folder, e.g. "day-03"
    step: int | None  # the course step; None for the confirmation
    template_version: str
    subject: str
    text: str
    html: str
    unsubscribe_url: str
    preview: str = ""  # the inbox preview line


class Renderer:
    """Renders a course's emails with one template set; build one per process and reuse it."""

    def __init__(self, course: Course, settings: Settings, templates: TemplateSet | None = None) -> None:
        self.templates = templates or default_templates()
        # The course as these templates publish it (its _course.yaml, else as given), with its emails'
        # own files over its content (TemplateError if one is broken).
        self.course = course_from_files(self.templates.files, course)
        self.settings = settings
        self.signer = LinkSigner(settings.secret_key, str(settings.base_url))
        self._course_data = _template_data(self.course)
        logo = self.course.theme.logo
        logo_url = f"{str(settings.base_url).rstrip('/')}{MEDIA_PATH}/{logo}" if logo else None
        self._theme = {**self._course_data["theme"], "tint": tint(self.course.theme.accent), "logo_url": logo_url}
        self._steps = {step.email: step for step in self.course.steps}
        self._days = {day["number"]: day for day in self._course_data["days"]}

    def email_names(self) -> list[str]:
        return email_names(self.course)

    def render(self, email: str, recipient: Recipient) -> RenderedEmail:
        return self.render_with(email, self.context(email, recipient))

    def render_with(self, email: str, context: dict[str, Any]) -> RenderedEmail:
        """Render with a context made by :meth:`context` (its signed links are stamped with the time,
        so a check that compares the email with its links must use the very same context)."""
        compiled = compile_email(self.templates, email)
        subject = _render(compiled.subject, context, email, "subject.txt", compiled)
        subject = " ".join(subject.split())
        if not subject:
            raise TemplateError(email, "subject.txt", "the subject is empty")
        context["subject"] = subject
        text = _tidy_text(_render(compiled.text, context, email, "body.txt", compiled))
        html = _render(compiled.html, context, email, "body.mjml", compiled)
        # The words' first-name tag, filled in last: a name is never read as markup or as a template.
        name = context["subscriber"]["first_name"]
        return RenderedEmail(
            email=email,
            step=context["step"]["number"],
            template_version=compiled.version,
            subject=fill_first_name(subject, name, html=False),
            text=fill_first_name(text, name, html=False),
            html=fill_first_name(html, name, html=True),
            unsubscribe_url=context["links"]["unsubscribe"],
            preview=fill_first_name(str(context.get("preview") or ""), None, html=False),  # a summary: no one's name
        )

    def _answers(self, answers: Mapping[str, str]) -> dict[str, Any]:
        """The reader's answers so far, each as its band (key, label, title, meaning, next step)."""
        found: dict[str, Any] = {}
        for key, band_key in answers.items():
            checklist = self._course_data["checklists"].get(key)
            band = next((band for band in checklist["bands"] if band["key"] == band_key), None) if checklist else None
            if band is not None:  # an answer to a checklist or band the course no longer has: none
                found[key] = {**band, "checklist": key}
        return found

    def context(self, email: str, recipient: Recipient, values: Mapping[str, str] | None = None) -> dict[str, Any]:
        """What the templates see. ``values``: the reader's own values (see :meth:`reader_values`);
        :meth:`prepare` passes stand-ins for them."""
        if values is None:
            values = self.reader_values(email, recipient)
        course = self._course_data
        links: dict[str, str | None] = {
            key.removeprefix("links."): value for key, value in values.items() if key.startswith("links.")
        }
        links["page"] = self._page_url() if self.course.welcome.page is not None else None
        first_name = values.get("first_name") if recipient.first_name else recipient.first_name
        context: dict[str, Any] = {
            "course": course,
            "theme": self._theme,
            "subscriber": {"first_name": first_name, "email": values["email"]},
            "postal_address": self.settings.practice_postal_address,
            "links": links,
            "day": None,
            "category": None,
            "letter": None,
            "checklist": None,
            "resources": [],
            "faq": [],
            "answers": {},
            "consultation": None,
        }
        if email == EmailKind.CONFIRMATION:
            context["step"] = {"number": None, "kind": EmailKind.CONFIRMATION.value, "email": email}
            context["letter"] = course[EmailKind.CONFIRMATION.value]
            context["preview"] = course[EmailKind.CONFIRMATION.value]["preview"]
            context["body"] = self._body(context["letter"]["body"], links, [])
            return context
        if email == EmailKind.PREFERENCES_LINK:
            context["step"] = {"number": None, "kind": EmailKind.PREFERENCES_LINK.value, "email": email}
            context["preview"] = "The link you asked for: your course settings and your data."
            return context

        step = self._step(email)
        context["answers"] = self._answers(recipient.answers)
        number = step.number
        model: Letter | Day
        if step.day_number is not None:
            model, day = self.course.day(step.day_number), self._days[step.day_number]
            source = day
            context["step"] = {"number": number, "kind": "day", "email": email}
            context["day"] = day
            context["category"] = next((c for c in course["categories"] if c["key"] == day["category"]), None)
            context["preview"] = day["preview"] or plain(model.first_words)
        else:
            model, source = getattr(self.course, email), course[email]
            context["step"] = {"number": number, "kind": email, "email": email}
            context["letter"] = source
            context["preview"] = source["preview"]
        context["consultation"] = self._consultation(model, context["answers"])
        shown_in = step.day_number if step.day_number is not None else email
        # A letter with a web page leaves its questions to the page (see course.curriculum.Page).
        context["faq"] = [] if source.get("page") else [e for e in course["faq"] if e["shown_in"] == shown_in]
        context["resources"] = [
            {**course["resources"][key], "key": key, "url": values[f"resources.{key}"]} for key in model.resources
        ]
        if step.checklist is not None:
            checklist = course["checklists"][step.checklist]
            context["checklist"] = {
                **checklist,
                "page_url": values["checklist"],
                "bands": [{**band, "url": values[f"checklist.{band['key']}"]} for band in checklist["bands"]],
            }
        context["body"] = self._body(source["body"], links, context["resources"])
        return context

    def _body(self, body: list[dict[str, Any]], links: Mapping[str, str | None],
              guides: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
        """The body's blocks as the layouts show them: each button with its address and words, each image
        with its address, each guides block with its guides."""
        by_key = {guide["key"]: guide for guide in guides}
        shown = []
        for part in body:
            kind = part["kind"]
            if kind == "button":
                action = part["action"]
                guide = by_key.get(part.get("guide") or "")
                href = guide["url"] if guide else links.get(_BUTTON_LINKS.get(action, ""))
                text = part.get("label") or (guide["call_to_action"] if guide else self._button_words(action))
                part = {**part, "href": href or "", "text": text}
            elif kind == "guides":
                part = {**part, "items": [by_key[key] for key in part["guides"] if key in by_key]}
            elif kind == "image":
                part = {**part, "src": f"{str(self.settings.base_url).rstrip('/')}{MEDIA_PATH}/{part['file']}"}
            shown.append(part)
        return shown

    def _button_words(self, action: str) -> str:
        """A button's words when the marketer wrote none: what it does, in the course's own words."""
        if action == "consultation":
            return self.course.practice.consultation_button
        if action == "about" and self.course.welcome.page is not None:
            return self.course.welcome.page.link
        return _BUTTON_WORDS.get(action, "Open")

    def _page_url(self) -> str:
        """Where the welcome's web page is: /about for the deployment's first course, else under its own page."""
        base = str(self.settings.base_url).rstrip("/")
        own = self.course.slug == self.settings.course_slug
        return base + (PAGE_PATH if own else f"/c/{self.course.slug}{PAGE_PATH}")

    @staticmethod
    def _consultation(email: Letter | Day, answers: Mapping[str, Any]) -> str:
        """How the call to book shows: "leads" (the email's body holds it, a box or a button), "suggested" (a
        box after the body, after an answer that suggests it), or "quiet" (a line under the signature)."""
        if email.consultation_leads:
            return "leads"
        if any(answer.get("suggests_consultation") for answer in answers.values()):
            return "suggested"
        return "quiet"

    def _step(self, email: str) -> CourseStep:
        step = self._steps.get(email)
        if step is None:
            raise TemplateError(email, "", f"{self.course.slug} has no email called {email!r}")
        return step

    def reader_values(self, email: str, recipient: Recipient) -> dict[str, str]:
        """Everything in an email that is the reader's own: their name and address, and each signed link
        (``links.unsubscribe``, ``resources.<key>``, ``checklist`` and ``checklist.<band>``). The rest of
        the email is the same for every reader who has the same answers."""
        sign = self.signer.url
        reader = recipient.subscriber_id
        values = {"email": recipient.email, "links.preferences": sign(Purpose.PREFERENCES, reader)}
        if recipient.first_name:
            values["first_name"] = recipient.first_name
        if email == EmailKind.CONFIRMATION:
            request = None if recipient.signup_request_id is None else str(recipient.signup_request_id)
            values["links.confirm"] = sign(Purpose.CONFIRM, reader, None, request)
            values["links.unsubscribe"] = sign(Purpose.UNSUBSCRIBE, reader)
            return values
        if email == EmailKind.PREFERENCES_LINK:
            values["links.unsubscribe"] = sign(Purpose.UNSUBSCRIBE, reader)
            values["links.data"] = sign(Purpose.DATA, reader)  # only in the email that answers a request
            return values
        step = self._step(email)
        number, enrolment = step.number, recipient.enrolment

        def sign_step(purpose: Purpose, value: str | None = None) -> str:
            return sign(purpose, reader, number, value, enrolment)

        values["links.unsubscribe"] = sign_step(Purpose.UNSUBSCRIBE)
        values["links.consultation"] = sign_step(Purpose.CONSULTATION)
        if step.day_number is not None:
            values["links.exercise_done"] = sign_step(Purpose.EXERCISE_DONE)
            model: Letter | Day = self.course.day(step.day_number)
        else:
            model = getattr(self.course, email)
        for key in model.resources:
            values[f"resources.{key}"] = sign_step(Purpose.RESOURCE, key)
        if step.checklist is not None:
            values["checklist"] = sign_step(Purpose.ANSWER)
            for band in self._course_data["checklists"][step.checklist]["bands"]:
                values[f"checklist.{band['key']}"] = sign_step(Purpose.ANSWER, band["key"])
        return values


def _render(
    template: jinja2.Template, context: dict[str, Any], email: str, file: str, compiled: CompiledEmail | None = None
) -> str:
    """A template rendered; its mistakes as a TemplateError in plain words, with the line where it can be found."""
    try:
        return template.render(context)
    except jinja2.UndefinedError as error:
        raise TemplateError(email, file, f"undefined: {error.message}", _line(error, file, compiled)) from None
    except jinja2.TemplateError as error:
        raise TemplateError(email, file, f"Jinja: {error.message}", _line(error, file, compiled)) from None
    except OverflowError as error:  # the sandbox's range() limit
        raise TemplateError(email, file, f"a loop over more than {MAX_RANGE:,} steps (the most an email may take)",
                            _line(error, file, compiled)) from None  # fmt: skip
    except RecursionError:
        raise TemplateError(email, file, "a macro or include that calls itself without end") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as error:
        raise TemplateError(email, file, f"it cannot be worked out ({_said(error)})",
                            _line(error, file, compiled)) from None  # fmt: skip


def _said(error: Exception) -> str:
    words = {ZeroDivisionError: "a division by zero", TypeError: "a value of the wrong kind",
             KeyError: "no such key", IndexError: "no such item in a list"}  # fmt: skip
    return next((said for kind, said in words.items() if isinstance(error, kind)), type(error).__name__)


_EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")


def _line(error: BaseException, file: str, compiled: CompiledEmail | None) -> int | None:
    """The line of the file as written where a render failed: Jinja maps its frames to the template's lines;
    for body.mjml those are lines of MJML's output, found in the file by the Jinja they hold."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == "<template>"]
    if not lines or lines[-1] is None:
        return None
    line = lines[-1]
    if file != "body.mjml" or compiled is None:
        return line
    html_lines = compiled.html_source.splitlines()
    if not 0 < line <= len(html_lines):
        return None
    for expression in _EXPRESSION.findall(html_lines[line - 1]):
        if compiled.mjml_source.count(expression) == 1:
            return compiled.mjml_source[: compiled.mjml_source.index(expression)].count("\n") + 1
    return None


_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


def _tidy_text(text: str) -> str:
    # Jinja's block tags leave stray blank lines; a reader wants at most one between paragraphs.
    # The signature separator "-- " keeps its space (RFC 3676), so it is restored after stripping.
    text = _TRAILING_SPACE.sub("", text).replace("\n--\n", "\n-- \n")
    return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"
