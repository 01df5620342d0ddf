"""A real SMTP server on loopback (aiosmtpd) whose replies a test can script, message by message.

    server.plan("alex@example.com", "rcpt", "550 5.1.1 No such user")
    server.plan("alex@example.com", "data", "451 4.3.0 Try again later")
    server.plan("alex@example.com", "drop")  # close the connection in the middle of DATA

Each planned reply is used once, in order, for messages to that address; then messages are accepted.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from bench.net import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipient: str
    data: bytes
    peer: tuple[str, int] = ("", 0)  # the client's address and port: one per SMTP connection

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])


class ScriptedHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused: list[tuple[str, str]] = []
        self._plans: dict[str, deque[tuple[str, str | None]]] = defaultdict(deque)
        self._lock = threading.Lock()
        # Run with each accepted message before the server answers 250, off the server's loop: what a
        # scanner at the receiving end does (it opens the links while the sender waits for the reply).
        self.before_reply: Callable[[Received], None] | None = None
        # Whether EHLO offers PIPELINING (RFC 2920), as the mail servers a course sends through do;
        # aiosmtpd reads pipelined commands in order whether or not it says so.
        self.pipelining = True

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    def plan(self, recipient: str, stage: str, reply: str | None = None) -> None:
        with self._lock:
            self._plans[recipient.lower()].append((stage, reply))

    def _next(self, recipient: str, stage: str) -> tuple[str, str | None] | None:
        with self._lock:
            plan = self._plans.get(recipient.lower())
            if (plan and plan[0][0] == stage) or (plan and stage == "data" and plan[0][0] == "drop"):
                return plan.popleft()
        return None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        planned = self._next(address, "rcpt")
        if planned is not None:
            self.refused.append((address, planned[1] or ""))
            return planned[1] or "550 5.1.1 refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0]
        planned = self._next(recipient, "data")
        if planned is not None and planned[0] == "drop":
            self.refused.append((recipient, "dropped"))
            server.transport.close()  # the client sees the connection vanish before the reply
            return "421 closing"
        if planned is not None:
            self.refused.append((recipient, planned[1] or ""))
            return planned[1] or "451 4.3.0 try later"
        received = Received(envelope.mail_from, recipient, bytes(envelope.original_content), tuple(session.peer))
        with self._lock:
            self.received.append(received)
        if self.before_reply is not None:
            await asyncio.to_thread(self.before_reply, received)
        return "250 2.0.0 Queued"

    def to(self, recipient: str) -> list[Received]:
        with self._lock:
            return [message for message in self.received if message.recipient == recipient]


@contextmanager
def smtp_server(
    *,
    tls: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    credentials: tuple[str, str] | None = None,
    pipelining: bool = True,
) -> Iterator[tuple[ScriptedHandler, int]]:
    """The server; with ``tls`` it offers STARTTLS (and requires it), or speaks TLS from the start
    (``implicit_tls``); with ``credentials`` it requires AUTH with them; ``pipelining``: whether it
    offers PIPELINING."""
    handler = ScriptedHandler()
    handler.pipelining = pipelining
    options: dict[str, Any] = {}
    if tls is not None and not implicit_tls:
        options.update(tls_context=tls, require_starttls=True)
    if credentials is not None:

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            login = (data.login.decode(), data.password.decode())
            return AuthResult(success=login == credentials, handled=False)  # aiosmtpd answers 535

        options.update(auth_required=True, authenticator=authenticate, auth_require_tls=tls is not None)
    # aiosmtpd checks its own readiness by connecting to the port it was given, so port 0 will not do.
    for _ in range(5):
        port = free_port()
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=tls if implicit_tls else None,
            server_hostname="localhost",
            **options,
        )
        try:
            controller.start()
            break
        except OSError:  # taken between the probe and the bind: try another
            continue
    else:
        raise RuntimeError("no free port for the test SMTP server")
    try:
        yield handler, port
    finally:
        controller.stop()
