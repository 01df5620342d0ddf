"""Studio sessions: sign in, sign out, a one-time link to set a password, a password change, and CSRF.

The browser holds a signed cookie (Starlette's SessionMiddleware, itsdangerous underneath) scoped to
/studio: HttpOnly, SameSite=Lax, Secure when BASE_URL is https. It carries a random session token and
the CSRF token; the session itself lives on the server (course/studio.py): signing out ends it for every
copy of the cookie, it lasts ``SESSION_LIFETIME`` from its sign-in whatever happens (the cookie being
sent again on each answer changes nothing), and a password change, a reset or a disabled account end it.
Every form carries a CSRF token kept in the session and compared in constant time (the synchronizer-token
pattern); SameSite=Lax alone would still let another site's top-level POST in on older browsers.

Sign-in attempts are limited per client and per account, the account named by its normalised address
(what sign-in itself compares, so ``ｅditor@`` in full-width letters is the same account). So that a
stranger who fails five times cannot lock the owner out, a browser that has signed in to an account
before holds a long-lived signed "device" cookie for it (OWASP's device cookies): its attempts are
counted on their own, apart from everyone else's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from course.catalog import course_at, exists
from course.curriculum import Course
from course.models.studio import StudioUser
from course.models.subscribers import email_hash
from course.settings import Settings
from course.studio import (
    SESSION_LIFETIME,
    StudioError,
    audit,
    authenticate,
    change_password,
    end_sessions,
    session_user,
    set_password,
    start_session,
)
from course.subscriptions import InvalidSubscription, normalise_email
from web.clients import limit_key
from web.context import WebContext, context

router = APIRouter(prefix="/studio")
Web = Annotated[WebContext, Depends(context)]

SESSION_COOKIE = "studio"
# How long the browser keeps the cookie: the session's own lifetime (the server ends it then anyway).
SESSION_SECONDS = int(SESSION_LIFETIME.total_seconds())
SIGN_IN_LINK_SECONDS = 24 * 3600
# Sign-in attempts in 15 minutes: per account from browsers it never signed in from, per client, and per
# browser that holds the account's device cookie.
ACCOUNT_LIMIT = (5, 900)
CLIENT_LIMIT = (20, 900)
DEVICE_LIMIT = (5, 900)
# Work one person may start in the studio, per window: each preview, save check and publish renders every
# email in a child process (seconds of a core); a sum of the insights reads a year of events.
WORK_LIMITS = {"preview": (120, 300), "check": (30, 300), "insights-refresh": (6, 600)}
DEVICE_COOKIE = "studio_device"
DEVICE_SECONDS = 365 * 86400


class SignInRequired(Exception):
    """Answered with a redirect to the sign-in page (web/app.py), coming back to ``path`` afterwards."""

    def __init__(self, path: str) -> None:
        self.path = path


class CSRFRefused(Exception):
    """A form posted without the token of this session: refused with a 403 page."""


def session_key(settings: Settings) -> str:
    """The cookie's signing key: derived from SECRET_KEY, and different from every link's."""
    return hmac.new(settings.secret_key.encode(), b"course.studio-session", hashlib.sha256).hexdigest()


def _sign_in_links(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="course.studio-sign-in")


def sign_in_link(settings: Settings, user: StudioUser) -> str:
    """A link that lets ``user`` set a password once, for a day: a new password makes it useless."""
    token = _sign_in_links(settings).dumps([user.id, user.session_generation])
    return f"{str(settings.base_url).rstrip('/')}/studio/welcome/{token}"


def safe_next(path: str | None) -> str:
    """Where to go after signing in: only a studio path of ours, never another site."""
    if path and path.startswith("/studio") and not path.startswith("//") and "\\" not in path:
        return path
    return "/studio"


def current_user(request: Request, web: Web) -> StudioUser:
    """The signed-in studio user, or SignInRequired. Checked against the database on every request."""
    token = request.session.get("session")
    if isinstance(token, str):
        with web.session() as session:
            user = session_user(session, token, web.clock())
            session.commit()  # when it was last seen, or that it ran out
            if user is not None:
                session.expunge(user)
                return user
    # The ended session goes; the form token stays, so that a page's background request answered
    # here cannot void the sign-in form the same browser is filling in.
    request.session.pop("session", None)
    # Back to the page after signing in; a form posted without a session goes back to the list (its
    # typed text is kept by the editor's script, and comes back in the editor).
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInRequired(path if request.method in ("GET", "HEAD") else "/studio")


User = Annotated[StudioUser, Depends(current_user)]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Scope:
    """The course a studio request is about (``?course=<slug>``; none: the deployment's first course):
    ``base`` its data as it is live, ``course`` that with the published wording over it."""

    slug: str
    base: Course
    course: Course


def course_scope(request: Request, web: Web, user: User) -> Scope:
    """The request's course, which the user must be allowed to edit; 404 for a course there is not."""
    slug = request.query_params.get("course") or web.default_slug
    with web.session() as session:
        if not _SLUG.fullmatch(slug) or not exists(session, slug):
            raise HTTPException(404, "There is no such course.")
        if not user.may_edit(slug):
            raise HTTPException(403, "You may not edit this course: ask a publisher to add it to your account.")
        base, course = course_at(session, slug, content=False), web.live_course(session, slug)
    request.state.course_slug, request.state.course = slug, course
    return Scope(slug, base, course)


Scoped = Annotated[Scope, Depends(course_scope)]


def within_limit(web: WebContext, user: StudioUser, work: str) -> bool:
    """Whether ``user`` may start this kind of work now (``WORK_LIMITS``); counts it when so."""
    return web.limiter.allow(f"studio-{work}:{user.id}", *WORK_LIMITS[work], web.clock())


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, token: str) -> None:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), token.encode()):
        raise CSRFRefused


