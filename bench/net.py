"""Loopback plumbing for the bench and the tests: a free port, and a wait on a condition with a deadline.

Development only, like the rest of bench/; the tests import it too (tests/support/waiting.py re-exports
``wait_until``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now. Another process may take it before it is used: a
    server that can bind port 0 itself should, and one that cannot retries on another."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TimedOut(AssertionError, RuntimeError):
    """A wait ran out of time. To a test, a failed expectation (an AssertionError); to the bench's harness, a
    run that cannot go on (a RuntimeError, which ``python -m bench`` reports in a line, and which a chaos
    scenario notes as a fault that could not be carried out)."""


def wait_until(condition: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "") -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something true, and return that; raise
    TimedOut once ``timeout`` seconds have gone by. Never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what or condition}")
        time.sleep(interval)
