"""`course mailbox` as an operator runs it: the real command reads a real IMAP server (pymap, in
memory) holding sample reports about subscribers who signed up through the web, or one message from
standard input as a mail server's pipe gives it."""

from __future__ import annotations

import imaplib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.net import free_port
from course.deliveries.suppressions import suppression_reason
from course.links import LinkSigner, Purpose
from course.models.deliveries import Delivery
from course.models.feedback import FeedbackNotice

from ..conftest import TEST_SECRET
from ..support.samples import message
from ..support.smtp import ScriptedHandler
from ..support.waiting import wait_until
from ..web.conftest import Site, running_site

COURSE = Path(sys.executable).parent / "course"
PYMAP = Path(sys.executable).parent / "pymap"
USER, PASSWORD = "bounces", "imap-password-0123"
SIGNER = LinkSigner(TEST_SECRET, "https://course.example.org")


@dataclass
class Imap:
    port: int

    def url(self, password: str = PASSWORD, folder: str = "INBOX") -> str:
        return f"imap://{USER}:{password}@127.0.0.1:{self.port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(USER, PASSWORD)
        client.select("INBOX")
        return client

    def append(self, *messages: bytes) -> None:
        client = self.client()
        for raw in messages:
            status, _ = client.append("INBOX", None, None, raw)
            assert status == "OK"
        client.logout()

    def flags(self) -> list[set[str]]:
        client = self.client()
        _, data = client.uid("FETCH", "1:*", "(FLAGS)")
        client.logout()
        return [set(re.findall(r"\\\w+", item.decode())) for item in data if isinstance(item, bytes)]


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[Imap]:
    port = free_port()
    log = (tmp_path / "pymap.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - the test's own IMAP server
        [str(PYMAP), "--host", "127.0.0.1", "--port", str(port), "dict", "--demo-user", USER,
         "--demo-password", PASSWORD],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return server.poll() is not None  # stop waiting if it died; the next line says so
        return True

    wait_until(listening, timeout=30, what="the IMAP server to listen")
    assert server.poll() is None, (tmp_path / "pymap.log").read_text()
    yield Imap(port)
    server.terminate()
    server.wait(timeout=10)
    log.close()


@pytest.fixture
def site(database_url: str, smtp: tuple[ScriptedHandler, int]) -> Iterator[Site]:
    with running_site(database_url, smtp) as running:
        yield running


def course(*arguments: str, database_url: str, stdin: bytes = b"", **more: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "ENVIRONMENT": "test", "SECRET_KEY": TEST_SECRET, "DATABASE_URL": database_url,
                   "BASE_URL": "https://course.example.org", **more}  # fmt: skip
    return subprocess.run(  # noqa: S603 - our own console script
        [str(COURSE), "mailbox", *arguments, "--loglevel", "WARNING"], input=stdin.decode("latin-1"), env=environment,
        capture_output=True, text=True, timeout=120, check=False, encoding="latin-1",
    )  # fmt: skip


def _welcome_id(site: Site, email: str) -> str:
    subscriber = site.subscriber(email)
    with site.session() as session:
        found = session.scalar(select(Delivery.message_id).where(Delivery.subscriber_id == subscriber.id,
                                                                  Delivery.step == 0))  # fmt: skip
    assert found
    return found


def test_the_mailbox_is_read_once_and_each_report_does_what_it_says(site: Site, imap: Imap, database_url: str) -> None:
    people = ("jane@example.com", "sam@example.com", "kim@example.com", "lee@example.com", "pat@example.com")
    for email in people:
        site.sign_up_and_confirm(email)
    kim, lee = site.subscriber("kim@example.com"), site.subscriber("lee@example.com")
    imap.append(
        message("postfix-dsn-user-unknown", address="jane@example.com",
                message_id=_welcome_id(site, "jane@example.com")),
        message("exchange-dsn-mailbox-full", address="sam@example.com",
                message_id=_welcome_id(site, "sam@example.com")),
        message("arf-redacted", message_id=_welcome_id(site, "kim@example.com"),
                token=SIGNER.token(Purpose.UNSUBSCRIBE, kim.id, 0)),
        message("unsubscribe-mailto", address="lee@example.com", token=SIGNER.token(Purpose.UNSUBSCRIBE, lee.id, 0)),
        # Anyone can write to the bounce mailbox: a "bounce" for Pat that returns no email of ours is only recorded.
        message("postfix-dsn-user-unknown", address="pat@example.com", message_id="<made-up@attacker.example>"),
        message("out-of-office", address="jane@example.com"),
        b"\x00\x01 not mail at all \xff",
    )  # fmt: skip

    first = course("--imap", imap.url(), database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "7 messages read: 1 counted, 2 suppressed, 1 unproven, 1 unsubscribed; 2 not a report (left flagged)"
    )
    statuses = {email: site.subscriber(email).status for email in people}
    assert statuses == {"jane@example.com": "bounced", "sam@example.com": "active", "kim@example.com": "complained",
                        "lee@example.com": "unsubscribed", "pat@example.com": "active"}  # fmt: skip
    with site.session() as session:
        key = site.runtime.settings.address_key
        assert suppression_reason(session, "jane@example.com", key) == "bounce"
        assert suppression_reason(session, "kim@example.com", key) == "complaint"
        assert suppression_reason(session, "pat@example.com", key) is None
        sources = set(session.scalars(select(FeedbackNotice.source)))
    assert sources == {"mailbox"}
    # Jane's bounce was proven by her welcome's Message-ID; Pat's, unproven, is only recorded and counted.
    metrics = site.client.get("/metrics").text
    for kind, proven, count in (("hard-bounce", "yes", 1), ("hard-bounce", "no", 1), ("soft-bounce", "yes", 1),
                                ("complaint", "yes", 1), ("unsubscribe", "yes", 1)):  # fmt: skip
        assert f'course_feedback{{kind="{kind}",proven="{proven}",source="mailbox"}} {count}.0' in metrics

    flags = imap.flags()
    assert all("\\Seen" in found for found in flags)
    assert sum("\\Flagged" in found for found in flags) == 2  # the two that were not reports, for a person

    again = course("--imap", imap.url(), database_url=database_url)
    assert again.returncode == 0 and again.stdout.strip().startswith("0 messages read")


def test_a_message_piped_in_is_read_and_a_database_away_asks_the_mail_server_to_retry(
    site: Site, database_url: str
) -> None:
    site.sign_up_and_confirm("jane@example.com")
    report = message("postfix-dsn-user-unknown", address="jane@example.com",
                     message_id=_welcome_id(site, "jane@example.com"))  # fmt: skip
    away = "postgresql://postgres@127.0.0.1:1/nowhere"
    refused = course("-", database_url=away, stdin=report)
    assert refused.returncode == 75, refused.stderr  # EX_TEMPFAIL: the mail server keeps it and tries again
    assert "try again later" in refused.stderr
    assert site.subscriber("jane@example.com").status == "active"

    taken = course("-", database_url=database_url, stdin=report)
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.strip() == "delivery-status: 1 messages read: 1 suppressed; 0 not a report (left flagged)"
    assert site.subscriber("jane@example.com").status == "bounced"
    ignored = course("-", database_url=database_url, stdin=b"Subject: hello\r\n\r\nJust saying hi.\r\n")
    assert ignored.returncode == 0 and ignored.stdout.strip().startswith("ignored: ")


@pytest.mark.parametrize("what, error", [
    ("password", "imap://bounces@127.0.0.1:{port}/INBOX: "),
    ("folder", "the IMAP server refused SELECT Nowhere"),
    ("server", "imap://bounces@127.0.0.1:{dead}/INBOX: "),
])  # fmt: skip
def test_a_mailbox_that_cannot_be_read_says_why_and_never_shows_the_password(
    imap: Imap, database_url: str, what: str, error: str
) -> None:
    dead = free_port()
    url = {"password": imap.url(password="wrong-password-99"), "folder": imap.url(folder="Nowhere"),
           "server": f"imap://{USER}:{PASSWORD}@127.0.0.1:{dead}/INBOX"}[what]  # fmt: skip
    result = course("--imap", url, database_url=database_url)
    assert result.returncode == 1
    assert error.format(port=imap.port, dead=dead) in result.stderr
    assert PASSWORD not in result.stderr and "wrong-password-99" not in result.stderr


@pytest.mark.parametrize("arguments, error", [
    ((), "read either one message from standard input (-) or a folder (--imap URL, or BOUNCE_MAILBOX_URL)"),
    (("-", "--imap", "imap://a:b@127.0.0.1/"), "read either one message"),
    (("--imap", "https://a:b@example.org/"), "use imaps://user:password@host/FOLDER"),
    (("--imap", "imaps://example.org/INBOX"), "needs a user, a password and a host"),
    (("--imap", "imaps://a:b@example.org:99999/"), "not a mailbox URL"),
])  # fmt: skip
def test_bad_arguments_are_refused_with_what_to_write(
    database_url: str, arguments: tuple[str, ...], error: str
) -> None:
    result = course(*arguments, database_url=database_url)
    assert result.returncode == 2 and error in result.stderr


def test_the_mailbox_url_may_come_from_the_environment_to_keep_its_password_out_of_ps(
    imap: Imap, database_url: str
) -> None:
    imap.append(message("out-of-office", address="jane@example.com"))
    result = course(database_url=database_url, BOUNCE_MAILBOX_URL=imap.url())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 messages read: no notice; 1 not a report (left flagged)"


def _arf_with_headers(recipients: list[str], token: str) -> bytes:
    """An abuse report that returns only the original's header (text/rfc822-headers), one Original-Rcpt-To
    per address."""
    rcpt = "".join(f"Original-Rcpt-To: <{address}>\r\n" for address in recipients)
    return (
        "From: <abuse@isp.example>\r\nTo: <bounces@mail.example.org>\r\nSubject: complaint\r\n"
        "Message-ID: <arf.forged.1@isp.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: Forger/1.0\r\nVersion: 1\r\n{rcpt}\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: South Denver Therapy <course@mail.example.org>\r\nSubject: Day 1\r\n"
        f"List-Unsubscribe: <https://course.example.org/unsubscribe/{token}>\r\n\r\n"
        "--b--\r\n"
    ).encode()


def _dsn_blocks(address: str, blocks: int) -> bytes:
    """A delivery report with no Message-ID of ours and ``blocks`` per-recipient blocks for one address."""
    recipients = "".join(
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 no such user ({number})\r\n\r\n"
        for number in range(blocks)
    )
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@mail.example.org\r\nSubject: Undelivered\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n\r\n{recipients}"
        "--b--\r\n"
    ).encode()