CSRF = Annotated[str, Form(alias="csrf", max_length=100)]


def studio_page(web: WebContext, request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    # The page's course (none: a page of the account, not of a course); its links stay on it.
    slug = getattr(request.state, "course_slug", web.default_slug)
    course = getattr(request.state, "course", None)
    return web.templates.TemplateResponse(
        request, f"studio/{template}", {"csrf": csrf_token(request), "slug": slug, "course": course, **values},
        status_code=status_code,
    )  # fmt: skip


# --- Sign in and out -------------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, web: Web, next: str | None = None) -> Response:
    return studio_page(web, request, "sign-in.html", next=safe_next(next), error=None, email="")


def _account_key(email: str, settings: Settings) -> str:
    """The account a sign-in names, as its limits count it: the address as sign-in compares it."""
    try:
        address = normalise_email(email)
    except InvalidSubscription:
        address = email.strip().lower()
    return email_hash(address, settings.address_key)  # no address in clear in Redis


def _devices(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="course.studio-device")


def _device_of(request: Request, settings: Settings, account: str) -> str | None:
    """The id of this browser's device cookie when it was given for ``account``, else None."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        holder, device = _devices(settings).loads(cookie, max_age=DEVICE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    return device if holder == account and isinstance(device, str) else None


def _attempt_allowed(request: Request, web: WebContext, account: str, now: datetime) -> bool:
    device = _device_of(request, web.settings, account)
    if device is not None:  # a browser this account signed in from: its own count, nobody else's
        return web.limiter.allow(f"studio-device:{device}", *DEVICE_LIMIT, now)
    client = limit_key(request, web.settings)
    return web.limiter.allow(f"studio-client:{client}", *CLIENT_LIMIT, now) and web.limiter.allow(
        f"studio-account:{account}", *ACCOUNT_LIMIT, now
    )


def _signed_in(request: Request, web: WebContext, session: Session, user: StudioUser, now: datetime) -> None:
    """A new session for ``user`` in this browser: nothing carried over from before."""
    token = start_session(session, user, now)
    request.session.clear()
    request.session.update({"session": token})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    web: Web,
    csrf: CSRF = "",
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=400)] = "",
    next: Annotated[str, Form(max_length=400)] = "/studio",
) -> Response:
    check_csrf(request, csrf)
    now = web.clock()
    account = _account_key(email, web.settings)
    if not _attempt_allowed(request, web, account, now):
        return studio_page(web, request, "sign-in.html", status_code=429, next=safe_next(next), email=email,
                           error="Too many attempts. Wait a quarter of an hour, then try again.")  # fmt: skip
    with web.session() as session:
        user = authenticate(session, email, password, now)
        if user is None:
            return studio_page(web, request, "sign-in.html", status_code=400, next=safe_next(next), email=email,
                               error="That email and password do not match an account.")  # fmt: skip
        audit(session, user, "sign-in", now=now, course_slug=None)
        _signed_in(request, web, session, user, now)
        session.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    device = _device_of(request, web.settings, account) or secrets.token_urlsafe(16)
    response.set_cookie(DEVICE_COOKIE, _devices(web.settings).dumps([account, device]), max_age=DEVICE_SECONDS,
                        path="/studio/sign-in", httponly=True, samesite="strict",
                        secure=web.settings.base_url.scheme == "https")  # fmt: skip
    return response


@router.post("/sign-out", response_class=HTMLResponse)
def sign_out(request: Request, web: Web, csrf: CSRF = "") -> Response:
    check_csrf(request, csrf)
    token = request.session.get("session")
    if isinstance(token, str):
        now = web.clock()
        with web.session() as session:
            user = session_user(session, token, now)
            if user is not None:
                end_sessions(session, user, now, "sign-out", only=token)
                audit(session, user, "sign-out", now=now, course_slug=None)
            session.commit()
    request.session.clear()
    return RedirectResponse("/studio/sign-in", status_code=303)


# --- The person's own account: a new password ------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, web: Web, user: User) -> Response:
    return studio_page(web, request, "account.html", user=user, error=None, done=None)


@router.post("/account/password", response_class=HTMLResponse)
def account_password(
    request: Request,
    web: Web,
    user: User,
    csrf: CSRF = "",
    current: Annotated[str, Form(max_length=400)] = "",
    password: Annotated[str, Form(max_length=400)] = "",
    again: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    check_csrf(request, csrf)
    now = web.clock()

    def refused(status_code: int, error: str) -> Response:
        return studio_page(web, request, "account.html", status_code=status_code, user=user, done=None, error=error)

    if not web.limiter.allow(f"studio-password:{user.id}", *DEVICE_LIMIT, now):
        return refused(429, "Too many attempts. Wait a quarter of an hour, then try again.")
    if password != again:
        return refused(400, "The two new passwords differ: nothing was changed.")
    token = request.session.get("session")
    with web.session() as session:
        account = session.get(StudioUser, user.id)
        assert account is not None and isinstance(token, str)  # noqa: S101 - current_user found both
        try:
            ended = change_password(session, account, current, password, now, keep=token)
        except StudioError as error:
            return refused(400, f"Nothing was changed: {error}.")
        session.commit()
    done = "Your password is changed." + (f" You were signed out everywhere else ({ended})." if ended else "")
    return studio_page(web, request, "account.html", user=user, error=None, done=done)


# --- The one-time link that sets a password --------------------------------------------------------


def _user_of_link(web: WebContext, token: str) -> StudioUser | None:
    try:
        user_id, generation = _sign_in_links(web.settings).loads(token, max_age=SIGN_IN_LINK_SECONDS)
    except (SignatureExpired, BadSignature, ValueError, TypeError):
        return None
    with web.session() as session:
        user = session.get(StudioUser, user_id) if isinstance(user_id, int) else None
        if user is None or user.session_generation != generation or user.disabled_at is not None:
            return None  # used already (the password was set), made for an account that is gone, or disabled
        session.expunge(user)
        return user


@router.get("/welcome/{token}", response_class=HTMLResponse)
def welcome_page(request: Request, web: Web, token: str) -> Response:
    user = _user_of_link(web, token)
    if user is None:
        return studio_page(web, request, "link-expired.html", status_code=400)
    return studio_page(web, request, "set-password.html", token=token, account=user, error=None)


@router.post("/welcome/{token}", response_class=HTMLResponse)
def set_password_now(
    request: Request,
    web: Web,
    token: str,
    csrf: CSRF = "",
    password: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    check_csrf(request, csrf)
    user = _user_of_link(web, token)
    if user is None:
        return studio_page(web, request, "link-expired.html", status_code=400)
    now = web.clock()
    with web.session() as session:
        account = session.get(StudioUser, user.id)
        assert account is not None  # noqa: S101 - _user_of_link found it a moment ago
        try:
            set_password(session, account, password)
        except StudioError as error:
            return studio_page(web, request, "set-password.html", status_code=400, token=token, account=user,
                               error=str(error))  # fmt: skip
        account.last_sign_in_at = now
        audit(session, account, "set-password", now=now, course_slug=None)
        _signed_in(request, web, session, account, now)
        session.commit()
    return RedirectResponse("/studio", status_code=303)


def sign_in_redirect(error: SignInRequired) -> RedirectResponse:
    return RedirectResponse(f"/studio/sign-in?next={quote(safe_next(error.path))}", status_code=303)
