"""The courses' pages and the sign-up: what each course is, and a form that never says who is subscribed.

``/`` lists the open courses (or is the only one's page); ``/c/<slug>`` is one course's page, with its
sign-up form, which a practice may also embed on its own site when the operator lists that site's origin
(EMBED_ORIGINS)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import time
from html import escape
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from course.catalog import exists, slugs
from course.curriculum import Course
from course.schedule import canonical_timezones
from course.subscriptions import (
    Consent,
    InvalidSubscription,
    check_timezone,
    clean_first_name,
    normalise_email,
    parse_send_time,
    subscribe,
)
from emails.rendering import PAGE_PATH
from web.clients import client_ip, limit_key
from web.context import WebContext, context
from web.inbox import enabled as inbox_enabled
from web.links import LinkProblem
from web.routing import get_and_head
from web.security import sent_from_elsewhere
from web.theme import page_theme

router = APIRouter()
log = logging.getLogger(__name__)

# A course's address: its slug (course/curriculum.py's pattern).
Slug = Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
TIMEZONES = canonical_timezones()
SEND_TIMES = [time(hour, minute) for hour in range(5, 23) for minute in (0, 30)]
# Sign-ups one client may send an hour: enough for a household that mistyped, too few to sign up the
# world. (Confirmations to one mailbox are paced by the database, whoever sends them.)
CLIENT_LIMIT = (10, 3600)
ERRORS = {
    "email": "Please check the email address.",
    "first_name": "Please use just your first name: letters, up to three words and 40 characters.",
    "timezone": "Choose a time zone from the list.",
    "send_time": "Choose a time of day from the list (or any whole minute, as HH:MM).",
}


@dataclass(frozen=True)
class SignUp:
    email: str
    first_name: str | None
    timezone: str
    send_time: time
    consent: Consent


def _landing(request: Request, web: WebContext, course: Course, *, errors: dict[str, str] | None = None,
             values: dict[str, str] | None = None, status_code: int = 200) -> Response:  # fmt: skip
    return web.templates.TemplateResponse(
        request,
        "landing.html",
        {
            "course": course,
            "faq": course.faq,
            "timezones": TIMEZONES,
            "send_times": SEND_TIMES,
            "errors": errors or {},
            "values": {"send_time": "08:00", "timezone": "", **(values or {})},
            "demo_inbox": inbox_enabled(web.settings),
        },
        status_code=status_code,
    )


def embed_snippet(base_url: str, course: Course) -> str:
    """The sign-up form as HTML for the practice's own site (allowed from the origins the operator lists in
    SIGNUP_EMBED_ORIGINS): the fields ``subscribe`` reads, the honeypot, and the reader's time zone filled in by
    their browser. Without JavaScript, or with a mistake, the reader lands on the course's own page to finish."""
    action = f"{base_url.rstrip('/')}/subscribe"
    times = "".join(
        f'<option value="{moment:%H:%M}"{" selected" if moment == time(8, 0) else ""}>{moment:%H:%M}</option>'
        for moment in SEND_TIMES
    )
    return (
        f'<form method="post" action="{escape(action)}" accept-charset="utf-8" class="course-signup">\n'
        f'  <input type="hidden" name="course" value="{escape(course.slug)}">\n'
        '  <p><label>Your email<br><input type="email" name="email" required maxlength="320" '
        'autocomplete="email"></label></p>\n'
        '  <p><label>Your first name (optional)<br><input type="text" name="first_name" maxlength="100" '
        'autocomplete="given-name"></label></p>\n'
        f'  <p><label>Each email arrives at (your time)<br><select name="send_time">{times}</select></label></p>\n'
        '  <input type="hidden" name="timezone" value="">\n'
        '  <div style="position:absolute;left:-10000px" aria-hidden="true"><input type="text" name="website" '
        'tabindex="-1" autocomplete="off"></div>\n'
        f'  <p><button type="submit">Start “{escape(course.title)}”</button></p>\n'
        "</form>\n"
        "<script>(function (form) {\n"
        '  form.elements.timezone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";\n'
        "})(document.currentScript.previousElementSibling);</script>\n"
    )


def open_courses(web: WebContext, session: Session) -> list[Course]:
    """The courses open to sign-ups, in the order the deployment lists them."""
    courses = [web.live_course(session, slug) for slug in slugs(session)]
    return [course for course in courses if course.open]


def _course_or_404(web: WebContext, slug: str) -> Course:
    with web.session() as session:
        if not exists(session, slug):
            raise LinkProblem(404, "Page not found", "There is no course at this address.")
        return web.live_course(session, slug)


@get_and_head(router, "/", response_class=HTMLResponse)
def home(request: Request, web: Annotated[WebContext, Depends(context)]) -> Response:
    """The open courses; with only one, that course's own page."""
    with web.session() as session:
        courses = open_courses(web, session)
        if not courses:  # none open: the first course's page says it is closed
            courses = [web.live_course(session)]
    if len(courses) == 1:
        return _landing(request, web, courses[0])
    return web.templates.TemplateResponse(request, "courses.html", {"courses": courses})


@get_and_head(router, "/c/{slug}", response_class=HTMLResponse)
def course_page(request: Request, web: Annotated[WebContext, Depends(context)], slug: Slug) -> Response:
    return _landing(request, web, _course_or_404(web, slug))


