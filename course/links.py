"""Signed links for the emails: one salt per purpose, so a token made for one cannot open another.

A token carries the subscriber, the course step, a value (a checklist band, a resource key...) and, in a
course email, which time through the course the email was sent in (its enrolment): a click, an exercise
done or an answer from an email of the first time through counts there, even after the reader started
again. Links made before enrolments were signed carry none (:func:`LinkClaim.enrolment` is None).
It is signed with HMAC (itsdangerous) and time-stamped; whether it has expired depends on its purpose.
Unsubscribe tokens never expire: an old email's unsubscribe link must always work.
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from itsdangerous import BadData, BadSignature, BadTimeSignature, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, bytes_to_int, int_to_bytes, want_bytes
from itsdangerous.signer import HMACAlgorithm, Signer


class Purpose(StrEnum):
    CONFIRM = "confirm"
    EXERCISE_DONE = "exercise-done"
    ANSWER = "answer"
    CONSULTATION = "consultation"
    RESOURCE = "resource"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    DATA = "data"  # download or erase one's data: emailed on request, for an hour, once


# The path each purpose's link opens under BASE_URL.
LINK_PATHS: dict[Purpose, str] = {
    Purpose.CONFIRM: "confirm",
    Purpose.EXERCISE_DONE: "exercise",
    Purpose.ANSWER: "answer",
    Purpose.CONSULTATION: "consultation",
    Purpose.RESOURCE: "resource",
    Purpose.UNSUBSCRIBE: "unsubscribe",
    Purpose.PREFERENCES: "preferences",
    Purpose.DATA: "my-data",
}

# None: never expires. A confirmation is for now or not at all; the preferences page shows the address
# and pauses or stops the course, so its link does not live for ever; the link to download or erase
# one's data is only ever in the email that answers a request for it, works for an hour and once (a
# forwarded email must not hand over the reader's data); every other link keeps working in an old email.
LINK_LIFETIMES: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.EXERCISE_DONE: None,
    Purpose.ANSWER: None,
    Purpose.CONSULTATION: None,
    Purpose.RESOURCE: None,
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: timedelta(days=180),
    Purpose.DATA: timedelta(hours=1),
}


class InvalidLink(ValueError):
    """The token was not made by us for this purpose (tampered, truncated or meant for another link)."""


class ExpiredLink(InvalidLink):
    """The token is genuine but older than its purpose allows; ``claim`` says what it was made for."""

    def __init__(self, message: str, claim: LinkClaim) -> None:
        super().__init__(message)
        self.claim = claim


@dataclass(frozen=True)
class LinkClaim:
    purpose: Purpose
    subscriber_id: int
    step: int | None
    value: str | None
    issued_at: float
    enrolment: int | None = None  # None: a link made before links named their time through the course


class LinkSigner:
    def __init__(self, secret_key: str, base_url: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret_key, salt=f"course-link.{purpose.value}") for purpose in Purpose
        }
        # Each email signs a dozen links: the serializer's own dumps makes a signer and tries zlib on
        # every call, and the signer derives its key again and builds an HMAC in Python for each. Here the
        # key is derived once per purpose and each signature is one call into OpenSSL (hmac.digest); a
        # payload this short never compresses, so the token is the one dumps makes
        # (tests/course/test_links.py holds the two equal), in a tenth of the time.
        self._signers = {
            purpose: _Signing(serializer.make_signer()) for purpose, serializer in self._serializers.items()
        }

    def token(
        self, purpose: Purpose, subscriber_id: int, step: int | None = None, value: str | None = None,
        enrolment: int | None = None,
    ) -> str:  # fmt: skip
        fields: list[object] = (
            [subscriber_id, step, value] if enrolment is None else [subscriber_id, step, value, enrolment]
        )
        payload = json.dumps(fields, separators=(",", ":")).encode()
        return self._signers[purpose].sign(base64_encode(payload)).decode("ascii")

    def url(
        self, purpose: Purpose, subscriber_id: int, step: int | None = None, value: str | None = None,
        enrolment: int | None = None,
    ) -> str:  # fmt: skip
        return f"{self._base_url}/{LINK_PATHS[purpose]}/{self.token(purpose, subscriber_id, step, value, enrolment)}"

    def verify(self, purpose: Purpose, token: str, *, now: float | None = None) -> LinkClaim:
        try:
            signed, signed_at = self._signers[purpose].unsign(token.encode())
            payload = self._serializers[purpose].load_payload(signed)
        except BadData:
            raise InvalidLink(f"not a valid {purpose.value} link") from None
        if not _is_payload(payload):
            # Only we can sign, so this means our own format changed: still never trust it.
            raise InvalidLink(f"not a valid {purpose.value} link")
        subscriber_id, step, value, *rest = payload
        claim = LinkClaim(purpose, subscriber_id, step, value, float(signed_at), rest[0] if rest else None)
        lifetime = LINK_LIFETIMES[purpose]
        if lifetime is not None and (time.time() if now is None else now) - claim.issued_at > lifetime.total_seconds():
            raise ExpiredLink(f"this {purpose.value} link has expired", claim)
        return claim


class _Signing:
    """itsdangerous's TimestampSigner.sign and unsign, to the byte, with the key derived once (each link a
    mail scanner opens is verified: itsdangerous took 25 µs of the click's Python for it)."""

    def __init__(self, signer: Signer) -> None:
        assert isinstance(signer, TimestampSigner) and isinstance(signer.algorithm, HMACAlgorithm)  # noqa: S101
        self._key = signer.derive_key()
        self._digest = signer.algorithm.digest_method().name
        self._sep = want_bytes(signer.sep)

    def sign(self, value: bytes) -> bytes:
        value = value + self._sep + base64_encode(int_to_bytes(int(time.time())))
        return value + self._sep + base64_encode(hmac.digest(self._key, value, self._digest))

    def unsign(self, signed: bytes) -> tuple[bytes, int]:
        """The value :meth:`sign` signed and its time (seconds since the epoch); BadSignature otherwise, as
        TimestampSigner.unsign(return_timestamp=True) says (tests/course/test_links.py holds the two equal)."""
        value, sep, signature = signed.rpartition(self._sep)
        if not sep:
            raise BadSignature("no separator")
        try:
            expected = base64_decode(signature)
        except BadData:
            raise BadSignature("not a signature") from None
        if not hmac.compare_digest(hmac.digest(self._key, value, self._digest), expected):
            raise BadSignature("the signature does not match")
        payload, sep, stamp = value.rpartition(self._sep)
        if not sep:
            raise BadTimeSignature("no time")
        try:
            return payload, bytes_to_int(base64_decode(stamp))
        except (BadData, ValueError):
            raise BadTimeSignature("not a time") from None


def _is_payload(payload: object) -> bool:
    """[subscriber, step, value] or [subscriber, step, value, enrolment]."""
    if not (isinstance(payload, list) and len(payload) in (3, 4)):
        return False
    subscriber_id, step, value, *rest = payload
    enrolment_ok = not rest or (type(rest[0]) is int and rest[0] >= 1)
    return (
        type(subscriber_id) is int
        and (step is None or type(step) is int)
        and (value is None or isinstance(value, str))
        and enrolment_ok
    )
