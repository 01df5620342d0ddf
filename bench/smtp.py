"""The SMTP the bench's two servers speak: the benchmark's sink (bench/sink.py) and the chaos suite's fault
server (bench/faults.py). Neither is a mail server: each speaks just enough SMTP for our workers, in a process
of its own, on 127.0.0.1 only, started and questioned over pipes by a harness. What they share is here:

- ``Session``: one connection's conversation. It reads commands a line at a time and a message up to the line
  with a lone dot, answers the commands as plain SMTP but those its subclass takes over, and hands the
  message to the subclass; replies collect in ``replies`` and go out in one write when the buffer holds
  nothing more to answer (pipelined commands get one segment). A message is handed over as it came, its
  dots still stuffed: the servers only read its headers and count its bytes.
- ``ehlo`` and the replies both servers give;
- ``headers_end`` and ``MESSAGE_ID``: a message's header block and its Message-ID;
- ``serve``: the server's process (its loop, its port sent back, the harness's commands answered) and
  ``ServerProcess``, the harness's side (the process started, its port, questions asked, stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import re
import threading
from collections.abc import Callable, Collection
from multiprocessing.connection import Connection
from typing import Any, ClassVar

END_OF_DATA = b"\r\n.\r\n"
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)

OK = b"250 2.0.0 ok\r\n"
SENDER_OK = b"250 2.1.0 ok\r\n"
RECIPIENT_OK = b"250 2.1.5 ok\r\n"
GO_AHEAD = b"354 go ahead\r\n"
QUEUED = b"250 2.0.0 queued\r\n"
BYE = b"221 2.0.0 bye\r\n"
NOT_HERE = b"502 5.5.2 not here\r\n"
# What both servers offer, after their own extensions (SIZE: 50 MB, far above any course email).
COMMON_EXTENSIONS = (b"8BITMIME", b"SMTPUTF8", b"SIZE 52428800")


def ehlo(name: bytes, *extensions: bytes) -> bytes:
    """The reply to EHLO: the server's name, ``extensions``, then COMMON_EXTENSIONS."""
    lines = (name, *extensions, *COMMON_EXTENSIONS)
    return b"".join(b"250-" + line + b"\r\n" for line in lines[:-1]) + b"250 " + lines[-1] + b"\r\n"


def headers_end(message: bytes) -> int:
    """Where a message's header block ends: at its first empty line, or the message's end without one."""
    end = message.find(b"\r\n\r\n")
    return end if end >= 0 else len(message)


class Session(asyncio.Protocol):
    """One SMTP connection, answered as the protocol goes: a 220 greeting; EHLO with ``extensions()``; 250 to
    HELO, MAIL, RCPT, RSET and NOOP; 354 to DATA, then the message up to its lone dot, for ``message`` to
    take (and answer); 221 to QUIT, and the connection closed; 502 to anything else.

    A subclass names in ``OWN`` the commands it answers itself, in ``command`` (say, a RCPT it may refuse).
    ``command`` and ``message`` add their replies to ``replies`` and return True to stop reading the buffer
    for now (the connection closed, say); what is left stays in ``buffer`` for a later ``process``.
    """

    NAME: ClassVar[bytes] = b"bench"
    EXTENSIONS: ClassVar[tuple[bytes, ...]] = ()  # the server's own, offered before COMMON_EXTENSIONS
    OWN: ClassVar[Collection[bytes]] = frozenset()  # verbs (a command's first four letters, upper case)
    transport: asyncio.Transport

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.replies = bytearray()
        self.in_data = False
        self.closed = False
        self.own = self.OWN  # the read loop's look-up: an instance's own attribute is the quicker one

    # --- the connection ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - a TCP server's
        self.transport = transport
        self.opened()

    def opened(self) -> None:
        """The connection is up."""
        self.greet()

    def greet(self) -> None:
        self.replies += b"220 " + self.NAME + b" ESMTP\r\n"
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def flush(self) -> None:
        """Write the replies so far (dropped once the connection is closed)."""
        if self.replies:
            if not self.closed:
                self.write(bytes(self.replies))
            self.replies.clear()

    def write(self, replies: bytes) -> None:
        """Send replies to the client (a subclass may hold them back a while: the sink's latency)."""
        self.transport.write(replies)

    def close(self) -> None:
        """Write the replies so far, then close."""
        if not self.closed:
            self.flush()
            self.closed = True
            self.transport.close()

    # --- SMTP ---

    def extensions(self) -> tuple[bytes, ...]:
        return self.EXTENSIONS

    def data_received(self, data: bytes) -> None:
        """Answer what the buffer holds, a command or a message at a time, then write the replies at once.
        (The sink's hot loop: the commands a client sends for each message are answered right here.)"""
        buffer, replies, own = self.buffer, self.replies, self.own
        buffer += data
        while True:
            if self.in_data:
                end = buffer.find(END_OF_DATA)
                if end < 0:
                    break
                message = bytes(buffer[:end])
                del buffer[: end + len(END_OF_DATA)]
                self.in_data = False
                if self.message(message):
                    break
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            verb = line[:4].upper()
            if verb in own:
                if self.command(verb, line):
                    break
            elif verb == b"MAIL":
                replies += SENDER_OK
            elif verb == b"RCPT":
                replies += RECIPIENT_OK
            elif verb == b"DATA":
                self.in_data = True
                replies += GO_AHEAD
            elif verb == b"EHLO":
                replies += ehlo(self.NAME, *self.extensions())
            elif verb in (b"HELO", b"RSET", b"NOOP"):
                replies += OK
            elif verb == b"QUIT":
                replies += BYE
                self.close()
                return
            else:
                replies += NOT_HERE
        if replies:  # (whatever closes the connection writes the replies first)
            self.write(bytes(replies))
            replies.clear()

    def process(self) -> None:
        """Answer what the buffer holds already (once a pause is over)."""
        self.data_received(b"")

    def command(self, verb: bytes, line: bytes) -> bool:
        """Answer a command of ``OWN`` (``line``: the whole of it); True: stop reading the buffer for now."""
        raise NotImplementedError

    def message(self, message: bytes) -> bool:
        """Take a message (everything between DATA's 354 and the lone dot, its dots still stuffed) and add
        the reply; True: stop reading the buffer for now."""
        raise NotImplementedError


