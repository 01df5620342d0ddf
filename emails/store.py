"""The template store: which templates each course sends, now and at any earlier release.

The repository's files (``emails/templates/``) are every item's version 0. Publishing an item (an
email's folder, ``day``, a day's override, or a shared ``_base`` file) stores an immutable numbered
:class:`~course.models.TemplateVersion` and a :class:`~course.models.TemplatePublication`; rolling back
publishes an earlier version again (or version 0). A course's *release* is the id of its latest
publication (0 before any): the beat stamps each delivery it claims with the current release, and the
worker renders it with exactly that release's templates, so a publish never changes an email already on
its way, and reaches every worker with its next batch, without a restart (a release never changes, so
a worker reads each one once: workers/engine.py keeps its renderers by release).

Nothing is published that does not render: every email of the course is rendered for a sample
subscriber with the candidate templates, and any template error or unknown variable refuses it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from course.catalog import base_course
from course.curriculum import Course
from course.models.templates import TemplateDraft, TemplatePublication, TemplateVersion
from course.settings import Settings
from emails.compiler import SHARED_FOLDER, TemplateError, TemplateSet, default_templates
from emails.sandbox import CheckFailed, checked_bounded

# Subscriber 0 does not exist: a link in a preview or a test email opens its page but changes nobody.


class PublishRefused(ValueError):
    """The candidate templates do not render; ``problems`` say where and why."""

    def __init__(self, problems: list[TemplateError]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(problem) for problem in problems))


def is_one_file(item: str) -> bool:
    """A shared section (``_base/footer.mjml``) or a words file (``_words/day-03.yaml``) is edited as one
    file; an email's folder (``day-03``) as its three."""
    return item.startswith("_")


def items(templates: TemplateSet) -> list[str]:
    """What the studio edits as one: every email folder, then every shared file."""
    shared = sorted(path for path in templates.files if path.startswith(f"{SHARED_FOLDER}/"))
    return templates.emails() + shared


def files_of(templates: TemplateSet, item: str) -> dict[str, str]:
    """The files of one item, by their path in the set."""
    if is_one_file(item):
        return {item: templates.source(item)} if item in templates.files else {}
    return {path: text for path, text in templates.files.items() if path.startswith(f"{item}/")}


def with_item(templates: TemplateSet, item: str, files: Mapping[str, str]) -> TemplateSet:
    """The set with one item's files replaced by ``files`` (all of them: a file left out is removed)."""
    for path in files:
        if not (path == item if is_one_file(item) else path.startswith(f"{item}/")):
            raise ValueError(f"{path!r} is not a file of {item!r}")
    kept = {path: text for path, text in templates.files.items() if path not in files_of(templates, item)}
    return TemplateSet({**kept, **files})


def current_release(session: Session, course_slug: str) -> int:
    latest = session.scalar(
        select(func.max(TemplatePublication.id)).where(TemplatePublication.course_slug == course_slug)
    )
    return int(latest or 0)


def templates_at(session: Session, course_slug: str, release: int, defaults: TemplateSet | None = None) -> TemplateSet:
    """The templates a course sent at ``release``: the defaults with each item's latest publication up to it."""
    templates = defaults or default_templates()
    latest = (
        select(TemplatePublication.item, func.max(TemplatePublication.id).label("id"))
        .where(TemplatePublication.course_slug == course_slug, TemplatePublication.id <= release)
        .group_by(TemplatePublication.item)
        .subquery()
    )
    publications = session.scalars(select(TemplatePublication).join(latest, TemplatePublication.id == latest.c.id))
    for publication in publications:
        if publication.version is not None:
            templates = with_item(templates, publication.item, json.loads(publication.version.files))
        else:  # rolled back to the repository's files
            templates = with_item(templates, publication.item, files_of(default_templates(), publication.item))
    return templates


@dataclass(frozen=True)
class LiveVersion:
    """Which version of an item is being sent, and who made it live when (none: the repository's files)."""

    number: int
    author: str | None
    at: datetime | None
    note: str
    rolled_back: bool = False


def live_versions(session: Session, course_slug: str) -> dict[str, LiveVersion]:
    """The live version of every item that was ever published or rolled back; others are version 0."""
    latest = (
        select(func.max(TemplatePublication.id))
        .where(TemplatePublication.course_slug == course_slug)
        .group_by(TemplatePublication.item)
    )
    publications = session.scalars(select(TemplatePublication).where(TemplatePublication.id.in_(latest)))
    return {
        publication.item: LiveVersion(
            publication.version.number if publication.version is not None else 0,
            publication.author,
            publication.created_at,
            publication.note,
            publication.action == "roll-back",
        )
        for publication in publications
    }


