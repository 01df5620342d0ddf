"""The studio's audience: who is on a course (course/audience.py finds them), searched, filtered and
sorted, a page at a time. Editors see the courses their account may edit, and nothing of the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Select
from sqlalchemy.orm import Session

from course.audience import MAX_SEARCH, NOT_STARTED, BadCursor, Filters, Happening, Order, page, person_item, story
from course.curriculum import Course
from course.deliveries.suppressions import suppression_reason
from course.engagement.privacy import erase
from course.insights.measures import NONE
from course.insights.reading import step_label
from course.lifecycle import is_course_email
from course.models.engagement import EventKind
from course.models.studio import StudioUser
from course.models.subscribers import Subscriber, SubscriberStatus
from course.studio import audit
from course.subscriptions import (
    CannotMove,
    InvalidSubscription,
    change_schedule,
    check_timezone,
    emails_had,
    move_to,
    normalise_email,
    parse_send_time,
    pause,
    resend_last,
    resume,
    unsubscribe,
)
from web.context import WebContext
from web.pages import SEND_TIMES, TIMEZONES
from web.spreadsheet import SafeWriter
from web.studio.auth import CSRF, Scope, Scoped, User, Web, check_csrf, studio_page
from web.studio.insights import checked_figure, figure_people

router = APIRouter(prefix="/studio")

# Each status as the list names it, in the order a person meets them.
STATUSES = {
    SubscriberStatus.PENDING: "Waiting for confirmation", SubscriberStatus.ACTIVE: "Active",
    SubscriberStatus.PAUSED: "Paused", SubscriberStatus.COMPLETED: "Completed",
    SubscriberStatus.UNSUBSCRIBED: "Unsubscribed", SubscriberStatus.BOUNCED: "Bounced",
    SubscriberStatus.COMPLAINED: "Complained",
}  # fmt: skip
ERASED = "erased"  # a filter of its own: an erased person leaves no row, only a keyed hash of the address
NOT_STARTED_VALUE = "none"
# Why an address is on the suppression list, as the list says it.
SUPPRESSED = {
    "bounce": "its mail server said it does not exist (a hard bounce); nothing is sent to it again",
    "complaint": "its owner marked an email as spam; nothing is sent to it again",
    "erased": "its owner erased their data; nothing is sent to it unless they sign up again and confirm",
}


def _status(value: str) -> SubscriberStatus | None:
    if value in ("", ERASED):
        return None
    try:
        return SubscriberStatus(value)
    except ValueError:
        raise HTTPException(400, "There is no such status: choose one from the list.") from None


@dataclass(frozen=True)
class Chosen:
    """The list's choices as the address carries them (``?q=...&status=...``), checked once for the page and
    its download."""

    q: str = ""
    status: str = ""
    place: str = ""
    order: str = Order.SIGNUP.value
    oldest: bool = False
    # The people behind a figure of the insights (web/studio/insights.py ``people_url``): which, and its weeks.
    figure: str = ""
    figure_step: int = NONE
    key: str | None = None
    version: str | None = None
    since: str | None = None
    until: str | None = None
    cohort: str | None = None

    def behind(self, session: Session, web: WebContext, scope: Scope) -> tuple[Select[Any] | None, str]:
        """The people behind the chosen figure, and the figure as the page names it (none: everyone)."""
        if not self.figure:
            return None, ""
        figure = checked_figure(scope, self.figure, self.figure_step, self.version, self.key)
        if figure is None:
            raise HTTPException(404, "The insights have no such figure.")
        query, selection = figure_people(session, web, scope, figure, self.since, self.until, self.cohort)
        email = "" if figure.step == NONE else f" of the {email_label(scope.base, figure.step)} email"
        detail = "".join(f", {part}" for part in (self.key, self.version and f"version {self.version}") if part)
        weeks = f"signed up in the week of {selection.first}" if selection.cohort else (
            f"signed up from the week of {selection.first} to that of {selection.last}")  # fmt: skip
        return query, f"“{self.figure}”{email}{detail}: people who {weeks}"

    def filters(self, course: Course, among: Select[Any] | None = None) -> Filters:
        """The choices as course/audience.py takes them; 400 for one the page does not offer."""
        if self.place not in ("", NOT_STARTED_VALUE, *(str(step.number) for step in course.steps)):
            raise HTTPException(400, "There is no such email in this course: choose one from the list.")
        try:
            order = Order(self.order)
        except ValueError:
            raise HTTPException(400, "The list sorts by sign-up or by last email.") from None
        place = None if not self.place else NOT_STARTED if self.place == NOT_STARTED_VALUE else int(self.place)
        return Filters(search=self.q, status=_status(self.status), order=order, newest_first=not self.oldest,
                       place=place, among=among)  # fmt: skip

    def query(self, slug: str, **more: str) -> str:
        asked: dict[str, object] = {"course": slug, "q": self.q, "status": self.status, "place": self.place,
                                    "order": self.order}  # fmt: skip
        if self.oldest:
            asked["oldest"] = "true"
        if self.figure:
            asked |= {"figure": self.figure, "figure_step": self.figure_step}
            asked |= {name: value for name in ("key", "version", "since", "until", "cohort")
                      if (value := getattr(self, name)) is not None}  # fmt: skip
        return urlencode({**asked, **more})


def chosen(
    q: Annotated[str, Query(max_length=MAX_SEARCH)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    place: Annotated[str, Query(max_length=10)] = "",
    order: Annotated[str, Query(max_length=20)] = Order.SIGNUP.value,
    oldest: Annotated[bool, Query()] = False,
    figure: Annotated[str, Query(max_length=40)] = "",
    figure_step: Annotated[int, Query(ge=-1, le=100_000)] = NONE,
    key: Annotated[str | None, Query(max_length=120)] = None,
    version: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[str | None, Query(max_length=20)] = None,
    until: Annotated[str | None, Query(max_length=20)] = None,
    cohort: Annotated[str | None, Query(max_length=20)] = None,
) -> Chosen:
    return Chosen(q, status, place, order, oldest, figure, figure_step, key, version, since, until, cohort)


Choices = Annotated[Chosen, Depends(chosen)]


@router.get("/subscribers", response_class=HTMLResponse)
def subscriber_list(
    request: Request, web: Web, user: User, scope: Scoped, choices: Choices,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:  # fmt: skip
    suppressed = None
    with web.session() as session:
        among, behind = choices.behind(session, web, scope)
        filters = choices.filters(scope.base, among)
        try:
            found = None if choices.status == ERASED else page(session, scope.slug, filters, after)
        except BadCursor:
            raise HTTPException(400, "This page's link is not one the list made: start from the first page.") from None
        address = _address(choices.q)
        if address is not None:
            reason = suppression_reason(session, address, web.settings.address_key)
            suppressed = SUPPRESSED.get(reason or "")
    next_url = f"/studio/subscribers?{choices.query(scope.slug, after=found.after)}" if found and found.after else None
    steps = {str(step.number): step_label(scope.base, step.number) for step in scope.base.steps}
    return studio_page(
        web, request, "subscribers.html", user=user, found=found, chosen=choices, statuses=STATUSES, erased=ERASED,
        steps=steps, not_started=NOT_STARTED_VALUE, step_label=lambda number: email_label(scope.base, number),
        next_url=next_url, first_url=f"/studio/subscribers?{choices.query(scope.slug)}" if after else None,
        address=address, suppressed=suppressed, download_url=f"/studio/subscribers.csv?{choices.query(scope.slug)}",
        behind=behind, everyone_url=f"/studio/subscribers?{urlencode({'course': scope.slug})}",
    )  # fmt: skip


# The download's columns: what the list shows, and what a spreadsheet of a list is for besides.
EXPORT_COLUMNS = ["id", "email", "first_name", "status", "paused_until", "last_email", "time_through", "timezone",
                  "send_time", "signed_up_utc", "last_email_sent_utc"]  # fmt: skip
EXPORT_PAGE = 1000


@router.get("/subscribers.csv")
def subscriber_export(web: Web, user: User, scope: Scoped, choices: Choices) -> Response:
    """Everyone the list's choices find, as CSV (formula-safe: web/spreadsheet.py), streamed a thousand at a
    time; for publishers, and written to the audit log with the choices and how many."""
    if not user.may_publish:
        raise HTTPException(403, "Downloading the list is for publishers.")
    if choices.status == ERASED:
        raise HTTPException(400, "An erased person leaves nothing to download.")
    with web.session() as session:  # (checked before the download starts: a refusal is a page, not half a file)
        filters = choices.filters(scope.base, choices.behind(session, web, scope)[0])
    name = f"people-{scope.slug}-{web.clock():%Y%m%d-%H%M}.csv"

    def when(moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    def rows() -> Iterator[str]:
        writer = SafeWriter()
        writer.row(EXPORT_COLUMNS)
        listed, after = 0, None
        with web.session() as session:
            while True:
                found = page(session, scope.slug, filters, after, size=EXPORT_PAGE, count=False)
                for person in found.people:
                    listed += 1
                    writer.row([
                        person.id, person.email, person.first_name or "", person.status, when(person.paused_until),
                        "" if person.current_step is None else email_label(scope.base, person.current_step),
                        person.enrolment, person.timezone, person.send_time.strftime("%H:%M"), when(person.created_at),
                        when(person.last_sent_at),
                    ])  # fmt: skip
                yield writer.take()
                if found.after is None:
                    break
                after = found.after
            audit(session, user, "subscribers-export", now=web.clock(), course_slug=scope.slug,
                  detail=f"{name}: {listed} people ({choices.query(scope.slug)})")  # fmt: skip
            session.commit()

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


def email_label(course: Course, number: int) -> str:
    """An email as the studio names it ("Day 5"), or what it was, for an email since taken out."""
    return step_label(course, number) if course.has_step(number) else "an email since taken out"


def _address(search: str) -> str | None:
    """The search as an address, when it is one (to say whether it is suppressed); None otherwise."""
    if "@" not in search:
        return None
    try:
        return normalise_email(search)
    except InvalidSubscription:
        return None


# --- One person's story --------------------------------------------------------------------------------------

# An email's state, as the story says it.
EMAIL_STATES = {
    "sent": "sent", "failed": "refused by the mail server", "skipped": "not sent", "claimed": "waiting to be sent",
    "sending": "being sent",
}  # fmt: skip
# What each kind of event is, as the story says it (links and answers are described apart).
EVENTS = {
    EventKind.CONFIRMED: "Confirmed their address", EventKind.PAUSED: "Paused the course",
    EventKind.RESUMED: "Resumed the course", EventKind.RESTARTED: "Started the course again",
    EventKind.UNSUBSCRIBED: "Unsubscribed", EventKind.COMPLAINT: "Marked an email as spam (a complaint)",
    EventKind.BOUNCE: "The email bounced",
}  # fmt: skip
LINKS = {
    EventKind.CLICK: "opened a link", EventKind.CONSULTATION: "opened the consultation link",
    EventKind.RESOURCE: "opened a guide", EventKind.EXERCISE_DONE: "marked the exercise done",
}  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One line of the story as the page shows it."""

    at: datetime
    local: str  # the moment in the person's own zone
    what: str
    detail: str
    scanner: bool


