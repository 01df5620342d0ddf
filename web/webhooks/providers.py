"""What each provider's notification says, as :class:`~course.feedback.Feedback` items.

Each function takes the decoded JSON and returns the items (none for a notification about something
else: a delivery, an open); a payload that is not what the provider documents raises
:class:`Malformed` with what is missing. The JSON itself is read by :func:`loads`, within bounds, so
that no body (the SES webhook's is anyone's to send) gets anything but a :class:`Malformed`.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from course.feedback import Feedback, FeedbackKind


class Malformed(ValueError):
    """The payload is not what the provider documents."""


# --- Amazon SES (the Message of an SNS notification) ------------------------------------------------

# Complaint feedback types that are not complaints about us.
SES_NOT_A_COMPLAINT = frozenset({"not-spam"})


def ses(notification: dict[str, Any], sns_message_id: str) -> list[Feedback]:
    """An SES notification (``notificationType``) or event (``eventType``): Bounce and Complaint."""
    kind = notification.get("notificationType") or notification.get("eventType")
    if not isinstance(kind, str):
        raise Malformed("an SES notification has a notificationType or an eventType")
    mail = notification.get("mail")
    if not isinstance(mail, dict):
        mail = {}
    message_id = _ses_message_id(mail)
    if kind == "Bounce":
        bounce = _object(notification, "bounce")
        permanent = bounce.get("bounceType") == "Permanent"
        kind_of = FeedbackKind.HARD_BOUNCE if permanent else FeedbackKind.SOFT_BOUNCE
        items = []
        for recipient in _list(bounce, "bouncedRecipients"):
            address = _address(recipient, "emailAddress")
            status = recipient.get("status") or ""
            diagnostic = recipient.get("diagnosticCode") or ""
            detail = " ".join(str(part) for part in (f"SES {bounce.get('bounceType')}/{bounce.get('bounceSubType')}",
                                                     status, diagnostic) if part)  # fmt: skip
            items.append(Feedback(kind_of, "ses", address, detail, message_id,
                                  f"{sns_message_id}/{bounce.get('feedbackId', '')}"))  # fmt: skip
        return items
    if kind == "Complaint":
        complaint = _object(notification, "complaint")
        feedback_type = str(complaint.get("complaintFeedbackType") or "abuse")
        if feedback_type in SES_NOT_A_COMPLAINT:
            return []
        detail = f"SES complaint ({feedback_type}) from {complaint.get('userAgent') or 'a feedback loop'}"
        notice = f"{sns_message_id}/{complaint.get('feedbackId', '')}"
        return [
            Feedback(FeedbackKind.COMPLAINT, "ses", _address(recipient, "emailAddress"), detail, message_id, notice)
            for recipient in _list(complaint, "complainedRecipients")
        ]
    return []  # Delivery, Send, Open, Click...: not feedback


def _ses_message_id(mail: dict[str, Any]) -> str | None:
    """Our own Message-ID, from the original headers SES returns (when the identity includes them)."""
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value") or "") or None
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and isinstance(found := common.get("messageId"), str):
        return found
    return None


def sns_notification_message(envelope: dict[str, Any]) -> dict[str, Any]:
    """The SES notification an SNS notification carries: JSON in a string, read as a body is."""
    message = envelope.get("Message")
    if not isinstance(message, str):
        raise Malformed("the SNS notification's Message is not JSON")
    decoded = loads(message, "the SNS notification's Message")
    if not isinstance(decoded, dict):
        raise Malformed("the SNS notification's Message is not a JSON object")
    return decoded


# --- Postmark -------------------------------------------------------------------------------------

# Postmark's bounce types (TypeCode names): which stop mail to the address for good.
POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
POSTMARK_SOFT = frozenset(
    {"SoftBounce", "Transient", "DnsError", "Blocked", "SpamNotification", "ChallengeVerification"}
)
POSTMARK_COMPLAINT = frozenset({"SpamComplaint"})


def postmark(payload: dict[str, Any]) -> list[Feedback]:
    record = payload.get("RecordType")
    if record in ("Bounce", "SpamComplaint"):
        kind = str(payload.get("Type") or "")
        address = _address(payload, "Email")
        detail = " ".join(str(payload.get(key) or "") for key in ("Type", "Description", "Details")).strip()
        notice = f"{record}/{payload.get('ID', '')}"
        if record == "SpamComplaint" or kind in POSTMARK_COMPLAINT:
            return [Feedback(FeedbackKind.COMPLAINT, "postmark", address, detail, None, notice)]
        if kind in POSTMARK_HARD or (payload.get("Inactive") is True and kind not in POSTMARK_SOFT):
            # Inactive: Postmark itself will not send to the address again.
            return [Feedback(FeedbackKind.HARD_BOUNCE, "postmark", address, detail, None, notice)]
        if kind in POSTMARK_SOFT:
            return [Feedback(FeedbackKind.SOFT_BOUNCE, "postmark", address, detail, None, notice)]
        return []  # AutoResponder, AddressChange, Subscribe, OpenRelayTest, Unknown...
    if record == "SubscriptionChange":
        if payload.get("SuppressSending") is not True:
            return []  # reactivated at Postmark: our own suppression stands until the person signs up again
        reason = str(payload.get("SuppressionReason") or "")
        address = _address(payload, "Recipient")
        notice = f"SubscriptionChange/{payload.get('MessageID', '')}/{payload.get('ChangedAt', '')}"
        detail = f"Postmark suppressed sending: {reason or 'no reason given'} ({payload.get('Origin') or 'unknown'})"
        if reason == "HardBounce":
            return [Feedback(FeedbackKind.HARD_BOUNCE, "postmark", address, detail, None, notice)]
        if reason == "SpamComplaint":
            return [Feedback(FeedbackKind.COMPLAINT, "postmark", address, detail, None, notice)]
        return []  # ManualSuppression: Postmark's own unsubscribe link, which our emails do not use
    if isinstance(record, str):
        return []  # Delivery, Open, Click, Inbound...
    raise Malformed("a Postmark webhook has a RecordType")


# --- Our own JSON form, for any other provider or script -------------------------------------------


class GenericNotice(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    type: Literal["hard-bounce", "soft-bounce", "complaint"]
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")
    id: str | None = Field(None, max_length=200)  # the sender's id: the same id twice counts once
    message_id: str | None = Field(None, max_length=255)  # our Message-ID of the email it is about
    detail: str = Field("", max_length=2000)


def generic(payload: Any) -> list[Feedback]:
    """``{"type": "hard-bounce", "email": "...", "id": "...", "message_id": "<...>", "detail": "..."}``,
    or a list of them (at most 1,000)."""
    notices = payload if isinstance(payload, list) else [payload]
    if len(notices) > 1000:
        raise Malformed("at most 1,000 notices at once")
    parsed = []
    for index, notice in enumerate(notices):
        try:
            parsed.append(GenericNotice.model_validate(notice))
        except ValidationError as error:
            first = error.errors()[0]
            where = [index] if isinstance(payload, list) else []
            path = ".".join(str(part) for part in [*where, *first["loc"]]) or "the notice"
            raise Malformed(f"{path}: {first['msg']}") from None
    return [
        Feedback(FeedbackKind(notice.type), "webhook", notice.email, notice.detail, notice.message_id, notice.id)
        for notice in parsed
    ]


# --- Reading JSON safely --------------------------------------------------------------------------

# Arrays and objects inside one another, at most. The deepest a provider documents is 4 (an SES
# notification's mail.headers[n]; Postmark's Headers is 3, our form's list of notices 2), and an SNS
# message is 1 (its Message is a string, read apart with the same bound). 32 leaves room for what a
# provider adds, and keeps far below Python's recursion limit (1,000): json's decoder recurses once a
# level and fails with a RecursionError beyond it, and so would anything that walks the result (str(),
# pydantic, logging). Checked before decoding, by counting brackets outside strings (:func:`_depth`).
MAX_DEPTH = 32
# Characters in a number, at most. A 64-bit id has 20, the shortest repr of any float at most 24; past
# 4,300 digits int() raises (Python's limit against quadratic conversion), and 1e999999 is infinity.
MAX_NUMBER_CHARS = 100

# A string literal, up to its closing quote or, unclosed, to the end of the text. Possessive and always
# matching at a quote: one pass, no backtracking, whatever the text (re.sub moves on after each match).
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# An escape of half a surrogate pair (U+D800-U+DFFF): alone, it decodes to no character (UTF-8 has none
# for it: PostgreSQL, the logs and the JSON answer would fail on it).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(raw: bytes | str, what: str = "the body") -> Any:
    """JSON as RFC 8259 writes it, within bounds, or :class:`Malformed` saying which bound ``what`` is past:
    UTF-8 text; at most :data:`MAX_DEPTH` levels; numbers of at most :data:`MAX_NUMBER_CHARS` characters
    and finite (no NaN, no Infinity); every key once in its object; no lone surrogate. Never another
    exception, whatever ``raw`` is."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"{what} is not JSON") from None
    else:
        text = raw
        if not _encodable(text):
            raise Malformed(f"{what} has a lone surrogate, which is no character")
    if _depth(text) > MAX_DEPTH:
        raise Malformed(f"{what} nests arrays and objects more than {MAX_DEPTH} deep")
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant,
                           object_pairs_hook=_unique_keys)  # fmt: skip
    except Malformed as error:
        raise Malformed(f"{what} {error}") from None
    except ValueError:  # json.JSONDecodeError
        raise Malformed(f"{what} is not JSON") from None
    if _SURROGATE_ESCAPE.search(text) and not _encodable(json.dumps(value, ensure_ascii=False)):
        raise Malformed(f"{what} has a lone surrogate (an escape from \\ud800 to \\udfff not in a pair), which is "
                        "no character")  # fmt: skip
    return value


