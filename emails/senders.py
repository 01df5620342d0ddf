"""Senders: one small interface, three implementations, chosen by SMTP_URL.

    smtp://user:pass@host:port          plain SMTP (AUTH if a user is given)
    smtp+starttls://user:pass@host:587  STARTTLS before AUTH
    smtps://user:pass@host:465          TLS from the first byte
    outbox:var/outbox, outbox:///abs    one .eml file per message in a folder (the demo)
    memory://                           kept in the process (tests)

A batch opens one connection (``with sender.connect() as connection``) and reuses it for every
message; a dropped connection is reopened for the next message. Each message gets a
:class:`SendResult` that says what the worker should do with the delivery: one at a time from
``send``, or a chunk's in turn from ``send_each``, which over SMTP sends the next message's commands
behind the previous message (one round trip a message).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from emails.mime import Envelope

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"  # 4xx, a timeout, a dropped connection: try again later
    BAD_ADDRESS = "bad-address"  # 5.1.x: the mailbox does not exist; suppress it
    FAILED = "failed"  # another permanent refusal of this one message
    SENDER_BLOCKED = "sender-blocked"  # 5.7.x or AUTH: a problem on our side; pause, never blame the reader


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    code: int | None = None
    reply: str = ""

    def describe(self) -> str:
        return f"{self.code} {self.reply}".strip() if self.code else self.reply


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def classify(code: int, reply: str) -> SendResult:
    """Turn an SMTP reply into what to do about it (RFC 5321 reply codes, RFC 3463 enhanced codes)."""
    if 200 <= code < 300:
        return SendResult(Outcome.ACCEPTED, code, reply)
    if 400 <= code < 500:
        return SendResult(Outcome.RETRY, code, reply)
    enhanced = _ENHANCED.search(reply)
    if enhanced and enhanced.group(1) == "5":
        subject = enhanced.group(2)
        if subject == "1":
            return SendResult(Outcome.BAD_ADDRESS, code, reply)
        if subject == "7":
            return SendResult(Outcome.SENDER_BLOCKED, code, reply)
        return SendResult(Outcome.FAILED, code, reply)
    if code in (530, 534, 535, 538):  # authentication required or refused: our configuration
        return SendResult(Outcome.SENDER_BLOCKED, code, reply)
    if code in (550, 551, 553):  # mailbox unavailable, not local, name not allowed
        return SendResult(Outcome.BAD_ADDRESS, code, reply)
    return SendResult(Outcome.FAILED, code, reply)


class Connection(Protocol):
    def send(self, envelope: Envelope) -> SendResult: ...

    def send_each(self, envelopes: Iterable[Envelope]) -> Generator[SendResult]:
        """Each envelope's result in order, as it is known; none after a SENDER_BLOCKED."""
        ...


class OneAtATime:
    """``send_each`` for a connection that sends one message at a time (the outbox, memory, a test's)."""

    def send(self, envelope: Envelope) -> SendResult:
        raise NotImplementedError

    def send_each(self, envelopes: Iterable[Envelope]) -> Generator[SendResult]:
        for envelope in envelopes:
            result = self.send(envelope)
            yield result
            if result.outcome is Outcome.SENDER_BLOCKED:
                return


class Sender(Protocol):
    def connect(self) -> AbstractContextManager[Connection]: ...


# --- SMTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # "none", "starttls" or "tls"
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def from_url(cls, url: str, timeout: float) -> SmtpConfig:
        parts = urlsplit(url)
        security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}[parts.scheme]
        default_port = {"none": 25, "starttls": 587, "tls": 465}[security]
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or default_port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )


