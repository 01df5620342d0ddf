"""The demo inbox shows every subscriber's address and signed links: it exists only where the settings
ask for it in development, never in production or test, whatever the sender; and its framing of an
email's HTML is the one exception to "framed by nobody"."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from web.app import create_app
from web.security import EMAIL_POLICY, FRAMING_PAGE_POLICY, PAGE_POLICY

from ..conftest import make_settings

NAME = "alex@example.com-0001.eml"


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    folder = tmp_path / "outbox"
    folder.mkdir()
    message = EmailMessage()
    message["Subject"] = "Welcome to Building Emotional Intimacy"
    message["To"] = "alex@example.com"
    message["From"] = "South Denver Therapy <course@mail.example.org>"
    message.set_content("Hi Alex")
    message.add_alternative(
        '<html><body><p style="color:#a3472a">Hi Alex</p>'
        '<a href="https://course.example.org/unsubscribe/secret-token">Unsubscribe</a></body></html>',
        subtype="html",
    )
    (folder / NAME).write_bytes(message.as_bytes())
    return folder


def client(database_url: str, **overrides: object) -> TestClient:
    settings = make_settings(database_url=database_url, broker_url="memory://", **overrides)
    return TestClient(create_app(settings, enqueue=lambda ids: None), base_url="https://course.example.org")


INBOX_PATHS = ["/inbox", f"/inbox/{NAME}", f"/inbox/{NAME}/html"]


@pytest.mark.parametrize("environment", ["production", "test", "development"])
def test_mail_going_to_a_folder_does_not_open_the_inbox(database_url: str, outbox: Path, environment: str) -> None:
    with client(database_url, environment=environment, smtp_url=f"outbox:{outbox}") as web:
        for path in INBOX_PATHS:
            response = web.get(path)
            assert response.status_code == 404, (environment, path)
            assert "secret-token" not in response.text and "alex@example.com" not in response.text
        assert 'href="/inbox"' not in web.get("/").text


def test_the_demo_inbox_shows_the_mail_in_development_when_asked(database_url: str, outbox: Path) -> None:
    with client(database_url, environment="development", smtp_url=f"outbox:{outbox}", demo_inbox=True,
                base_url="http://127.0.0.1:8000") as web:  # fmt: skip
        assert 'href="/inbox"' in web.get("/").text
        listing = web.get("/inbox")
        assert listing.status_code == 200 and "Welcome to Building Emotional Intimacy" in listing.text
        assert listing.headers["content-security-policy"] == PAGE_POLICY
        assert listing.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in listing.headers  # BASE_URL is http here

        page = web.get(f"/inbox/{NAME}")
        assert page.status_code == 200 and "/unsubscribe/secret-token" in page.text
        # The message page may frame our own URLs, and nobody may frame it.
        assert page.headers["content-security-policy"] == FRAMING_PAGE_POLICY
        assert "frame-src 'self'" in FRAMING_PAGE_POLICY and "frame-ancestors 'none'" in FRAMING_PAGE_POLICY
        assert page.headers["x-frame-options"] == "DENY"
        assert f'<iframe src="/inbox/{NAME}/html"' in page.text and 'sandbox="allow-popups' in page.text

        html = web.get(f"/inbox/{NAME}/html")
        assert html.status_code == 200 and 'style="color:#a3472a"' in html.text
        # Only our own page frames the email; its inline styles work; it runs no script, even opened alone.
        assert html.headers["content-security-policy"] == EMAIL_POLICY
        directives = dict(part.strip().split(" ", 1) for part in EMAIL_POLICY.split(";"))
        assert directives["frame-ancestors"] == "'self'" and directives["default-src"] == "'none'"
        assert "script-src" not in directives and "allow-scripts" not in directives["sandbox"]
        assert html.headers["x-frame-options"] == "SAMEORIGIN"
        assert html.headers["x-content-type-options"] == "nosniff"
        assert html.headers["cache-control"] == "no-store"

        (outbox.parent / "secret.txt").write_text("beside the outbox")  # a file a way out would reach
        assert web.get("/inbox/..%2Fsecret.txt").status_code == 404
        assert web.get("/inbox/..%2F..%2Fsecret.txt").status_code == 404


def test_uptime_monitors_may_ask_the_inbox_with_head(database_url: str, outbox: Path) -> None:
    with client(database_url, environment="development", smtp_url=f"outbox:{outbox}", demo_inbox=True,
                base_url="http://127.0.0.1:8000") as web:  # fmt: skip
        for path in INBOX_PATHS:
            response = web.head(path)
            assert response.status_code == 200 and response.content == b"", path
