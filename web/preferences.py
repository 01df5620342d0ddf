"""The preferences page, from the signed link in every footer: pause, resume, change the hour and
time zone, restart the course, download or delete one's data."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from course.engagement import erase, export_json
from course.links import ExpiredLink, InvalidLink, LinkClaim, Purpose
from course.subscriptions import (
    InvalidSubscription,
    change_schedule,
    parse_send_time,
    pause,
    restart,
    resume,
)
from web.links import LinkProblem, Token, Web, load_subscriber, mail_preferences_link, page, verify
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
        values: dict[str, Any] = {
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


@get_and_head(router, "/preferences/{token}/data")
def download(web: Web, token: Token) -> Response:
    claim = verify(web, Purpose.PREFERENCES, token)
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        body = export_json(session, subscriber)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-course-data.json"', "Cache-Control": "no-store"},
    )


@router.post("/preferences/{token}/erase", response_class=HTMLResponse)
def erase_now(
    request: Request, web: Web, token: Token, sure: Annotated[Literal["yes"] | None, Form()] = None
) -> Response:
    claim = verify(web, Purpose.PREFERENCES, token)
    if sure != "yes":
        raise LinkProblem(400, "Nothing was deleted", "Tick the box to confirm that you want your data deleted.")
    with web.session() as session:
        subscriber = load_subscriber(session, claim)
        erase(session, subscriber, web.clock(), web.settings.address_key)
        session.commit()
    return page(web, request, "erased.html")