def _band_label(course: Course, checklist: str | None, band: str | None) -> str:
    found = course.checklists.get(checklist or "")
    for each in found.bands if found else []:
        if each.key == band:
            return each.label
    return band or ""


def describe(course: Course, happening: Happening) -> tuple[str, str]:
    """What happened, and its detail, in the studio's words."""
    email = "" if happening.step is None else email_label(course, happening.step)
    through = f" (time {happening.enrolment} through)" if (happening.enrolment or 1) > 1 else ""
    if happening.kind == "email":
        again = happening.step is None and is_course_email(happening.email or "")
        if again:  # sent again by the studio: named as the email it was
            number = next((one.number for one in course.steps if one.email == happening.email), None)
            email = "" if number is None else email_label(course, number)
        name = email or (happening.email or "").replace("-", " ").capitalize()
        release = f"release {happening.release[:8]}" if happening.release else ""
        detail = "; ".join(part for part in (release, happening.reply or "") if part)
        state = EMAIL_STATES.get(happening.state or "", happening.state or "")
        return f"{name} email {state}{' again' if again else ''}{through}", detail
    if happening.kind == "answer":
        checklist = course.checklists.get(happening.checklist or "")
        title = checklist.title if checklist else happening.checklist or "a checklist"
        band = _band_label(course, happening.checklist, happening.value)
        said = f"Answered {title} in the {email or 'an'} email: {band}"
        if happening.before is not None and happening.before != happening.value:
            said += f" (was {_band_label(course, happening.checklist, happening.before)})"
        score = "" if happening.score is None else f"{happening.score} ticked"
        return said + through, score
    if happening.kind == "studio":
        acted = ACTS.get((happening.value or "").removeprefix("subscriber-"), happening.value or "")
        return f"{happening.by} {acted} in the studio", happening.detail or ""
    if happening.kind == "sign-up":
        form = f"on {happening.detail}" if happening.detail else ""
        return "Sent the sign-up form", "; ".join(part for part in (form, happening.value or "not confirmed") if part)
    kind = EventKind(happening.kind) if happening.kind in EventKind._value2member_map_ else None
    if kind in LINKS:
        who = "A mail scanner" if happening.automated else "They"
        where = f" in the {email} email" if email else ""
        value = "" if kind in (EventKind.CONSULTATION, EventKind.EXERCISE_DONE) else happening.value or ""
        seconds = happening.seconds_after_delivery
        after = "" if seconds is None else f"{seconds:,.0f} s after delivery"
        return f"{who} {LINKS[kind]}{where}{through}", "; ".join(part for part in (value, after) if part)
    what = EVENTS.get(kind, happening.kind) if kind is not None else happening.kind
    where = f" after the {email} email" if email and kind in (EventKind.UNSUBSCRIBED, EventKind.PAUSED) else ""
    return f"{what}{where}{through}", "; ".join(part for part in (happening.value or "", happening.reply or "") if part)


