"""The landing page and the sign-up: what the course is, and a form that never says who is subscribed."""

from __future__ import annotations

from datetime import time
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from course.subscriptions import (
    Consent,
    InvalidSubscription,
    check_timezone,
    clean_first_name,
    normalise_email,
    subscribe,
)
from web.context import WebContext, context
from web.inbox import enabled as inbox_enabled
from web.routing import get_and_head

router = APIRouter()

TIMEZONES = sorted(name for name in available_timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/")))
SEND_TIMES = [time(hour, minute) for hour in range(5, 23) for minute in (0, 30)]
# Per client address and per target address: enough for a person who mistyped, too few to list-bomb.
LIMITS = {"ip": (10, 3600), "address": (3, 86400)}


def _landing(request: Request, web: WebContext, *, errors: dict[str, str] | None = None,
             values: dict[str, str] | None = None, status_code: int = 200) -> Response:  # fmt: skip
    return web.templates.TemplateResponse(
        request,
        "landing.html",
        {
            "faq": web.course.faq,
            "timezones": TIMEZONES,
            "send_times": SEND_TIMES,
            "errors": errors or {},
            "values": {"send_time": "08:00", "timezone": "", **(values or {})},
            "demo_inbox": inbox_enabled(web.settings),
        },
        status_code=status_code,
    )


@get_and_head(router, "/", response_class=HTMLResponse)
def landing(request: Request, web: Annotated[WebContext, Depends(context)]) -> Response:
    return _landing(request, web)


@router.post("/subscribe", response_class=HTMLResponse)
def sign_up(
    request: Request,
    web: Annotated[WebContext, Depends(context)],
    email: Annotated[str, Form(max_length=320)] = "",
    first_name: Annotated[str, Form(max_length=200)] = "",
    send_time: Annotated[str, Form(max_length=10)] = "08:00",
    timezone: Annotated[str, Form(max_length=100)] = "",
    website: Annotated[str, Form(max_length=500)] = "",  # the honeypot: people never see it
) -> Response:
    values = {"email": email, "first_name": first_name, "send_time": send_time, "timezone": timezone}
    if website:
        # A bot filled the hidden field: answer as if all went well, send nothing.
        return RedirectResponse("/check-your-inbox", status_code=303)
    try:
        chosen_time = time.fromisoformat(send_time)
    except ValueError:
        return _landing(request, web, errors={"send_time": "Choose a time of day."}, values=values, status_code=400)
    client = request.client.host if request.client else "unknown"
    now = web.clock()
    try:
        with web.session() as session:
            # Validation first, so that a typo gets a helpful answer before any limit is spent.
            address = normalise_email(email)
            clean_first_name(first_name or None)
            check_timezone(timezone)
            allowed = web.limiter.allow(f"ip:{client}", *LIMITS["ip"]) and web.limiter.allow(
                f"address:{address}", *LIMITS["address"]
            )
            if allowed:
                result = subscribe(
                    session,
                    course_slug=web.course.slug,
                    email=address,
                    first_name=first_name or None,
                    timezone=timezone,
                    send_time=chosen_time,
                    consent=Consent(at=now, ip=client, user_agent=request.headers.get("user-agent"), form="landing"),
                    timing=web.timing,
                )
                session.commit()
                web.enqueue(result.delivery_ids)
    except InvalidSubscription as error:
        message = {
            "email": "Please check the email address.",
            "first_name": "Please use letters, spaces and punctuation only (at most 100 characters).",
            "timezone": "Choose a time zone from the list.",
        }[error.field]
        return _landing(request, web, errors={error.field: message}, values=values, status_code=400)
    # The same answer whatever happened (new, already subscribed, suppressed, limited): a sign-up form
    # must not tell a stranger who is on the list.
    return RedirectResponse("/check-your-inbox", status_code=303)


@get_and_head(router, "/check-your-inbox", response_class=HTMLResponse)
def check_your_inbox(request: Request, web: Annotated[WebContext, Depends(context)]) -> Response:
    return web.templates.TemplateResponse(request, "check-inbox.html", {})
