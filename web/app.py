"""The web application: every HTTP endpoint of the product lives under web/."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from course.clock import DatabaseClock
from course.db import hand_over_with, make_engine, make_sessionmaker
from course.links import LinkSigner
from course.settings import Settings
from emails.markup import inline_html, markup_html, punctuated
from web import health, inbox, links, media, metrics, pages, preferences, studio, webhooks
from web.context import WebContext
from web.links import LinkProblem, ScannedLinks
from web.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from web.security import BODY_LIMIT_BYTES, BodyLimit, SecuredFastAPI, slash_redirect

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


def queue_or_leave(enqueue: Callable[[int], None]) -> Callable[[int], None]:
    """A request's commit wakes the workers through ``enqueue``; a broker that is away fails no request: the
    batches are committed, and the beat wakes a worker for them at its next tick."""

    def hand_over(wakeups: int) -> None:
        try:
            enqueue(wakeups)
        except Exception:
            log.warning("could not wake a worker for %s batches now; the beat will", wakeups, exc_info=True)

    return hand_over


# How many renderings of the course's words a process keeps (a course has a few hundred fields; the
# least recently shown go first, as the studio publishes new words).
RENDERINGS_KEPT = 4096


def _kept(render: Callable[..., Markup]) -> Callable[..., Markup]:
    """``render`` with its renderings of text kept (:data:`RENDERINGS_KEPT`): it is a pure function of the
    text and the styles the template gives."""
    keep = lru_cache(maxsize=RENDERINGS_KEPT)(render)

    def kept(text: object, **styles: str) -> Markup:
        return keep(text, **styles) if isinstance(text, str) else render(text, **styles)

    return kept


def create_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Session] | None = None,
    enqueue: Callable[[int], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    signer: LinkSigner | None = None,
) -> FastAPI:
    """The web app. The composition root (cli/root.py) gives it the resources it shares with the rest of the
    process; a test may give its own. Without ``enqueue`` nothing is queued by a request: the beat hands
    out what a sign-up or a confirmation made due (a script's or a test's app)."""
    templates = Jinja2Templates(directory=HERE / "templates")
    # The course's words carry a small markup (emails/markup.py); the pages show it as the emails do. Every
    # reader of a release is shown the same words, so each rendering is kept (a page a mail scanner opens
    # in every email must not parse its paragraphs again each time).
    templates.env.filters.update(markup=_kept(markup_html), inline=_kept(inline_html), punctuated=punctuated,
                                 moment=moment)  # fmt: skip
    if settings.environment == "production":
        templates.env.auto_reload = False  # the templates ship with the code: no look at their files per page
    limiter: RateLimiter = (
        RedisRateLimiter(
            redis.Redis.from_url(settings.redis, socket_timeout=2, socket_connect_timeout=2),
            f"{settings.celery_queue}:rate",
        )
        if settings.redis
        else MemoryRateLimiter()
    )
    web = WebContext(
        settings=settings,
        sessions=sessions or make_sessionmaker(make_engine(settings.database_url, pre_ping=False, pool_size=20)),
        signer=signer or LinkSigner(settings.secret_key, str(settings.base_url)),
        templates=templates,
        limiter=limiter,
    )
    web.clock = clock or DatabaseClock(web.sessions.kw["bind"], settings.clock_check_seconds)
    if enqueue is not None:  # what a request's transaction hands over, queued once it commits
        hand_over_with(web.sessions, queue_or_leave(enqueue))

    production = settings.environment == "production"
    app = SecuredFastAPI(
        title="The courses' web",
        docs_url=None,
        redoc_url=None,
        # The schema maps every form: for the tests' fuzzing and for developers, not for the public.
        openapi_url=None if production else "/openapi.json",
        # Starlette's own trailing-slash redirect takes its host from the Host header: ours (slash_redirect,
        # in the 404 handler below) starts from BASE_URL.
        redirect_slashes=False,
    )
    app.https = settings.base_url.scheme == "https"
    app.router.on_shutdown.append(web.dispose)
    app.state.settings = settings
    app.state.templates = templates
    app.state.context = web
    # The studio's code editor, as npm installed it (web/package.json); absent, the editor is plain text boxes.
    ace = HERE / "node_modules" / "ace-builds"
    app.mount("/static/vendor/ace", StaticFiles(directory=ace / "src-min-noconflict", check_dir=False), name="ace")
    app.mount("/static/vendor/ace-css", StaticFiles(directory=ace / "css", check_dir=False), name="ace-css")
    # Drag and drop for the course's emails (SortableJS); without it, each row's buttons move it.
    sortable = HERE / "node_modules" / "sortablejs"
    app.mount("/static/vendor/sortable", StaticFiles(directory=sortable, check_dir=False), name="sortable")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (pages, links, preferences, health, media):
        app.include_router(module.router)
    if settings.metrics_token is not None or not production:
        # In production only behind its bearer token: the figures are the business's own.
        app.include_router(metrics.router)
    webhooks.enable(app, web)
    if inbox.enabled(settings):
        # Only in `course demo` (or development with DEMO_INBOX): it shows every subscriber's links.
        app.include_router(inbox.router)

    def problem(request: Request, status_code: int, title: str, message: str) -> Response:
        return templates.TemplateResponse(
            request, "error.html", {"title": title, "message": message}, status_code=status_code
        )

    app.add_middleware(BodyLimit, limit=BODY_LIMIT_BYTES, problem=problem,
                       larger={"/webhooks/": webhooks.WEBHOOK_BODY_LIMIT_BYTES, **studio.FILE_FORMS},
                       files=frozenset(studio.FILE_FORMS))  # fmt: skip
    # The studio's session: a signed cookie that only /studio ever sees (web/studio/auth.py).
    app.add_middleware(
        SessionMiddleware,
        secret_key=studio.auth.session_key(settings),
        session_cookie=studio.auth.SESSION_COOKIE,
        max_age=studio.auth.SESSION_SECONDS,
        path="/studio",
        same_site="lax",
        https_only=settings.base_url.scheme == "https",
    )
    app.include_router(studio.router)
    # Last added, so first to see a request: the links mail scanners open by the thousand.
    app.add_middleware(ScannedLinks, web=web, problem=problem)

    @app.exception_handler(studio.auth.SignInRequired)
    async def sign_in_required(request: Request, error: studio.auth.SignInRequired) -> Response:
        if request.headers.get("sec-fetch-mode", "navigate") != "navigate":
            # A page's script asking in the background (the editor's preview): told so, not sent to the
            # sign-in page, whose rendering would start a session of its own and race the one the
            # browser is signing in with (the form's token then fits neither).
            return PlainTextResponse("Your session has ended: sign in again.", status_code=401)
        return studio.auth.sign_in_redirect(error)

    @app.exception_handler(studio.auth.CSRFRefused)
    async def csrf_refused(request: Request, error: studio.auth.CSRFRefused) -> Response:
        return studio.auth.studio_page(
            web, request, "refused.html", status_code=403, user=None, title="That form had expired",
            message="Nothing was changed. Go back, reload the page and try again.",
        )  # fmt: skip

    @app.exception_handler(LinkProblem)
    async def link_problem(request: Request, error: LinkProblem) -> Response:
        return problem(request, error.status_code, error.title, error.message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> Response:
        return problem(request, 400, "Something in that request was not right",
                       f"{what_was_wrong(error)} Go back and try again.")  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            moved = slash_redirect(request, str(settings.base_url))
            if moved is not None:
                return moved
            # An address of ours that names something missing ("No such template") says which; any other
            # address is a page that is not there.
            missing = str(error.detail) if error.detail != HTTPStatus.NOT_FOUND.phrase else None
            return problem(request, 404, "There is nothing here",
                           missing or "The page may have moved. Start from the home page.")  # fmt: skip
        headers: dict[str, Any] = dict(error.headers or {})
        response = problem(request, error.status_code, "That did not work", str(error.detail))
        response.headers.update(headers)
        return response

    return app


def moment(value: datetime, year: bool = True) -> Markup:
    """A moment for the studio's pages: in UTC as written, and in the viewer's own zone once the page's
    script (static/local-times.js) has read ``datetime``."""
    utc = value.astimezone(UTC)
    shown = utc.strftime("%d %b %Y %H:%M" if year else "%d %b %H:%M")
    return Markup('<time datetime="{}" data-local="{}">{} UTC</time>').format(
        utc.strftime("%Y-%m-%dT%H:%M:%SZ"), "year" if year else "", shown
    )


def what_was_wrong(error: RequestValidationError) -> str:
    """Which fields of a request were not right and what each should be, one sentence a field: what the
    page of a refused request says. Never the value sent (it may be anything, of any length)."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for problem in error.errors():
        where, name, *_ = [*tuple(problem.get("loc") or ()), "", ""]
        found.setdefault((str(where), str(name)), []).append(problem)
    sentences = []
    for (where, name), problems in list(found.items())[:3]:
        first, context = problems[0], problems[0].get("ctx") or {}
        kind, inner = first.get("type"), [*tuple(first.get("loc") or ()), "", "", ""][2]
        if isinstance(inner, str) and inner:  # a value of several kinds (an int or "draft"): none fitted
            should = "is not one of the values it can take"
        elif kind == "missing":
            should = "is missing"
        elif kind == "string_too_long":
            should = f"is longer than {context.get('max_length')} characters"
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            should = "is not a whole number"
        elif kind == "greater_than_equal":
            should = f"is less than {context.get('ge')}"
        elif kind == "literal_error":
            should = f"is not one of {context.get('expected')}"
        elif kind == "string_pattern_mismatch":
            should = "is not in the form it takes"
        else:
            should = "is not right"
        if isinstance(inner, int):  # one of a list's values
            should = f"has a value that {should}"
        if where == "path":
            sentences.append(f"The address is not one of ours: its “{name}” part {should}.")
        elif where == "query":
            sentences.append(f"The address's “{name}” {should}.")
        else:
            sentences.append(f"The field “{name}” {should}." if name else f"The form {should}.")
    return " ".join(sentences) or "The request did not have the form it takes."
