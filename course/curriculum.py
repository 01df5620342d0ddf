"""A course is data: this module defines its shape and loads it.

The engine knows nothing about any particular course. Everything a subscriber reads (strategies,
exercises, checklists and their score bands, resources) lives in a YAML file under
``course/curricula/`` and is validated here when it is loaded, so that a typo in the data is an error
at start-up rather than a broken email on day 12.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from course import lifecycle
from course.lifecycle import EmailKind, day_email

CURRICULA_DIR = Path(__file__).parent / "curricula"
DEFAULT_COURSE_SLUG = "building-emotional-intimacy"


class _Data(BaseModel):
    # Unknown keys are typos, not extensions: refuse them. Frozen so a render cannot alter the course.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Content blocks -------------------------------------------------------------------------------
# Strategy text, exercises and letters are lists of blocks. Templates render each kind the same way
# everywhere, so a new course needs new data, not new templates.


class _Block(_Data):
    title: str | None = None
    intro: str | None = None
    outro: str | None = None


class TextBlock(_Block):
    kind: Literal["text"] = "text"
    paragraphs: list[str] = Field(min_length=1)


class ListBlock(_Block):
    kind: Literal["list"] = "list"
    items: list[str] = Field(min_length=1)
    numbered: bool = False


# A worked example's verdict: a good answer, a bad one, or neither. Templates mark each by a sign, a word
# and a shape, never by colour alone.
Tone = Literal["good", "bad"]


class Row(_Data):
    label: str
    text: str
    tone: Tone | None = None


class LabelledBlock(_Block):
    """Rows of "label: text", such as the conversation starters or what intimacy requires."""

    kind: Literal["labelled"] = "labelled"
    rows: list[Row] = Field(min_length=1)


class Card(_Data):
    title: str
    rows: list[Row] = Field(min_length=1)


class CardsBlock(_Block):
    """Worked examples, each a card of labelled rows (a bid and the three ways to answer it)."""

    kind: Literal["cards"] = "cards"
    cards: list[Card] = Field(min_length=1)


class Group(_Data):
    title: str
    items: list[str] = Field(min_length=1)
    tone: Tone | None = None


class GroupsBlock(_Block):
    """Titled lists side by side: the love map's four areas, do / do not."""

    kind: Literal["groups"] = "groups"
    groups: list[Group] = Field(min_length=1)


class Step(_Data):
    title: str
    text: str


class StepsBlock(_Block):
    """A numbered process whose steps each have a name, such as the post-conflict repair."""

    kind: Literal["steps"] = "steps"
    steps: list[Step] = Field(min_length=1)


class QuoteBlock(_Block):
    kind: Literal["quote"] = "quote"
    text: str
    attribution: str


class CalloutBlock(_Block):
    """A short set-apart note: a formula, a pro tip, a research finding."""

    kind: Literal["callout"] = "callout"
    text: str


class Figure(_Data):
    value: str
    text: str


class FiguresBlock(_Block):
    """Research figures; ``source`` names the sources (templates write the "Sources:" label)."""

    kind: Literal["figures"] = "figures"
    figures: list[Figure] = Field(min_length=1)
    source: str


Block = Annotated[
    TextBlock
    | ListBlock
    | LabelledBlock
    | CardsBlock
    | GroupsBlock
    | StepsBlock
    | QuoteBlock
    | CalloutBlock
    | FiguresBlock,
    Field(discriminator="kind"),
]


# --- Checklists -----------------------------------------------------------------------------------


class ChecklistItem(_Data):
    text: str
    detail: str | None = None


class ScoreBand(_Data):
    """What a score from ``min`` to ``max`` checked items means (``max`` None: and above)."""

    key: str = Field(pattern=r"^[a-z0-9-]+$")
    min: int = Field(ge=0)
    max: int | None = None
    label: str
    title: str
    meaning: str
    next_step: str
    # An answer in this band makes the free consultation the reader's natural next step: the emails
    # after it show the consultation as a full block rather than a quiet line.
    suggests_consultation: bool = False

    def contains(self, score: int) -> bool:
        return self.min <= score and (self.max is None or score <= self.max)