def bounded_check(templates: TemplateSet, course: Course, settings: Settings) -> list[TemplateError]:
    """:func:`check` in a child process with limits on time and memory (emails/sandbox.py): what a
    save or publish from the studio runs, so that no template can hold the web app."""
    return _bounded(templates, course, settings, contents=False)[0]


def _bounded(
    templates: TemplateSet, course: Course, settings: Settings, *, contents: bool = True
) -> tuple[list[TemplateError], dict[str, str]]:
    """The problems of these templates and, when there are none (and ``contents``), their :func:`contents`:
    in the child."""
    try:
        return checked_bounded(templates.files, course.slug, settings=settings, contents=contents)
    except CheckFailed as error:
        return [TemplateError("every email", "", str(error))], {}


def live_templates(session: Session, course_slug: str) -> TemplateSet:
    """The templates the course sends today (its current release)."""
    return templates_at(session, course_slug, current_release(session, course_slug))


def with_item_live(session: Session, course_slug: str, item: str, files: Mapping[str, str]) -> TemplateSet:
    """Today's templates with ``files`` as the item's: what publishing them would make live."""
    return with_item(live_templates(session, course_slug), item, files)


def _refuse_unless_it_renders(
    session: Session, course: Course, settings: Settings, item: str, files: Mapping[str, str]
) -> tuple[str, str]:
    """Check what publishing ``files`` as the item would make live; PublishRefused if anything would
    break. Otherwise its :func:`contents` and the emails it changes, as the JSON a publication keeps."""
    problems, after = _bounded(with_item_live(session, course.slug, item, files), course, settings)
    if problems:
        raise PublishRefused(problems)
    before = _live_contents(session, course, settings)
    changed = sorted(email for email, digest in after.items() if before.get(email) != digest)
    return json.dumps(after, sort_keys=True), json.dumps(changed)


def _live_contents(session: Session, course: Course, settings: Settings) -> dict[str, str]:
    """The :func:`contents` of what is live now: kept with the latest publication; read again (in the
    child) before the first publication, or after one published before contents were kept."""
    latest = session.scalar(
        select(TemplatePublication)
        .where(TemplatePublication.course_slug == course.slug)
        .order_by(TemplatePublication.id.desc())
        .limit(1)
    )
    if latest is not None and latest.contents:
        kept: dict[str, str] = json.loads(latest.contents)
        return kept
    live = live_templates(session, course.slug)
    try:
        base_course(live.files, course.slug)
    except LookupError:  # a course being made: nothing of it is live yet
        return {}
    problems, found = _bounded(live, course, settings)
    return {} if problems else found  # what is live no longer renders: every email counts as changed


@dataclass(frozen=True)
class Published:
    version: TemplateVersion
    publication: TemplatePublication


def publish(
    session: Session,
    *,
    course: Course,
    settings: Settings,
    item: str,
    files: Mapping[str, str],
    note: str,
    author: str | None,
    now: datetime,
) -> Published:
    """Store ``files`` as the item's next version and make it live; PublishRefused if anything would break.

    The caller commits. Two publishes of one item at once: the unique (course, item, number) makes the
    second fail rather than both claim one number.
    """
    contents_json, changed = _refuse_unless_it_renders(session, course, settings, item, files)
    number = (
        session.scalar(
            select(func.max(TemplateVersion.number)).where(
                TemplateVersion.course_slug == course.slug, TemplateVersion.item == item
            )
        )
        or 0
    ) + 1
    version = TemplateVersion(course_slug=course.slug, item=item, number=number, files=json.dumps(dict(files)),
                              note=note, author=author, created_at=now)  # fmt: skip
    session.add(version)
    session.flush()
    publication = TemplatePublication(course_slug=course.slug, item=item, version_id=version.id, action="publish",
                                      author=author, note=note, contents=contents_json, changed=changed,
                                      created_at=now)  # fmt: skip
    session.add(publication)
    session.flush()
    return Published(version, publication)


def roll_back(
    session: Session,
    *,
    course: Course,
    settings: Settings,
    item: str,
    number: int,
    author: str | None,
    now: datetime,
    note: str = "",
) -> TemplatePublication:
    """Make an earlier version of the item live again (0: the repository's files). Checked like a publish;
    ``note`` says why, in the item's history (:func:`history_of`)."""
    version = None
    if number:
        version = session.scalar(
            select(TemplateVersion).where(
                TemplateVersion.course_slug == course.slug,
                TemplateVersion.item == item,
                TemplateVersion.number == number,
            )
        )
        if version is None:
            raise LookupError(f"{item} has no version {number}")
    files = json.loads(version.files) if version is not None else files_of(default_templates(), item)
    contents_json, changed = _refuse_unless_it_renders(session, course, settings, item, files)
    why = note.strip() or f"back to version {number}"
    publication = TemplatePublication(course_slug=course.slug, item=item, version_id=version.id if version else None,
                                      action="roll-back", author=author, note=why,
                                      contents=contents_json, changed=changed, created_at=now)  # fmt: skip
    session.add(publication)
    session.flush()
    return publication


