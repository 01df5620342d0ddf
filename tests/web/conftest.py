"""The web app on a real PostgreSQL, sending through the real engine to a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.orm import Session

from course.db import make_engine, make_sessionmaker
from course.models.subscribers import Subscriber
from web.app import create_app
from workers.engine import Runtime, send_next, tick
from workers.throttle import LocalTokenBucket

from ..conftest import make_settings
from ..support.smtp import ScriptedHandler
from ..workers.conftest import Clock

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"


class _HiddenFields(HTMLParser):
    """The hidden fields of the form that posts to ``action``."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.inside = found.get("action") == self.action
        elif tag == "input" and self.inside and found.get("type") == "hidden" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and (href := dict(attrs).get("href")):
            self.hrefs.append(href)


@dataclass
class Site:
    client: TestClient
    runtime: Runtime
    clock: Clock
    smtp: ScriptedHandler

    def session(self) -> Session:
        return self.runtime.sessions()

    def deliver(self) -> None:
        """What the workers do with the send queue: send until it is empty."""
        while send_next(self.runtime):
            pass

    def tick(self) -> None:
        tick(self.runtime)

    def links(self, recipient: str, subject_starts: str = "") -> list[str]:
        """The links of the latest email to ``recipient`` (whose subject starts so), as paths."""
        messages = [m for m in self.smtp.to(recipient) if m.subject.startswith(subject_starts)]
        assert messages, f"no email to {recipient} starting {subject_starts!r}"
        html = messages[-1].message.get_body(preferencelist=("html",))
        assert html is not None
        parser = _Hrefs()
        parser.feed(html.get_content())
        return [re.sub(r"^https://course\.example\.org", "", href) for href in parser.hrefs]

    def link(self, recipient: str, prefix: str, subject_starts: str = "") -> str:
        found = [href for href in self.links(recipient, subject_starts) if href.startswith(prefix)]
        assert found, f"no {prefix} link"
        return found[0]

    def submit(self, path: str, **fields: str | list[str]) -> Response:
        """Open the page at ``path`` and press its form's button, as a person does: the hidden fields the
        page put in its form are sent with ``fields``."""
        page = self.client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        parser = _HiddenFields(path)
        parser.feed(page.text)
        return self.client.post(path, data={**parser.fields, **fields})

    def to_day_one(self, email: str = "alex@example.com") -> None:
        """Day 1 sent to ``email`` at its time, and half an hour on: a person opens the email a while after it
        arrived (not a scanner at its delivery)."""
        reader = self.subscriber(email)
        assert reader.next_send_at is not None
        self.clock.to(reader.next_send_at)
        self.tick()
        self.clock.advance(minutes=30)

    def subscriber(self, email: str) -> Subscriber:
        with self.session() as session:
            found = session.query(Subscriber).filter_by(email=email).one()
            session.expunge(found)
            return found

    def data_link(self, email: str = "alex@example.com") -> str:
        """Ask for a link to one's data with the preferences page's button; the link the email brings."""
        preferences = self.link(email, "/preferences/", "Welcome")
        asked = self.client.post(f"{preferences}/renew")
        assert asked.status_code == 200 and "on its way to your address" in asked.text
        return self.link(email, "/my-data/", "Your link to your data")

    def sign_up_and_confirm(self, email: str = "alex@example.com", timezone: str = "Europe/Paris") -> Subscriber:
        response = self.client.post(
            "/subscribe", data={"email": email, "first_name": "Alex", "send_time": "08:00", "timezone": timezone}
        )
        assert response.status_code == 200 and "Check your inbox" in response.text
        confirm = self.link(email, "/confirm/")
        self.clock.advance(minutes=2)
        assert self.client.post(confirm).status_code == 200
        return self.subscriber(email)


@pytest.fixture
def site(database_url: str, smtp: tuple[ScriptedHandler, int]) -> Iterator[Site]:
    with running_site(database_url, smtp) as running:
        yield running


@contextmanager
def running_site(database_url: str, smtp: tuple[ScriptedHandler, int], **overrides: object) -> Iterator[Site]:
    """The site on ``database_url``, its settings changed by ``overrides``."""
    handler, port = smtp
    settings = make_settings(
        database_url=database_url,
        smtp_url=f"smtp://127.0.0.1:{port}",
        broker_url="memory://",
        consultation_url="https://booking.example.org/free-consultation?from=course",
        resource_urls={"stonewalling-quiz": "https://quiz.example.org/stonewalling"},
        **overrides,
    )
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    clock = Clock()

    def send_now(wakeups: int) -> None:  # the workers' job, done inline
        for _ in range(wakeups):
            send_next(runtime)

    runtime = Runtime(settings, sessions=sessions, throttle=LocalTokenBucket(10_000), clock=clock, enqueue=send_now)
    app = create_app(settings, sessions=sessions, enqueue=runtime.enqueue, clock=clock)
    with TestClient(app, base_url="https://course.example.org", headers={"User-Agent": BROWSER}) as client:
        yield Site(client, runtime, clock, handler)
    engine.dispose()