def _local(moment: datetime, zone: str) -> str:
    try:
        return moment.astimezone(ZoneInfo(zone)).strftime("%d %b %Y %H:%M")
    except (ZoneInfoNotFoundError, ValueError):
        return ""


@router.get("/subscribers/{subscriber_id}", response_class=HTMLResponse)
def subscriber_page(
    request: Request, web: Web, user: User, scope: Scoped, subscriber_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> Response:  # fmt: skip
    with web.session() as session:
        found = story(session, scope.slug, subscriber_id)
        if found is None:
            raise HTTPException(404, "This course has no such person (they may have erased their data).")
        session.expunge_all()
    person = found.subscriber
    lines = []
    for happening in found.happenings:
        what, detail = describe(scope.base, happening)
        lines.append(Line(happening.at, _local(happening.at, person.timezone), what, detail, happening.automated))
    next_email = None
    if person.next_send_at is not None:
        next_email = _local(person.next_send_at, person.timezone)
    with web.session() as session:
        had = emails_had(session, person)
    movable = {step.number: email_label(scope.base, step.number) for step in scope.base.steps if step.number not in had}
    return studio_page(
        web, request, "subscriber.html", user=user, person=person, story=found, lines=lines, statuses=STATUSES,
        email_label=lambda number: email_label(scope.base, number), next_local=next_email,
        signed_up_local=_local(person.created_at, person.timezone), movable=movable, send_times=SEND_TIMES,
        timezones=TIMEZONES, done=ACTS.get(request.query_params.get("done", "")), why_length=WHY_LENGTH,
    )  # fmt: skip


# --- Acting for a person --------------------------------------------------------------------------------------

# What the studio may do for a person (a reader who called, say), each written to the audit log with who
# and why; erasing is for publishers only.
ACTS = {
    "pause": "paused them", "resume": "resumed them", "schedule": "changed their time", "move": "moved them",
    "resend": "sent their last email again", "unsubscribe": "unsubscribed them", "erase": "erased their data",
}  # fmt: skip
WHY_LENGTH = 500


def _refused(request: Request, web: WebContext, user: StudioUser, back: str, message: str) -> Response:
    return studio_page(web, request, "refused.html", status_code=400, user=user, title="Nothing was changed",
                       message=message, back=back, back_label="Back to the person")  # fmt: skip


@router.post("/subscribers/{subscriber_id}/act")
def act_for(
    request: Request,
    web: Web,
    user: User,
    scope: Scoped,
    subscriber_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    csrf: CSRF,
    action: Annotated[str, Form(max_length=20)],
    why: Annotated[str, Form(max_length=WHY_LENGTH)] = "",
    send_time: Annotated[str, Form(max_length=10)] = "",
    timezone: Annotated[str, Form(max_length=100)] = "",
    step: Annotated[str, Form(max_length=10)] = "",
    sure: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    check_csrf(request, csrf)
    back = f"/studio/subscribers/{subscriber_id}?{urlencode({'course': scope.slug})}"
    if action not in ACTS:
        return _refused(request, web, user, back, "There is no such action.")
    reason = " ".join(why.split())
    if not reason:
        return _refused(request, web, user, back, "Say why (the audit log keeps it with your name).")
    if action == "erase" and not user.may_publish:
        raise HTTPException(403, "Erasing a person's data is for publishers.")
    if action == "erase" and sure != "yes":
        return _refused(request, web, user, back, "Tick the box to confirm the erasure: nothing was erased.")
    now = web.clock()
    with web.session() as session:
        person = session.get(Subscriber, subscriber_id)
        if person is None or person.course_slug != scope.slug:
            raise HTTPException(404, "This course has no such person (they may have erased their data).")
        try:
            detail = _act(session, web, scope, person, action, now, send_time=send_time, timezone=timezone, step=step)
        except (CannotMove, InvalidSubscription) as error:
            session.rollback()
            return _refused(request, web, user, back, f"{str(error)[:1].upper()}{str(error)[1:]}.")
        said = f"{detail}. Why: {reason}" if detail else f"Why: {reason}"
        audit(session, user, f"subscriber-{action}", now=now, course_slug=scope.slug, item=person_item(subscriber_id),
              detail=said)  # fmt: skip
        session.commit()
    if action == "erase":
        return RedirectResponse(f"/studio/subscribers?{urlencode({'course': scope.slug, 'done': 'erased'})}", 303)
    return RedirectResponse(f"/studio/subscribers/{subscriber_id}?{urlencode({'course': scope.slug, 'done': action})}",
                            303)  # fmt: skip


def _act(session: Session, web: WebContext, scope: Scope, person: Subscriber, action: str, now: datetime, *,
         send_time: str, timezone: str, step: str) -> str:  # fmt: skip
    """Do ``action`` for ``person``; what the audit log says of it besides why (no address: an erasure's
    entry outlives the person). InvalidSubscription or CannotMove when it cannot be done."""
    status = person.status
    if action == "pause":
        if status != SubscriberStatus.ACTIVE.value:
            raise CannotMove(
                f"only an active reader can be paused; this one is {STATUSES[SubscriberStatus(status)].lower()}"
            )
        pause(session, person.id, now=now)
        return ""
    if action == "resume":
        if status != SubscriberStatus.PAUSED.value:
            raise CannotMove("only a paused reader can be resumed")
        resume(session, person.id, now=now, timing=web.timing)
        return ""
    if action == "schedule":
        chosen, zone = parse_send_time(send_time), check_timezone(timezone or person.timezone)
        change_schedule(session, person.id, send_time=chosen, timezone=zone, now=now, timing=web.timing)
        return f"{chosen.strftime('%H:%M')} in {zone}"
    if action == "move":
        if not (step.isascii() and step.isdigit()):
            raise CannotMove("choose an email of the course")
        move_to(session, person.id, int(step), course=scope.base, now=now, timing=web.timing)
        return f"next email: {email_label(scope.base, int(step))}"
    if action == "resend":
        email = resend_last(session, person.id, now=now)
        number = next((one.number for one in scope.base.steps if one.email == email), None)
        return f"sent again: {email if number is None else email_label(scope.base, number)}"
    if action == "unsubscribe":
        if status == SubscriberStatus.UNSUBSCRIBED.value:
            raise CannotMove("they are unsubscribed already")
        unsubscribe(session, person.id, now=now)
        return ""
    erase(session, person, now, web.settings.address_key)
    return ""
