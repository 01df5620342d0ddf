"""Studio sessions: sign in, sign out, a one-time link to set a password, and CSRF protection.

The session is a signed cookie (Starlette's SessionMiddleware, itsdangerous underneath) scoped to
/studio: HttpOnly, SameSite=Lax, Secure when BASE_URL is https, eight hours long. It holds the user's
id and their ``session_generation``: a new password (or removing the account) ends every session at
once. Every form carries a CSRF token kept in the session and compared in constant time (the
synchronizer-token pattern); SameSite=Lax alone would still let another site's top-level POST in on
older browsers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from course.models import StudioUser, email_hash
from course.settings import Settings
from course.studio import StudioError, audit, authenticate, set_password
from web.clients import limit_key
from web.context import WebContext, context

router = APIRouter(prefix="/studio")
Web = Annotated[WebContext, Depends(context)]

SESSION_COOKIE = "studio"
SESSION_SECONDS = 8 * 3600
SIGN_IN_LINK_SECONDS = 24 * 3600
# Sign-in attempts: per account, and per client, in 15 minutes.
ACCOUNT_LIMIT = (5, 900)
CLIENT_LIMIT = (20, 900)


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
    user_id, generation = request.session.get("user"), request.session.get("generation")
    if isinstance(user_id, int) and isinstance(generation, int):
        with web.session() as session:
            user = session.get(StudioUser, user_id)
            if user is not None and user.session_generation == generation and user.may_edit(web.course.slug):
                session.expunge(user)
                return user
    request.session.clear()
    # Back to the page after signing in; a form posted without a session goes back to the list (its
    # typed text is kept by the editor's script, and comes back in the editor).
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInRequired(path if request.method in ("GET", "HEAD") else "/studio")


User = Annotated[StudioUser, Depends(current_user)]


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
    return web.templates.TemplateResponse(
        request, f"studio/{template}", {"csrf": csrf_token(request), **values}, status_code=status_code
    )


# --- Sign in and out -------------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, web: Web, next: str | None = None) -> Response:
    return studio_page(web, request, "sign-in.html", next=safe_next(next), error=None, email="")


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
    account = email_hash(email, web.settings.address_key)  # no address in clear in Redis
    client = limit_key(request, web.settings)
    allowed = web.limiter.allow(f"studio-client:{client}", *CLIENT_LIMIT, now) and web.limiter.allow(
        f"studio-account:{account}", *ACCOUNT_LIMIT, now
    )
    if not allowed:
        return studio_page(web, request, "sign-in.html", status_code=429, next=safe_next(next), email=email,
                           error="Too many attempts. Wait a quarter of an hour, then try again.")  # fmt: skip
    with web.session() as session:
        user = authenticate(session, email, password, now)
        if user is None or not user.may_edit(web.course.slug):
            return studio_page(web, request, "sign-in.html", status_code=400, next=safe_next(next), email=email,
                               error="That email and password do not match an account.")  # fmt: skip
        audit(session, user, "sign-in", now=now, course_slug=web.course.slug)
        session.commit()
        request.session.clear()  # a new session on signing in: nothing carried over from before
        request.session.update({"user": user.id, "generation": user.session_generation})
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/sign-out", response_class=HTMLResponse)
def sign_out(request: Request, csrf: CSRF = "") -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/studio/sign-in", status_code=303)


# --- The one-time link that sets a password --------------------------------------------------------


def _user_of_link(web: WebContext, token: str) -> StudioUser | None:
    try:
        user_id, generation = _sign_in_links(web.settings).loads(token, max_age=SIGN_IN_LINK_SECONDS)
    except (SignatureExpired, BadSignature, ValueError, TypeError):
        return None
    with web.session() as session:
        user = session.get(StudioUser, user_id) if isinstance(user_id, int) else None
        if user is None or user.session_generation != generation:
            return None  # used already (the password was set), or made for an account that is gone
        session.expunge(user)
        return user


@router.get("/welcome/{token}", response_class=HTMLResponse)
def welcome_page(request: Request, web: Web, token: str) -> Response:
    user = _user_of_link(web, token)
    if user is None:
        return studio_page(web, request, "link-expired.html", status_code=400)
    return studio_page(web, request, "set-password.html", token=token, user=user, error=None)


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
            return studio_page(web, request, "set-password.html", status_code=400, token=token, user=user,
                               error=str(error))  # fmt: skip
        account.last_sign_in_at = now
        audit(session, account, "set-password", now=now, course_slug=web.course.slug)
        session.commit()
        request.session.clear()
        request.session.update({"user": account.id, "generation": account.session_generation})
    return RedirectResponse("/studio", status_code=303)


def sign_in_redirect(error: SignInRequired) -> RedirectResponse:
    return RedirectResponse(f"/studio/sign-in?next={quote(safe_next(error.path))}", status_code=303)
