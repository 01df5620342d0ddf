"""A scriptable SMTP server on loopback for the chaos suite (bench/chaos.py): it misbehaves on cue.

It runs in a process of its own, like the benchmark's sink (bench/sink.py), and speaks enough SMTP for
our workers (EHLO, STARTTLS, MAIL, RCPT, DATA, RSET, NOOP, QUIT): bench/smtp.py's, which the sink speaks
too. The harness scripts it over a pipe:

- **rules**: a reply at a stage, for every message or for some recipients, once per recipient or for
  as long as the rule is in force: ``421`` on connect, ``451`` on RCPT, ``552`` or ``550 5.7.26`` at the
  end of DATA, the connection dropped after DATA (no reply), a stall mid-DATA (it stops reading and
  never answers), a STARTTLS whose handshake fails (a fatal TLS alert instead of a ServerHello);
- **hooks**: a one-shot point at which the server *freezes* (every session stops answering) and tells
  the harness, which can then SIGKILL the worker at that exact point: on the RCPT of the first message
  of a chunk (before DATA), right after the 250 of a message in the middle of a chunk (accepted, not yet
  recorded as sent), right after the 250 of a chunk's last message (the harness waits for the "sent"
  commit before it kills). Chunks are counted per connection: a worker sends one batch on one
  connection, SEND_CHUNK_SIZE messages a chunk.

It records every message it accepted (time, recipient, Message-ID, Date header) and every refusal (time,
recipient, Message-ID when known, stage, reply). It never listens beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench import smtp
from bench.smtp import MESSAGE_ID, headers_end

_DATE = re.compile(rb"^Date:[ \t]*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)
_ADDRESS = re.compile(rb"<([^>]*)>")
# A TLS record carrying a fatal handshake_failure alert: what a server that cannot agree on TLS sends.
_TLS_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"

STAGES = ("connect", "rcpt", "data", "drop", "stall", "tls")
HOOKS = ("before-data", "after-250", "after-commit")


@dataclass(frozen=True)
class Rule:
    """A reply at ``stage`` (see STAGES) for ``recipients`` (None: everyone); ``once``: only the first
    attempt for each recipient; ``count``: at most this many times in all."""

    stage: str
    reply: str = ""
    recipients: frozenset[str] | None = None
    once: bool = False
    count: int | None = None


@dataclass(frozen=True)
class Hook:
    """Freeze and tell the harness at ``point`` (see HOOKS) in a chunk of ``chunk`` messages."""

    point: str
    chunk: int


@dataclass(frozen=True)
class Accepted:
    at: float
    recipient: str
    message_id: str
    date: str


@dataclass(frozen=True)
class Refused:
    at: float
    recipient: str
    message_id: str | None
    stage: str
    reply: str


@dataclass(frozen=True)
class Event:
    """A hook that fired: the server is frozen until the harness releases it."""

    point: str
    at: float
    recipient: str
    message_id: str | None


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    used: dict[int, set[str]] = field(default_factory=dict)  # per rule index: recipients it was used for
    spent: dict[int, int] = field(default_factory=dict)  # per rule index: times used
    hook: Hook | None = None
    frozen: bool = False
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    sessions: set[_Session] = field(default_factory=set)
    notify: Callable[[Event], None] = lambda event: None
    tls: ssl.SSLContext | None = None

    def rule(self, stage: str, recipient: str = "") -> Rule | None:
        for index, rule in enumerate(self.rules):
            if rule.stage != stage:
                continue
            if rule.recipients is not None and recipient not in rule.recipients:
                continue
            if rule.once and recipient in self.used.setdefault(index, set()):
                continue
            if rule.count is not None and self.spent.get(index, 0) >= rule.count:
                continue
            self.used.setdefault(index, set()).add(recipient)
            self.spent[index] = self.spent.get(index, 0) + 1
            return rule
        return None

    def fire(self, point: str, position: int, recipient: str, message_id: str | None) -> bool:
        """Whether the armed hook fires here (``position``: the message's place in its connection)."""
        hook = self.hook
        if hook is None or hook.point != point:
            return False
        place = position % hook.chunk
        wanted = {"before-data": 0, "after-250": hook.chunk // 2, "after-commit": hook.chunk - 1}[point]
        if place != wanted or (point == "before-data" and position < hook.chunk):
            return False  # before DATA: the first message of a chunk after a committed one
        self.hook = None
        self.frozen = True
        self.notify(Event(point, time.time(), recipient, message_id))
        return True

    def thaw(self) -> None:
        self.frozen = False
        for session in list(self.sessions):
            session.resume()


class _Session(smtp.Session):
    """bench/smtp.py's SMTP, with the rules and hooks at connect, STARTTLS, MAIL, RCPT, DATA and the message's end.
    Its replies go out as bench/smtp.py's do, once the buffer is answered, but before a hook tells the harness
    (which may kill the client at once) and before the connection is dropped."""

    NAME = b"faults"
    OWN = frozenset({b"STAR", b"MAIL", b"RCPT", b"DATA"})

    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state
        self.stalled = False
        self.greeted = False
        # Between STARTTLS and the TLS transport's being ours: a quick client's EHLO, decrypted before
        # start_tls returns, waits in the buffer (answered in plain text, it would break the client's TLS).
        self.upgrading = False
        self.recipient = ""
        self.position = -1  # the current message's place in this connection

    # --- the connection ---

    def opened(self) -> None:
        self.state.sessions.add(self)
        if not self.state.frozen:
            self.greet()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.state.sessions.discard(self)

    def greet(self) -> None:
        self.greeted = True
        refusal = self.state.rule("connect")
        if refusal is not None:
            self.state.refused.append(Refused(time.time(), "", None, "connect", refusal.reply))
            self.replies += refusal.reply.encode() + b"\r\n"
            self.close()
            return
        super().greet()

    def resume(self) -> None:
        if self.closed:
            return
        if not self.greeted:
            self.greet()
        self.process()

    def held(self) -> bool:
        """Whether the session answers nothing for now: the server frozen, the connection closed, stalled,
        or becoming TLS."""
        return self.state.frozen or self.closed or self.stalled or self.upgrading

    def data_received(self, data: bytes) -> None:
        if self.stalled:
            return
        if self.held():
            self.buffer += data
            return
        super().data_received(data)

    # --- SMTP ---

    def extensions(self) -> tuple[bytes, ...]:
        offered = self.state.tls is not None and self.transport.get_extra_info("sslcontext") is None
        return (b"STARTTLS",) if offered else ()

    def command(self, verb: bytes, line: bytes) -> bool:
        state = self.state
        if verb == b"STAR":
            self.starttls()
        elif verb == b"MAIL":
            self.position += 1
            self.recipient = ""
            self.replies += smtp.SENDER_OK
        elif verb == b"RCPT":
            found = _ADDRESS.search(line)
            self.recipient = (found.group(1) if found else b"").decode(errors="replace").lower()
            rule = state.rule("rcpt", self.recipient)
            if rule is not None:
                state.refused.append(Refused(time.time(), self.recipient, None, "rcpt", rule.reply))
                self.replies += rule.reply.encode() + b"\r\n"
            elif self.fire("before-data", None):
                self.buffer[:0] = line + b"\r\n"  # answered, if ever, once thawed: the worker is killed first
            else:
                self.replies += smtp.RECIPIENT_OK
        elif verb == b"DATA":
            self.replies += smtp.GO_AHEAD
            if state.rule("stall", self.recipient) is not None:
                state.refused.append(Refused(time.time(), self.recipient, None, "stall", "stalled mid-DATA"))
                self.stall()
            else:
                self.in_data = True
        return self.held()

    def fire(self, point: str, message_id: str | None) -> bool:
        """Whether the armed hook fires here; the replies so far are written first."""
        self.flush()
        return self.state.fire(point, self.position, self.recipient, message_id)

    def stall(self) -> None:
        """Stop reading mid-DATA and never answer: the client's timeout must end it."""
        self.stalled = True
        self.buffer.clear()
        self.transport.pause_reading()

    def starttls(self) -> None:
        state = self.state
        if state.tls is None:
            self.replies += b"454 4.7.0 TLS not available\r\n"
            return
        self.replies += b"220 2.0.0 ready to start TLS\r\n"
        self.flush()  # in plain text, on its own
        if state.rule("tls") is not None:
            state.refused.append(Refused(time.time(), "", None, "tls", "TLS handshake failure"))
            self.replies += _TLS_HANDSHAKE_FAILURE
            self.close()
            return
        self.transport.pause_reading()  # nothing more is read as plain text
        self.upgrading = True
        asyncio.get_running_loop().create_task(self._upgrade(self.transport, state.tls))

    async def _upgrade(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        self.buffer.clear()
        try:
            upgraded = await loop.start_tls(transport, self, context, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError):
            self.close()
            return
        if upgraded is None:
            self.close()
            return
        self.transport = upgraded  # a transport over TLS
        self.upgrading = False
        self.process()  # what arrived over TLS meanwhile

    def message(self, message: bytes) -> bool:
        state = self.state
        end = headers_end(message)
        found = MESSAGE_ID.search(message, 0, end)
        message_id = found.group(1).decode() if found else ""
        dated = _DATE.search(message, 0, end)
        now = time.time()
        dropped = state.rule("drop", self.recipient)
        if dropped is not None:  # the message arrived whole; the connection goes before any reply
            state.refused.append(Refused(now, self.recipient, message_id, "drop", "dropped after DATA"))
            self.flush()
            self.transport.abort()
            self.closed = True
            return True
        rule = state.rule("data", self.recipient)
        if rule is not None:
            state.refused.append(Refused(now, self.recipient, message_id, "data", rule.reply))
            self.replies += rule.reply.encode() + b"\r\n"
            return False
        state.accepted.append(Accepted(now, self.recipient, message_id, dated.group(1).decode() if dated else ""))
        self.replies += smtp.QUEUED
        return any(self.fire(point, message_id) for point in ("after-250", "after-commit"))


def _serve(port_out: Connection, commands: Connection, events: Connection, tls: tuple[str, str] | None) -> None:
    # pragma: no cover - the server's own process
    state = _State(notify=events.send)
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        state.tls = context

    def answer(command: str, argument: Any) -> Any:  # on the loop: the state is the loop's alone
        if command == "rules":
            state.rules, state.used, state.spent = list(argument), {}, {}
        elif command == "hook":
            state.hook = argument
        elif command == "thaw":
            state.thaw()
        elif command == "taken":
            return list(state.accepted), list(state.refused)
        elif command == "count":
            return len(state.accepted)
        elif command == "reset":
            state.accepted, state.refused = [], []
        return True

    smtp.serve(lambda: _Session(state), port_out, commands, answer)


class FaultServer(smtp.ServerProcess):
    """The server's process, and the harness's side of its pipes."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        """``tls``: a certificate and key file: STARTTLS is offered (and a client may be refused it)."""
        self._events, their_events = multiprocessing.get_context("spawn").Pipe(duplex=False)
        super().__init__(_serve, their_events, tls, name="smtp-faults", what="fault SMTP server")

    def rules(self, *rules: Rule) -> None:
        """Replace the rules in force (none: every message is accepted)."""
        self.ask("rules", rules)

    def arm(self, hook: Hook) -> None:
        self.ask("hook", hook)

    def wait_event(self, timeout: float) -> Event | None:
        """The next hook that fired, or None after ``timeout`` seconds."""
        if not self._events.poll(timeout):
            return None
        found: Event = self._events.recv()
        return found

    def thaw(self) -> None:
        self.ask("thaw")

    def count(self) -> int:
        return int(self.ask("count"))

    def taken(self) -> tuple[list[Accepted], list[Refused]]:
        accepted, refused = self.ask("taken")
        return accepted, refused
