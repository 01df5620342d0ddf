"""Each email's content as the studio edits it, and the wording every email shares.

An email's content (a day's title, subject, preview line, teaser and body; a letter's preview line, body
and web page) ships in the course's data (course/catalog.py). A marketer changes it in the studio's
editor; what they publish is a file of the template set, ``_words/<email>.yaml``, versioned, drafted,
checked, published and rolled back like any template (emails/store.py), so two people edit two emails
without meeting. ``_words/shared.yaml`` holds the wording the emails share (the practice, the checklists'
items and bands, the guides). A file's absence means the course's own: rolling back to version 0 removes it.

The body is blocks (course/curriculum.py): a file may reorder, add and take out blocks, and the course
checks what they refer to. The shared wording changes words only: a checklist's items and bands keep their
number and keys, because subscribers' answers already count them (a new checklist is a new key instead).
Text fields accept the small markup of :mod:`emails.markup`, and no HTML.

The course as the emails, the pages, the links and the figures see it is the course's data with its
emails' files: :func:`apply`, which :func:`course.catalog.course_in` and ``course_at`` call.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from course.curriculum import PART_KINDS, Block, ChecklistItem, Course, Part, Practice, with_body
from course.lifecycle import EmailKind, day_email, day_number

WORDS_FOLDER = "_words"
SHARED = f"{WORDS_FOLDER}/shared.yaml"
# The emails written as a letter (a person's words, a sign-off), not as a day's lesson.
LETTERS = (EmailKind.CONFIRMATION.value, EmailKind.WELCOME.value, EmailKind.COMPLETION.value)


class TemplateError(ValueError):
    """A template or content file that cannot be read, compiled or rendered. Names the email and file (and
    the line, or for content the field: ``body.0.paragraphs``), for the studio to show beside it."""

    def __init__(self, email: str, file: str, message: str, line: int | None = None, field: str | None = None) -> None:
        self.email, self.file, self.message, self.line, self.field = email, file, message, line, field
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{email}: {where}: {message}")


class _Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DayWords(_Words):
    subject: str | None = None
    preview: str | None = None
    title: str = Field(min_length=1)
    short_title: str = Field(min_length=1)
    body: list[Part] = Field(min_length=1)
    teaser: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: object) -> object:
        return with_body(data, letter=False)


class PageWords(_Words):
    title: str = Field(min_length=1)
    link: str = Field(min_length=1)
    blocks: list[Block] = Field(min_length=1)


class LetterWords(_Words):
    subject: str | None = None
    preview: str = Field(min_length=1)
    body: list[Part] = Field(min_length=1)
    page: PageWords | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: object) -> object:
        return with_body(data, letter=True)


class BandWords(_Words):
    key: str  # which band: fixed
    label: str = Field(min_length=1)
    title: str = Field(min_length=1)
    meaning: str = Field(min_length=1)
    next_step: str = Field(min_length=1)


class ChecklistWords(_Words):
    title: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    items: list[ChecklistItem] = Field(min_length=1)
    bands: list[BandWords] = Field(min_length=1)


class ResourceWords(_Words):
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    url: HttpUrl
    call_to_action: str = Field(min_length=1)


class SharedWords(_Words):
    practice: Practice
    checklists: dict[str, ChecklistWords]
    resources: dict[str, ResourceWords]


# --- Which files ----------------------------------------------------------------------------------


def is_words(item: str) -> bool:
    return item.startswith(f"{WORDS_FOLDER}/")


def words_item(email: str) -> str:
    return f"{WORDS_FOLDER}/{email}.yaml"


def words_items(course: Course) -> list[str]:
    """Every words file the course can have: each email with wording of its own, then the shared one."""
    return [words_item(LETTERS[0])] + [words_item(step.email) for step in course.steps] + [SHARED]


def email_of(item: str) -> str | None:
    """The email a words file is about (None: the shared wording, which every email uses)."""
    if item == SHARED:
        return None
    return item.removeprefix(f"{WORDS_FOLDER}/").removesuffix(".yaml")


def _model_for(item: str) -> type[_Words]:
    email = email_of(item)
    if email is None:
        return SharedWords
    return LetterWords if email in LETTERS else DayWords


# --- The shipped wording --------------------------------------------------------------------------


def shipped(course: Course, item: str) -> dict[str, Any]:
    """The wording a words file starts from: the course's own."""
    data = course.model_dump(mode="json", exclude_none=True)
    email = email_of(item)
    if email is None:
        return {
            "practice": data["practice"],
            "checklists": {
                key: {
                    "title": checklist["title"],
                    "prompt": checklist["prompt"],
                    "items": checklist["items"],
                    "bands": [{field: band[field] for field in BandWords.model_fields} for band in checklist["bands"]],
                }
                for key, checklist in data["checklists"].items()
            },
            "resources": data["resources"],
        }
    if email in LETTERS:
        letter = data[email]
        return {field: letter[field] for field in LetterWords.model_fields if letter.get(field)}
    day = data["days"][_day_index(course, email)]
    return {field: day[field] for field in DayWords.model_fields if field in day}


