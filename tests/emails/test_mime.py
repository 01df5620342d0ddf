"""The hand-built MIME fast path, held to the standard library's parser."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from course.curriculum import Course
from course.settings import Settings
from emails.mime import Envelope, MessageBuilder, UnsafeHeaderValue
from emails.rendering import RenderedEmail, Renderer

from ..conftest import make_settings

DATE = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def builder(settings: Settings, course: Course) -> MessageBuilder:
    return MessageBuilder(settings, course.slug, course.title)


def build(builder: MessageBuilder, rendered: RenderedEmail, name: str | None = "Alex", **kwargs: object) -> Envelope:
    values: dict[str, object] = {
        "to_address": "alex@example.com",
        "to_name": name,
        "message_id": builder.message_id(7, rendered.step if rendered.step is not None else "confirmation"),
        "date": DATE,
    }
    values.update(kwargs)
    return builder.build(rendered, **values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("name", ["confirmation", "welcome", "day-07", "day-18", "completion"])
def test_the_standard_parser_reads_both_parts_back_unchanged(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    rendered = rendered_emails[name]
    message = parse(build(builder, rendered).data)
    assert message.get_content_type() == "multipart/alternative"
    assert message.defects == []
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert text.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html.replace("\r\n", "\n")
    assert str(message["Subject"]) == rendered.subject


def test_the_headers_a_mailbox_provider_expects(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail]
) -> None:
    rendered = rendered_emails["day-03"]
    message = parse(build(builder, rendered).data)
    assert message["From"].addresses[0].addr_spec == "course@mail.example.org"
    assert message["From"].addresses[0].display_name == "South Denver Therapy"
    assert str(message["To"]) == "Alex <alex@example.com>"
    assert str(message["Reply-To"]) == "Kayla Crane <care@example.org>"  # MAIL_REPLY_TO's own name
    assert message["Date"].datetime == DATE
    assert re.fullmatch(r"<building-emotional-intimacy\.3\.[0-9a-f]{24}@mail\.example\.org>", message["Message-ID"])
    assert message["List-Id"] == "Building Emotional Intimacy <building-emotional-intimacy.mail.example.org>"
    assert message["MIME-Version"] == "1.0"
    # RFC 8058 one-click: an HTTPS URI, and the POST body that performs it.
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert https == rendered.unsubscribe_url and https.startswith("https://course.example.org/unsubscribe/")
    token = https.rsplit("/", 1)[1]
    assert mailto == f"mailto:unsubscribe@mail.example.org?subject=unsubscribe%20{token}"


@pytest.mark.parametrize("name", ["welcome", "day-10", "completion"])
def test_line_ends_are_crlf_and_no_line_is_too_long(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    data = build(builder, rendered_emails[name]).data
    assert b"\r\n" in data
    assert re.search(rb"(?<!\r)\n", data) is None, "bare LF"
    assert re.search(rb"\r(?!\n)", data) is None, "bare CR"
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998  # RFC 5322 limit
    body = data.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 78  # quoted-printable keeps lines short
    assert data.isascii()


def test_the_message_id_is_the_same_for_a_resend_and_differs_between_deliveries(builder: MessageBuilder) -> None:
    assert builder.message_id(7, 3) == builder.message_id(7, 3)
    assert len({builder.message_id(7, 3), builder.message_id(7, 4), builder.message_id(8, 3)}) == 3
    # It does not give away the subscriber's number, and another secret gives another id.
    assert ".7." not in builder.message_id(7, 3)
    other = MessageBuilder(make_settings(secret_key="another-secret-key-0123456789abcdef-000"), builder.course_slug, "")
    assert other.message_id(7, 3) != builder.message_id(7, 3)


def test_non_ascii_names_and_subjects_are_encoded_and_read_back(
    builder: MessageBuilder, renderer: Renderer, rendered_emails: dict[str, RenderedEmail]
) -> None:
    rendered = rendered_emails["day-01"]
    accented = RenderedEmail(**{**rendered.__dict__, "subject": "Día 1: Practice Daily Check-Ins — ¿listo? 💙"})
    data = build(builder, accented, name="Zoë Ångström-Núñez").data
    assert data.isascii()
    message = parse(data)
    assert str(message["Subject"]) == accented.subject
    assert message["To"].addresses[0].display_name == "Zoë Ångström-Núñez"
    assert message["To"].addresses[0].addr_spec == "alex@example.com"


@pytest.mark.parametrize(
    "name", ["Alex\r\nBcc: victim@example.org", "Alex\nBcc: victim@example.org", "Alex\rX", "Al\0ex"]
)
def test_a_name_with_a_line_break_or_nul_is_refused(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    with pytest.raises(UnsafeHeaderValue):
        build(builder, rendered_emails["day-01"], name=name)


@pytest.mark.parametrize(
    "name",
    ["=?utf-8?q?Alex=0D=0ABcc:_victim@example.org?=", "=?utf-8?b?QWxleA0KQmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?= Jones"],
)
def test_a_name_that_looks_like_an_encoded_word_reads_back_as_typed_and_adds_no_header(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    message = parse(build(builder, rendered_emails["day-01"], name=name).data)
    assert message["Bcc"] is None
    (recipient,) = message["To"].addresses
    # Read back as typed (folding may double a space between words, as for any long name).
    assert (recipient.display_name.split(), recipient.addr_spec) == (name.split(), "alex@example.com")


@pytest.mark.parametrize(
    "address",
    [
        "alex@example.com\r\nBcc: victim@example.org",
        "alex@exa\nmple.com",
        "not-an-address",
        "zoë@example.com",
        "=?utf-8?q?alex?=@example.com",
    ],
)
def test_an_address_that_is_not_plain_is_refused(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail], address: str
) -> None:
    with pytest.raises(UnsafeHeaderValue):
        build(builder, rendered_emails["day-01"], to_address=address)


def test_a_subject_with_a_line_break_is_refused(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail]
) -> None:
    rendered = rendered_emails["day-01"]
    broken = RenderedEmail(**{**rendered.__dict__, "subject": "Day 1\r\nBcc: victim@example.org"})
    with pytest.raises(UnsafeHeaderValue):
        build(builder, broken)


@hypothesis_settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=120))
def test_any_name_is_either_refused_or_read_back_exactly_without_new_headers(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    try:
        data = build(builder, rendered_emails["day-02"], name=name).data
    except UnsafeHeaderValue:
        assert any(char in name for char in "\r\n\0")
        return
    message = parse(data)
    head = data.partition(b"\r\n\r\n")[0]
    assert sorted(message.keys()) == sorted(
        [
            "From", "Reply-To", "List-Id", "List-Unsubscribe-Post", "MIME-Version", "To", "Subject", "Date",
            "Message-ID", "List-Unsubscribe", "Content-Type",
        ]
    )  # fmt: skip
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    parsed = message["To"].addresses
    assert len(parsed) == 1 and parsed[0].addr_spec == "alex@example.com"
    assert parsed[0].display_name.split() == name.split()


def test_it_matches_what_the_standard_library_would_build(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail]
) -> None:
    # The fast path and EmailMessage must agree on everything a client shows.
    rendered = rendered_emails["day-05"]
    fast = parse(build(builder, rendered).data)
    slow = EmailMessage(policy=SMTP)
    slow["Subject"] = rendered.subject
    slow.set_content(rendered.text)
    slow.add_alternative(rendered.html, subtype="html")
    reference = parse(slow.as_bytes())
    for fast_part, slow_part in zip(fast.iter_parts(), reference.iter_parts(), strict=True):
        assert fast_part.get_content_type() == slow_part.get_content_type()
        # EmailMessage ends each part with a newline of its own; the fast path keeps the part as rendered.
        fast_content = fast_part.get_content().replace("\r\n", "\n").rstrip("\n")
        assert fast_content == slow_part.get_content().replace("\r\n", "\n").rstrip("\n")
    assert str(fast["Subject"]) == str(reference["Subject"])


def test_a_name_too_long_for_one_header_line_is_refused(
    builder: MessageBuilder, rendered_emails: dict[str, RenderedEmail]
) -> None:
    with pytest.raises(UnsafeHeaderValue, match="longer than"):
        build(builder, rendered_emails["day-01"], name="Ä" * 201)


def test_a_reply_reaches_the_person_who_signs_the_emails(
    settings: Settings, course: Course, rendered_emails: dict[str, RenderedEmail]
) -> None:
    # A bare MAIL_REPLY_TO is named after the signer, so the reader sees whom their reply reaches.
    bare = settings.model_copy(update={"mail_reply_to": "kayla@example.org"})
    message = parse(build(MessageBuilder(bare, course.slug, course.title, course.practice.signer),
                          rendered_emails["day-03"]).data)  # fmt: skip
    assert message["Reply-To"].addresses[0].display_name == "Kayla Crane, LMFT"
    assert message["Reply-To"].addresses[0].addr_spec == "kayla@example.org"
    assert f"Reply to this email to reach {course.practice.signer}" in rendered_emails["day-03"].text
    # Without MAIL_REPLY_TO a reply goes to MAIL_FROM, under its own name: never a person's name on a
    # mailbox that may be nobody's.
    unset = settings.model_copy(update={"mail_reply_to": None})
    message = parse(build(MessageBuilder(unset, course.slug, course.title, course.practice.signer),
                          rendered_emails["day-03"]).data)  # fmt: skip
    assert str(message["Reply-To"]) == str(message["From"])
