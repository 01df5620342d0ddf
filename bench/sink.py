"""A fast SMTP sink on loopback, for the benchmark: it accepts everything, keeps nothing but counts.

It runs in a process of its own (so its work is not counted as ours, and ours does not slow it), and
answers the harness over a pipe: how many messages it took, when, and whether any Message-ID came
twice. It speaks just enough SMTP for a client that does EHLO, MAIL, RCPT, DATA, RSET, NOOP and QUIT,
with pipelining (bench/smtp.py, the protocol it shares with the chaos suite's fault server); it is not a
mail server and never listens beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench import smtp
from bench.smtp import MESSAGE_ID, QUEUED, headers_end


class _Tally:
    """What the sink has taken since the last reset (read by the pipe's thread, written by the loop, in
    _Session.message)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.duplicates = 0
        self.without_id = 0
        self.ids: set[bytes] = set()
        self.times = array("d")
        self.sizes = 0


class _Session(smtp.Session):
    """Plain SMTP (every command answered by bench/smtp.py's read loop itself); each message counted."""

    NAME = b"sink"
    EXTENSIONS = (b"PIPELINING",)

    def __init__(self, tally: _Tally, latency: float) -> None:
        super().__init__()
        self.tally = tally
        self.latency = latency

    def write(self, replies: bytes) -> None:
        """The replies, ``latency`` seconds later when one is set: what a client sees of a mail server that
        is that far away (a round trip to another building, or region), each of its waits for a reply."""
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, self._write_late, replies)
        else:
            self.transport.write(replies)

    def _write_late(self, replies: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(replies)

    def close(self) -> None:
        if not self.latency or self.closed:
            super().close()
            return
        self.flush()
        self.closed = True
        asyncio.get_running_loop().call_later(self.latency, self.transport.close)  # after the last replies

    def message(self, message: bytes) -> bool:
        """Count it (the Message-ID read from the header block only), and queue it."""
        tally = self.tally
        found = MESSAGE_ID.search(message, 0, headers_end(message))
        if found is None:
            tally.without_id += 1
        elif found.group(1) in tally.ids:
            tally.duplicates += 1
        else:
            tally.ids.add(found.group(1))
        tally.count += 1
        tally.sizes += len(message)
        tally.times.append(time.time())
        self.replies += QUEUED
        return False


@dataclass(frozen=True)
class Taken:
    count: int
    duplicates: int
    without_id: int
    times: list[float]  # when each was accepted (epoch seconds), in order
    mean_bytes: float


def _serve(port_out: Connection, commands: Connection, latency: float) -> None:  # pragma: no cover - its process
    tally = _Tally()

    def answer(command: str, argument: Any) -> Any:
        if command == "reset":
            tally.reset()
        elif command == "count":
            return tally.count
        elif command == "taken":
            return Taken(tally.count, tally.duplicates, tally.without_id, tally.times.tolist(),
                         tally.sizes / tally.count if tally.count else 0.0)  # fmt: skip
        return True

    # The counts are read on the pipe's thread: the loop never waits for the harness's questions.
    smtp.serve(lambda: _Session(tally, latency), port_out, commands, answer, on_thread={"count", "taken"})


class Sink(smtp.ServerProcess):
    """The sink's process, and the questions the harness asks it."""

    def __init__(self, latency: float = 0.0) -> None:
        """``latency``: seconds each reply is held back (0: answered at once, as on loopback)."""
        super().__init__(_serve, latency, name="smtp-sink", what="SMTP sink")

    def reset(self) -> None:
        self.ask("reset")

    def count(self) -> int:
        return int(self.ask("count"))

    def taken(self) -> Taken:
        found: Taken = self.ask("taken")
        return found