def dump(data: dict[str, Any]) -> str:
    """A words file's text: YAML in the order of the form, one field per line, readable in a diff."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def shipped_files(course: Course, item: str) -> dict[str, str]:
    return {item: dump(shipped(course, item))}


# --- Reading and applying -------------------------------------------------------------------------

_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from strings(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from strings(inner, f"{path}.{index}")


def _error_field(location: tuple[int | str, ...]) -> str:
    # pydantic names a block's kind in the location of a tagged union ("teaching.0.text.paragraphs").
    kinds = set(PART_KINDS)
    parts = [str(part) for part in location]
    return ".".join(
        part for index, part in enumerate(parts) if not (part in kinds and index and parts[index - 1].isdigit())
    )


def plain(error: Mapping[str, Any]) -> str:
    """One of pydantic's complaints about a field, in the words a person editing it reads."""
    kind, context = error.get("type", ""), error.get("ctx") or {}
    said = {
        "missing": "is missing",
        "string_too_short": "is empty: write something here",
        "too_short": "needs at least {min_length} of them",
        "string_too_long": "is too long: at most {max_length} characters",
        "too_long": "has too many: at most {max_length}",
        "string_pattern_mismatch": "is not in the form it must take",
        "string_type": "must be text",
        "list_type": "must be a list",
        "dict_type": "must be a group of fields",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "bool_parsing": "must be yes or no",
        "greater_than_equal": "must be at least {ge}",
        "less_than_equal": "must be at most {le}",
        "literal_error": "must be one of: {expected}",
        "extra_forbidden": "is not a field this email has (take it out)",
        "union_tag_invalid": "is not a kind of block ({expected_tags})",
        "url_parsing": "is not a web address (https://...)",
        "url_scheme": "must start with https://",
    }.get(kind)
    if said is None:  # the course's own rules say it in words already ("Value error, ...")
        return str(error.get("msg", "is not right")).removeprefix("Value error, ")
    return said.format_map(_Limits({key: str(value) for key, value in context.items()}))


