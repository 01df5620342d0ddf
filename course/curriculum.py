"""A course is data: this module defines its shape and loads it.

The engine knows nothing about any particular course. Everything a subscriber reads (strategies,
exercises, checklists and their score bands, resources) lives in a YAML file under
``course/curricula/`` and is validated here when it is loaded, so that a typo in the data is an error
at start-up rather than a broken email on day 12.
"""

from __future__ import annotations

import functools
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationInfo, field_validator, model_validator

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


# --- An email's body -------------------------------------------------------------------------------
# What an email shows between its greeting and its signature, in order: the text blocks above, and the
# parts that act (an exercise box, a checklist, a button, the call to book, the guides), an image, a
# divider. The studio moves, adds and takes them out; the templates render each kind (emails/templates/
# _base/body.mjml), so a new layout is new data, never new MJML.


class ExerciseBlock(_Data):
    """The day's exercise, in a box: what to try, and how."""

    kind: Literal["exercise"] = "exercise"
    title: str = Field(min_length=1)
    blocks: list[Block] = Field(min_length=1)


class ChecklistBlock(_Data):
    """One of the course's checklists, with a button per band: a tap records the reader's answer."""

    kind: Literal["checklist"] = "checklist"
    checklist: str


# What a button does: mark the day's exercise done, open the consultation's booking page, open the course's
# web page (the welcome's, /about), or open one of the course's guides (``guide``: its key).
ButtonAction = Literal["done", "consultation", "about", "guide"]
ButtonStyle = Literal["primary", "secondary", "link"]