def _no_delay(client: smtplib.SMTP) -> None:
    """Turn Nagle's algorithm off: smtplib writes each command and each message whole, so holding small
    writes back saves nothing; but over TLS a message longer than a TLS record (16 KB: most of ours) goes
    as two writes, and Nagle held the second until the server's delayed ACK, 40 ms on Linux: 21 messages
    a second on a connection that does 314 without it (docs/reliability.md)."""
    if client.sock is not None:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _stuffed(data: bytes, dot_free: bool = False) -> bytes:
    """The message as DATA carries it: a line that starts with "." gets a second (RFC 5321 4.5.2), and it
    ends with CRLF "." CRLF. What smtplib does with a regular expression over every message, 0.16 ms a
    message of 30 KB here; bytes.replace finds the same line starts (after each LF, and the start) in C,
    and a message its builder knows to be ``dot_free`` (:class:`Envelope`) is not looked through at all."""
    stuffed = data if dot_free else data.replace(b"\n.", b"\n..")
    if stuffed.startswith(b".") and not dot_free:
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


class _Data:
    """smtplib's DATA with our dot-stuffing (:func:`_stuffed`), and the pipelined exchange's steps."""

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        if not isinstance(msg, bytes):
            return super().data(msg)  # type: ignore[misc, no-any-return]
        client: smtplib.SMTP = self  # type: ignore[assignment]
        client.putcmd("data")
        code, reply = client.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        client.send(_stuffed(msg))
        return client.getreply()

    def opened(self) -> SendResult | None:
        """Read the replies to a message's MAIL, RCPT and DATA (written by :func:`_commands`): None when the
        server waits for the message, else the refusal, which is the message's outcome. A DATA the server
        accepted after all gets an empty message, which it refuses for want of a recipient; the caller
        resets the transaction."""
        client: smtplib.SMTP = self  # type: ignore[assignment]
        replies = [client.getreply(), client.getreply(), client.getreply()]
        (mail_code, _), (rcpt_code, _), (data_code, _) = replies
        if mail_code == 250 and rcpt_code in (250, 251) and data_code == 354:
            return None
        if data_code == 354:
            client.send(b".\r\n")
            client.getreply()
        code, reply = next(
            (code, reply) for (code, reply), ok in zip(replies, ((250,), (250, 251), (354,)), strict=True)
            if code not in ok
        )  # fmt: skip
        return classify(*_decoded((code, reply)))


class _Client(_Data, smtplib.SMTP):
    pass


class _SSLClient(_Data, smtplib.SMTP_SSL):
    pass