class _Limits(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "the limit"


def read(item: str, text: str) -> dict[str, Any]:
    """Parse and validate one words file; TemplateError (with the field, or the line) when it is wrong."""
    email = email_of(item) or "every email"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise TemplateError(email, item, f"not valid YAML: {getattr(error, 'problem', error)}",
                            mark.line + 1 if mark is not None else None) from None  # fmt: skip
    if not isinstance(data, dict):
        raise TemplateError(email, item, "expected the fields of the wording, found none")
    try:
        words = _model_for(item).model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = _error_field(first["loc"])
        raise TemplateError(email, item, f"{field}: {plain(first)}", field=field) from None
    for field, value in strings(data):
        if _HTML_TAG.search(value):
            raise TemplateError(email, item, f"{field}: HTML is not accepted, it would show as typed; write "
                                             "*emphasis*, **strong**, - lists and [words](https://link)",
                                field=field)  # fmt: skip
    return words.model_dump(mode="json", exclude_none=True)


def _check_shape(course: Course, item: str, words: dict[str, Any]) -> None:
    """A shared words file may change wording, not the shape answers and links depend on."""
    for key, checklist in course.checklists.items():
        given = words["checklists"].get(key)
        if given is None:
            continue  # a checklist added to the course since these words were written: its own words
        if len(given["items"]) != len(checklist.items):
            raise TemplateError("every email", item, f"checklists.{key}.items: keep {len(checklist.items)} items "
                                "(answers already given count them)", field=f"checklists.{key}.items")  # fmt: skip
        if [band["key"] for band in given["bands"]] != [band.key for band in checklist.bands]:
            raise TemplateError("every email", item, f"checklists.{key}.bands: the bands are fixed",
                                field=f"checklists.{key}.bands")  # fmt: skip
    # A checklist or guide these words name and the course no longer has is left out (course/curriculum.py
    # keeps a checklist that answers were given to); one added since keeps the course's own words.


def _apply(course: Course, files: Mapping[str, str]) -> Course:
    paths = sorted(path for path in files if is_words(path))
    if not paths:
        return course
    data = course.model_dump(mode="json")
    emails = {step.email for step in course.steps} | {LETTERS[0]}
    for path in paths:
        email = email_of(path)
        if email is not None and email not in emails:
            raise TemplateError(email, path, f"{course.slug} has no email called {email!r}")
        words = read(path, files[path])
        if email is None:
            _check_shape(course, path, words)
            data["practice"] = words["practice"]
            data["resources"] = {key: words["resources"].get(key, resource)
                                 for key, resource in data["resources"].items()}  # fmt: skip
            for key, checklist in words["checklists"].items():
                if key not in data["checklists"]:
                    continue
                bands = {band["key"]: band for band in checklist["bands"]}
                data["checklists"][key].update(
                    title=checklist["title"], prompt=checklist["prompt"], items=checklist["items"],
                    bands=[{**band, **bands[band["key"]]} for band in data["checklists"][key]["bands"]],
                )  # fmt: skip
        elif email in LETTERS:
            data[email].update(page=None)  # a field left out goes back to none
            data[email].update(words)
        else:
            day = data["days"][_day_index(course, email)]
            day.update(subject=None, preview=None)  # a field left empty goes back to its default
            day.update(words)
    try:
        return Course.model_validate(data)
    except ValidationError as error:  # what only the whole course can tell (a checklist, a guide, a button)
        message = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise TemplateError(_email_named(message, course) or "every email", _file_named(message, course, paths),
                            message) from None  # fmt: skip


def _email_named(message: str, course: Course) -> str | None:
    """The email a course's complaint begins with ("day 3: ...", "welcome: ..."), by its template folder."""
    head = message.split(":", 1)[0]
    if head in LETTERS:
        return head
    if head.startswith("day ") and head[4:].isdigit() and 0 < int(head[4:]) <= len(course.days):
        return day_email(course.days[int(head[4:]) - 1].number)
    return None


def _file_named(message: str, course: Course, paths: list[str]) -> str:
    email = _email_named(message, course)
    return words_item(email) if email is not None and words_item(email) in paths else paths[0]


_CACHE: OrderedDict[tuple[int, str], tuple[Course, Course]] = OrderedDict()
_CACHE_SIZE = 32


def apply(course: Course, files: Mapping[str, str]) -> Course:
    """The course with its emails' published files (``_words/``) in place of its own content (cached)."""
    digest = hashlib.sha256()
    for path, text in sorted(files.items()):
        if is_words(path):
            digest.update(f"{path}\0{text}\0".encode())
    key = (id(course), digest.hexdigest())
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is course:
        _CACHE.move_to_end(key)
        return cached[1]
    applied = _apply(course, files)
    _CACHE[key] = (course, applied)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return applied


def _day_index(course: Course, email: str) -> int:
    """Where the day whose email is ``email`` stands in the course's list of days."""
    number = day_number(email)
    if number is None:
        raise KeyError(f"{email} is not a course day's email")
    return next(index for index, day in enumerate(course.days) if day.number == number)
