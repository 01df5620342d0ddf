"""Framing, in a real browser: the demo inbox shows an email's HTML (a real rendered email, with its
inline styles) in its sandboxed iframe under our policies, and no other site can frame our pages or
that HTML."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page

from bench.net import free_port
from course.curriculum import load_course
from emails.preview import write_previews
from web.app import create_app

from ..conftest import make_settings
from ..support.sites import ForeignPage
from ..support.waiting import wait_until
from .watch import BrowserProblems


@dataclass
class Demo:
    base: str
    foreign: str  # another origin, which frames whatever its ?src= names


class _Framer(ForeignPage):
    """Someone else's site that puts our page in a frame."""

    def page(self, path: str) -> str:
        target = path.split("?src=", 1)[1] if "?src=" in path else "about:blank"
        return f'<!doctype html><title>Not ours</title><iframe id="ours" src="{target}"></iframe>'


@pytest.fixture
def demo(tmp_path: Path, database_url: str) -> Iterator[Demo]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    outbox = tmp_path / "outbox"
    settings = make_settings(
        environment="development", demo_inbox=True, smtp_url=f"outbox:{outbox}", base_url=base,
        database_url=database_url, broker_url="memory://",
    )  # fmt: skip
    write_previews(load_course(), settings, outbox, only=["welcome"])  # the real email, as the outbox holds it
    server = uvicorn.Server(uvicorn.Config(create_app(settings, enqueue=lambda ids: None), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    framer = ThreadingHTTPServer(("127.0.0.1", 0), _Framer)
    framer_thread = threading.Thread(target=framer.serve_forever, daemon=True)
    framer_thread.start()
    wait_until(lambda: server.started, timeout=30, what="the web server")
    # localhost, not 127.0.0.1: another origin (and another site) for the browser.
    yield Demo(base, f"http://localhost:{framer.server_address[1]}/")
    framer.shutdown()
    framer_thread.join(timeout=10)
    server.should_exit = True
    thread.join(timeout=30)


def test_the_inbox_shows_the_email_in_its_sandboxed_frame(demo: Demo, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    problems = BrowserProblems()
    problems.watch(context)
    page = context.new_page()
    page.goto(f"{demo.base}/inbox")
    page.get_by_role("link", name="Welcome: where do you two stand today?").click()
    email = page.frame_locator("iframe[title='The email, as HTML']")
    email.get_by_text("Building Emotional Intimacy").first.wait_for()
    frame = next(f for f in page.frames if f.url.endswith("/welcome.eml/html"))
    # Its inline styles apply (the policy allows them there and only there) and no script runs in it.
    styled = frame.evaluate("getComputedStyle(document.querySelector('[style]')).cssText !== undefined")
    assert styled
    assert frame.evaluate("document.querySelectorAll('[style]').length") > 0
    assert page.locator("ul.links a[href*='/unsubscribe/']").count() >= 1
    context.close()
    assert problems.found == []


def shown_in_the_frame(page: Page) -> str:
    """The text of the foreign page's one frame: ours if the browser let it frame us, else its error page."""
    (frame,) = [f for f in page.frames if f != page.main_frame]
    try:
        return str(frame.evaluate("document.body ? document.body.innerText : ''"))
    except Exception:  # a frame the browser tore down shows nothing
        return ""


@pytest.mark.parametrize("path", ["/", "/inbox", "/inbox/welcome.eml", "/inbox/welcome.eml/html"])
def test_no_other_site_can_frame_our_pages_or_the_emails_html(demo: Demo, browser: Browser, path: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    refusals: list[str] = []
    page.on("console", lambda message: refusals.append(message.text) if "frame" in message.text else None)
    page.goto(f"{demo.foreign}?src={demo.base}{path}")
    page.wait_for_load_state("load")
    assert wait_until(lambda: refusals, timeout=30, what="the browser's refusal to frame")
    assert any("frame-ancestors" in text for text in refusals), refusals
    shown = shown_in_the_frame(page)
    assert "South Denver Therapy" not in shown and "Building Emotional Intimacy" not in shown, shown
    context.close()
