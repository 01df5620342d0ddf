"""What every response says to the browser, what every request may send, and where a redirect may go.

- Security headers on every response (pages, error pages, static files, redirects, Starlette's own 500):
  a Content-Security-Policy that allows our own files only (no inline script or style, no framing),
  ``nosniff``, no referrer, and ``Cache-Control: no-store`` on everything but the static files, so that
  no shared or back-button cache keeps a page that a signed link opened. A response that needs another
  policy (the demo inbox frames an email's HTML) sets its own headers; the defaults never overwrite them.
- A request body limit, checked before the app runs, whether the body declares its length or streams;
  and no NUL character in a path, a query or a form (none of our fields takes one, and PostgreSQL's
  text cannot hold one: it would be a server error deep in a handler, or half a request done).
- The trailing-slash redirect, built from BASE_URL: Starlette's own builds it from the Host header.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Our pages: our own stylesheet and scripts from /static, forms posted to us, framed by nobody.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The demo inbox's message page, which frames the email's HTML from this origin.
FRAMING_PAGE_POLICY = f"{PAGE_POLICY}; frame-src 'self'"
# The studio's editor: it frames the preview, and its script asks our server for the preview panel.
EDITOR_PAGE_POLICY = f"{FRAMING_PAGE_POLICY}; connect-src 'self'"
# An email's HTML as the inbox frames it: inline styles (emails have nothing else), pictures (its images
# uploaded in the studio are this site's own: 'self' also where BASE_URL is plain http), never a
# script, a form or a plugin; only our own page may frame it, and it stays sandboxed even when opened
# on its own.
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
EMAIL_HEADERS = {"Content-Security-Policy": EMAIL_POLICY, "X-Frame-Options": "SAMEORIGIN"}

# Our largest form is a checklist of a few items; 64 KB is hundreds of times that.
BODY_LIMIT_BYTES = 64 * 1024


def default_headers(*, https: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": PAGE_POLICY,
        "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # the paths carry signed tokens
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeaders:
    """Adds the default headers to every HTTP response that has not set its own."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = default_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope["path"]).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecuredFastAPI(FastAPI):
    """FastAPI whose every response carries the security headers.

    Starlette puts its ServerErrorMiddleware (the 500 answer) outside every middleware added with
    ``add_middleware``; wrapping the whole stack is the only place that sees that answer too.
    """

    https: bool = False

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), https=self.https)


Problem = Callable[[Request, int, str, str], Response]


NUL_MESSAGE = "It holds a NUL character, which none of our fields takes. Nothing was saved. Go back and try again."


def holds_nul(scope: Scope, body: bytes | None = None, files: bool = False) -> bool:
    """Whether the request's path, query or form (``body``, when it is one) has a NUL character in it.
    ``files``: the form may carry files (binary: NULs and all), so its fields are checked where it is read
    (web/studio/words.py), not here."""
    if "\x00" in str(scope["path"]):
        return True
    query = bytes(scope.get("query_string", b""))
    if b"%00" in query or b"\x00" in query:
        return True
    if body is None:
        return False
    kind = Headers(scope=scope).get("content-type", "").lower()
    if kind.startswith("application/x-www-form-urlencoded"):  # "%" itself is sent as %25: %00 is a NUL
        return b"%00" in body or b"\x00" in body
    return kind.startswith("multipart/form-data") and not files and b"\x00" in body  # values are sent as they are


class BodyLimit:
    """Reads the request body before the app does, and refuses it once it passes ``limit`` bytes, or
    when it (or the path, or the query) holds a NUL character.

    A declared Content-Length over the limit is refused without reading anything; a chunked body is
    counted as it arrives, so at most ``limit`` bytes are ever held. The app then gets the body as
    one message. Every refusal is our friendly page (FastAPI's own ``max_body_size`` answers a
    declared length with Starlette's plain-text 413).
    """

    def __init__(self, app: ASGIApp, *, limit: int, problem: Problem, larger: dict[str, int] | None = None,
                 files: frozenset[str] = frozenset()) -> None:  # fmt: skip
        self.app = app
        self.limit = limit
        self.problem = problem
        # Paths under these prefixes take up to so many bytes (provider webhooks post larger bodies).
        self.larger = larger or {}
        # Paths whose forms carry files (the studio's email form, with its images).
        self.files = files

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.larger.items() if path.startswith(prefix)), self.limit)

    async def refuse(self, scope: Scope, receive: Receive, send: Send, status_code: int, message: str = "") -> None:
        if status_code == 413:
            title, message = "That was too much to send", "Nothing was saved. Go back and try again."
        else:
            title, message = "Something in that request was not right", message or "Go back and try again."
        response = self.problem(Request(scope, receive), status_code, title, message)
        response.headers["Connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if holds_nul(scope):
            await self.refuse(scope, receive, send, 400, NUL_MESSAGE)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not (declared.strip().isascii() and declared.strip().isdigit()):  # "²" is a digit to isdigit
                await self.refuse(scope, receive, send, 400)
                return
            if int(declared) > limit:
                await self.refuse(scope, receive, send, 413)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self.refuse(scope, receive, send, 413)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if holds_nul(scope, body, files=scope["path"] in self.files):
            await self.refuse(scope, receive, send, 400, NUL_MESSAGE)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)


def slash_redirect(request: Request, base_url: str) -> Response | None:
    """The same path with or without its trailing slash, when only that one is ours.

    The address starts with BASE_URL (never the request's Host header), and the path is appended
    to it, so ``//evil.test/`` can never become a protocol-relative ``//evil.test``.
    """
    path = str(request.scope["path"])
    other = path.rstrip("/") if path.endswith("/") else f"{path}/"
    if path == "/" or not other.strip("/"):
        return None
    routes = request.app.router.routes

    def ours(candidate: str) -> bool:
        probe = {**request.scope, "path": candidate}
        return any(route.matches(probe)[0] is not Match.NONE for route in routes)

    if ours(path) or not ours(other):
        return None
    location = base_url.rstrip("/") + quote(other)
    query = parse_qsl(bytes(request.scope.get("query_string", b"")).decode("latin-1"), keep_blank_values=True)
    if query:
        location += "?" + urlencode(query)
    return RedirectResponse(location, status_code=307)


def sent_from_elsewhere(request: Request, base_url: str, allowed: frozenset[str]) -> bool:
    """Whether a browser sent this form from another site's page: not ours, nor one of ``allowed``.

    Browsers say where a request comes from in ``Sec-Fetch-Site`` (every current one), which a page
    cannot change: ``same-origin`` (or ``none``, typed or bookmarked) is ours. ``Origin`` names the page's
    origin, but our own pages' POSTs carry ``Origin: null`` (our ``Referrer-Policy: no-referrer`` makes the
    browser send that), so it decides only for a cross-site request (an embed listed in ``allowed``) and
    for a browser too old for ``Sec-Fetch-Site``. A request with neither header is no browser's (a
    script can write any header anyway): its limits are the per-client and per-mailbox ones.
    """
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    origin = (request.headers.get("origin") or "").strip().lower()
    ours = origin == base_url.rstrip("/").lower() or origin.partition("://")[2] == request.headers.get("host", "")
    if site in ("same-origin", "none"):
        return False
    if site:  # same-site, cross-site, or what a later browser may say
        return not (origin in allowed or (origin and ours))
    return bool(origin) and origin != "null" and origin not in allowed and not ours
