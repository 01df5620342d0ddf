"""What every response tells the browser, what a request may send, and where a redirect may lead. The
hostile cases: a foreign Host header, protocol-relative paths, bodies that declare or stream too much,
nonsense lengths."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bench.net import free_port
from course.links import LinkSigner, Purpose
from course.models.engagement import Answer
from course.models.subscribers import Subscriber
from web.app import create_app
from web.security import BODY_LIMIT_BYTES, PAGE_POLICY

from ..conftest import TEST_SECRET, make_settings
from ..support.waiting import wait_until
from .conftest import Site


def assert_secured(response: Any, *, policy: str = PAGE_POLICY) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == policy, response.request.url
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["strict-transport-security"].startswith("max-age=")  # BASE_URL is https


def test_the_page_policy_allows_nothing_inline_and_no_framing() -> None:
    directives = dict(part.strip().split(" ", 1) for part in PAGE_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in PAGE_POLICY and "data:" not in PAGE_POLICY and "*" not in PAGE_POLICY


def test_every_kind_of_response_carries_the_security_headers(site: Site) -> None:
    responses = [
        site.client.get("/"),
        site.client.head("/"),
        site.client.get("/check-your-inbox"),
        site.client.get("/static/course.css"),
        site.client.get("/static/no-such-file.js"),
        site.client.get("/nowhere"),  # 404
        site.client.get("/confirm/garbage"),  # 400, a friendly error page
        site.client.post("/subscribe", data={"email": "x@example.com", "website": "spam"}, follow_redirects=False),
        site.client.get("/check-your-inbox/", follow_redirects=False),  # the trailing-slash redirect
        site.client.delete("/"),  # 405
        site.client.get("/metrics"),
        site.client.get("/healthz"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404, 404, 400, 303, 307, 405, 200, 200]
    for response in responses:
        assert_secured(response)


def test_even_a_server_error_carries_the_headers(database_url: str) -> None:
    app = create_app(make_settings(database_url=database_url, broker_url="memory://"))

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with TestClient(app, base_url="https://course.example.org", raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert_secured(response)


class _Inline(HTMLParser):
    """Whatever a strict Content-Security-Policy would block: inline script, inline style, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and not found.get("src"):
            self.found.append("inline <script>")
        if tag == "script" and not str(found.get("src", "")).startswith("/static/"):
            self.found.append(f"a script from elsewhere: {found.get('src')}")
        if tag == "style":
            self.found.append("a <style> element")
        href = str(found.get("href"))
        if tag == "link" and found.get("rel") == "stylesheet" and (not href.startswith("/") or href.startswith("//")):
            self.found.append(f"a stylesheet from elsewhere: {found.get('href')}")
        for name, value in attrs:
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            if name.startswith("on"):
                self.found.append(f"{name}= on <{tag}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: in <{tag} {name}>")


