"""Reading the mail that comes back: delivery reports (RFC 3464), feedback-loop complaints (ARF, RFC
5965), and unsubscribes sent to the List-Unsubscribe ``mailto:`` address.

:func:`read_report` turns one message into :class:`~course.feedback.Feedback` items and says what it
was. It never raises on bad input: a message it cannot read is a :class:`Report` with no items and a
reason, for the log.

- A DSN's per-recipient fields say who failed and why. ``Action: failed`` with a 5.1.x status (no such
  mailbox, no such domain), 5.2.1 (disabled) or another permanent status about the recipient is a hard
  bounce; a full mailbox (X.2.2), a message too big (X.3.4), routing trouble (X.4.x), a policy refusal
  (X.7.x, which is about us, not the reader) and 4.x.x are soft. ``delayed``, ``delivered``,
  ``relayed`` and ``expanded`` are not bounces.
- Bounces that are not DSNs (qmail, old Exim, Exchange, ...) are read by flufl.bounce, GNU Mailman's
  bounce detectors.
- An ARF report of ``abuse``, ``fraud``, ``virus`` or ``other`` is a complaint. Providers often redact
  the reader's address, so the report is tied to its subscriber by the original email it returns: our
  Message-ID, or the signed token of its List-Unsubscribe.
- Anyone can write to a bounce mailbox, so its reports are not authenticated: one suppresses an
  address only when it returns an email we sent to that address (see :mod:`course.feedback`).
- Mail whose subject carries ``unsubscribe <token>`` (what the ``mailto:`` link writes) is an
  unsubscribe; the token is checked by :func:`course.feedback.record`.
"""

from __future__ import annotations

import base64
import email
import email.policy
import logging
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from flufl.bounce import all_failures

from course.feedback import Feedback, FeedbackKind

log = logging.getLogger(__name__)
# flufl.bounce logs each detector it runs, and a detector's exception with its traceback; we say what
# became of each message ourselves.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

SOURCE = "mailbox"
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
# Permanent statuses that say nothing about the reader's address: counted as soft bounces.
SOFT_PERMANENT = re.compile(r"^5\.(2\.2|3\.4|4\.\d{1,3}|7\.\d{1,3})$")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_TOKEN = re.compile(r"/unsubscribe/([A-Za-z0-9_.\-]{10,})")
_QUOTED_ID = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_SUBJECT_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_.\-]{10,})", re.IGNORECASE)


@dataclass(frozen=True)
class Report:
    kind: str  # delivery-status, feedback-report, unsubscribe, bounce, none
    items: tuple[Feedback, ...]
    reason: str = ""  # why nothing was taken from it

    @property
    def understood(self) -> bool:
        return bool(self.items)


def read_report(raw: bytes) -> Report:
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        return _read(message)
    except Exception as error:  # hostile mail: whatever it breaks, the mailbox goes on
        log.warning("a message in the bounce mailbox could not be read: %r", error)
        return Report("none", (), f"unreadable: {error.__class__.__name__}")


def _read(message: Message) -> Report:
    notice_id = _header(message, "Message-ID")
    if message.get_content_type() == "multipart/report":
        report_type = (message.get_param("report-type") or "").lower()  # type: ignore[union-attr]
        if report_type == "feedback-report":
            return _feedback_report(message, notice_id)
        if report_type == "delivery-status":
            report = _delivery_status(message, notice_id)
            if report.items or report.reason:
                return report
    subject = _header(message, "Subject")
    if found := _SUBJECT_TOKEN.search(subject):
        return Report("unsubscribe", (Feedback(FeedbackKind.UNSUBSCRIBE, SOURCE, None, "unsubscribe by mail",
                                               notice_id=notice_id or None, unsubscribe_token=found.group(1),
                                               authenticated=False),))  # fmt: skip
    return _heuristic_bounce(message, notice_id)


def _feedback_report(message: Message, notice_id: str) -> Report:
    fields = _part_fields(message, "message/feedback-report")
    if fields is None:
        return Report("feedback-report", (), "no message/feedback-report part")
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    if feedback_type not in COMPLAINT_TYPES:
        return Report("feedback-report", (), f"feedback type {feedback_type or 'missing'!r} is not a complaint")
    original = _original(message)
    # Only Original-Rcpt-To names the reader: feedback loops often redact the original's To.
    recipients = [address for _, address in getaddresses(fields.get_all("Original-Rcpt-To") or []) if "@" in address]
    message_id = _header(original, "Message-ID") if original is not None else ""
    token = _list_unsubscribe_token(original)
    if not recipients and not message_id and not token:
        return Report("feedback-report", (), "the complaint names no recipient and returns no original email")
    detail = f"{feedback_type} report from {(fields.get('User-Agent') or 'a feedback loop').strip()}"
    items = tuple(
        Feedback(FeedbackKind.COMPLAINT, SOURCE, address, detail, message_id or None, notice_id or None, token, False)
        for address in (recipients or [None])  # type: ignore[list-item]
    )
    return Report("feedback-report", items)