class Checklist(_Data):
    key: str
    title: str
    prompt: str
    items: list[ChecklistItem] = Field(min_length=1)
    bands: list[ScoreBand] = Field(min_length=2)

    @model_validator(mode="after")
    def _bands_cover_every_score(self) -> Checklist:
        # Every possible score 0..len(items) must fall in exactly one band, else a subscriber's
        # answer link would lead nowhere.
        expected_min = 0
        for position, band in enumerate(self.bands):
            if band.min != expected_min:
                raise ValueError(
                    f"checklist {self.key!r}: band {band.key!r} starts at {band.min}, expected {expected_min}"
                )
            last = position == len(self.bands) - 1
            if band.max is None:
                if not last:
                    raise ValueError(f"checklist {self.key!r}: only the last band may be open-ended")
            else:
                if band.max < band.min:
                    raise ValueError(f"checklist {self.key!r}: band {band.key!r} ends before it starts")
                expected_min = band.max + 1
        if self.bands[-1].max is not None and self.bands[-1].max < len(self.items):
            raise ValueError(f"checklist {self.key!r}: no band for a score of {len(self.items)}")
        if len({band.key for band in self.bands}) != len(self.bands):
            raise ValueError(f"checklist {self.key!r}: band keys repeat")
        return self

    def band(self, key: str) -> ScoreBand | None:
        return next((band for band in self.bands if band.key == key), None)

    def band_for_score(self, score: int) -> ScoreBand:
        if not 0 <= score <= len(self.items):
            raise ValueError(f"a score for {self.key!r} is between 0 and {len(self.items)}, not {score}")
        return next(band for band in self.bands if band.contains(score))


# --- The course -----------------------------------------------------------------------------------


class Resource(_Data):
    """A quiz or guide of the practice's. ``url`` is a default; operators override it (RESOURCE_URLS)."""

    title: str
    description: str
    url: HttpUrl
    call_to_action: str


class Category(_Data):
    key: str
    title: str
    short_title: str
    first_day: int
    last_day: int
    intro: str


class Exercise(_Data):
    title: str
    blocks: list[Block] = Field(min_length=1)


class Day(_Data):
    number: int = Field(ge=1)
    category: str
    title: str
    short_title: str  # as the seed's quick reference names it
    subject: str | None = None  # the email's subject; none: "Day N: title"
    preview: str | None = None  # the inbox preview line; none: the teaching's first sentences
    teaching: list[Block] = Field(min_length=1)
    exercise: Exercise
    checklist: str | None = None
    resources: list[str] = []
    teaser: str  # one line about tomorrow
    # The day's main action is booking the consultation (the exercise's button becomes the second).
    consultation_leads: bool = False


class Page(_Data):
    """The welcome's web page (``/about``), for what is worth reading but too long for an inbox. It also
    answers the course's questions meant for the welcome (``shown_in``) and those meant for no email;
    the welcome then leaves them out."""

    title: str
    link: str  # the words of the email's link to it
    blocks: list[Block] = Field(min_length=1)


class Letter(_Data):
    """An email that is not a course day: the confirmation, the welcome, the completion."""

    preview: str  # the inbox preview line
    blocks: list[Block] = Field(min_length=1)
    # Blocks after the checklist (the welcome's "how this course works"), so the checklist comes first.
    after: list[Block] = []
    checklist: str | None = None
    resources: list[str] = []
    consultation_leads: bool = False
    page: Page | None = None


class Question(_Data):
    question: str
    answer: str
    # Where the question is also answered inside the course: "welcome", "completion" or a day number.
    shown_in: str | int | None = None


class Practice(_Data):
    name: str
    tagline: str
    areas_served: str
    sessions: str
    consultation_title: str
    consultation_text: str
    consultation_button: str
    # The quiet form of the call, a line under the signature on days when the exercise is the action.
    consultation_note: str
    author: str
    author_credentials: str
    # Who signs the emails, and whom a reply reaches (MAIL_REPLY_TO should be their mailbox).
    signer: str
    signer_role: str