def pages_of_a_subscriber(site: Site) -> dict[str, Any]:
    """Every kind of page, as a subscriber meets them."""
    pages: dict[str, Any] = {"landing": site.client.get("/"), "check-inbox": site.client.get("/check-your-inbox")}
    site.client.post("/subscribe", data={"email": "alex@example.com", "timezone": "UTC"})
    confirm = site.link("alex@example.com", "/confirm/")
    pages["confirm"] = site.client.get(confirm)
    site.clock.advance(minutes=2)
    pages["confirmed"] = site.client.post(confirm)
    answers = [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")]
    pages["answer-band"] = site.client.get(answers[0])
    pages["answer-saved"] = site.submit(answers[0])
    pages["checklist"] = site.client.get(answers[-1])
    preferences = site.link("alex@example.com", "/preferences/", "Welcome")
    pages["preferences"] = site.client.get(preferences)
    data = site.data_link()
    pages["my-data"] = site.client.get(data)
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Welcome")
    pages["unsubscribe"] = site.client.get(unsubscribe)
    alex = site.subscriber("alex@example.com")
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    exercise = signer.url(Purpose.EXERCISE_DONE, alex.id, 1).removeprefix("https://course.example.org")
    pages["exercise"] = site.client.get(exercise)
    pages["exercise-done"] = site.client.post(exercise)
    pages["unsubscribed"] = site.client.post(unsubscribe)
    pages["error"] = site.client.get("/answer/forged")
    pages["erased"] = site.client.post(f"{data}/erase", data={"sure": "yes"})
    return pages


def test_no_page_has_inline_script_or_style_and_token_pages_are_never_stored(site: Site) -> None:
    pages = pages_of_a_subscriber(site)
    assert all(r.status_code in (200, 400) for r in pages.values()), {k: r.status_code for k, r in pages.items()}
    for name, response in pages.items():
        assert_secured(response)
        # Nothing a page shows may stay in a cache: a shared computer's back button, a proxy.
        assert response.headers["cache-control"] == "no-store", name
        if response.headers["content-type"].startswith("text/html"):
            parser = _Inline()
            parser.feed(response.text)
            assert parser.found == [], (name, parser.found)
    assert '<script src="/static/landing.js">' in pages["landing"].text
    # The landing page still fills in the time zone from the device, from its own file.
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in site.client.get("/static/landing.js").text
    assert '<script src="/static/answer.js">' in pages["checklist"].text
    # The static files may be cached; they hold nothing personal.
    assert "no-store" not in site.client.get("/static/landing.js").headers.get("cache-control", "")


# --- Redirects ------------------------------------------------------------------------------------


def test_the_trailing_slash_redirect_goes_to_base_url_whatever_the_host_header(site: Site) -> None:
    for host in ("evil.test", "course.example.org"):
        moved = site.client.get("/check-your-inbox/?from=email", headers={"Host": host}, follow_redirects=False)
        assert moved.status_code == 307
        assert moved.headers["location"] == "https://course.example.org/check-your-inbox?from=email"


@pytest.mark.parametrize(
    "path",
    ["//evil.test/", "//evil.test", "///evil.test/", "/\\evil.test/", "//evil.test/check-your-inbox/",
     "/%2F%2Fevil.test/", "/check-your-inbox//", "/.//evil.test/"],
)  # fmt: skip
def test_no_path_turns_into_a_redirect_to_another_site(site: Site, path: str) -> None:
    response = site.client.get(f"https://course.example.org{path}", headers={"Host": "evil.test"},
                               follow_redirects=False)  # fmt: skip
    assert response.status_code in (307, 404)
    if response.status_code == 307:
        assert response.headers["location"].startswith("https://course.example.org/")


def test_a_redirect_keeps_an_odd_path_inside_our_own_site(site: Site) -> None:
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    token = signer.token(Purpose.PREFERENCES, 1)
    moved = site.client.get(f"/preferences/{token}/", headers={"Host": "evil.test"}, follow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["location"] == f"https://course.example.org/preferences/{token}"


# --- Request bodies -------------------------------------------------------------------------------


def count(site: Site, table: Any) -> int:
    with site.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_a_body_that_declares_too_much_gets_the_friendly_413_and_changes_nothing(site: Site) -> None:
    fields = {"email": "alex@example.com", "timezone": "UTC", "first_name": "A" * (BODY_LIMIT_BYTES + 1)}
    response = site.client.post("/subscribe", data=fields)
    assert response.status_code == 413
    assert "<h1>That was too much to send</h1>" in response.text
    assert_secured(response)
    assert count(site, Subscriber) == 0 and site.smtp.received == []


def test_a_streamed_body_that_grows_too_large_gets_the_friendly_413_and_changes_nothing(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    answer = LinkSigner(TEST_SECRET, "https://course.example.org").url(Purpose.ANSWER, alex.id, 0)
    answer = answer.removeprefix("https://course.example.org")

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        yield b"checklist=warning-signs&items=1&pad="
        for _ in range(100):
            yield b"x" * 1024

    response = site.client.post(answer, content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413 and "That was too much to send" in response.text
    assert count(site, Answer) == 0


def test_a_body_under_the_limit_is_read_as_usual(site: Site) -> None:
    site.sign_up_and_confirm()
    checklist = [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")][-1]
    saved = site.submit(checklist, items=["1", "2"], pad="x" * (BODY_LIMIT_BYTES - 200))
    assert saved.status_code == 200 and "Saved." in saved.text
    assert count(site, Answer) == 1


class _Stream:
    """An ASGI conversation by hand: a body in chunks, counting how many the app took."""

    def __init__(self, headers: list[tuple[bytes, bytes]], chunks: int, size: int) -> None:
        self.scope = {"type": "http", "method": "POST", "path": "/subscribe", "raw_path": b"/subscribe",
                      "query_string": b"", "headers": [(b"host", b"course.example.org"), *headers],
                      "scheme": "https", "server": ("course.example.org", 443), "client": ("192.0.2.1", 1),
                      "http_version": "1.1", "root_path": ""}  # fmt: skip
        self.chunks, self.size, self.taken = chunks, size, 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.taken >= self.chunks:
            return {"type": "http.disconnect"}
        self.taken += 1
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.taken < self.chunks}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def run(self, app: FastAPI) -> int:
        async def conversation() -> None:
            await app(self.scope, self.receive, self.send)  # type: ignore[arg-type]

        # A thread of its own: the browser tests' Playwright keeps an event loop in the main thread.
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(asyncio.run, conversation()).result(timeout=60)
        return int(self.sent[0]["status"])


@pytest.fixture
def bare_app(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url=database_url, broker_url="memory://"), enqueue=lambda ids: None)


def test_the_limit_stops_reading_a_stream_as_soon_as_it_passes(bare_app: FastAPI) -> None:
    stream = _Stream([(b"content-type", b"application/x-www-form-urlencoded")], chunks=1000, size=1024)
    assert stream.run(bare_app) == 413
    assert stream.taken == BODY_LIMIT_BYTES // 1024 + 1  # not one chunk more than needed to know


def test_a_declared_length_over_the_limit_is_refused_unread(bare_app: FastAPI) -> None:
    stream = _Stream([(b"content-length", str(BODY_LIMIT_BYTES + 1).encode())], chunks=100, size=1024)
    assert stream.run(bare_app) == 413
    assert stream.taken == 0


@pytest.mark.parametrize("declared", [b"-1", b"12abc", b"1e9", b""])
def test_a_nonsense_content_length_is_a_400(bare_app: FastAPI, declared: bytes) -> None:
    stream = _Stream([(b"content-length", declared)], chunks=1, size=10)
    assert stream.run(bare_app) == 400


def test_a_real_server_answers_a_runaway_chunked_upload_with_the_friendly_413(bare_app: FastAPI) -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(bare_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="the web server")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(
                b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            )
            chunk = b"x" * 4096
            try:
                for _ in range(BODY_LIMIT_BYTES // len(chunk) + 2):  # past the limit, and never finished
                    connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass  # the server answered and closed: it need not read the rest
            answer = b""
            while b"</html>" not in answer:
                received = connection.recv(65536)
                if not received:
                    break
                answer += received
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"That was too much to send" in answer and b"content-security-policy:" in answer.lower()
