"""Where the links in the emails lead: confirm, exercise done, checklist answers, consultation,
resources, unsubscribe. Every link carries a signed token (course/links.py).

Mail scanners open every link, and some run JavaScript: a GET shows a page and records a click
(flagged as automated when it looks like a machine) but changes nothing; a change happens on POST,
from a button on that page. The one exception is RFC 8058's one-click unsubscribe, which is a POST.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from course.curriculum import Course, CourseStep
from course.engagement.answers import baseline_and_retake, current_answer, save_answer, score_items
from course.engagement.clicks import (
    Click,
    Clicked,
    placed_enrolment,
    record_clicks,
    record_exercise_done,
    records_for,
)
from course.lifecycle import EmailKind
from course.links import LINK_PATHS, ExpiredLink, InvalidLink, LinkClaim, Purpose
from course.models.engagement import EventKind
from course.models.subscribers import SignupRequest, Subscriber, SubscriberStatus
from course.subscriptions import (
    ConfirmOutcome,
    Consent,
    confirm,
    pause,
    send_preferences_link,
    subscribe,
    unsubscribe,
)
from web.clients import client_ip
from web.context import WebContext, context
from web.routing import get_and_head
from web.scanners import HUMAN_DELAY_SECONDS, agent_is_automated
from web.security import Problem, holds_nul

router = APIRouter()
# A signed token's form (course/links.py): what the app's routes take, and ScannedLinks.
TOKEN_MAX_LENGTH = 400
TOKEN_FORM = re.compile(r"[A-Za-z0-9_.-]+")
Token = Annotated[str, Path(max_length=TOKEN_MAX_LENGTH, pattern=f"^{TOKEN_FORM.pattern}$")]
Web = Annotated[WebContext, Depends(context)]


class LinkProblem(Exception):
    """Rendered as a friendly page (web/app.py), never a 500."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        self.status_code, self.title, self.message = status_code, title, message
        super().__init__(message)


def verify(web: WebContext, purpose: Purpose, token: str) -> LinkClaim:
    try:
        return web.signer.verify(purpose, token)
    except ExpiredLink:
        raise LinkProblem(
            400, "This link has expired", "It is older than we accept for this kind of link. Sign up again below."
        ) from None
    except InvalidLink:
        raise LinkProblem(
            400, "This link does not work", "It may have been cut short or changed. Try the link in the email again."
        ) from None


def load_subscriber(session: Session, claim: LinkClaim) -> Subscriber:
    subscriber = session.get(Subscriber, claim.subscriber_id)
    if subscriber is None:
        raise LinkProblem(404, "We do not know this link", "The subscription it belongs to no longer exists.")
    return subscriber


def course_of(web: WebContext, session: Session, subscriber: Subscriber) -> Course:
    """The course the subscriber is on, as it is live (its published data and wording)."""
    return web.live_course(session, subscriber.course_slug)


def course_step(course: Course, claim: LinkClaim) -> CourseStep:
    if claim.step is None:
        raise LinkProblem(404, "We do not know this link", "It does not belong to an email of the course.")
    try:
        return course.step(claim.step)
    except KeyError:
        raise LinkProblem(404, "We do not know this link", "It does not belong to an email of the course.") from None


def note_click(
    web: WebContext, request: Request, session: Session, claim: LinkClaim, kind: EventKind, value: str | None
) -> bool:
    """Record the click in this session (the one click rule: course/engagement/clicks.py) and commit;
    whether the subscriber the link belongs to exists."""
    (found,) = record_clicks(session, [_click(web, request, claim, kind, value)], human_delay=HUMAN_DELAY_SECONDS)
    session.commit()
    return found.known


def enrolment_of(session: Session, subscriber: Subscriber, claim: LinkClaim) -> int:
    """The time through the course the link's email was sent in (:func:`placed_enrolment`)."""
    return placed_enrolment(session, subscriber, claim.step, claim.enrolment)


