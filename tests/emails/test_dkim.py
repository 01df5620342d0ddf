"""DKIM signing: every email verifies with dkimpy against the published key, and any change breaks it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim.canonicalization import CanonicalizationPolicy
from hypothesis import given
from hypothesis import strategies as st

from course.curriculum import Course
from course.settings import Settings, SettingsError
from emails.dkim import DkimError, DkimSigner, relaxed_body
from emails.mime import MessageBuilder
from emails.rendering import Recipient, Renderer

from ..conftest import make_settings

DATE = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
READERS = [
    Recipient(7, "alex@example.com", "Alex"),
    Recipient(8, "zoe@example.com", "Zoë Ångström 李", answers={"warning-signs": "significant"}),
    Recipient(9, "sam@example.com"),
]


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    path.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    return path


@pytest.fixture(scope="module")
def signing(settings: Settings, key_file: Path) -> Settings:
    return settings.model_copy(update={"dkim_selector": "course2026", "dkim_private_key_file": str(key_file)})


def dns_for(signer: DkimSigner) -> Callable[..., bytes | None]:
    """A resolver that answers the selector's TXT record as `course dkim-record` says to publish it."""
    record = signer.dns_record()
    text = "".join(part for part in record.split('"')[1::2]).encode()

    def answer(name: bytes, timeout: int = 5) -> bytes | None:
        return text if name == f"{signer.selector}._domainkey.{signer.domain}.".encode() else None

    return answer


def verifies(message: bytes, signer: DkimSigner) -> bool:
    return bool(dkim.verify(message, dnsfunc=dns_for(signer)))


def test_every_email_of_the_course_is_signed_and_verifies(signing: Settings, course: Course) -> None:
    renderer = Renderer(course, signing)
    builder = MessageBuilder(signing, course.slug, course.title, course.practice.signer)
    signer = DkimSigner.from_settings(signing)
    assert signer is not None and signer.domain == "mail.example.org"
    for name in renderer.email_names():
        for reader in READERS:
            message_id = builder.message_id(reader.subscriber_id, name)
            message = builder.build(renderer.render(name, reader), to_address=reader.email,
                                    to_name=reader.first_name, message_id=message_id, date=DATE).data  # fmt: skip
            assert message.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=mail.example.org;")
            assert max(len(line) for line in message.split(b"\r\n")[:12]) <= 78
            assert verifies(message, signer), (name, reader.first_name)
    assert b"h=from : from : reply-to : to : subject : subject" in message.replace(b"\r\n ", b" ")


@pytest.fixture(scope="module")
def signed(signing: Settings, course: Course) -> tuple[bytes, DkimSigner]:
    renderer = Renderer(course, signing)
    builder = MessageBuilder(signing, course.slug, course.title, course.practice.signer)
    message = builder.build(renderer.render("day-03", READERS[0]), to_address="alex@example.com", to_name="Alex",
                            message_id=builder.message_id(7, 3), date=DATE).data  # fmt: skip
    signer = DkimSigner.from_settings(signing)
    assert signer is not None
    return message, signer


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("a word of the body", lambda m: m.replace(b"ritual", b"habit", 1)),
        ("the subject", lambda m: m.replace(b"Subject: Day 3", b"Subject: Day 4", 1)),
        ("a second From on top", lambda m: m.replace(b"\r\nFrom:", b"\r\nFrom: Mallory <m@evil.example>\r\nFrom:", 1)),
        ("a second List-Unsubscribe", lambda m: m.replace(
            b"\r\nList-Unsubscribe:", b"\r\nList-Unsubscribe: <https://evil.example/u>\r\nList-Unsubscribe:", 1)),
        ("the recipient", lambda m: m.replace(b"alex@example.com", b"eve@example.com", 1)),
    ],
)  # fmt: skip
def test_any_change_after_signing_breaks_the_signature(
    signed: tuple[bytes, DkimSigner], what: str, change: Callable[[bytes], bytes]
) -> None:
    message, signer = signed
    assert verifies(message, signer)
    changed = change(message)
    assert changed != message, what
    assert not verifies(changed, signer), what


def test_a_relay_that_refolds_headers_or_trims_line_ends_does_not_break_it(signed: tuple[bytes, DkimSigner]) -> None:
    # relaxed/relaxed: what relays commonly do to whitespace is forgiven.
    message, signer = signed
    head, body = message.split(b"\r\n\r\n", 1)
    refolded = head.replace(b"\r\nSubject: ", b"\r\nSubject:   ") + b"\r\n\r\n" + body.replace(b"\r\n", b"  \r\n")
    assert verifies(refolded, signer)


LINES = st.lists(st.text(alphabet="ab \t=", max_size=8), max_size=6)
# Bodies with CRLF line ends (as ours always are), with and without a last CRLF.
CRLF_BODIES = LINES.map(lambda lines: "\r\n".join(lines).encode()) | LINES.map(
    lambda lines: ("\r\n".join(lines) + "\r\n").encode()
)


@given(CRLF_BODIES)
def test_the_relaxed_body_is_dkimpys(body: bytes) -> None:
    assert relaxed_body(body) == CanonicalizationPolicy.from_c_value(b"relaxed/relaxed").canonicalize_body(body)


def test_without_dkim_settings_nothing_is_signed(settings: Settings, course: Course) -> None:
    assert DkimSigner.from_settings(settings) is None
    renderer = Renderer(course, settings)
    builder = MessageBuilder(settings, course.slug, course.title)
    message = builder.build(renderer.render("day-01", READERS[0]), to_address="alex@example.com", to_name=None,
                            message_id=builder.message_id(7, 1), date=DATE).data  # fmt: skip
    assert b"DKIM-Signature" not in message


def test_settings_that_cannot_sign_are_refused_with_the_variable_named(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(SettingsError, match="DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE go together"):
        make_settings(dkim_selector="course")
    # Empty, as docker compose passes an unset variable: no DKIM, not an error.
    assert DkimSigner.from_settings(make_settings(dkim_selector="", dkim_private_key_file=" ")) is None
    cases = {
        "missing.pem": (None, "DKIM_PRIVATE_KEY_FILE cannot be read"),
        "garbage.pem": (b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
                        "not an unencrypted PEM private key"),
        "ec.pem": (pem(ec.generate_private_key(ec.SECP256R1())), "must hold an RSA key"),
    }  # fmt: skip
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        broken = settings.model_copy(update={"dkim_selector": "course", "dkim_private_key_file": str(path)})
        with pytest.raises(DkimError, match=message):
            DkimSigner.from_settings(broken)
        with pytest.raises(DkimError, match=message):  # the builder (a worker's batch) refuses to send unsigned
            MessageBuilder(broken, "c", "C")
    with pytest.raises(DkimError, match="DKIM_SELECTOR is not a DNS label"):
        DkimSigner("bad selector", "example.org", (tmp_path / "ec.pem").read_bytes())