# --- The server's process and the harness's side of it ----------------------------------------------------


def serve(  # pragma: no cover - the server's own process
    sessions: Callable[[], Session],
    port_out: Connection,
    commands: Connection,
    answer: Callable[[str, Any], Any],
    *,
    on_thread: Collection[str] = (),
) -> None:
    """Listen on a free port of 127.0.0.1 and send it over ``port_out``; then answer each ``(command,
    argument)`` the harness sends over ``commands`` with ``answer``, until it sends "stop" or goes away.
    ``answer`` runs on the loop (the servers' state is the loop's alone), but for the commands ``on_thread``:
    those it answers on the pipe's own thread, and the loop never waits for them (a count read while the
    server is busy, say)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(sessions, "127.0.0.1", 0, backlog=512)
        port_out.send(server.sockets[0].getsockname()[1])
        stop = asyncio.Event()

        async def on_loop(command: str, argument: Any) -> Any:
            return answer(command, argument)

        def listen() -> None:  # the harness's questions, on a thread: the loop never waits for the pipe
            while True:
                try:
                    command, argument = commands.recv()
                except EOFError:  # the harness is gone
                    loop.call_soon_threadsafe(stop.set)
                    return
                if command == "stop":
                    loop.call_soon_threadsafe(stop.set)
                    commands.send(True)
                    return
                if command in on_thread:
                    commands.send(answer(command, argument))
                else:
                    commands.send(asyncio.run_coroutine_threadsafe(on_loop(command, argument), loop).result())

        threading.Thread(target=listen, daemon=True).start()
        async with server:
            await stop.wait()

    asyncio.run(main())


class ServerProcess:
    """The harness's side of a server: its process, its port, and the questions asked over its pipe."""

    def __init__(self, target: Callable[..., None], *arguments: Any, name: str, what: str) -> None:
        """Start ``target(port_out, commands, *arguments)`` (which calls ``serve``) in a process of its own,
        named ``name``, and wait for its port; ``what`` it is, for the error when it does not start."""
        context = multiprocessing.get_context("spawn")
        port_in, port_out = context.Pipe(duplex=False)
        self._commands, theirs = context.Pipe()
        self._lock = threading.Lock()
        self.process = context.Process(target=target, args=(port_out, theirs, *arguments), name=name, daemon=True)
        self.process.start()
        if not port_in.poll(30):
            raise RuntimeError(f"the {what} did not start")
        self.port: int = port_in.recv()

    def ask(self, command: str, argument: Any = None) -> Any:
        with self._lock:
            self._commands.send((command, argument))
            return self._commands.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(EOFError, OSError):
                self.ask("stop")
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
