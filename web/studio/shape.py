"""The course's own page in the studio: its settings and theme, and its emails in order with their waits.

What the page saves is a draft of the course's data (the ``_course.yaml`` item, course/catalog.py): checked
when it is saved (the course's own rules, each problem beside its field) and when it is published (every
email must render). Publishing it makes it the course's next release: readers in the middle of the course
keep their place by who their last email was (README: "Several courses"), and those whose next email or
its wait changed are rescheduled at once.

Order is changed by dragging a row (SortableJS) or with its buttons (what a keyboard or a page without
script uses); every button saves the whole form, so nothing typed is lost, and comes back to the page
(Post/Redirect/Get).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from course.catalog import (
    COURSE_FILE,
    CourseFileError,
    course_data,
    dump_course,
    keep_places,
    read_course,
    shipped_course_file,
)
from course.curriculum import SYSTEM_FONTS, Course
from course.studio import audit
from course.subscriptions import reschedule_after_change
from emails.store import (
    DraftConflict,
    PublishRefused,
    discard_draft,
    draft_of,
    live_versions,
    publish,
    save_draft,
    versions_of,
)
from web.media import MAX_IMAGE_BYTES, ImageRefused, store_image
from web.pages import embed_snippet
from web.studio.auth import CSRF, Scope, Scoped, User, Web, check_csrf, studio_page, within_limit
from web.studio.checklists import BAND_ROWS, MAX_CHECKLISTS, applied, views

router = APIRouter(prefix="/studio/course")

WELCOME, COMPLETION = "welcome", "completion"
# The fields of the form a problem may be shown beside.
FORM_FIELDS = frozenset(
    {
        "title",
        "subtitle",
        "sender_name",
        "reply_to",
        "consultation_url",
        "theme.accent",
        "theme.background",
        "theme.text",
        "theme.font",
        "theme.logo",
        "theme.logo_alt",
    }
)
MAX_EMAILS = 365
HOURS = list(range(24))


@dataclass(frozen=True)
class Row:
    """One email of the course as the page shows it."""

    key: str  # "welcome", "completion" or a day's number
    label: str
    title: str
    wait: Any
    movable: bool
    new: bool


def _rows(course: Course, live: Course) -> list[Row]:
    rows = [Row(WELCOME, "Welcome", "Welcome", course.welcome.wait or course.steps[0].wait, False, False)]
    known = {day.number for day in live.days}
    for day in course.days:
        rows.append(Row(str(day.number), f"Email {day.position + 1}", day.title, day.wait, True,
                        day.number not in known))  # fmt: skip
    rows.append(Row(COMPLETION, "Completion", "Completion", course.steps[-1].wait, False, False))
    return rows


def _working(session: Any, scope: Scope) -> tuple[Course, int]:
    """The course as the draft has it (else as it is live), and the draft's revision (0: none)."""
    draft = draft_of(session, scope.slug, COURSE_FILE)
    if draft is None:
        return scope.base, 0
    try:
        return read_course(json.loads(draft.files)[COURSE_FILE]), draft.revision
    except (CourseFileError, KeyError, ValueError):
        return scope.base, draft.revision  # a draft written in the code editor that no longer reads