class Course(_Data):
    slug: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    subtitle: str
    sender_name: str
    practice: Practice
    quick_answer: str
    categories: list[Category] = Field(min_length=1)
    checklists: dict[str, Checklist]
    resources: dict[str, Resource]
    confirmation: Letter
    welcome: Letter
    completion: Letter
    key_takeaways: list[str]
    faq: list[Question]
    days: list[Day] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> Course:
        numbers = [day.number for day in self.days]
        if numbers != list(range(1, len(self.days) + 1)):
            raise ValueError(f"days must be numbered 1..{len(self.days)} in order, got {numbers}")
        category_keys = {category.key for category in self.categories}
        for key, checklist in self.checklists.items():
            if checklist.key != key:
                raise ValueError(f"checklist {key!r} carries the key {checklist.key!r}")
        for category in self.categories:
            if not 1 <= category.first_day <= category.last_day <= len(self.days):
                raise ValueError(f"category {category.key!r} spans days that do not exist")
        owners: list[tuple[str, str | None, list[str]]] = [
            (EmailKind.CONFIRMATION.value, self.confirmation.checklist, self.confirmation.resources),
            (EmailKind.WELCOME.value, self.welcome.checklist, self.welcome.resources),
            (EmailKind.COMPLETION.value, self.completion.checklist, self.completion.resources),
        ]
        for day in self.days:
            if day.category not in category_keys:
                raise ValueError(f"day {day.number}: unknown category {day.category!r}")
            category = self.category(day.category)
            if not category.first_day <= day.number <= category.last_day:
                raise ValueError(f"day {day.number} lies outside its category {category.key!r}")
            owners.append((f"day {day.number}", day.checklist, day.resources))
        if self.confirmation.page is not None or self.completion.page is not None:
            raise ValueError("only the welcome has a web page (/about)")
        places = {EmailKind.WELCOME.value, EmailKind.COMPLETION.value, *range(1, len(self.days) + 1)}
        for question in self.faq:
            if question.shown_in is not None and question.shown_in not in places:
                raise ValueError(f"question {question.question!r}: shown_in {question.shown_in!r} is not an email")
        for owner, checklist_key, resource_keys in owners:
            if checklist_key is not None and checklist_key not in self.checklists:
                raise ValueError(f"{owner}: unknown checklist {checklist_key!r}")
            for resource_key in resource_keys:
                if resource_key not in self.resources:
                    raise ValueError(f"{owner}: unknown resource {resource_key!r}")
        return self

    def page_questions(self) -> list[Question]:
        """What the welcome's web page answers: the questions meant for the welcome (which the email then
        leaves to the page) and those meant for no email."""
        return [question for question in self.faq if question.shown_in in (EmailKind.WELCOME.value, None)]

    def category(self, key: str) -> Category:
        return next(category for category in self.categories if category.key == key)

    def day(self, number: int) -> Day:
        if not 1 <= number <= len(self.days):
            raise KeyError(f"{self.slug} has days 1..{len(self.days)}, not {number}")
        return self.days[number - 1]

    @property
    def steps(self) -> list[CourseStep]:
        """What a subscriber receives, in order: the welcome, each day, the completion."""
        last = len(self.days) + 1
        return (
            [CourseStep(number=0, email=EmailKind.WELCOME.value, checklist=self.welcome.checklist)]
            + [CourseStep(number=day.number, email=day_email(day.number), checklist=day.checklist) for day in self.days]
            + [CourseStep(number=last, email=EmailKind.COMPLETION.value, checklist=self.completion.checklist)]
        )

    def step(self, number: int) -> CourseStep:
        steps = self.steps
        if not 0 <= number < len(steps):
            raise KeyError(f"{self.slug} has steps 0..{len(steps) - 1}, not {number}")
        return steps[number]


class CourseStep(_Data):
    """One email of the sequence. ``number`` is what deliveries and signed links record."""

    number: int
    email: str  # the template folder
    checklist: str | None

    @property
    def day_number(self) -> int | None:
        return lifecycle.day_number(self.email)


def load_course_file(path: Path) -> Course:
    with path.open(encoding="utf-8") as handle:
        return Course.model_validate(yaml.safe_load(handle))


@functools.cache
def course_slugs() -> tuple[str, ...]:
    """Every course this installation has (one YAML file each); read once per process, as the courses are."""
    return tuple(sorted(path.stem for path in CURRICULA_DIR.glob("*.yaml")))


@functools.cache
def load_course(slug: str = DEFAULT_COURSE_SLUG) -> Course:
    path = CURRICULA_DIR / f"{slug}.yaml"
    if not path.is_file():
        raise LookupError(f"no course {slug!r} in {CURRICULA_DIR.name}/")
    course = load_course_file(path)
    if course.slug != slug:
        raise ValueError(f"{path.name} declares the slug {course.slug!r}")
    return course
