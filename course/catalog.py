"""The courses of a deployment, and the data of each as it is live at any release.

A course is data the studio owns. A course shipped with the deployment starts as its file,
``course/curricula/<slug>.yaml`` (its version 0); a course made in the studio starts as a copy of another
or a blank one. From then on the studio publishes the course's data as the ``_course.yaml`` item of its
templates (emails/store.py): drafted, checked, published and rolled back like any template, and pinned,
like them, by the release each delivery is claimed under. So the emails in order, each one's wait and
send hour, the theme, the sender's name and the links are what the release says, for the beat, the
worker and the pages alike.

Each email's content may be published apart, as its own file (course/wording.py), so that two people edit
two emails without meeting: the course at a release is its data with those files (:func:`course_at`), for
the send path, the pages, the links and the figures alike.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from course import wording
from course.curriculum import Course, course_slugs, load_course
from course.models.courses import CourseEntry
from course.models.templates import TemplatePublication, TemplateVersion

COURSE_FILE = "_course.yaml"


class CourseFileError(ValueError):
    """A course file that cannot be read as a course; ``field`` names where (``days.2.wait.days``)."""

    def __init__(self, message: str, field: str | None = None, line: int | None = None) -> None:
        self.message, self.field, self.line = message, field, line
        super().__init__(message)


def _field(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location)


@functools.lru_cache(maxsize=64)
def read_course(text: str) -> Course:
    """A course file's course; CourseFileError (with the field, or the line) when it is not one."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise CourseFileError(f"not valid YAML: {getattr(error, 'problem', error)}",
                              line=mark.line + 1 if mark is not None else None) from None  # fmt: skip
    if not isinstance(data, dict):
        raise CourseFileError("expected the fields of a course, found none")
    try:
        return Course.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = _field(first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise CourseFileError(f"{field}: {message}" if field else message, field or None) from None


def course_data(course: Course) -> dict[str, Any]:
    """The course as its file holds it: without what is worked out from the rest (places)."""
    data = course.model_dump(mode="json", exclude_none=True)
    for day in data["days"]:
        day.pop("position", None)
    for category in data.get("categories", []):
        category.pop("first_day", None)
        category.pop("last_day", None)
    data["retired"] = {int(number): anchor for number, anchor in data.get("retired", {}).items()}
    return data


def dump_course(course: Course) -> str:
    """A course file's text: YAML in the order of the course's fields, readable in a diff."""
    return yaml.safe_dump(course_data(course), sort_keys=False, allow_unicode=True, width=100)


def course_from_files(files: Mapping[str, str], fallback: Course) -> Course:
    """The course a template set's files hold (its ``_course.yaml``, else ``fallback``), with its emails'
    own files (course/wording.py): what readers get. TemplateError when a file is broken."""
    text = files.get(COURSE_FILE)
    return wording.apply(read_course(text) if text is not None else fallback, files)


def course_in(files: Mapping[str, str], slug: str) -> Course:
    """The course a template set's files hold, with its emails' own files: what readers get."""
    return wording.apply(base_course(files, slug), files)


def base_course(files: Mapping[str, str], slug: str) -> Course:
    """The course's data a template set holds (its ``_course.yaml``; none: the shipped one), without its
    emails' own files: what a check starts from, to name a broken email file where it is."""
    text = files.get(COURSE_FILE)
    course = read_course(text) if text is not None else shipped(slug)
    if course is None:
        raise LookupError(f"no course {slug!r}")
    return course


def shipped(slug: str) -> Course | None:
    """The course as the deployment ships it, if it ships one of this slug."""
    return load_course(slug) if slug in course_slugs() else None


def slugs(session: Session) -> list[str]:
    """Every course of the deployment: those shipped with it, then those made in the studio (by age)."""
    made = list(session.scalars(select(CourseEntry.slug).order_by(CourseEntry.created_at, CourseEntry.slug)))
    return list(course_slugs()) + [slug for slug in made if slug not in course_slugs()]


def exists(session: Session, slug: str) -> bool:
    return slug in course_slugs() or session.get(CourseEntry, slug) is not None


RELEASE_PREFIX = "r"


def release_name(release: int) -> str:
    """How a delivery records the release it was claimed under: ``r17``."""
    return f"{RELEASE_PREFIX}{release}"


def parse_release(name: str | None) -> int | None:
    """``r17`` -> 17; anything else (an older delivery's content hash, none) -> None."""
    if name and name.startswith(RELEASE_PREFIX) and name[1:].isdigit():
        return int(name[1:])
    return None


# A past release's course never changes: found once per process (and database: a test runs several).
_AT_RELEASE: OrderedDict[tuple[str | None, str, int, bool], Course] = OrderedDict()
_READ_KEPT = 64


def course_at(session: Session, slug: str, release: int | None = None, *, content: bool = True) -> Course:
    """The course as it was at ``release`` (none: as it is now): its data with its emails' own files, what
    readers got. ``content=False``: its data alone (what the studio's email files start from). LookupError
    for a course the deployment does not have."""
    if release is not None:
        key = (_database(session), slug, release, content)
        known = _AT_RELEASE.get(key)
        if known is not None:
            return known
        course = _course_at(session, slug, release, content)
        _AT_RELEASE[key] = course
        while len(_AT_RELEASE) > _READ_KEPT:
            _AT_RELEASE.popitem(last=False)
        return course
    return _course_at(session, slug, None, content)


# Courses read from the database, by the versions of their files that were live: a version never changes.
_READ: OrderedDict[tuple[str | None, str, tuple[int, ...]], Course] = OrderedDict()


def _database(session: Session) -> str | None:
    """Which database a release number is of (one per deployment; one per test in the suite)."""
    return session.get_bind().engine.url.database


def _course_at(session: Session, slug: str, release: int | None, content: bool) -> Course:
    """The course's data and its emails' files as published up to ``release`` (none: now), as one course."""
    own = TemplatePublication.item == COURSE_FILE
    if content:
        own = or_(own, TemplatePublication.item.startswith(f"{wording.WORDS_FOLDER}/"))
    latest = select(func.max(TemplatePublication.id).label("id")).where(TemplatePublication.course_slug == slug, own)
    if release is not None:
        latest = latest.where(TemplatePublication.id <= release)
    published = latest.group_by(TemplatePublication.item).subquery()
    # A publication without a version is a roll-back to the course's own (the item's file is gone).
    versions = tuple(sorted(int(version) for version in session.scalars(
        select(TemplatePublication.version_id)
        .join(published, TemplatePublication.id == published.c.id)
        .where(TemplatePublication.version_id.is_not(None))
    ) if version is not None))  # fmt: skip
    key = (_database(session), slug, versions)
    course = _READ.get(key)
    if course is not None:
        _READ.move_to_end(key)
        return course
    files: dict[str, str] = {}
    for text in session.scalars(select(TemplateVersion.files).where(TemplateVersion.id.in_(versions))):
        files.update(json.loads(text or "{}"))
    course = course_in(files, slug)
    _READ[key] = course
    while len(_READ) > _READ_KEPT:
        _READ.popitem(last=False)
    return course


def _text(*paragraphs: str) -> list[dict[str, Any]]:
    return [{"kind": "text", "paragraphs": list(paragraphs)}]


def blank_course(slug: str, title: str, sender_name: str) -> Course:
    """A new course with nothing but its frame: a confirmation, a welcome, one day and a completion, each
    with a line saying what to write there. Closed to sign-ups until it is opened."""
    return Course.model_validate({
        "slug": slug, "title": title, "sender_name": sender_name, "open": False,
        "practice": {
            "name": sender_name, "tagline": "", "areas_served": "", "sessions": "",
            "consultation_title": "Would you like to talk it through?",
            "consultation_text": "Book a free consultation: a short call to see whether working together would help.",
            "consultation_button": "Book a free consultation",
            "consultation_note": "Would it help to talk this through with someone?",
            "author": sender_name, "author_credentials": "", "signer": sender_name, "signer_role": "",
        },
        "confirmation": {"preview": f"One tap to start {title}.",
                         "blocks": _text(f"Please confirm your address, and {title} starts with a welcome email.")},
        "welcome": {"preview": f"Welcome to {title}.",
                    "blocks": _text("Welcome! Write here what the course is and what each email brings.")},
        "completion": {"preview": f"You finished {title}.",
                       "blocks": _text("Write here what the reader takes away, and where to go next.")},
        "days": [{
            "number": 1, "title": "The first lesson", "short_title": "First lesson",
            "teaching": _text("Write the lesson here."),
            "exercise": {"title": "Try this", "blocks": _text("Describe the exercise here.")},
            "teaser": "Tomorrow: the next step.",
        }],
    })  # fmt: skip


def copied_course(source: Course, slug: str, title: str, sender_name: str) -> Course:
    """A new course made from ``source`` as it is live (its wording included), under a slug and title of its
    own; closed to sign-ups until it is opened. What readers of the source had is not carried over."""
    data = course_data(source)
    data.update(slug=slug, title=title, sender_name=sender_name, open=False)
    return Course.model_validate(data)


def shipped_course_file(slug: str) -> dict[str, str] | None:
    """Version 0 of a course's own file: the repository's course, for a course shipped in it (none: a course
    made in the studio, whose first version is the one it was made with)."""
    try:
        return {COURSE_FILE: dump_course(load_course(slug))}
    except LookupError:
        return None


def imported_course(data: dict[str, Any], slug: str, title: str, sender_name: str) -> Course:
    """A new course made from a course file's data (web/studio/transfer.py), under a slug and title of its own,
    closed to sign-ups until it is opened; where another deployment's readers kept their place is dropped.
    CourseFileError (with the field) when the data is not a course."""
    data = {**data, "slug": slug, "title": title, "sender_name": sender_name, "open": False}
    data.pop("retired", None)
    data.pop("moved", None)
    try:
        return Course.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise CourseFileError(str(first["msg"]).removeprefix("Value error, "), _field(first["loc"])) from None


def keep_places(live: Course, data: dict[str, Any]) -> dict[str, Any]:
    """The course data ``data`` (what is about to be published) with what readers in the middle of ``live``
    need to keep their place (course/deliveries/claim.py): each email taken out since remembers the email it
    came after in ``live`` (``retired``), each email that now stands after one it stood before is marked
    (``moved``: the claim looks before sending it). What earlier publishes recorded is kept."""
    data = dict(data)
    completion = data.get("completion", {}).get("step", live.completion.step)
    kept = {day["number"] for day in data["days"]} | {0, completion}
    retired = {int(number): anchor for number, anchor in live.retired.items()}
    retired.update({int(number): anchor for number, anchor in data.get("retired", {}).items()})
    then = [step.number for step in live.steps]
    for index, number in enumerate(then):
        if number not in kept:
            retired[number] = then[index - 1] if index else -1
    now = [0, *(day["number"] for day in data["days"]), completion]
    moved = set(live.moved) | set(data.get("moved", []))
    for index, number in enumerate(now):
        if number in then:
            before_then = set(then[: then.index(number)])
            if set(now[:index]) & (set(then) - before_then):
                moved.add(number)
    data["retired"] = {number: anchor for number, anchor in retired.items() if number not in kept}
    data["moved"] = sorted(moved & kept)
    return data