class ButtonBlock(_Data):
    kind: Literal["button"] = "button"
    action: ButtonAction
    label: str | None = Field(default=None, max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")  # none: the action's own
    guide: str | None = None
    style: ButtonStyle = "primary"
    note: str | None = None  # a quiet line under it

    @model_validator(mode="after")
    def _guide_named(self) -> ButtonBlock:
        if (self.action == "guide") != (self.guide is not None):
            raise ValueError("a guide's button names its guide, and only a guide's button does")
        return self


class ConsultationBlock(_Data):
    """The call to book a free consultation as a box of its own (the practice's title, text and button)."""

    kind: Literal["consultation"] = "consultation"


class GuidesBlock(_Data):
    """Guides and quizzes of the practice's to go further, each with its description and link."""

    kind: Literal["guides"] = "guides"
    title: str = Field(default="To go further", min_length=1)
    guides: list[str] = Field(min_length=1)


# An image uploaded to the studio: the app stores it and serves it under /media/ (never a remote address).
IMAGE_FILE = r"^[0-9a-f]{16,64}\.(png|jpg|gif|webp)$"


class ImageBlock(_Data):
    kind: Literal["image"] = "image"
    file: str = Field(pattern=IMAGE_FILE)
    alt: str = Field(max_length=300)  # what it shows, for readers who do not see it ("" only with decorative)
    decorative: bool = False
    width: int = Field(default=552, ge=48, le=552)  # pixels, at most the email's text column

    @model_validator(mode="after")
    def _described(self) -> ImageBlock:
        if not self.decorative and not self.alt.strip():
            raise ValueError("an image needs a text alternative (what it shows), unless it is only decoration")
        return self


class DividerBlock(_Data):
    kind: Literal["divider"] = "divider"


class GlanceBlock(_Data):
    """The course at a glance: every day's short title, by category, and the key takeaways."""

    kind: Literal["glance"] = "glance"


# Every kind of block an email's body may hold.
PART_KINDS = ("text", "list", "labelled", "cards", "groups", "steps", "quote", "callout", "figures", "exercise",
              "checklist", "button", "consultation", "guides", "image", "divider", "glance")  # fmt: skip

# The blocks that only show words: what an exercise box holds, and a confirmation (which asks nothing else).
CONTENT_KINDS = frozenset({"text", "list", "labelled", "cards", "groups", "steps", "quote", "callout", "figures"})

Part = Annotated[
    TextBlock
    | ListBlock
    | LabelledBlock
    | CardsBlock
    | GroupsBlock
    | StepsBlock
    | QuoteBlock
    | CalloutBlock
    | FiguresBlock
    | ExerciseBlock
    | ChecklistBlock
    | ButtonBlock
    | ConsultationBlock
    | GuidesBlock
    | ImageBlock
    | DividerBlock
    | GlanceBlock,
    Field(discriminator="kind"),
]


def body_from_parts(parts: dict[str, Any], letter: bool, glance: bool = False) -> list[dict[str, Any]]:
    """The body an email written before bodies shows: its parts (``teaching``, ``exercise``, ``blocks``,
    ``after``, ``checklist``, ``resources``, ``consultation_leads``, a letter's ``page``) in the order its
    layout showed them (``glance``: the completion's, which showed the course at a glance after them)."""
    leads = bool(parts.get("consultation_leads"))
    body: list[dict[str, Any]] = []
    if letter:
        body += list(parts.get("blocks") or [])
        if parts.get("checklist"):
            body.append({"kind": "checklist", "checklist": parts["checklist"]})
        if leads:
            body.append({"kind": "consultation"})
        body += list(parts.get("after") or [])
        if parts.get("page"):
            body.append({"kind": "button", "action": "about", "style": "link"})
        if glance:
            body.append({"kind": "glance"})
    else:
        body += list(parts.get("teaching") or [])
        if parts.get("exercise") is not None:
            body.append({"kind": "exercise", **parts["exercise"]})
        if parts.get("checklist"):
            body.append({"kind": "checklist", "checklist": parts["checklist"]})
        body.append({"kind": "button", "action": "done", "style": "secondary" if leads else "primary",
                     "note": "One tap records it, so you can see your progress."})  # fmt: skip
        if leads:
            body.append({"kind": "consultation"})
    if parts.get("resources"):
        body.append({"kind": "guides", "guides": list(parts["resources"])})
    return body


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
    """A run of days under one heading. Its days name it; ``first_day`` and ``last_day`` are the places of
    its first and last day in the course, worked out from the days (so a reorder moves them too)."""

    key: str
    title: str
    short_title: str
    first_day: int = 0
    last_day: int = 0
    intro: str = ""


# When an email goes: how long after the one before (or after signing up), on which days, at what hour.
After = Literal["previous", "signup"]


class Wait(_Data):
    """How long a reader waits for an email. ``days`` local calendar days after the email before it
    (``after: previous``) or after they confirmed (``after: signup``); 0: straight after the one before.
    ``weekdays_only``: a slot on a Saturday or Sunday (the reader's) moves to the Monday. ``send_hour``: the
    hour it goes at, the reader's local time (none: the time the reader chose)."""

    days: int = Field(default=1, ge=0, le=365)
    after: After = "previous"
    weekdays_only: bool = False
    send_hour: int | None = Field(default=None, ge=0, le=23)


RIGHT_AWAY = Wait(days=0)


_LEGACY = ("teaching", "exercise", "blocks", "after", "checklist", "resources", "consultation_leads")


def with_body(data: object, letter: bool, glance: bool = False) -> object:
    """An email's data with a body: one written before bodies (a file published then) gets the body its
    parts made (:func:`body_from_parts`)."""
    if not isinstance(data, dict) or "body" in data or not any(key in data for key in _LEGACY):
        return data
    kept = {key: value for key, value in data.items() if key not in _LEGACY}
    return {**kept, "body": body_from_parts(data, letter, glance)}


class _Email(_Data):
    """What every email of the course has: its body, and what is worked out from it."""

    body: list[Part] = Field(min_length=1)

    def parts(self, kind: str) -> list[Any]:
        return [part for part in self.body if part.kind == kind]

    @property
    def checklist(self) -> str | None:
        """The checklist the email asks (its answer links say which email asked it)."""
        found = self.parts("checklist")
        return found[0].checklist if found else None

    @property
    def exercise(self) -> ExerciseBlock | None:
        found = self.parts("exercise")
        return found[0] if found else None

    @property
    def resources(self) -> list[str]:
        """The guides the email links to, in order, each once."""
        keys: list[str] = []
        for part in self.body:
            for key in part.guides if part.kind == "guides" else [part.guide] if part.kind == "button" else []:
                if key is not None and key not in keys:
                    keys.append(key)
        return keys

    @property
    def consultation_leads(self) -> bool:
        """The call to book is part of the email (a box or a button), not a line under the signature."""
        return any(part.kind == "consultation" or (part.kind == "button" and part.action == "consultation")
                   for part in self.body)  # fmt: skip

    def problems(self, name: str, day: bool, course: Course) -> list[str]:
        """What in the body the rest of the course cannot back: each as a sentence about ``name``."""
        found: list[str] = []
        if len(self.parts("checklist")) > 1:
            found.append(f"{name}: one checklist per email (a tap on an answer says which email asked it)")
        if len(self.parts("exercise")) > 1:
            found.append(f"{name}: one exercise per email (its button marks it done)")
        for part in self.body:
            if part.kind == "checklist" and part.checklist not in course.checklists:
                found.append(f"{name}: unknown checklist {part.checklist!r}")
            if part.kind == "button" and part.action == "done" and (not day or self.exercise is None):
                found.append(f"{name}: a button that marks the exercise done needs an exercise in the email")
            if part.kind == "button" and part.action == "about" and course.welcome.page is None:
                found.append(f"{name}: the course has no web page for a button to open")
        found += [f"{name}: unknown resource {key!r}" for key in self.resources if key not in course.resources]
        return found


class Day(_Email):
    # Who the email is: deliveries and signed links record it, and it never changes, wherever the day moves
    # (its email is ``day-NN`` by this number). ``position`` is its place among the days (1 the first),
    # worked out from the order of the list.
    number: int = Field(ge=1)
    position: int = 0
    category: str | None = None
    title: str
    short_title: str  # as the seed's quick reference names it
    subject: str | None = None  # the email's subject; none: "Day N: title"
    preview: str | None = None  # the inbox preview line; none: the body's first sentences
    teaser: str  # one line about tomorrow
    wait: Wait = Wait()

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: object) -> object:
        return with_body(data, letter=False)

    @property
    def first_words(self) -> str:
        """The body's first sentence or item (the inbox preview when the day has none of its own)."""
        for part in self.body:
            if isinstance(part, TextBlock):
                return part.paragraphs[0]
            if isinstance(part, ListBlock):
                return part.items[0]
        return self.title


