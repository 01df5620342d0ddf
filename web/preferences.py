"""The preferences page, from the signed link in every footer: pause, resume, change the hour and
time zone, restart the course, unsubscribe; and the page of one's data (download it, delete it).

Every email carries the preferences link, so whoever an email is forwarded to holds it: it opens the
course's settings, never the reader's data. The data page opens from a link of its own (Purpose.DATA),
emailed to the address on request (the preferences page's button, or an expired link's), which works for
an hour and once: the first download or erasure uses it up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from course.engagement.privacy import erase, export_json
from course.links import ExpiredLink, InvalidLink, LinkClaim, Purpose
from course.models.subscribers import Subscriber
from course.subscriptions import (
    InvalidSubscription,
    change_schedule,
    parse_send_time,
    pause,
    restart,
    resume,
)
from web.links import LinkProblem, Token, Web, course_of, load_subscriber, mail_preferences_link, page, verify
from web.pages import ERRORS, SEND_TIMES, TIMEZONES
from web.routing import get_and_head

router = APIRouter()

MESSAGES = {
    "paused": "Paused. Nothing will arrive until you resume.",
    "paused-week": "Paused for a week. The course picks up again by itself after that.",
    "resumed": "Resumed. The next email arrives at your usual time, from tomorrow at the earliest.",
    "schedule": "Saved. The next email follows your new time.",
    "restarted": "The course starts again from the welcome, at your usual time.",
}


def _back(token: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/preferences/{token}?done={done}", status_code=303)


def _expired_claim(web: Web, token: str) -> LinkClaim | None:
    """The claim of a genuine preferences link that has only expired; None when it is still good."""
    try:
        web.signer.verify(Purpose.PREFERENCES, token)
    except ExpiredLink as expired:
        return expired.claim
    except InvalidLink:
        pass  # verify() below answers with the right page
    return None


@get_and_head(router, "/preferences/{token}", response_class=HTMLResponse)
def preferences(request: Request, web: Web, token: Token, done: str | None = None) -> Response:
    if _expired_claim(web, token) is not None:
        # An old email's link: it opens nothing, but the address's owner may have a fresh one sent.
        return page(web, request, "preferences-expired.html", token=token)
    claim = verify(web, Purpose.PREFERENCES, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        course = course_of(web, session, subscriber)
        values: dict[str, Any] = {
            "course": course,
            # How many of the course's emails they have had: their place in it as it now stands.
            "emails_so_far": course.place_after(subscriber.current_step) if subscriber.current_step is not None else 0,
            "token": token,
            "subscriber": subscriber,
            "message": MESSAGES.get(done or ""),
            "send_times": SEND_TIMES,
            "timezones": TIMEZONES,
            "unsubscribe_url": web.signer.url(Purpose.UNSUBSCRIBE, subscriber.id),
        }
        return page(web, request, "preferences.html", **values)


@router.post("/preferences/{token}/renew", response_class=HTMLResponse)
def renew(request: Request, web: Web, token: Token) -> Response:
    """Email a fresh link to the address on file: a genuine but expired link may ask for that, and only that."""
    return mail_preferences_link(web, request, _expired_claim(web, token) or verify(web, Purpose.PREFERENCES, token))


@router.post("/preferences/{token}/pause", response_class=HTMLResponse)
def pause_now(web: Web, token: Token, length: Annotated[Literal["week", "until-resumed"], Form()]) -> Response:
    claim = verify(web, Purpose.PREFERENCES, token)
    now = web.clock()
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        pause(session, subscriber.id, now=now, until=now + timedelta(days=7) if length == "week" else None)
        session.commit()
    return _back(token, "paused-week" if length == "week" else "paused")


@router.post("/preferences/{token}/resume", response_class=HTMLResponse)
def resume_now(web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.PREFERENCES, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        resume(session, subscriber.id, now=web.clock(), timing=web.timing)
        session.commit()
    return _back(token, "resumed")


@router.post("/preferences/{token}/schedule", response_class=HTMLResponse)
def change_time(
    request: Request,
    web: Web,
    token: Token,
    send_time: Annotated[str, Form(max_length=10)],
    timezone: Annotated[str, Form(max_length=100)],
) -> Response:
    claim = verify(web, Purpose.PREFERENCES, token)
    try:
        chosen = parse_send_time(send_time)
    except InvalidSubscription:
        raise LinkProblem(400, "That time did not work", ERRORS["send_time"]) from None
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        try:
            change_schedule(session, subscriber.id, send_time=chosen, timezone=timezone, now=web.clock(),
                            timing=web.timing)  # fmt: skip
        except InvalidSubscription:
            raise LinkProblem(400, "That time zone did not work", "Choose a time zone from the list.") from None
        session.commit()
    return _back(token, "schedule")


@router.post("/preferences/{token}/restart", response_class=HTMLResponse)
def restart_now(web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.PREFERENCES, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        restart(session, subscriber.id, now=web.clock(), timing=web.timing)
        session.commit()
    return _back(token, "restarted")


@get_and_head(router, "/my-data/{token}", response_class=HTMLResponse)
def data_page(request: Request, web: Web, token: Token) -> Response:
    """What the emailed link opens (a GET uses nothing up: mail scanners open links before people do)."""
    claim = _data_claim(web, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        _check_unused(subscriber, claim)
        return page(web, request, "my-data.html", token=token, subscriber=subscriber)


@router.post("/my-data/{token}/download")
def download(web: Web, token: Token) -> Response:
    claim = _data_claim(web, token)
    with web.session() as session:
        subscriber = _use(session, claim)
        body = export_json(session, subscriber)
        session.commit()
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-course-data.json"', "Cache-Control": "no-store"},
    )


@router.post("/my-data/{token}/erase", response_class=HTMLResponse)
def erase_now(
    request: Request, web: Web, token: Token, sure: Annotated[Literal["yes"] | None, Form()] = None
) -> Response:
    claim = _data_claim(web, token)
    if sure != "yes":
        raise LinkProblem(400, "Nothing was deleted", "Tick the box to confirm that you want your data deleted.")
    with web.session() as session:
        subscriber = _use(session, claim)
        erase(session, subscriber, web.clock(), web.settings.address_key)
        session.commit()
    return page(web, request, "erased.html")


# --- The data link: for an hour, once ---------------------------------------------------------------


def _data_claim(web: Web, token: str) -> LinkClaim:
    try:
        return web.signer.verify(Purpose.DATA, token)
    except ExpiredLink:
        raise LinkProblem(
            400,
            "This link has run out",
            "A link to your data works for an hour. Ask for a new one "
            "with the button on your settings page (the link at the foot of every email).",
        ) from None
    except InvalidLink:
        raise LinkProblem(400, "This link does not work", "It may have been cut short or changed. Try the link "
                          "in the email again.") from None  # fmt: skip


def _issued(claim: LinkClaim) -> datetime:
    return datetime.fromtimestamp(claim.issued_at, UTC)


def _check_unused(subscriber: Subscriber, claim: LinkClaim) -> None:
    """A link is used up once it, or a newer one, was used (links are made one an hour at most)."""
    if subscriber.data_link_used is not None and _issued(claim) <= subscriber.data_link_used:
        raise LinkProblem(410, "This link was used already", "A link to your data works once. Ask for a new one "
                          "with the button on your settings page (the link at the foot of every email).")  # fmt: skip


def _use(session: Session, claim: LinkClaim) -> Subscriber:
    """The link's subscriber, locked, with the link marked used; LinkProblem when it was (of two requests
    at once, the second waits for the first and finds it used)."""
    subscriber = session.get(Subscriber, claim.subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LinkProblem(404, "We do not know this link", "The subscription it belongs to no longer exists.")
    _check_unused(subscriber, claim)
    subscriber.data_link_used = _issued(claim)
    return subscriber