@get_and_head(router, "/c/{slug}/theme.css")
def theme_css(web: Annotated[WebContext, Depends(context)], slug: Slug) -> Response:
    """The course's colours and font for its pages (a file: the pages' policy runs no inline style)."""
    theme = _course_or_404(web, slug).theme
    return Response(page_theme(theme), media_type="text/css", headers={"Cache-Control": "public, max-age=60"})


@router.post("/subscribe", response_class=HTMLResponse)
def sign_up(
    request: Request,
    background: BackgroundTasks,
    web: Annotated[WebContext, Depends(context)],
    email: Annotated[str, Form(max_length=320)] = "",
    first_name: Annotated[str, Form(max_length=200)] = "",
    send_time: Annotated[str, Form(max_length=10)] = "08:00",
    timezone: Annotated[str, Form(max_length=100)] = "",
    website: Annotated[str, Form(max_length=500)] = "",  # the honeypot: people never see it
    course_slug: Annotated[str, Form(alias="course", max_length=100)] = "",
) -> Response:
    values = {"email": email, "first_name": first_name, "send_time": send_time, "timezone": timezone}
    course = _course_or_404(web, course_slug or web.default_slug)
    if not course.open:
        return web.templates.TemplateResponse(
            request, "error.html", {"course": course, "title": "This course is closed to sign-ups",
                                    "message": "It is not taking new readers at the moment."},
            status_code=403,
        )  # fmt: skip
    if sent_from_elsewhere(request, str(web.settings.base_url), web.settings.embed_origins):
        log.info("a sign-up sent from another site's page was refused (%s)", request.headers.get("origin"))
        return web.templates.TemplateResponse(
            request, "error.html", {"title": "Please sign up on the course's own page",
                                    "message": "This form was sent from another website, so nothing was done. "
                                               "Open the course's page and sign up there."},
            status_code=403,
        )  # fmt: skip
    if website:
        # A bot filled the hidden field: answer as if all went well, send nothing.
        return RedirectResponse("/check-your-inbox", status_code=303)
    try:
        # Validation first, so that a typo gets a helpful answer before any limit is spent.
        chosen_time = parse_send_time(send_time)
        address = normalise_email(email)
        name = clean_first_name(first_name or None)
        zone_name = check_timezone(timezone)
    except InvalidSubscription as error:
        return _landing(request, web, course, errors={error.field: ERRORS[error.field]}, values=values,
                        status_code=400)  # fmt: skip
    now = web.clock()
    ip = client_ip(request, web.settings)
    if web.limiter.allow(f"ip:{limit_key(request, web.settings)}", *CLIENT_LIMIT, now):
        # Where they signed up, for their consent: our page, or the form embedded on the practice's site.
        form = "embedded" if request.headers.get("sec-fetch-site", "").lower() == "cross-site" else "landing"
        consent = Consent(at=now, ip=ip, user_agent=request.headers.get("user-agent"), form=form)
        # After the answer has gone: a new address and a known one take the same time to answer, so the
        # form does not tell a stranger who is on the list.
        background.add_task(_sign_up_now, web, course.slug, SignUp(address, name, zone_name, chosen_time, consent))
    # The same answer whatever happens (new, already subscribed, suppressed, limited).
    return RedirectResponse("/check-your-inbox", status_code=303)


def _sign_up_now(web: WebContext, course_slug: str, sign_up: SignUp) -> None:
    try:
        with web.session() as session:
            subscribe(
                session,
                course_slug=course_slug,
                email=sign_up.email,
                first_name=sign_up.first_name,
                timezone=sign_up.timezone,
                send_time=sign_up.send_time,
                consent=sign_up.consent,
                timing=web.timing,
            )
            session.commit()  # its confirmation goes to the workers as it commits
    except Exception:
        log.exception("a sign-up could not be stored (%s)", sign_up.consent.at.isoformat())


@get_and_head(router, "/check-your-inbox", response_class=HTMLResponse)
def check_your_inbox(request: Request, web: Annotated[WebContext, Depends(context)]) -> Response:
    return web.templates.TemplateResponse(request, "check-inbox.html", {})


@get_and_head(router, PAGE_PATH, response_class=HTMLResponse)
def about(request: Request, web: Annotated[WebContext, Depends(context)]) -> Response:
    """The welcome's longer read of the deployment's first course (its emails link here)."""
    return _about(request, web, _course_or_404(web, web.default_slug))


@get_and_head(router, "/c/{slug}" + PAGE_PATH, response_class=HTMLResponse)
def course_about(request: Request, web: Annotated[WebContext, Depends(context)], slug: Slug) -> Response:
    return _about(request, web, _course_or_404(web, slug))


def _about(request: Request, web: WebContext, course: Course) -> Response:
    """The welcome's longer read (what emotional intimacy is, the research, questions couples ask), in
    its published wording: the email stays short and links here."""
    page = course.welcome.page
    if page is None:  # the course has no such page (or its published wording took it away)
        return web.templates.TemplateResponse(
            request, "error.html", {"course": course, "title": "Page not found",
                                    "message": "This course has no such page."},
            status_code=404,
        )  # fmt: skip
    return web.templates.TemplateResponse(
        request, "about.html", {"course": course, "page": page, "questions": course.page_questions()}
    )


FAVICON = Path(__file__).parent / "static" / "favicon.svg"


@get_and_head(router, "/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """What browsers and feed readers ask for at the root whatever a page links: the same mark as the
    pages' ``<link rel="icon">``, kept for a day."""
    return FileResponse(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
