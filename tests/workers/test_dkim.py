"""The workers sign what they send: a course sent through a real SMTP server arrives with signatures
that verify against the published key, a publish in between included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from course.curriculum import Course
from emails.dkim import DkimSigner

from .conftest import Harness
from .test_engine import enrol
from .test_templates import next_day, publish_day_subject


def test_the_confirmation_the_welcome_and_the_days_arrive_signed(
    harness_factory: Callable[..., Harness], course: Course, tmp_path: Path
) -> None:
    key = tmp_path / "dkim.pem"
    key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    harness = harness_factory(dkim_selector="course2026", dkim_private_key_file=str(key))
    signer = DkimSigner.from_settings(harness.runtime.settings)
    assert signer is not None
    published = "".join(signer.dns_record().split('"')[1::2]).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return published if name == b"course2026._domainkey.mail.example.org." else None

    alex = enrol(harness, "alex@example.com")  # the confirmation and the welcome go out
    next_day(harness, alex)
    harness.tick_and_send()  # day 1
    publish_day_subject(harness, course, "Today: {{ day.title }}")  # a new release: a new builder, signed too
    next_day(harness, alex)
    harness.tick_and_send()  # day 2
    received = harness.smtp.to("alex@example.com")
    assert [message.subject for message in received][-1] == "Today: Turn Toward Bids for Connection"
    assert len(received) == 4
    for message in received:
        assert message.data.startswith(b"DKIM-Signature: "), message.subject
        assert dkim.verify(message.data, dnsfunc=dns), message.subject
