"""The limit the send path is measured against: pre-built messages pushed to the same sink over the
same number of SMTP connections, with nothing else (no database, no Celery, no rendering).

Each connection is a process of its own with Python's ``smtplib``: what a bare Python sender on this
machine does, which is what our workers could do at best.
"""

from __future__ import annotations

import multiprocessing
import smtplib
import time
from dataclasses import dataclass
from typing import Any

_SENDER = "course@bench.example"


def _push(message: bytes, port: int, start: int, count: int, ready: Any) -> None:  # pragma: no cover - a child
    marker = b"<bench-limit-0@bench.example>"
    head, _, tail = message.partition(marker)
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as connection:
        connection.ehlo()
        ready.wait()
        for number in range(start, start + count):
            data = head + f"<bench-limit-{number}@bench.example>".encode() + tail
            connection.sendmail(_SENDER, [f"reader{number}@bench.example"], data)


@dataclass(frozen=True)
class Limit:
    messages: int
    connections: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


def measure_limit(message: bytes, port: int, messages: int, connections: int) -> Limit:
    """Send ``messages`` copies of ``message`` (whose Message-ID is ``<bench-limit-0@bench.example>``;
    each copy gets its own) over ``connections`` connections at once; time from the first to the last."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(connections + 1)
    share, extra = divmod(messages, connections)
    processes = []
    start = 0
    for index in range(connections):
        count = share + (1 if index < extra else 0)
        process = context.Process(target=_push, args=(message, port, start, count, ready), daemon=True)
        process.start()
        processes.append(process)
        start += count
    ready.wait()  # every connection open and greeted: the clock starts with the first message
    began = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - began
    failed = [process.exitcode for process in processes if process.exitcode != 0]
    if failed:
        raise RuntimeError(f"the bare sender failed (exit codes {failed})")
    return Limit(messages, connections, seconds)
