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
from starlette.datastructures import FormData

from course.catalog import COURSE_FILE, CourseFileError, course_data, dump_course, read_course
from course.curriculum import SYSTEM_FONTS, Course, contrast
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
)
from web.studio.auth import CSRF, Scope, Scoped, User, Web, check_csrf, studio_page, within_limit

router = APIRouter(prefix="/studio/course")

WELCOME, COMPLETION = "welcome", "completion"
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
    course = shown or working
    return studio_page(
        web, request, "course.html", status_code=status_code, user=user, shown=course, rows=_rows(course, scope.base),
        errors=errors or {}, message=message, revision=draft_revision if revision is None else revision,
        has_draft=draft_revision > 0, live_number=live.number if live else 0, hours=HOURS, system_fonts=SYSTEM_FONTS,
        saved=request.query_params.get("saved") == "1", published=request.query_params.get("published"),
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
    for colour, against in (("accent", "#ffffff"), ("text", "#ffffff")):
        value = theme[colour]
        if not (len(value) == 7 and value.startswith("#") and all(c in "0123456789abcdef" for c in value[1:])):
            errors[f"theme.{colour}"] = "A colour as #rrggbb, for example #a3472a."
        elif contrast(value, against) < 4.5:
            what = "white button text" if colour == "accent" else "reading on white"
            errors[f"theme.{colour}"] = (f"Too light for {what} (contrast {contrast(value, against):.1f}:1, at least "
                                         "4.5:1): choose a darker colour.")  # fmt: skip
    data["theme"] = theme
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
    # Against what is live: an email taken out remembers the one it came after; one moved later is marked.
    kept = {day["number"] for day in data["days"]}
    retired = {int(number): anchor for number, anchor in data.get("retired", {}).items()}
    live_order = [step.number for step in live.steps]
    for index, number in enumerate(live_order):
        if number not in kept and number not in (0, live.completion.step):
            retired[number] = live_order[index - 1] if index else -1
    new_order = [0, *(day["number"] for day in data["days"])]
    moved = set(data.get("moved", []))
    for number in new_order:
        if number in live_order:
            before_now = set(new_order[: new_order.index(number)])
            before_then = set(live_order[: live_order.index(number)])
            if before_now & (set(live_order) - before_then):
                moved.add(number)
    data["retired"] = {number: anchor for number, anchor in retired.items() if number not in kept}
    data["moved"] = sorted(moved & kept)
    return data


@router.post("", response_class=HTMLResponse)
async def save_course(request: Request, web: Web, user: User, scope: Scoped) -> Response:
    form = await request.form(max_files=0, max_fields=4 * MAX_EMAILS + 40)
    check_csrf(request, str(form.get("csrf", "")))
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
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        errors.setdefault(field or "course", str(first["msg"]).removeprefix("Value error, "))
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
              detail=str(form.get("action", "")) or None)  # fmt: skip
        session.commit()
    return RedirectResponse(f"/studio/course?course={quote(scope.slug)}&saved=1", status_code=303)


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
            after = read_course(files[COURSE_FILE])
            published = publish(session, course=after, settings=web.settings, item=COURSE_FILE, files=files,
                                note=note.strip() or "no note", author=user.email, now=now)  # fmt: skip
        except (CourseFileError, KeyError) as error:
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
