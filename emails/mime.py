"""MIME assembly: a rendered email and a recipient in, the bytes to hand to SMTP out.

``email.message.EmailMessage`` costs about 3 ms a message, which would cap a core near 300 emails a
second. The parts of a message that are the same for every subscriber (From, Reply-To, List-Id) are
built once per :class:`MessageBuilder`; per message we only encode the two bodies (quoted-printable
through ``binascii``, a fraction of a millisecond) and a handful of headers. Tests parse the result
with the standard library's parser to hold this fast path to the standard.

What the output guarantees: CRLF line ends, no line over 78 octets in the bodies (RFC 5322 allows
998; quoted-printable keeps 76), UTF-8 bodies, RFC 2047 encoded words for non-ASCII header text, and
no header injection: a CR, LF or NUL in any value we are given is refused, never passed through.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from course.settings import Settings
from emails.dkim import DkimSigner
from emails.prepared import Parts, PreparedEmail, Slot, fill
from emails.rendering import RenderedEmail

CRLF = b"\r\n"


class UnsafeHeaderValue(ValueError):
    """A value for a header holds a character that would end the header (CR, LF) or a NUL."""


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    recipient: str
    message_id: str
    data: bytes
    # No line of ``data`` starts with a dot, as its builder knows: SMTP's DATA needs no dot-stuffing, and
    # the sender need not look (a scan of 30 KB for one costs more than the rest of sending it here).
    dot_free: bool = False


def _check(value: str, what: str) -> str:
    if any(char in value for char in "\r\n\0"):
        raise UnsafeHeaderValue(f"{what} contains a line break or NUL: {value!r}")
    return value


def _header(name: str, value: str) -> bytes:
    """One header, RFC 2047-encoded when it is not ASCII, folded below 78 columns."""
    _check(value, name)
    if value.isascii() and (len(name) + len(value) + 2 <= 78 or " " not in value):
        # Short, or one token (a Message-ID) that folding could only push onto a line of its own.
        if len(name) + len(value) + 2 > 998:
            raise UnsafeHeaderValue(f"{name} is longer than a header line may be")
        return f"{name}: {value}".encode("ascii") + CRLF
    charset = "us-ascii" if value.isascii() else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}".encode("ascii") + CRLF


MAX_NAME_LENGTH = 200
# Prepared emails whose bodies a builder keeps encoded (see :meth:`MessageBuilder.build_prepared`).
ENCODED_KEPT = 512


@functools.lru_cache(maxsize=256)  # the sender's addresses are the same in every message
def _address(name: str | None, address: str, what: str) -> str:
    _check(address, what)
    _check(name or "", what)
    if name and len(name) > MAX_NAME_LENGTH:
        # An encoded word cannot be folded: a huge name could break the 998-octet line limit.
        raise UnsafeHeaderValue(f"{what}: the name is longer than {MAX_NAME_LENGTH} characters")
    if not address.isascii() or address.count("@") != 1 or parseaddr(address)[1] != address or "=?" in address:
        # Internationalised local parts need SMTPUTF8; addresses are stored in ASCII form. An encoded
        # word ("=?utf-8?q?...?=") in an address would be decoded by the reader's parser.
        raise UnsafeHeaderValue(f"{what} is not a plain ASCII address: {address!r}")
    if name and "=?" in name:
        # Text that looks like an encoded word is encoded by us, so a parser decodes it back to the
        # very same text and never to what the encoded word says (a CR LF and a Bcc, say).
        # Several encoded words, one space apart: the To header folds between them.
        encoded = Header(name, "utf-8").encode(linesep="\r\n").replace("\r\n ", " ")
        return f"{encoded} <{address}>"
    return formataddr((name or "", address), charset="utf-8")


def _quoted_printable(text: str) -> bytes:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return binascii.b2a_qp(normalised.encode("utf-8"), istext=True)


class EncodedBody:
    """A prepared body part, quoted-printable encoded ahead: every line without a reader's value is
    encoded once; only the few lines with one (a link, the greeting) are encoded per message.

    Quoted-printable works line by line, so the lines encoded apart and joined are the bytes
    :func:`_quoted_printable` makes of the whole text (tests hold the two equal)."""

    def __init__(self, parts: Parts) -> None:
        lines: list[list[str | Slot]] = [[]]
        for part in parts:
            if type(part) is str:
                normalised = part.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                lines[-1].append(normalised[0])
                lines += [[piece] for piece in normalised[1:]]
            else:
                lines[-1].append(part)
        # Runs of fixed lines become one block of bytes; a line with a value stays parts to fill.
        self._blocks: list[bytes | _Line] = []
        fixed: list[bytes] = []
        for index, line in enumerate(lines):
            last = index == len(lines) - 1
            texts = [part for part in line if isinstance(part, str)]
            if len(texts) == len(line):
                fixed.append(_line("".join(texts), last))
                continue
            if fixed:
                self._blocks.append(b"".join(fixed))
                fixed = []
            self._blocks.append(_Line(tuple(line), last))
        if fixed:
            self._blocks.append(b"".join(fixed))
        # Whether a fixed block has a line that starts with a dot: looked for once.
        self._dotted = any(_dotted(block) for block in self._blocks if isinstance(block, bytes))

    def encode(self, values: Mapping[str, str]) -> tuple[bytes, bool]:
        """The body for these values, and whether no line of it starts with a dot."""
        dot_free = not self._dotted
        encoded: list[bytes] = []
        for block in self._blocks:
            if not isinstance(block, bytes):
                block = _line(fill(block.parts, values), block.last)
                dot_free = dot_free and not _dotted(block)
            encoded.append(block)
        return b"".join(encoded), dot_free


def _dotted(encoded: bytes) -> bool:
    """Whether a line of ``encoded`` (whole lines of a body) starts with a dot."""
    return encoded.startswith(b".") or b"\n." in encoded


@dataclass(frozen=True)
class _Line:
    """A line of a prepared body that holds a reader's value: encoded per message."""

    parts: Parts
    last: bool  # the body's last line, without a line break after it