class Page(_Data):
    """The welcome's web page (``/about``), for what is worth reading but too long for an inbox. It also
    answers the course's questions meant for the welcome (``shown_in``) and those meant for no email;
    the welcome then leaves them out."""

    title: str
    link: str  # the words of the email's link to it
    blocks: list[Block] = Field(min_length=1)


class Letter(_Email):
    """An email that is not a course day: the confirmation, the welcome, the completion."""

    subject: str | None = None  # the email's subject; none: its layout's own ("Welcome to <the course>")
    preview: str  # the inbox preview line
    page: Page | None = None
    # The completion's own number (its identity, like a day's): set once, kept when days are added.
    step: int | None = None
    # When it goes (the welcome: right after confirming; the completion: after the last day).
    wait: Wait | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: object) -> object:
        return with_body(data, letter=True)


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


# --- The course's own look, and where it sends people -----------------------------------------------

_COLOUR = r"^#[0-9a-fA-F]{6}$"
# A CSS font stack: family names, quoted or not, and commas. Nothing that could end the declaration.
_FONT_STACK = r"^[A-Za-z0-9 ,'\"-]{1,200}$"
SYSTEM_FONTS = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


def _luminance(colour: str) -> float:
    channels = [int(colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    """WCAG's contrast ratio of two colours (1 to 21)."""
    lighter, darker = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


class Theme(_Data):
    """The course's colours, font and logo, in its emails and on its pages. Checked for contrast (WCAG AA,
    4.5:1) where text sits on them, so a theme cannot make the course hard to read."""

    accent: str = Field(default="#a3472a", pattern=_COLOUR)  # buttons, links, the eyebrow
    background: str = Field(default="#f5efe9", pattern=_COLOUR)  # around the email's card and the page
    text: str = Field(default="#2b2622", pattern=_COLOUR)  # body text, on white
    font: str = Field(default=SYSTEM_FONTS, pattern=_FONT_STACK)
    logo: str | None = Field(default=None, pattern=IMAGE_FILE)  # an uploaded image (web/media.py)
    logo_alt: str = ""

    @field_validator("accent", "text")
    @classmethod
    def _readable(cls, colour: str, info: ValidationInfo) -> str:
        """White button text on the accent, and the text on white, at WCAG AA (4.5:1)."""
        ratio = contrast(colour, "#ffffff")
        if ratio < 4.5:
            what = "white button text" if info.field_name == "accent" else "reading on white"
            raise ValueError(f"too light for {what} (contrast {ratio:.1f}:1, at least 4.5:1): choose a darker colour")
        return colour.lower()

    @model_validator(mode="after")
    def _logo_described(self) -> Theme:
        if self.logo and not self.logo_alt.strip():
            raise ValueError("the logo needs a text alternative (what it says, for readers who do not see it)")
        return self


# Text that goes into a header or a title: one line, no control characters.
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"


class Course(_Data):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str = Field(min_length=1, max_length=200, pattern=_ONE_LINE)
    subtitle: str = Field(default="", max_length=300, pattern=_ONE_LINE)
    # The name beside the address in the inbox (From): one line, no encoded-word look-alike.
    sender_name: str = Field(min_length=1, max_length=100, pattern=_ONE_LINE)
    # Where a reply goes (none: MAIL_REPLY_TO) and the consultation's booking page (none: CONSULTATION_URL).
    reply_to: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
    consultation_url: HttpUrl | None = None
    theme: Theme = Theme()
    # Listed on the home page and open to sign-ups (a closed course keeps sending to its readers).
    open: bool = True
    practice: Practice
    quick_answer: str = ""
    # The course's page (/c/<slug>): what it promises, under its title, and what the journey holds, under
    # its list of emails (the course's markup: emails/markup.py). The questions' heading.
    pitch: str = ""
    journey: str = ""
    faq_title: str = "Questions people ask"
    categories: list[Category] = []
    checklists: dict[str, Checklist] = {}
    resources: dict[str, Resource] = {}
    confirmation: Letter
    welcome: Letter
    completion: Letter
    key_takeaways: list[str] = []
    faq: list[Question] = []
    days: list[Day] = Field(min_length=1)
    # Emails taken out of the course, each with the email it came after (-1: the start), so that a reader
    # whose last email it was keeps their place (course/deliveries/claim.py); their numbers are never
    # given again.
    retired: dict[int, int] = {}
    # Emails that were ever moved later in the course: a reader may have had one already, so the claim
    # looks before sending it (none: it never has to).
    moved: list[int] = []

    @model_validator(mode="before")
    @classmethod
    def _places(cls, data: object) -> object:
        """Each day's place, each category's first and last place, and the completion's number when the
        course does not say it (the last day's number plus one: what the course shipped with)."""
        if not isinstance(data, dict) or not isinstance(data.get("days"), list):
            return data
        if not all(isinstance(day, dict) for day in data["days"]):
            return data
        data = dict(data)
        for letter in (EmailKind.CONFIRMATION.value, EmailKind.WELCOME.value, EmailKind.COMPLETION.value):
            data[letter] = with_body(data.get(letter), letter=True, glance=letter == EmailKind.COMPLETION.value)
        days = [{**day, "position": position} for position, day in enumerate(data["days"], 1)]
        data["days"] = days
        categories = data.get("categories")
        if isinstance(categories, list) and all(isinstance(category, dict) for category in categories):
            placed = []
            for category in categories:
                places = [day["position"] for day in days if day.get("category") == category.get("key")]
                placed.append({**category, "first_day": min(places, default=0), "last_day": max(places, default=0)})
            data["categories"] = placed
        completion = data.get("completion")
        if isinstance(completion, dict) and completion.get("step") is None:
            numbers: list[int] = [day["number"] for day in days if isinstance(day.get("number"), int)]
            data["completion"] = {**completion, "step": max(numbers, default=0) + 1}
        return data

    @model_validator(mode="after")
    def _references_resolve(self) -> Course:
        if "=?" in self.sender_name:
            raise ValueError('the sender\'s name may not contain "=?" (mail programs would read it as encoded)')
        numbers = [day.number for day in self.days]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"two days carry one number: {sorted(n for n in numbers if numbers.count(n) > 1)}")
        if self.completion.step is None or self.completion.step in numbers or self.completion.step < 1:
            raise ValueError(f"the completion's number {self.completion.step} is a day's, or not a number")
        live = {0, self.completion.step, *numbers}
        for removed, anchor in self.retired.items():
            if removed in live:
                raise ValueError(f"email {removed} is in the course and among those taken out")
            if anchor != -1 and anchor not in live and anchor not in self.retired:
                raise ValueError(f"email {removed} was taken out after email {anchor}, which the course never had")
        category_keys = {category.key for category in self.categories}
        for key, checklist in self.checklists.items():
            if checklist.key != key:
                raise ValueError(f"checklist {key!r} carries the key {checklist.key!r}")
        for day in self.days:
            if day.category is not None and day.category not in category_keys:
                raise ValueError(f"day {day.position}: unknown category {day.category!r}")
        if self.confirmation.page is not None or self.completion.page is not None:
            raise ValueError("only the welcome has a web page (/about)")
        places = {EmailKind.WELCOME.value, EmailKind.COMPLETION.value, *numbers}
        for question in self.faq:
            if question.shown_in is not None and question.shown_in not in places:
                raise ValueError(f"question {question.question!r}: shown_in {question.shown_in!r} is not an email")
        asks = [part.kind for part in self.confirmation.body if part.kind not in CONTENT_KINDS | {"image", "divider"}]
        if asks:
            raise ValueError(f"the confirmation asks one thing, to confirm: it cannot hold a {asks[0]}")
        problems = [
            *self.welcome.problems(EmailKind.WELCOME.value, False, self),
            *[problem for day in self.days for problem in day.problems(f"day {day.position}", True, self)],
            *self.completion.problems(EmailKind.COMPLETION.value, False, self),
        ]
        if problems:
            raise ValueError(problems[0])
        return self

    def page_questions(self) -> list[Question]:
        """What the welcome's web page answers: the questions meant for the welcome (which the email then
        leaves to the page) and those meant for no email."""
        return [question for question in self.faq if question.shown_in in (EmailKind.WELCOME.value, None)]

    def category(self, key: str | None) -> Category | None:
        return next((category for category in self.categories if category.key == key), None)

    def day(self, number: int) -> Day:
        """The day whose number (identity) is ``number``, wherever it now stands."""
        for day in self.days:
            if day.number == number:
                return day
        raise KeyError(f"{self.slug} has no day {number}")

    @cached_property
    def steps(self) -> list[CourseStep]:
        """What a subscriber receives, in order: the welcome, each day, the completion."""
        completion = self.completion.step or 0  # always set (_places); 0 only to satisfy the type
        return (
            [CourseStep(number=0, position=0, email=EmailKind.WELCOME.value, checklist=self.welcome.checklist,
                        wait=self.welcome.wait or RIGHT_AWAY)]
            + [CourseStep(number=day.number, position=day.position, email=day_email(day.number),
                          checklist=day.checklist, wait=day.wait) for day in self.days]
            + [CourseStep(number=completion, position=len(self.days) + 1, email=EmailKind.COMPLETION.value,
                          checklist=self.completion.checklist, wait=self.completion.wait or Wait())]
        )  # fmt: skip

    def step(self, number: int) -> CourseStep:
        """The email whose number (identity) is ``number``."""
        for step in self.steps:
            if step.number == number:
                return step
        raise KeyError(f"{self.slug} has no email {number}")

    def has_step(self, number: int) -> bool:
        return any(step.number == number for step in self.steps)

    @property
    def last_step(self) -> CourseStep:
        return self.steps[-1]

    def place_after(self, number: int | None) -> int:
        """Where a reader whose last email was ``number`` (none: not one yet) goes on: the index in
        :attr:`steps` of the first email they may get next (past the end: none left). An email taken out
        stands where it was: after the email it came after, or after that one's own place if it too went."""
        return self.places.get(-1 if number is None else number, len(self.steps))

    @cached_property
    def places(self) -> dict[int, int]:
        """:meth:`place_after` of every email the course has or had (-1: none yet), worked out once: the
        beat asks it of every email at every claim."""
        steps = self.steps
        found = {-1: 0, **{step.number: index + 1 for index, step in enumerate(steps)}}  # -1: none yet
        for number in self.retired:
            seen: set[int] = set()
            current = number
            while current not in found and current in self.retired and current not in seen:
                seen.add(current)
                current = self.retired[current]
            found[number] = found.get(current, len(steps))  # a loop, or an anchor never known: past the end
        return found

    def following(self, number: int | None) -> list[CourseStep]:
        """The emails still to come for a reader whose last email was ``number``, in order."""
        return self.steps[self.place_after(number) :]

    def next_step(self, number: int | None, sent: set[int] | frozenset[int] = frozenset()) -> CourseStep | None:
        """The email a reader whose last email was ``number`` gets next (none: the course is over), leaving
        out any in ``sent`` (they had it before it was moved later)."""
        return next((step for step in self.following(number) if step.number not in sent), None)

    def place_before(self, number: int) -> int | None:
        """The place a reader goes back to when email ``number`` did not reach them after all (skipped: they
        paused or left before it went): the email before it in order (none: it is the first), from which
        :meth:`next_step` gives ``number`` again."""
        numbers = [step.number for step in self.steps]
        if number not in numbers:  # taken out since: it stands where it was (place_after), nothing to give back
            return number
        index = numbers.index(number)
        return numbers[index - 1] if index > 0 else None

    def next_number(self) -> int:
        """The number a new email gets: one more than any the course has had (taken-out ones included)."""
        return max([step.number for step in self.steps] + list(self.retired)) + 1


class CourseStep(_Data):
    """One email of the sequence. ``number`` is who it is (what deliveries and signed links record);
    ``position`` its place (0 the welcome)."""

    number: int
    position: int
    email: str  # the template folder
    checklist: str | None
    wait: Wait

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