class SmtpConnection:
    def __init__(self, config: SmtpConfig, tls_context: ssl.SSLContext | None) -> None:
        self._config = config
        self._tls_context = tls_context
        self._client: _Client | _SSLClient | None = None
        self._pipelining: bool | None = None  # whether this connection's server offered it (EHLO)
        # Whether a transaction is under way on the connection (commands written, its end not answered):
        # then it can only be given up by closing the connection (a QUIT would be read as the message).
        self._midway = False

    def _open(self) -> _Client | _SSLClient:
        config = self._config
        client: _Client | _SSLClient
        if config.security == "tls":
            client = _SSLClient(config.host, config.port, timeout=config.timeout, context=self._tls_context)
            _no_delay(client)
        else:
            client = _Client(config.host, config.port, timeout=config.timeout)
            _no_delay(client)
            if config.security == "starttls":
                client.starttls(context=self._tls_context)
                client.ehlo()
        if config.username:
            client.login(config.username, config.password or "")
        return client

    def _ready(self) -> _Client | _SSLClient:
        """The connection, opened (and greeted) if it is not."""
        if self._client is None:
            self._client = self._open()
        if self._pipelining is None:
            self._client.ehlo_or_helo_if_needed()
            self._pipelining = self._client.has_extn("pipelining")
        return self._client

    def send(self, envelope: Envelope) -> SendResult:
        results = self.send_each((envelope,))
        try:
            return next(results)
        finally:
            results.close()

    def send_each(self, envelopes: Iterable[Envelope]) -> Generator[SendResult]:
        """Send the envelopes in turn on this connection, yielding each one's result, in their order, as soon
        as it is known.

        With a server that offers PIPELINING (RFC 2920) a message costs one round trip: its MAIL, RCPT and
        DATA go out in the same write as the previous message's end (the content may begin a group, 3.1),
        and the server answers the one and the other together; the first message of an exchange, and one
        after a refusal of its MAIL or RCPT, costs two. Without PIPELINING, smtplib's four.

        A 5.7.x (SENDER_BLOCKED) ends the exchange: nothing after it is sent, and the caller keeps the rest.
        A next message whose commands went out and that is not sent (that, a caller that stops reading, an
        error) is given up by closing the connection, never by an empty message: its DATA may have been
        accepted already.
        """
        queue = iter(envelopes)
        current = next(queue, None)
        begun = False  # whether current's commands went out, behind the previous message
        try:
            while current is not None:
                following: Envelope | None = None
                pulled = ahead = False  # following taken from the queue; its commands written
                addresses = _addresses(current)
                if isinstance(addresses, SendResult):
                    result = addresses
                else:
                    try:
                        client = self._ready()
                        if not self._pipelining:
                            result = self._sendmail(client, current)
                        else:
                            self._midway = True
                            if not begun:
                                client.send(_commands(*addresses))
                            refusal = client.opened()
                            if refusal is not None:
                                result = refusal
                                self._reset()
                            else:
                                following, pulled = next(queue, None), True
                                after = _addresses(following) if following is not None else None
                                ahead = isinstance(after, tuple)
                                then = _commands(*after) if isinstance(after, tuple) else b""
                                client.send(_stuffed(current.data, current.dot_free) + then)
                                self._midway = ahead  # this message's end is answered below; the next's is not
                                result = classify(*_decoded(client.getreply()))
                    except Exception as error:  # each is the message's outcome, or raised again (_failed)
                        result = self._failed(error)
                begun = ahead and self._client is not None
                yield result
                if result.outcome is Outcome.SENDER_BLOCKED:
                    return
                current = following if pulled else next(queue, None)
        finally:
            if self._midway:
                self._abandon()

    def _sendmail(self, client: smtplib.SMTP, envelope: Envelope) -> SendResult:
        """One message the way smtplib sends it, a command at a time (a server without PIPELINING)."""
        refused = client.sendmail(envelope.mail_from, [envelope.recipient], envelope.data)
        if refused:
            code, reply = next(iter(refused.values()))
            return classify(code, _text(reply))
        return SendResult(Outcome.ACCEPTED, 250, "accepted")

    def _failed(self, error: Exception) -> SendResult:
        """What an error in the exchange means for its message (the connection closed if it is no use)."""
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(error.recipients.values()))
            return classify(code, _text(reply))
        if isinstance(error, smtplib.SMTPResponseException):  # sender refused, data refused, auth refused
            if error.smtp_code == -1 or not 200 <= error.smtp_code < 600:
                self._abandon()
                return SendResult(Outcome.RETRY, None, _text(error.smtp_error) or "connection lost")
            self._reset()
            return classify(error.smtp_code, _text(error.smtp_error))
        if isinstance(error, smtplib.SMTPNotSupportedError):  # STARTTLS or AUTH not offered: our configuration
            self.close()
            return SendResult(Outcome.SENDER_BLOCKED, None, f"{error}")
        if isinstance(error, ssl.SSLCertVerificationError):
            # Our configuration or the relay's certificate: retrying will not help, people must.
            self.close()
            return SendResult(Outcome.SENDER_BLOCKED, None, f"TLS certificate refused: {error}")
        if isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError, TimeoutError)):
            # The connection dropped (perhaps during DATA): we cannot know whether it was accepted.
            self._abandon()
            return SendResult(Outcome.RETRY, None, f"connection lost: {error or type(error).__name__}")
        raise error

    def _reset(self) -> None:
        # After a refusal the server expects RSET before the next MAIL FROM.
        try:
            if self._client is not None:
                self._client.rset()
                self._midway = False
        except (smtplib.SMTPException, OSError):
            self._abandon()

    def _abandon(self) -> None:
        """Close the connection without a word: a transaction under way on it is given up by the server."""
        client, self._client, self._pipelining, self._midway = self._client, None, None, False
        if client is not None:
            client.close()

    def close(self) -> None:
        if self._midway:
            self._abandon()
        client, self._client, self._pipelining = self._client, None, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