def _line(line: str, last: bool) -> bytes:
    if not last:
        return _quoted_printable(line + "\r\n")
    # The body's last line has no line break after it; alone, the encoder would break a long one with a
    # bare LF (it takes the line ending it sees in the text), where the whole text gives CRLF.
    return _quoted_printable(line).replace(b"=\n", b"=\r\n")


def message_id_for(secret_key: str, course_slug: str, subscriber_id: int, step: int | str, domain: str) -> str:
    """A Message-ID fixed for one (subscriber, step): a resend carries the same id and can be recognised.

    Keyed with the secret so that it does not reveal subscriber numbers.
    """
    digest = hmac.new(
        secret_key.encode(), f"{course_slug}:{subscriber_id}:{step}".encode(), hashlib.sha256
    ).hexdigest()[:24]
    return f"<{course_slug}.{step}.{digest}@{domain}>"


class MessageBuilder:
    def __init__(self, settings: Settings, course_slug: str, course_title: str, signer: str | None = None, *,
                 sender_name: str | None = None, reply_to: str | None = None) -> None:  # fmt: skip
        """``signer``: the person who signs the emails (the course's ``practice.signer``). A reply reaches
        the course's own ``reply_to``, else MAIL_REPLY_TO; when that is a bare address, the Reply-To header
        carries the signer's name. ``sender_name``: the course's, beside MAIL_FROM's address."""
        self.settings = settings
        self.course_slug = course_slug
        sender = settings.sender
        self.mail_from = sender.addr_spec
        self.domain = settings.sending_domain
        self._unsubscribe_mailbox = settings.unsubscribe_mailbox  # a property that parses MAIL_FROM: once
        reply_name, reply_address = parseaddr(reply_to or settings.reply_to)
        if reply_to:  # the course's own mailbox: signed by its signer
            reply_name = ""
        if (reply_to or settings.mail_reply_to) and not reply_name and signer:
            reply_name = signer
        # DkimError here, when the worker starts a batch, if the key cannot sign: nothing goes unsigned.
        self._dkim = DkimSigner.from_settings(settings)
        # Built once: these are the same for every subscriber of this course.
        self._fixed = b"".join(
            [
                _header("From", _address(sender_name or sender.display_name, sender.addr_spec, "MAIL_FROM")),
                _header("Reply-To", _address(reply_name, reply_address, "MAIL_REPLY_TO")),
                _header("List-Id", formataddr((course_title, f"{course_slug}.{self.domain}"))),
                # RFC 8058: a POST to the HTTPS URL with this body unsubscribes, with no page to visit.
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF,
                b"MIME-Version: 1.0" + CRLF,
            ]
        )
        self._encoded: dict[PreparedEmail, tuple[EncodedBody, EncodedBody]] = {}

    def message_id(self, subscriber_id: int, step: int | str) -> str:
        return message_id_for(self.settings.secret_key, self.course_slug, subscriber_id, step, self.domain)

    def build(
        self,
        rendered: RenderedEmail,
        *,
        to_address: str,
        to_name: str | None,
        message_id: str,
        date: datetime,
    ) -> Envelope:
        return self._assemble(
            rendered.subject, rendered.unsubscribe_url, _quoted_printable(rendered.text),
            _quoted_printable(rendered.html), to_address=to_address, to_name=to_name, message_id=message_id, date=date,
        )  # fmt: skip

    def build_prepared(
        self,
        prepared: PreparedEmail,
        values: Mapping[str, str],
        *,
        to_address: str,
        to_name: str | None,
        message_id: str,
        date: datetime,
    ) -> Envelope:
        """:meth:`build` for a prepared email and a reader's values (the same bytes), with its bodies
        encoded ahead once."""
        bodies = self._encoded.get(prepared)
        if bodies is None:
            while len(self._encoded) >= ENCODED_KEPT:
                self._encoded.pop(next(iter(self._encoded)))
            bodies = self._encoded[prepared] = (EncodedBody(prepared.text), EncodedBody(prepared.html))
        (text, text_dot_free), (html, html_dot_free) = bodies[0].encode(values), bodies[1].encode(values)
        return self._assemble(
            fill(prepared.subject, values), fill(prepared.unsubscribe, values), text, html, to_address=to_address,
            to_name=to_name, message_id=message_id, date=date, dot_free=text_dot_free and html_dot_free,
        )  # fmt: skip

    def _assemble(
        self,
        subject: str,
        unsubscribe_url: str,
        text: bytes,
        html: bytes,
        *,
        to_address: str,
        to_name: str | None,
        message_id: str,
        date: datetime,
        dot_free: bool = False,
    ) -> Envelope:
        """The message around its two encoded bodies. ``dot_free``: no line of either starts with a dot;
        nor does one of the rest (a header's folded line starts with a space, a boundary with "--")."""
        _check(message_id, "Message-ID")
        # The mailto form carries the same signed token, so a reply-based unsubscribe names its subscriber.
        token = unsubscribe_url.rsplit("/", 1)[-1]
        unsubscribe_mailto = f"mailto:{self._unsubscribe_mailbox}?subject=unsubscribe%20{token}"
        # The boundary cannot occur in quoted-printable text: "=_" is never produced by the encoder.
        boundary = "=_" + hashlib.sha1(message_id.encode(), usedforsecurity=False).hexdigest()
        head = b"".join(
            [
                self._fixed,
                _header("To", _address(to_name, to_address, "the recipient")),
                _header("Subject", subject),
                _header("Date", format_datetime(date)),
                _header("Message-ID", message_id),
                b"List-Unsubscribe: <"
                + _check(unsubscribe_url, "List-Unsubscribe").encode("ascii")
                + b">,"
                + CRLF
                + b" <"
                + unsubscribe_mailto.encode("ascii")
                + b">"
                + CRLF,
                _header("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
            ]
        )
        part_head = (
            b"Content-Type: text/%s; charset=utf-8"
            + CRLF
            + b"Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        )
        delimiter = b"--" + boundary.encode("ascii")
        data = b"".join(
            [
                head,
                CRLF,
                b"This is a multipart message in MIME format." + CRLF,
                delimiter + CRLF,
                part_head % b"plain",
                text,
                CRLF,
                delimiter + CRLF,
                part_head % b"html",
                html,
                CRLF,
                delimiter + b"--" + CRLF,
            ]
        )
        if self._dkim is not None:
            data = self._dkim.header(data, int(date.timestamp())) + data
        return Envelope(mail_from=self.mail_from, recipient=to_address, message_id=message_id, data=data,
                        dot_free=dot_free)  # fmt: skip