def _depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (exact for JSON; for text that is not, json.loads
    refuses it anyway): its brackets outside strings, counted by the regex engine and accumulate, in
    linear time and without recursion."""
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _int(digits: str) -> int:
    if len(digits) > MAX_NUMBER_CHARS:
        raise Malformed(f"has a number of more than {MAX_NUMBER_CHARS} characters")
    return int(digits)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise Malformed(f"has a number of more than {MAX_NUMBER_CHARS} characters")
    number = float(text)
    if not math.isfinite(number):
        raise Malformed("has a number beyond a float's range")
    return number


def _constant(name: str) -> NoReturn:
    raise Malformed(f"has {name}, which is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object, each of whose keys is there once: twice, which one counts depends on who reads it."""
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise Malformed(f"has the key {key[:40]!r} twice in one object")
            seen.add(key)
    return found


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    found = parent.get(name)
    if not isinstance(found, dict):
        raise Malformed(f"the notification has no {name} object")
    return found


def _list(parent: dict[str, Any], name: str) -> list[dict[str, Any]]:
    found = parent.get(name)
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise Malformed(f"the notification has no {name} list")
    return found


def _address(parent: dict[str, Any], name: str) -> str:
    found = parent.get(name)
    if not isinstance(found, str) or "@" not in found or len(found) > 320:
        raise Malformed(f"the notification has no {name} address")
    # SES may give "Name <address>"; the address is what is between the brackets.
    if "<" in found and found.rstrip().endswith(">"):
        found = found[found.rindex("<") + 1 : -1]
    return found.strip()
