"""Wait on a condition with a deadline; never a fixed sleep. The bench's harness waits the same way: the one
``wait_until`` is bench/net.py's."""

from __future__ import annotations

from bench.net import TimedOut, wait_until

__all__ = ["TimedOut", "wait_until"]
