"""The bounce mailbox's reader over sample reports as mail servers and feedback loops write them, and
over hostile mail: it says what each message is and never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course.feedback import FeedbackKind
from emails.reports import read_report

from ..support.samples import mail_names, message

ADDRESS = "jane@example.com"
MESSAGE_ID = "<20261129070210.1a2b3c@mail.example.org>"
TOKEN = "WzEyLDEsbnVsbF0.aBcDeF.g1h2i3j4k5l6m7n8o9p0"

# sample: (what it is, [(kind, address)], why nothing was taken)
EXPECTED: dict[str, tuple[str, list[tuple[FeedbackKind, str | None]], str]] = {
    "postfix-dsn-user-unknown": ("delivery-status", [(FeedbackKind.HARD_BOUNCE, ADDRESS)], ""),
    "exchange-dsn-mailbox-full": ("delivery-status", [(FeedbackKind.SOFT_BOUNCE, ADDRESS)], ""),
    "gateway-dsn-base64": ("delivery-status", [(FeedbackKind.HARD_BOUNCE, "dana@example.net")], ""),
    "exim-dsn-delayed": ("delivery-status", [], "no failed recipient: delayed (4.0.0)"),
    "qmail-bounce": ("bounce", [(FeedbackKind.HARD_BOUNCE, ADDRESS)], ""),
    "arf-abuse": ("feedback-report", [(FeedbackKind.COMPLAINT, ADDRESS)], ""),
    "arf-redacted": ("feedback-report", [(FeedbackKind.COMPLAINT, None)], ""),
    "arf-not-spam": ("feedback-report", [], "feedback type 'not-spam' is not a complaint"),
    "unsubscribe-mailto": ("unsubscribe", [(FeedbackKind.UNSUBSCRIBE, None)], ""),
    "out-of-office": ("none", [], "not a delivery report, a complaint or an unsubscribe"),
}


def test_every_sample_is_expected() -> None:
    assert sorted(EXPECTED) == mail_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_reads_as_what_it_is(name: str) -> None:
    kind, items, reason = EXPECTED[name]
    report = read_report(message(name, address=ADDRESS, message_id=MESSAGE_ID, token=TOKEN))
    assert report.kind == kind
    assert [(item.kind, item.address) for item in report.items] == items
    assert report.reason == reason
    # Every item from the mailbox is unauthenticated, and is tied to the email it returns when it can be.
    for item in report.items:
        assert item.source == "mailbox" and item.authenticated is False
        assert item.notice_id and item.notice_id.startswith("<")
        if item.kind is not FeedbackKind.UNSUBSCRIBE:
            assert item.message_id == MESSAGE_ID


def test_the_reports_keep_the_status_and_the_diagnostic() -> None:
    (bounce,) = read_report(message("postfix-dsn-user-unknown", address=ADDRESS, message_id=MESSAGE_ID)).items
    assert bounce.detail.startswith("5.1.1 smtp; 550 5.1.1 <jane@example.com>: Recipient address rejected: User")
    (full,) = read_report(message("exchange-dsn-mailbox-full", address=ADDRESS, message_id=MESSAGE_ID)).items
    assert full.detail.startswith("5.2.2 ")  # permanent, but about a full mailbox: soft


def test_a_complaint_carries_the_token_of_the_email_it_returns() -> None:
    for name in ("arf-abuse", "arf-redacted"):
        (complaint,) = read_report(message(name, address=ADDRESS, message_id=MESSAGE_ID, token=TOKEN)).items
        assert complaint.unsubscribe_token == TOKEN
    (unsubscribe,) = read_report(message("unsubscribe-mailto", address=ADDRESS, token=TOKEN)).items
    assert unsubscribe.unsubscribe_token == TOKEN


@pytest.mark.parametrize("status, kind", [
    ("5.1.1", FeedbackKind.HARD_BOUNCE), ("5.1.2", FeedbackKind.HARD_BOUNCE), ("5.2.1", FeedbackKind.HARD_BOUNCE),
    ("5.0.0", FeedbackKind.HARD_BOUNCE), ("5.2.2", FeedbackKind.SOFT_BOUNCE), ("5.3.4", FeedbackKind.SOFT_BOUNCE),
    ("5.4.4", FeedbackKind.SOFT_BOUNCE), ("5.7.1", FeedbackKind.SOFT_BOUNCE), ("5.7.26", FeedbackKind.SOFT_BOUNCE),
    ("4.4.7", FeedbackKind.SOFT_BOUNCE), ("", FeedbackKind.SOFT_BOUNCE),
])  # fmt: skip
def test_only_a_permanent_status_about_the_reader_is_a_hard_bounce(status: str, kind: FeedbackKind) -> None:
    raw = message("postfix-dsn-user-unknown", address=ADDRESS, message_id=MESSAGE_ID)
    raw = raw.replace(b"Status: 5.1.1", f"Status: {status}".encode())
    assert [item.kind for item in read_report(raw).items] == [kind]


HOSTILE = {
    "empty": b"",
    "not mail": b"\x00\xff\xfe garbage \x00" * 50,
    "a report without its parts": b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n",
    "a report with an empty status": (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/delivery-status\r\n\r\n\r\n--x--\r\n"
    ),
    "a recipient of another address type": (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        b"Final-Recipient: x400; C=US;A= ;P=x;O=y\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--x--\r\n"
    ),
    "a complaint with nothing in it": (
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\r\n--x--\r\n"
    ),
    "a bad base64 status": (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n--x--\r\n"
    ),
    "an unsubscribe with a short token": b"Subject: unsubscribe me\r\n\r\nplease",
    "a header with no end": b"Subject: " + b"A" * 200_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_mail_is_ignored_with_a_reason(name: str) -> None:
    report = read_report(HOSTILE[name])
    assert report.items == () and report.reason, name


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4000) | st.text(max_size=2000).map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_the_reader_never_raises(raw: bytes) -> None:
    report = read_report(raw)
    assert report.items or report.reason  # what it took, or why it took nothing: never silence


@settings(max_examples=100, deadline=None, database=None)
@given(st.sampled_from(sorted(EXPECTED)), st.integers(min_value=0), st.binary(min_size=1, max_size=40))
def test_a_report_damaged_anywhere_never_raises(name: str, where: int, junk: bytes) -> None:
    raw = message(name, address=ADDRESS, message_id=MESSAGE_ID, token=TOKEN)
    at = where % len(raw)
    report = read_report(raw[:at] + junk + raw[at + len(junk) :])
    assert report.items or report.reason
    assert all(item.source == "mailbox" and item.authenticated is False for item in report.items)
