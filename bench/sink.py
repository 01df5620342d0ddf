"""A fast SMTP sink on loopback, for the benchmark: it accepts everything, keeps nothing but counts.

It runs in a process of its own (so its work is not counted as ours, and ours does not slow it), and
answers the harness over a pipe: how many messages it took, when, and whether any Message-ID came
twice. It speaks just enough SMTP for a client that does EHLO, MAIL, RCPT, DATA, RSET, NOOP and QUIT,
with pipelining; it is not a mail server and never listens beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import threading
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)
_END_OF_DATA = b"\r\n.\r\n"
_EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n"


class _Tally:
    """What the sink has taken since the last reset (read by the pipe's thread, written by the loop)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.duplicates = 0
        self.without_id = 0
        self.ids: set[bytes] = set()
        self.times = array("d")
        self.sizes = 0

    def take(self, data: bytes) -> None:
        header_end = data.find(b"\r\n\r\n")
        found = _MESSAGE_ID.search(data, 0, header_end if header_end >= 0 else len(data))
        if found is None:
            self.without_id += 1
        elif found.group(1) in self.ids:
            self.duplicates += 1
        else:
            self.ids.add(found.group(1))
        self.count += 1
        self.sizes += len(data)
        self.times.append(time.time())


class _Session(asyncio.Protocol):
    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.buffer = bytearray()
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - a TCP server's
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = bytearray()
        while True:
            if self.in_data:
                end = self.buffer.find(_END_OF_DATA)
                if end < 0:
                    break
                self.tally.take(bytes(self.buffer[:end]))
                del self.buffer[: end + len(_END_OF_DATA)]
                self.in_data = False
                replies += b"250 2.0.0 queued\r\n"
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies += _EHLO
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                replies += b"250 2.0.0 ok\r\n"
            elif verb == b"DATA":
                self.in_data = True
                replies += b"354 go ahead\r\n"
            elif verb == b"QUIT":
                self.transport.write(bytes(replies) + b"221 2.0.0 bye\r\n")
                self.transport.close()
                return
            else:
                replies += b"502 5.5.2 not here\r\n"
        if replies:
            self.transport.write(bytes(replies))


@dataclass(frozen=True)
class Taken:
    count: int
    duplicates: int
    without_id: int
    times: list[float]  # when each was accepted (epoch seconds), in order
    mean_bytes: float


def _serve(port_out: Connection, commands: Connection) -> None:  # pragma: no cover - the sink's own process
    tally = _Tally()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Session(tally), "127.0.0.1", 0, backlog=512)
        port_out.send(server.sockets[0].getsockname()[1])
        stop = asyncio.Event()

        def answer() -> None:  # the harness's questions, on a thread: the loop never waits for them
            while True:
                command = commands.recv()
                if command == "stop":
                    loop.call_soon_threadsafe(stop.set)
                    return
                if command == "reset":
                    loop.call_soon_threadsafe(tally.reset)
                    commands.send(True)
                elif command == "count":
                    commands.send(tally.count)
                elif command == "taken":
                    commands.send(Taken(tally.count, tally.duplicates, tally.without_id, tally.times.tolist(),
                                        tally.sizes / tally.count if tally.count else 0.0))  # fmt: skip

        threading.Thread(target=answer, daemon=True).start()
        async with server:
            await stop.wait()

    asyncio.run(main())


class Sink:
    """The sink's process, and the questions the harness asks it."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        port_in, port_out = context.Pipe(duplex=False)
        self._commands, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(port_out, theirs), name="smtp-sink", daemon=True)
        self.process.start()
        if not port_in.poll(30):
            raise RuntimeError("the SMTP sink did not start")
        self.port: int = port_in.recv()

    def reset(self) -> None:
        self._commands.send("reset")
        self._commands.recv()

    def count(self) -> int:
        self._commands.send("count")
        return int(self._commands.recv())

    def taken(self) -> Taken:
        self._commands.send("taken")
        found: Taken = self._commands.recv()
        return found

    def stop(self) -> None:
        if self.process.is_alive():
            self._commands.send("stop")
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