def page(web: WebContext, request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    return web.templates.TemplateResponse(request, template, values, status_code=status_code)


# --- Confirm --------------------------------------------------------------------------------------


def _confirmation_request(claim: LinkClaim) -> int | None:
    """The sign-up request a confirmation link confirms (links sent before requests existed name none)."""
    if claim.value is None:
        return None
    if not claim.value.isdigit():
        raise LinkProblem(400, "This link does not work", "It may have been cut short or changed.")
    return int(claim.value)


@get_and_head(router, "/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.CONFIRM, token)
    request_id = _confirmation_request(claim)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        already = subscriber.status in (SubscriberStatus.ACTIVE.value, SubscriberStatus.PAUSED.value)
        # What confirming will set: this request's choices, so that the owner of the address sees them
        # (and can change them later) whoever typed them.
        signup = session.get(SignupRequest, request_id) if request_id is not None else None
        chosen = signup if signup is not None and signup.subscriber_id == subscriber.id else subscriber
        return page(web, request, "confirm.html", course=course_of(web, session, subscriber), token=token,
                    already=already, chosen=chosen)  # fmt: skip


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm_now(request: Request, web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.CONFIRM, token)
    request_id = _confirmation_request(claim)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        result = confirm(session, subscriber.id, now=web.clock(), timing=web.timing, request_id=request_id)
        session.commit()
        course = course_of(web, session, subscriber)
    if result.outcome is ConfirmOutcome.NOT_PENDING:
        raise LinkProblem(
            400, "This confirmation is no longer valid", "You left the course after it was sent. Sign up again below."
        )
    return page(
        web, request, "confirmed.html", course=course, already=result.outcome is ConfirmOutcome.ALREADY_CONFIRMED
    )


# --- Exercise done --------------------------------------------------------------------------------


# Where a link's token goes in a page rendered for every reader (:func:`exercise_answer`): nothing a course
# says can hold it (it is made anew by each process).
_TOKEN_SLOT = f"token-{secrets.token_hex(16)}"


def _day_of(web: WebContext, course: Course, step: CourseStep) -> dict[str, Any]:
    if step.day_number is None:
        raise LinkProblem(404, "We do not know this link", "It does not belong to a day of the course.")
    number = step.day_number
    return web.of_course(course, ("exercise page", number), lambda: _day_view(course, number))


def _day_view(course: Course, number: int) -> dict[str, Any]:
    day = course.day(number)
    # The page shows the day's exercise; a day whose body holds none has its title and a "done" to record.
    exercise = day.exercise.model_dump(mode="json") if day.exercise else {"title": day.title, "blocks": []}
    return {**day.model_dump(mode="json"), "exercise": exercise}


async def exercise_answer(web: WebContext, request: Request, token: str) -> Response:
    """The day's exercise, with the click recorded: one statement on the event loop records it and reads
    what the page shows (mail scanners open this link in every email they pass)."""
    claim = verify(web, Purpose.EXERCISE_DONE, token)
    if claim.step is None:
        raise LinkProblem(404, "We do not know this link", "It does not belong to a day of the course.")
    found = await web.record_click(_click(web, request, claim, EventKind.CLICK, "exercise", day=claim.step))
    course = await _clicked_course(web, found)
    day = _day_of(web, course, course_step(course, claim))
    # Every reader of a day is shown the same page but for their link's token (the form's address): it is
    # rendered once per release, day and state, and the token put in its place.
    html = web.of_course(
        course,
        ("exercise page html", day["number"], found.done, found.recording),
        lambda: web.templates.get_template("exercise.html").render(
            course=course, token=_TOKEN_SLOT, day=day, done=found.done, recording=found.recording
        ),
    )
    return HTMLResponse(html.replace(_TOKEN_SLOT, token))  # fmt: skip


@get_and_head(router, "/exercise/{token}", response_class=HTMLResponse)
async def exercise_page(request: Request, web: Web, token: Token) -> Response:
    return await exercise_answer(web, request, token)


@router.post("/exercise/{token}", response_class=HTMLResponse)
def exercise_done_now(request: Request, web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.EXERCISE_DONE, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        course = course_of(web, session, subscriber)
        day = _day_of(web, course, course_step(course, claim))
        record_exercise_done(session, subscriber, day["number"], enrolment_of(session, subscriber, claim), web.clock())
        session.commit()
        return page(web, request, "exercise.html", course=course, token=token, day=day, done=True,
                    recording=records_for(subscriber))  # fmt: skip


# --- Checklist answers ----------------------------------------------------------------------------


def _checklist_of(course: Course, step: CourseStep) -> Any:
    """The step's checklist, in the wording published in the studio."""
    if step.checklist is None or step.checklist not in course.checklists:
        raise LinkProblem(404, "We do not know this link", "This email has no checklist.")
    return course.checklists[step.checklist]


def _answer_page(
    web: WebContext, request: Request, session: Session, subscriber: Subscriber, claim: LinkClaim, token: str,
    *, saved: bool = False, ticked: list[int] | None = None, band_key: str | None = None,
) -> Response:  # fmt: skip
    course = course_of(web, session, subscriber)
    step = course_step(course, claim)
    checklist = _checklist_of(course, step)
    band = checklist.band(band_key) if band_key else None
    enrolment = enrolment_of(session, subscriber, claim)
    answer = current_answer(session, subscriber, step.number, enrolment)
    last = step == course.last_step
    comparison = baseline_and_retake(session, subscriber, course, enrolment) if last else None
    return page(
        web, request, "answer.html", course=course,
        token=token, checklist=checklist, band=band, saved=saved, ticked=ticked or [],
        answer=answer, saved_band=checklist.band(answer.band) if answer else None,
        comparison=comparison, recording=records_for(subscriber), occurrence=step.email,
        checklist_url=web.signer.url(Purpose.ANSWER, subscriber.id, step.number, None, enrolment),
        live_bands=[{"min": b.min, "max": b.max, "text": f"{b.label}: {b.title}"} for b in checklist.bands],
    )  # fmt: skip


@get_and_head(router, "/answer/{token}", response_class=HTMLResponse)
def answer_page(request: Request, web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.ANSWER, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        course = course_of(web, session, subscriber)
        checklist = _checklist_of(course, course_step(course, claim))
        if claim.value is not None and checklist.band(claim.value) is None:
            raise LinkProblem(404, "We do not know this link", "It names an answer this checklist does not have.")
        note_click(web, request, session, claim, EventKind.CLICK, claim.value or "checklist")
        return _answer_page(web, request, session, subscriber, claim, token, band_key=claim.value)


NOT_SAVED = ("Nothing was saved", "Open the link in the email again and use the button on its page.")


@router.post("/answer/{token}", response_class=HTMLResponse)
def save_answer_now(
    request: Request,
    web: Web,
    token: Token,
    items: Annotated[list[int] | None, Form(max_length=100)] = None,
    checklist_key: Annotated[str | None, Form(alias="checklist", max_length=100)] = None,
    band_key: Annotated[str | None, Form(alias="band", max_length=100)] = None,
) -> Response:
    """Saves what the page's form sent: a band link's form names its band, the checklist's form names
    its checklist (ticking nothing is an answer). A request without them (an empty POST, a replayed
    link) stores nothing."""
    claim = verify(web, Purpose.ANSWER, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        course = course_of(web, session, subscriber)
    step = course_step(course, claim)
    checklist = _checklist_of(course, step)
    ticked: list[int] | None = None
    if claim.value is not None:  # a score-band link: the answer is in the link
        band = checklist.band(claim.value)
        if band is None:
            raise LinkProblem(404, "We do not know this link", "It names an answer this checklist does not have.")
        if band_key != band.key:
            raise LinkProblem(400, *NOT_SAVED)
    else:  # the interactive checklist: the answer is the ticked items
        if checklist_key != checklist.key:
            raise LinkProblem(400, *NOT_SAVED)
        ticked = sorted({number for number in items or [] if 1 <= number <= len(checklist.items)})
        _, band = score_items(checklist, ticked)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        save_answer(session, subscriber, step=step.number, enrolment=enrolment_of(session, subscriber, claim),
                    checklist=checklist, band=band, ticked=ticked, now=web.clock())  # fmt: skip
        session.commit()
        return _answer_page(web, request, session, subscriber, claim, token, saved=True, ticked=ticked,
                            band_key=band.key)  # fmt: skip


# --- Consultation and resources -------------------------------------------------------------------


def _with_utm(url: str, email: str, course_slug: str) -> str:
    parts = urlsplit(url)
    utm = urlencode({"utm_source": "email-course", "utm_medium": "email", "utm_campaign": course_slug,
                     "utm_content": email})  # fmt: skip
    return urlunsplit(parts._replace(query=f"{parts.query}&{utm}" if parts.query else utm))


async def consultation_answer(web: WebContext, request: Request, token: str) -> Response:
    claim = verify(web, Purpose.CONSULTATION, token)
    if claim.step is None:
        raise LinkProblem(404, "We do not know this link", "It does not belong to an email of the course.")
    course = await redirect_click(web, request, claim, EventKind.CONSULTATION, None)
    # Only ever the booking page the course or the operator set: never a destination taken from the request.
    target = course.consultation_url or web.settings.consultation_url
    return RedirectResponse(_with_utm(str(target), _email_of(course, claim), course.slug), 303)


@get_and_head(router, "/consultation/{token}")
async def consultation(request: Request, web: Web, token: Token) -> Response:
    return await consultation_answer(web, request, token)


async def resource_answer(web: WebContext, request: Request, token: str) -> Response:
    claim = verify(web, Purpose.RESOURCE, token)
    if claim.step is None or claim.value is None:
        raise LinkProblem(404, "We do not know this link", "It names a guide we do not have.")
    course = await redirect_click(web, request, claim, EventKind.RESOURCE, claim.value)
    if claim.value not in course.resources:
        raise LinkProblem(404, "We do not know this link", "It names a guide we do not have.")
    # The address the studio published, unless the operator fixed it (RESOURCE_URLS).
    target = web.settings.resource_urls.get(claim.value) or course.resources[claim.value].url
    return RedirectResponse(_with_utm(str(target), _email_of(course, claim), course.slug), 303)


@get_and_head(router, "/resource/{token}")
async def resource(request: Request, web: Web, token: Token) -> Response:
    return await resource_answer(web, request, token)


# The links mail scanners open in every email, by their path's first part (course/links.py): each answer
# is the one its route above gives, and :class:`ScannedLinks` gives it before the framework.
SCANNED_LINKS = {
    LINK_PATHS[Purpose.CONSULTATION]: consultation_answer,
    LINK_PATHS[Purpose.RESOURCE]: resource_answer,
    LINK_PATHS[Purpose.EXERCISE_DONE]: exercise_answer,
}


class ScannedLinks:
    """The links mail scanners open, answered before the framework: scanners open every link of every email
    within seconds of its delivery, and FastAPI's routing, dependencies and middleware cost as much as the
    click's own work. A GET or HEAD of a :data:`SCANNED_LINKS` path whose token has the form the routes
    take is answered here, by its route's own answer (a refusal: the app's own page); anything else
    (another method, a malformed token, a NUL anywhere) goes on to the app, which answers it as it answers
    every request. Outermost of the app's middleware: the security headers (web/security.py) and the
    server-error page still wrap it."""

    def __init__(self, app: ASGIApp, *, web: WebContext, problem: Problem) -> None:
        self.app, self.web, self.problem = app, web, problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = self._taken(scope)
        if taken is None:
            await self.app(scope, receive, send)
            return
        answer, token = taken
        request = Request(scope, receive)
        try:
            response = await answer(self.web, request, token)
        except LinkProblem as problem:
            response = self.problem(request, problem.status_code, problem.title, problem.message)
        await response(scope, receive, send)

    @staticmethod
    def _taken(scope: Scope) -> tuple[Callable[[WebContext, Request, str], Awaitable[Response]], str] | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or holds_nul(scope):
            return None
        prefix, _, token = str(scope["path"]).partition("/")[2].partition("/")
        answer = SCANNED_LINKS.get(prefix)
        if answer is None or not (len(token) <= TOKEN_MAX_LENGTH and TOKEN_FORM.fullmatch(token)):
            return None
        return answer, token


def _email_of(course: Course, claim: LinkClaim) -> str:
    """The name of the email a link was in (for the booking page's figures), also one taken out since."""
    return course.step(claim.step).email if claim.step is not None and course.has_step(claim.step) else "email"


async def redirect_click(
    web: WebContext, request: Request, claim: LinkClaim, kind: EventKind, value: str | None
) -> Course:
    """Record the click of a link that only redirects: one statement on the event loop. A subscriber who
    no longer exists is a 404, as elsewhere. Their course, as it is live."""
    return await _clicked_course(web, await web.record_click(_click(web, request, claim, kind, value)))


async def _clicked_course(web: WebContext, found: Clicked) -> Course:
    """The course of a click's subscriber, as it is live; a subscriber who no longer exists is a 404."""
    if not found.known or found.course is None:
        raise LinkProblem(404, "We do not know this link", "The subscription it belongs to no longer exists.")
    course = web.known_course_at(found.course, found.release)
    if course is None:  # a release published since: read its wording once
        course = await run_in_threadpool(web.course_at, found.course, found.release)
    return course


def _click(
    web: WebContext, request: Request, claim: LinkClaim, kind: EventKind, value: str | None, day: int | None = None
) -> Click:
    """The click a request of a link is (course/engagement/clicks.py)."""
    user_agent = request.headers.get("user-agent")
    return Click(subscriber_id=claim.subscriber_id, step=claim.step, enrolment=claim.enrolment, kind=kind,
                 value=value, user_agent=user_agent, agent_automated=agent_is_automated(request.method, user_agent),
                 now=web.clock(), day=day)  # fmt: skip


# --- Unsubscribe ----------------------------------------------------------------------------------


# The unsubscribe link never expires (RFC 8058: an old email must always let one leave), so it opens
# nothing personal: no preferences page, no data. It may stop the emails, pause them, ask for a new
# confirmation, or have a fresh preferences link sent to the address itself.


@get_and_head(router, "/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.UNSUBSCRIBE, token)
    with web.session() as session:
        subscriber = session.get(Subscriber, claim.subscriber_id)
        gone = subscriber is None or subscriber.status == SubscriberStatus.UNSUBSCRIBED.value
        if subscriber is not None:
            note_click(web, request, session, claim, EventKind.CLICK, "unsubscribe")
        can_pause = subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE.value
        course = course_of(web, session, subscriber) if subscriber is not None else None
        return page(web, request, "unsubscribe.html", course=course, token=token, gone=gone,
                    known=subscriber is not None, can_pause=can_pause)  # fmt: skip


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_now(request: Request, web: Web, token: Token) -> Response:
    """RFC 8058 one-click (body ``List-Unsubscribe=One-Click``, no cookie, no login) and our own button."""
    claim = verify(web, Purpose.UNSUBSCRIBE, token)
    with web.session() as session:
        subscriber = session.get(Subscriber, claim.subscriber_id)
        course = course_of(web, session, subscriber) if subscriber is not None else None
        if subscriber is not None:
            unsubscribe(session, claim.subscriber_id, now=web.clock())
            session.commit()
    # Erased already, or unsubscribed twice: the answer is the same, it is done.
    return page(web, request, "unsubscribed.html", course=course, token=token, known=subscriber is not None)


@router.post("/unsubscribe/{token}/pause", response_class=HTMLResponse)
def pause_instead(request: Request, web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.UNSUBSCRIBE, token)
    now = web.clock()
    with web.session() as session:
        if session.get(Subscriber, claim.subscriber_id) is not None:
            pause(session, claim.subscriber_id, now=now, until=now + timedelta(days=7))
            session.commit()
    return page(web, request, "unsubscribe-done.html", done="paused")


@router.post("/unsubscribe/{token}/resubscribe", response_class=HTMLResponse)
def resubscribe(request: Request, web: Web, token: Token) -> Response:
    """Back in, through a new confirmation sent to the address (the link may have been forwarded)."""
    claim = verify(web, Purpose.UNSUBSCRIBE, token)
    with web.session() as session:
        subscriber = session.get(Subscriber, claim.subscriber_id)
        if subscriber is not None:
            consent = Consent(at=web.clock(), ip=client_ip(request, web.settings),
                              user_agent=request.headers.get("user-agent"), form="unsubscribe page")  # fmt: skip
            subscribe(session, course_slug=subscriber.course_slug, email=subscriber.email,
                      first_name=subscriber.first_name, timezone=subscriber.timezone,
                      send_time=subscriber.send_time, consent=consent, timing=web.timing)  # fmt: skip
            session.commit()
    return page(web, request, "unsubscribe-done.html", done=EmailKind.CONFIRMATION.value)


@router.post("/unsubscribe/{token}/preferences-link", response_class=HTMLResponse)
def email_preferences_link(request: Request, web: Web, token: Token) -> Response:
    return mail_preferences_link(web, request, verify(web, Purpose.UNSUBSCRIBE, token))


def mail_preferences_link(web: WebContext, request: Request, claim: LinkClaim) -> Response:
    """Send a fresh preferences link to the address of the link's subscriber (if they still exist)."""
    with web.session() as session:
        if session.get(Subscriber, claim.subscriber_id) is not None:
            send_preferences_link(session, claim.subscriber_id, now=web.clock(), timing=web.timing)
            session.commit()
    return page(web, request, "unsubscribe-done.html", done=EmailKind.PREFERENCES_LINK.value)
