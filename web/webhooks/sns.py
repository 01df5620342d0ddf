"""Amazon SNS message signatures, checked against a certificate the operator pinned.

SNS signs each message with a key whose certificate it names in ``SigningCertURL``. Fetching that URL
would let whoever writes the message choose the key that vouches for it (and make us fetch any URL),
so the certificate is configured instead (``SES_SNS_CERTIFICATE_FILE``: the PEM file downloaded once
from the topic's SigningCertURL; it may hold several certificates while AWS rotates them). A message
passes when its signature verifies with one of them, a pinned certificate is in its validity period,
and the message comes from a configured topic, published (its ``Timestamp``) within
:data:`SNS_MAX_AGE` before our clock or :data:`SNS_MAX_AHEAD` after it.

The string that is signed is the message's fields, each as ``name\\nvalue\\n``, in the order AWS
documents: Message, MessageId, Subject (when present), Timestamp, TopicArn, Type for a notification;
Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type for the subscription messages.
SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from course.settings import Settings

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

# How far from our clock (the app's, the database's) a message's Timestamp may be. The Timestamp is when
# SNS published the message; it is signed, so every retry of a message carries the first one's. Behind:
# AWS caps the retries of an HTTP/S delivery at 3,600 seconds in all ("a hard limit and cannot be
# increased", Amazon SNS message delivery retries; the default policy is 3 retries 20 seconds apart), so
# a genuine message is with us within the hour; 15 minutes more for the attempts themselves and for
# clocks that disagree. Ahead: only clocks that disagree (ours is the database's, NTP keeps both close).
# Outside, the message is refused (400, which SNS does not retry: its retries are for server errors):
# it is a copy of a signed message kept and sent again. Within the window a copy changes nothing either,
# as its MessageId was recorded (course.feedback: a notice told twice counts once).
SNS_MAX_AGE = timedelta(hours=1, minutes=15)
SNS_MAX_AHEAD = timedelta(minutes=15)


class SnsRefused(Exception):
    """Not a message we take: unsigned, signed by another key, from another topic, or malformed."""


class SnsOutOfTime(Exception):
    """Signed by SNS for our topic, but not now: its Timestamp is unreadable or outside the window."""


def string_to_sign(message: dict[str, Any]) -> bytes:
    kind = message.get("Type")
    names: tuple[str, ...]
    if kind == "Notification":
        names = NOTIFICATION_FIELDS
    elif kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        names = SUBSCRIPTION_FIELDS
    else:
        raise SnsRefused(f"not an SNS message type: {str(kind)[:40]!r}")
    parts = []
    for name in names:
        value = message.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise SnsRefused(f"the SNS message has no {name}")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class SnsVerifier:
    certificates: tuple[x509.Certificate, ...]
    topics: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> SnsVerifier | None:
        """None when SES is not set up; a clear ValueError when the certificate file cannot be used."""
        if settings.ses_sns_certificate_file is None or settings.ses_sns_topic_arn is None:
            return None
        path = Path(settings.ses_sns_certificate_file)
        try:
            certificates = tuple(x509.load_pem_x509_certificates(path.read_bytes()))
        except OSError as error:
            raise ValueError(f"SES_SNS_CERTIFICATE_FILE cannot be read: {error.strerror}") from None
        except ValueError:
            raise ValueError("SES_SNS_CERTIFICATE_FILE holds no PEM certificate (download the topic's "
                             "SigningCertURL)") from None  # fmt: skip
        if not all(isinstance(certificate.public_key(), rsa.RSAPublicKey) for certificate in certificates):
            raise ValueError("SES_SNS_CERTIFICATE_FILE: SNS signs with RSA; this certificate is not RSA")
        topics = frozenset(part.strip() for part in settings.ses_sns_topic_arn.split(",") if part.strip())
        return cls(certificates, topics)

    def verify(self, message: dict[str, Any], now: datetime) -> None:
        signed = string_to_sign(message)
        algorithm = HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise SnsRefused(f"unknown SignatureVersion {str(message.get('SignatureVersion'))[:10]!r}")
        try:
            signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise SnsRefused("the signature is not base64") from None
        current = [c for c in self.certificates if c.not_valid_before_utc <= now <= c.not_valid_after_utc]
        if not current:
            raise SnsRefused("no pinned SNS certificate is valid now: download the topic's current SigningCertURL "
                             "into SES_SNS_CERTIFICATE_FILE")  # fmt: skip
        for certificate in current:
            key = certificate.public_key()
            assert isinstance(key, rsa.RSAPublicKey)  # noqa: S101 - checked when loaded
            try:
                key.verify(signature, signed, padding.PKCS1v15(), algorithm())
            except InvalidSignature:
                continue
            break
        else:
            raise SnsRefused("the signature does not verify with the pinned certificate")
        if message.get("TopicArn") not in self.topics:
            raise SnsRefused("the message comes from a topic that is not SES_SNS_TOPIC_ARN")
        # Last, once the message is known to be SNS's: to a forger every answer is the same 403 whatever
        # the Timestamp, so this endpoint tells nobody else our clock or the window, and an unsigned
        # Timestamp is nothing to go by. (Checking it first would save no work worth saving: a signature
        # is one RSA public-key operation.)
        check_timestamp(message, now)


def check_timestamp(message: dict[str, Any], now: datetime) -> None:
    """:class:`SnsOutOfTime` unless the message's Timestamp is an ISO 8601 time with its offset (SNS
    writes ``2026-11-27T15:00:00.000Z``), at most :data:`SNS_MAX_AGE` before ``now`` and
    :data:`SNS_MAX_AHEAD` after it."""
    stamp = message.get("Timestamp")
    if not isinstance(stamp, str):
        raise SnsOutOfTime("the SNS message has no Timestamp")
    try:
        published = datetime.fromisoformat(stamp)
        if published.tzinfo is None:
            raise ValueError(stamp)
        published = published.astimezone(UTC)
    except (ValueError, OverflowError):
        raise SnsOutOfTime(f"the SNS message's Timestamp {stamp[:40]!r} is not an ISO 8601 time with its offset") \
            from None  # fmt: skip
    if published < now - SNS_MAX_AGE:
        raise SnsOutOfTime(f"the SNS message was published at {stamp}, more than {_minutes(SNS_MAX_AGE)} minutes "
                           "ago: SNS retries for an hour at most")  # fmt: skip
    if published > now + SNS_MAX_AHEAD:
        raise SnsOutOfTime(f"the SNS message was published at {stamp}, more than {_minutes(SNS_MAX_AHEAD)} "
                           "minutes ahead of this server's clock")  # fmt: skip


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
