"""The demo's inbox: the messages the outbox sender wrote, listed and shown with their links live.

It shows every subscriber's address and signed links to whoever opens it, so it exists only where the
settings ask for it (``DEMO_INBOX``, which ``course demo`` sets and which is refused outside
development), never because mail happens to go to a folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from course.settings import Settings
from web.routing import get_and_head
from web.security import EMAIL_HEADERS, FRAMING_PAGE_POLICY

router = APIRouter(include_in_schema=False)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9@._+-]{1,200}\.eml$")


def outbox_folder(settings: Settings) -> Path | None:
    parts = urlsplit(settings.smtp_url)
    return Path(unquote(parts.path) or ".") if parts.scheme == "outbox" else None


def enabled(settings: Settings) -> bool:
    """Whether the inbox is served (and the landing page links to it)."""
    return settings.demo_inbox and settings.environment == "development" and outbox_folder(settings) is not None


@dataclass(frozen=True)
class Captured:
    name: str
    received_at: datetime
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "(no subject)")

    @property
    def to(self) -> str:
        return str(self.message["To"] or "")

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if isinstance(body, EmailMessage) else ""


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href:
            self.links.append((" ".join("".join(self._text).split()), self._href))
            self._href = None


def _folder(request: Request) -> Path:
    folder = outbox_folder(request.app.state.settings)
    assert folder is not None  # the router is only mounted with an outbox  # noqa: S101
    return folder


def _read(path: Path) -> Captured:
    message = message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)  # noqa: S101 - the default policy builds EmailMessage
    return Captured(path.name, datetime.fromtimestamp(path.stat().st_mtime).astimezone(), message)


def _captured(request: Request, name: str) -> Captured:
    path = _folder(request) / name
    if not _SAFE_NAME.fullmatch(name) or not path.is_file():
        raise HTTPException(status_code=404, detail="No such message in the inbox")
    return _read(path)


@get_and_head(router, "/inbox", response_class=HTMLResponse)
def inbox(request: Request) -> Response:
    folder = _folder(request)
    paths = sorted(folder.glob("*.eml"), key=lambda path: path.stat().st_mtime, reverse=True) if folder.is_dir() else []
    messages = [_read(path) for path in paths]
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "inbox.html", {"messages": messages})


@get_and_head(router, "/inbox/{name}", response_class=HTMLResponse)
def message(request: Request, name: str) -> Response:
    captured = _captured(request, name)
    parser = _Links()
    parser.feed(captured.part("html"))
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "inbox-message.html",
        {"captured": captured, "links": parser.links, "text": captured.part("plain")},
        headers={"Content-Security-Policy": FRAMING_PAGE_POLICY},
    )


@get_and_head(router, "/inbox/{name}/html", response_class=HTMLResponse)
def message_html(request: Request, name: str) -> HTMLResponse:
    # Shown in a sandboxed iframe on the message page, exactly as a mail client would get it.
    return HTMLResponse(_captured(request, name).part("html"), headers=EMAIL_HEADERS)