def _page(request: Request, web: Web, user: User, scope: Scope, *, status_code: int = 200,
          errors: dict[str, str] | None = None, message: str | None = None, shown: Course | None = None,
          revision: int | None = None) -> Response:  # fmt: skip
    with web.session() as session:
        working, draft_revision = _working(session, scope)
        live = live_versions(session, scope.slug).get(COURSE_FILE)
        versions = versions_of(session, scope.slug, COURSE_FILE)
    course = shown or working
    return studio_page(
        web, request, "course.html", status_code=status_code, user=user, shown=course, rows=_rows(course, scope.base),
        errors=errors or {}, message=message, revision=draft_revision if revision is None else revision,
        has_draft=draft_revision > 0, live_number=live.number if live else 0, hours=HOURS, system_fonts=SYSTEM_FONTS,
        saved=request.query_params.get("saved") == "1", published=request.query_params.get("published"),
        snippet=embed_snippet(str(web.settings.base_url), scope.base), embed_origins=sorted(web.settings.embed_origins),
        checklists=views(course, scope.base), band_rows=BAND_ROWS, versions=versions,
        shipped=shipped_course_file(scope.slug) is not None,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def course_page(request: Request, web: Web, user: User, scope: Scoped) -> Response:
    return _page(request, web, user, scope)


def _wait(form: FormData, key: str, errors: dict[str, str]) -> dict[str, Any]:
    days_text = str(form.get(f"days.{key}", "1")).strip()
    hour_text = str(form.get(f"hour.{key}", "")).strip()
    wait: dict[str, Any] = {"after": "signup" if form.get(f"after.{key}") == "signup" else "previous",
                            "weekdays_only": form.get(f"weekdays.{key}") == "on"}  # fmt: skip
    if not days_text.isascii() or not days_text.isdigit() or int(days_text) > 365:
        errors[f"days.{key}"] = "A whole number of days, from 0 to 365."
        wait["days"] = 1
    else:
        wait["days"] = int(days_text)
    if hour_text and (not hour_text.isascii() or not hour_text.isdigit() or int(hour_text) > 23):
        errors[f"hour.{key}"] = "An hour from 0 to 23, or the reader's own time."
    elif hour_text:
        wait["send_hour"] = int(hour_text)
    return wait


def _new_day(number: int) -> dict[str, Any]:
    return {
        "number": number, "title": "A new email", "short_title": "New email",
        "teaching": [{"kind": "text", "paragraphs": ["Write this email here."]}],
        "exercise": {"title": "Try this", "blocks": [{"kind": "text", "paragraphs": ["Describe the exercise here."]}]},
        "teaser": "More in the next email.",
    }  # fmt: skip


def _apply_action(order: list[str], action: str, next_number: int, days: dict[str, dict[str, Any]]) -> list[str]:
    """The emails' order after a button: up, down, remove or add (after) an email."""
    verb, _, key = action.partition(":")
    if key not in order or (key in (WELCOME, COMPLETION) and verb != "add"):
        return order
    index = order.index(key)
    if verb == "up" and index > 1:
        order[index - 1], order[index] = order[index], order[index - 1]
    elif verb == "down" and index < len(order) - 2:
        order[index + 1], order[index] = order[index], order[index + 1]
    elif verb == "remove" and len(order) > 3:
        order.remove(key)
    elif verb == "add" and key != COMPLETION and len(order) < MAX_EMAILS:
        days[str(next_number)] = _new_day(next_number)
        order.insert(index + 1, str(next_number))
    return order


def shaped(live: Course, working: Course, form: FormData, errors: dict[str, str]) -> dict[str, Any]:
    """The course data the form describes, over ``working`` (the draft, else what is live); ``retired`` and
    ``moved`` kept against what is live, so that readers in the middle keep their place when it is published."""
    data = course_data(working)
    for field in ("title", "subtitle", "sender_name"):
        data[field] = " ".join(str(form.get(field, data.get(field, ""))).split())
    for field in ("reply_to", "consultation_url"):
        value = str(form.get(field, "")).strip()
        data[field] = value or None
    data["open"] = form.get("open") == "on"
    theme = dict(data.get("theme", {}))
    for field in ("accent", "background", "text"):
        value = str(form.get(f"theme.{field}", theme.get(field, ""))).strip().lower()
        theme[field] = value
    theme["font"] = " ".join(str(form.get("theme.font", theme.get("font", SYSTEM_FONTS))).split()) or SYSTEM_FONTS
    theme["logo_alt"] = " ".join(str(form.get("theme.logo_alt", theme.get("logo_alt", ""))).split())
    if form.get("theme.logo_remove") == "on":
        theme["logo"], theme["logo_alt"] = None, ""
    if form.get("theme.logo"):
        theme["logo"] = str(form.get("theme.logo"))  # the upload save_course stored: its name
    data["theme"] = theme
    applied(data, live, form, str(form.get("action", "")), errors)
    days = {str(day["number"]): day for day in data["days"]}
    posted = [str(key) for key in form.getlist("order")]
    order = [WELCOME] + [key for key in posted if key in days] + [COMPLETION]
    order += [key for key in days if key not in order]  # a row the form lost stays, at the end
    order = [WELCOME] + [key for key in order if key not in (WELCOME, COMPLETION)] + [COMPLETION]
    next_number = working.next_number()
    order = _apply_action(order, str(form.get("action", "")), next_number, days)
    data["welcome"]["wait"] = _wait(form, WELCOME, errors)
    data["completion"]["wait"] = _wait(form, COMPLETION, errors)
    data["days"] = []
    for key in order[1:-1]:
        day = days[key]
        if f"days.{key}" in form:
            day["wait"] = _wait(form, key, errors)
        data["days"].append(day)
    return keep_places(live, data)


_DONE = {"up": "moved up", "down": "moved down", "remove": "took out", "add": "added an email after"}


def _what_was_done(action: str, course: Course) -> str | None:
    """A button's action in the audit log's words: "took out The first lesson"."""
    verb, _, key = action.partition(":")
    if verb not in _DONE:
        return None
    if key in (WELCOME, COMPLETION):
        title = key
    else:
        title = next((day.title for day in course.days if str(day.number) == key), f"email {key}")
    return f"{_DONE[verb]} {title}"


# The course's rules (course/curriculum.py) in the page's words, by the field they are about.
_PLAIN = {
    "string_pattern_mismatch": "This is not in the right form.",
    "url_parsing": "An address starting https://.",
    "url_scheme": "An address starting https://.",
    "string_too_short": "This cannot be empty.",
    "string_too_long": "This is too long.",
}


def _field_errors(error: ValidationError, found: dict[str, str]) -> dict[str, str]:
    """Each problem beside the form field it is about (``theme.accent``), in plain words; what is about no
    one field (a rule of the whole course) under ``course``."""
    fields: dict[str, str] = {}
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        if field == "theme":  # the theme's one rule of the whole: a logo needs its words
            field = "theme.logo_alt"
        elif field.startswith("checklists.") and field.count(".") >= 1:  # beside the checklist it is about
            field = "checklist." + field.split(".")[1]
            if field not in fields and field not in found:
                fields[field] = str(problem["msg"]).removeprefix("Value error, ")
            continue
        if field not in FORM_FIELDS:
            field = "course"
        message = _PLAIN.get(problem["type"]) or str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "string_pattern_mismatch" and field in ("theme.accent", "theme.background", "theme.text"):
            message = "A colour as #rrggbb, for example #a3472a."
        elif problem["type"] == "string_pattern_mismatch" and field == "theme.font":
            message = "Font names only: letters, digits, spaces, hyphens, quotes and commas."
        if field not in found and field not in fields:
            fields[field] = message[:1].upper() + message[1:]
    return fields


@router.post("", response_class=HTMLResponse)
async def save_course(request: Request, web: Web, user: User, scope: Scoped) -> Response:
    """The form names its fields by email (``days.7``), so it is read whole here; the rest (the database)
    runs in the thread pool, as the sync handlers do."""
    form = await request.form(max_files=1, max_fields=4 * MAX_EMAILS + 40 + MAX_CHECKLISTS * 40)
    check_csrf(request, str(form.get("csrf", "")))
    # The logo's name comes from an upload stored here, never from the form: stored first, so the draft names it.
    fields: list[tuple[str, str | StarletteUpload]] = [
        (key, value) for key, value in form.multi_items() if key != "theme.logo" and isinstance(value, str)
    ]
    upload = form.get("theme.logo_upload")
    if isinstance(upload, StarletteUpload) and upload.filename:
        try:
            fields.append(("theme.logo", await run_in_threadpool(_store_logo, web, user, scope, upload)))
        except ImageRefused as refused:
            said = str(refused)
            return await run_in_threadpool(_page, request, web, user, scope, status_code=400,
                                           errors={"theme.logo": said[:1].upper() + said[1:] + "."},
                                           message="Not saved: see what is marked below.")  # fmt: skip
    return await run_in_threadpool(_save_course, request, web, user, scope, FormData(fields))


def _store_logo(web: Web, user: User, scope: Scope, upload: StarletteUpload) -> str:
    data = upload.file.read(MAX_IMAGE_BYTES + 1)
    with web.session() as session:
        name = store_image(session, data, course_slug=scope.slug, author=user.email, now=web.clock())
        session.commit()
    return name


def _save_course(request: Request, web: Web, user: User, scope: Scope, form: FormData) -> Response:
    revision_text = str(form.get("revision", "0"))
    revision = int(revision_text) if revision_text.isascii() and revision_text.isdigit() else -1
    with web.session() as session:
        working, current = _working(session, scope)
    errors: dict[str, str] = {}
    data = shaped(scope.base, working, form, errors)
    course: Course | None = None
    try:
        course = Course.model_validate(data)
    except ValidationError as error:
        errors.update(_field_errors(error, errors))
    if errors or course is None:
        return _page(request, web, user, scope, status_code=400, errors=errors, revision=revision,
                     message="Not saved: see what is marked below.")  # fmt: skip
    now = web.clock()
    with web.session() as session:
        live = live_versions(session, scope.slug).get(COURSE_FILE)
        try:
            save_draft(session, course_slug=scope.slug, item=COURSE_FILE, files={COURSE_FILE: dump_course(course)},
                       expected_revision=revision, based_on=live.number if live else 0, author=user.email,
                       now=now)  # fmt: skip
        except DraftConflict:
            session.rollback()
            return _page(
                request,
                web,
                user,
                scope,
                status_code=409,
                shown=course,
                revision=revision,
                message=f"Someone saved this course since you opened it (their draft is revision {current}"
                "): nothing was saved. Open the page again to see theirs, then make your change.",
            )
        audit(session, user, "save-course", now=now, course_slug=scope.slug, item=COURSE_FILE,
              detail=_what_was_done(str(form.get("action", "")), working))  # fmt: skip
        session.commit()
    return RedirectResponse(f"/studio/course?course={quote(scope.slug)}&saved=1", status_code=303)


@router.post("/roll-back", response_class=HTMLResponse)
def roll_back_course(
    request: Request, web: Web, user: User, scope: Scoped, number: Annotated[int, Form(ge=0)], csrf: CSRF = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:  # fmt: skip
    """Make an earlier version of the course live again, as its next version: readers in the middle keep their
    place against what is live now (an email it takes out is passed over), as with any publish."""
    check_csrf(request, csrf)
    if not user.may_publish:
        raise HTTPException(403, "Rolling back is for publishers.")
    now = web.clock()
    with web.session() as session:
        versions = {version.number: version for version in versions_of(session, scope.slug, COURSE_FILE)}
        if number in versions:
            text = json.loads(versions[number].files)[COURSE_FILE]
        elif number == 0 and (shipped := shipped_course_file(scope.slug)) is not None:
            text = shipped[COURSE_FILE]
        else:
            raise HTTPException(404, f"The course has no version {number}")
        why = note.strip() or f"back to version {number}"
        try:
            after = Course.model_validate(keep_places(scope.base, course_data(read_course(text))))
            published = publish(session, course=after, settings=web.settings, item=COURSE_FILE,
                                files={COURSE_FILE: dump_course(after)}, note=f"rolled back to version {number}: {why}",
                                author=user.email, now=now)  # fmt: skip
        except (CourseFileError, ValidationError) as error:
            session.rollback()
            return _page(request, web, user, scope, status_code=400, message=f"Not rolled back: {error}")
        except PublishRefused as refused:
            session.rollback()
            said = f"Not rolled back: version {number} no longer renders with the rest. {refused}"
            return _page(request, web, user, scope, status_code=400, message=said)
        rescheduled = reschedule_after_change(session, scope.base, after, now=now, timing=web.timing)
        audit(session, user, "roll-back", now=now, course_slug=scope.slug, item=COURSE_FILE, version=number,
              detail=f"{why} (as version {published.version.number}; {rescheduled} readers rescheduled)")  # fmt: skip
        session.commit()
    return RedirectResponse(f"/studio/course?course={quote(scope.slug)}&published={published.version.number}",
                            status_code=303)  # fmt: skip


@router.post("/publish", response_class=HTMLResponse)
def publish_course(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    revision: Annotated[int, Form(ge=0)] = 0, note: Annotated[str, Form(max_length=500)] = "",
) -> Response:  # fmt: skip
    check_csrf(request, csrf)
    if not user.may_publish:
        raise HTTPException(403, "Publishing is for publishers. Ask one to publish your draft.")
    if not within_limit(web, user, "check"):
        return _page(
            request,
            web,
            user,
            scope,
            status_code=429,
            message="Nothing was published: that is a lot of checks in a few minutes. Try again shortly.",
        )
    now = web.clock()
    with web.session() as session:
        draft = draft_of(session, scope.slug, COURSE_FILE)
        if draft is None or draft.revision != revision:
            return _page(request, web, user, scope, status_code=409,
                         message="The draft changed (or was published) since this page was loaded: nothing was "
                                 "published. Look it over, then publish again.")  # fmt: skip
        files = json.loads(draft.files)
        try:
            # Whatever wrote the draft, readers in the middle keep their place against what is live now.
            after = Course.model_validate(keep_places(scope.base, course_data(read_course(files[COURSE_FILE]))))
            files = {COURSE_FILE: dump_course(after)}
            published = publish(session, course=after, settings=web.settings, item=COURSE_FILE, files=files,
                                note=note.strip() or "no note", author=user.email, now=now)  # fmt: skip
        except (CourseFileError, KeyError, ValidationError) as error:
            session.rollback()
            return _page(request, web, user, scope, status_code=400, message=f"Not published: {error}")
        except PublishRefused as refused:
            session.rollback()
            return _page(
                request,
                web,
                user,
                scope,
                status_code=400,
                message=f"Not published: every email must render first. {refused}",
            )
        discard_draft(session, scope.slug, COURSE_FILE)
        rescheduled = reschedule_after_change(session, scope.base, after, now=now, timing=web.timing)
        audit(session, user, "publish", now=now, course_slug=scope.slug, item=COURSE_FILE,
              version=published.version.number,
              detail=f"{note.strip() or 'no note'} ({rescheduled} readers rescheduled)")  # fmt: skip
        session.commit()
    return RedirectResponse(f"/studio/course?course={quote(scope.slug)}&published={published.version.number}",
                            status_code=303)  # fmt: skip