class SmtpSender:
    def __init__(self, config: SmtpConfig, tls_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.tls_context = tls_context or ssl.create_default_context()

    @contextmanager
    def connect(self) -> Iterator[SmtpConnection]:
        connection = SmtpConnection(self.config, self.tls_context)
        try:
            yield connection
        finally:
            connection.close()


# --- Outbox and memory ----------------------------------------------------------------------------


class OutboxSender(OneAtATime):
    """Writes each message to ``folder/<time>-<recipient>-<id>.eml``: the demo's inbox reads them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def connect(self) -> Iterator[OutboxSender]:
        self.folder.mkdir(parents=True, exist_ok=True)
        yield self

    def send(self, envelope: Envelope) -> SendResult:
        # Only safe characters reach the file name ("a/b@example.com" is a valid address).
        name = re.sub(r"[^A-Za-z0-9@.+-]", "_", f"{envelope.recipient}-{envelope.message_id.strip('<>')}")
        path = self.folder / f"{name.lstrip('.')}.eml"
        temporary = path.with_suffix(".part")
        temporary.write_bytes(envelope.data)
        temporary.replace(path)  # readers never see half a message
        return SendResult(Outcome.ACCEPTED, 250, f"written to {path.name}")


class MemorySender(OneAtATime):
    def __init__(self) -> None:
        self.sent: list[Envelope] = []
        self._lock = threading.Lock()

    @contextmanager
    def connect(self) -> Iterator[MemorySender]:
        yield self

    def send(self, envelope: Envelope) -> SendResult:
        with self._lock:
            self.sent.append(envelope)
        return SendResult(Outcome.ACCEPTED, 250, "kept in memory")


def sender_from_url(url: str, timeout: float = 30.0) -> SmtpSender | OutboxSender | MemorySender:
    scheme = urlsplit(url).scheme
    if scheme in ("smtp", "smtp+starttls", "smtps"):
        return SmtpSender(SmtpConfig.from_url(url, timeout))
    if scheme == "outbox":
        return OutboxSender(Path(unquote(urlsplit(url).path) or "."))
    if scheme == "memory":
        return MemorySender()
    raise ValueError(f"SMTP_URL: unknown scheme {scheme!r}")


def _ascii(address: str) -> bytes | None:
    """An address as a command carries it; None for one that needs SMTPUTF8 or holds a line break."""
    plain = address.isascii() and not any(char in address for char in "\r\n<>")
    return address.encode("ascii") if plain else None


def _addresses(envelope: Envelope) -> tuple[bytes, bytes] | SendResult:
    """The envelope's sender and recipient as commands carry them, or why it cannot be sent. Sign-up keeps
    addresses to ASCII (course/subscriptions.py: no SMTPUTF8); one that is not, or that would end a command
    line, is refused here rather than sent as something a server would misread."""
    mail_from, recipient = _ascii(envelope.mail_from), _ascii(envelope.recipient)
    if mail_from is None:
        reason = f"MAIL_FROM is not a plain ASCII address: {envelope.mail_from!r}"
        return SendResult(Outcome.SENDER_BLOCKED, None, reason)
    if recipient is None:
        return SendResult(Outcome.FAILED, None, f"not a plain ASCII address: {envelope.recipient!r}")
    return mail_from, recipient


def _commands(mail_from: bytes, recipient: bytes) -> bytes:
    """A message's MAIL, RCPT and DATA, written at once to a server that offers PIPELINING."""
    return b"MAIL FROM:<" + mail_from + b">\r\nRCPT TO:<" + recipient + b">\r\nDATA\r\n"


def _decoded(reply: tuple[int, bytes]) -> tuple[int, str]:
    code, text = reply
    if code == -1 or not 200 <= code < 600:
        raise smtplib.SMTPServerDisconnected(_text(text) or "connection lost")
    return code, _text(text)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