def _delivery_status(message: Message, notice_id: str) -> Report:
    blocks = _delivery_blocks(message)
    if blocks is None:
        return Report("delivery-status", ())  # malformed: let the heuristic detectors try
    original = _original(message)
    message_id = (_header(original, "Message-ID") if original is not None else "") or None
    items, skipped = [], []
    for fields in blocks[1:]:  # the first block is about the message, the others about one recipient each
        recipient = _address_field(fields.get("Final-Recipient") or fields.get("Original-Recipient") or "")
        action = (fields.get("Action") or "").strip().lower()
        status = _status(fields.get("Status") or "")
        diagnostic = " ".join((fields.get("Diagnostic-Code") or "").split())
        if not recipient:
            continue
        if action != "failed":
            skipped.append(f"{action or 'no action'} ({status or 'no status'})")
            continue
        kind = FeedbackKind.HARD_BOUNCE if status.startswith("5.") and not SOFT_PERMANENT.match(status) else (
            FeedbackKind.SOFT_BOUNCE)  # fmt: skip
        detail = f"{status or 'no status'} {diagnostic}".strip()
        items.append(Feedback(kind, SOURCE, recipient, detail, message_id, notice_id or None, authenticated=False))
    if items:
        return Report("delivery-status", tuple(items))
    return Report("delivery-status", (), "no failed recipient: " + (", ".join(skipped) or "none named"))


def _heuristic_bounce(message: Message, notice_id: str) -> Report:
    try:
        temporary, permanent = all_failures(message)
    except Exception as error:  # a detector that trips on odd mail
        return Report("none", (), f"the bounce detectors could not read it ({error.__class__.__name__})")
    if not temporary and not permanent:
        return Report("none", (), "not a delivery report, a complaint or an unsubscribe")
    original = _original(message)
    message_id = (_header(original, "Message-ID") if original is not None else "") or _quoted_message_id(message)
    detail = " ".join(_header(message, "Subject").split()) or "a bounce"
    items = [
        Feedback(
            kind, SOURCE, address.decode("utf-8", "replace"), detail, message_id, notice_id or None, authenticated=False
        )
        for kind, addresses in ((FeedbackKind.HARD_BOUNCE, permanent), (FeedbackKind.SOFT_BOUNCE, temporary))
        for address in sorted(addresses)
    ]
    return Report("bounce", tuple(items))


# --- The parts of a report ------------------------------------------------------------------------


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _part_fields(message: Message, content_type: str) -> Message | None:
    """The fields of a report part (message/feedback-report), read as a header block."""
    part = _part(message, content_type)
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return email.message_from_string(payload.lstrip("\r\n"), policy=email.policy.compat32)
    return None


def _delivery_blocks(message: Message) -> list[Message] | None:
    part = _part(message, "message/delivery-status")
    if part is None:
        return None
    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding not in ("base64", "quoted-printable"):
        if isinstance(payload, list) and len(payload) > 1:
            blocks = [block for block in payload if isinstance(block, Message)]
            return blocks if len(blocks) == len(payload) else None
        return None
    # Encoded (some gateways do): the parser split the encoded text into blocks; join and decode it.
    text = payload if isinstance(payload, str) else "".join(
        block.as_string() for block in payload if isinstance(block, Message))  # fmt: skip
    raw = text.encode("ascii", "replace")
    decoded = base64.b64decode(raw) if encoding == "base64" else quopri.decodestring(raw)
    blocks = [
        email.message_from_string(block, policy=email.policy.compat32)
        for block in re.split(r"\r?\n\s*\r?\n", decoded.decode("utf-8", "replace").strip())
        if block.strip()
    ]
    return blocks if len(blocks) > 1 else None


def _original(message: Message) -> Message | None:
    """The returned email (message/rfc822), or its header (text/rfc822-headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            decoded = part.get_payload(decode=True)
            if isinstance(decoded, bytes):
                return email.message_from_bytes(decoded.lstrip(b"\r\n"), policy=email.policy.compat32)
    return None


def _quoted_message_id(message: Message) -> str | None:
    """The Message-ID of the copy a bounce quotes in its text (qmail: "a copy of the message" below a line)."""
    own = _header(message, "Message-ID")
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        decoded = part.get_payload(decode=True)
        if not isinstance(decoded, bytes):
            continue
        for found in _QUOTED_ID.finditer(decoded.decode("utf-8", "replace")):
            if found.group(1) != own:
                return found.group(1)
    return None


def _list_unsubscribe_token(original: Message | None) -> str | None:
    if original is None:
        return None
    found = _TOKEN.search(" ".join(_header(original, "List-Unsubscribe").split()))
    return found.group(1) if found else None


def _header(message: Message | None, name: str) -> str:
    if message is None:
        return ""
    value = message.get(name)
    return str(value).strip() if value is not None else ""


def _address_field(value: str) -> str:
    """``rfc822; alex@example.com`` -> the address; other address types are not ours."""
    kind, _, address = str(value).partition(";")
    if not address:
        kind, address = "rfc822", kind
    if kind.strip().lower() != "rfc822":
        return ""
    address = address.strip().strip("<>").strip()
    return address if "@" in address and not any(c.isspace() for c in address) else ""


def _status(value: str) -> str:
    found = _STATUS.search(str(value))
    return found.group(1) if found else ""