def test_forged_reports_in_the_bounce_mailbox_silence_nobody(site: Site, database_url: str) -> None:
    """The attacks of an outside run: the attacker's own unsubscribe token vouching for a list of victims,
    and a delivery report, sent three times, with three blocks for one address (one who never signed up)."""
    victims = [f"victim{number}@example.com" for number in range(8)]
    for address in victims:
        site.sign_up_and_confirm(address)
    site.client.post("/subscribe", data={"email": "mallory@attacker.example", "timezone": "UTC"})
    mallory = site.subscriber("mallory@attacker.example")
    arf = _arf_with_headers(victims, SIGNER.token(Purpose.UNSUBSCRIBE, mallory.id, 0))
    taken = course("-", database_url=database_url, stdin=arf)
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.strip() == (
        "feedback-report: 1 messages read: 3 capped, 5 unproven; 0 not a report (left flagged)"
    )
    for number in range(3):
        dsn = _dsn_blocks("newcomer@example.com", 3).replace(b"no such user", f"no user {number}".encode())
        assert course("-", database_url=database_url, stdin=dsn).returncode == 0
    assert {email: site.subscriber(email).status for email in victims} == dict.fromkeys(victims, "active")
    with site.session() as session:
        key = site.runtime.settings.address_key
        assert all(suppression_reason(session, email, key) is None for email in [*victims, "newcomer@example.com"])
        assert set(session.scalars(select(FeedbackNotice.proven))) == {False}
    # The address that "bounced" signs up, and its confirmation goes out.
    site.client.post("/subscribe", data={"email": "newcomer@example.com", "timezone": "UTC"})
    assert len(site.smtp.to("newcomer@example.com")) == 1