@dataclass(frozen=True)
class Went:
    """One time the item went live: a publish of a new version, or a roll-back to an earlier one."""

    publication: TemplatePublication
    number: int  # the version that went live (0: the text as shipped)

    @property
    def rolled_back(self) -> bool:
        return self.publication.action == "roll-back"


def history_of(session: Session, course_slug: str, item: str) -> list[Went]:
    """Every time the item went live, newest first: who, when, which version, and why."""
    rows = session.execute(
        select(TemplatePublication, TemplateVersion.number)
        .outerjoin(TemplateVersion, TemplatePublication.version_id == TemplateVersion.id)
        .where(TemplatePublication.course_slug == course_slug, TemplatePublication.item == item)
        .order_by(TemplatePublication.id.desc())
    ).all()
    return [Went(publication, number or 0) for publication, number in rows]


class DraftConflict(Exception):
    """Someone saved (or published, or discarded) this item's draft since the editor opened it."""

    def __init__(self, current: TemplateDraft | None) -> None:
        self.current = current
        super().__init__("the draft changed since you opened it")


def draft_of(session: Session, course_slug: str, item: str) -> TemplateDraft | None:
    return session.scalar(
        select(TemplateDraft).where(TemplateDraft.course_slug == course_slug, TemplateDraft.item == item)
    )


def save_draft(
    session: Session,
    *,
    course_slug: str,
    item: str,
    files: Mapping[str, str],
    expected_revision: int,
    based_on: int,
    author: str | None,
    now: datetime,
) -> TemplateDraft:
    """Save the item's draft; ``expected_revision`` is the one the editor started from (0: none yet).

    DraftConflict when the draft moved on since: nothing is overwritten, and the caller shows both.
    """
    with_item(default_templates(), item, files)  # refuses a file that is not this item's
    draft = session.scalar(
        select(TemplateDraft)
        .where(TemplateDraft.course_slug == course_slug, TemplateDraft.item == item)
        .with_for_update()
    )
    if (draft.revision if draft is not None else 0) != expected_revision:
        raise DraftConflict(draft)
    if draft is None:
        draft = TemplateDraft(course_slug=course_slug, item=item, revision=0, based_on=based_on, files="{}",
                              updated_at=now)  # fmt: skip
        try:
            with session.begin_nested():  # two first saves at once: the second is a conflict
                session.add(draft)
        except IntegrityError:
            raise DraftConflict(draft_of(session, course_slug, item)) from None
    draft.files = json.dumps(dict(files))
    draft.based_on = based_on  # the live version this revision was written against (a publish checks it)
    draft.checked = None
    draft.revision += 1
    draft.author = author
    draft.updated_at = now
    session.flush()
    return draft


def record_check(session: Session, draft_id: int, revision: int, problems: list[TemplateError]) -> None:
    """Keep what the check of a draft's ``revision`` found with it, unless someone saved it again meanwhile."""
    found = [{"email": p.email, "file": p.file, "message": p.message, "line": p.line, "field": p.field}
             for p in problems]  # fmt: skip
    session.execute(
        update(TemplateDraft)
        .where(TemplateDraft.id == draft_id, TemplateDraft.revision == revision)
        .values(checked=json.dumps(found))
    )


def checked(draft: TemplateDraft) -> list[TemplateError] | None:
    """What the check of the draft found (none: it was not checked)."""
    if draft.checked is None:
        return None
    found = json.loads(draft.checked)
    return [TemplateError(p["email"], p["file"], p["message"], p["line"], p.get("field")) for p in found]


def discard_draft(session: Session, course_slug: str, item: str) -> None:
    draft = draft_of(session, course_slug, item)
    if draft is not None:
        session.delete(draft)
        session.flush()


def versions_of(session: Session, course_slug: str, item: str) -> list[TemplateVersion]:
    """The item's published versions, newest first."""
    return list(
        session.scalars(
            select(TemplateVersion)
            .where(TemplateVersion.course_slug == course_slug, TemplateVersion.item == item)
            .order_by(TemplateVersion.number.desc())
        )
    )
