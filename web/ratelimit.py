"""Fixed-window rate limits: how many sign-ups one client may send; and "the newest wins" for work one
person starts again before the last has finished (a preview per keystroke: the older is cancelled).

(The pace of confirmations to one mailbox is the database's job: course/subscriptions.py.) Redis when
the deployment has it (every web process shares the count), memory otherwise (the demo). The window
is read from the caller's clock, so that tests can move time.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def allow(self, key: str, limit: int, window_seconds: int, now: datetime) -> bool: ...

    def mark_newest(self, key: str, token: str, page: str, asked: float, seconds: int) -> bool:
        """``token`` is now the newest piece of work under ``key`` (for ``seconds`` at most), unless work
        that the same ``page`` asked for later (``asked``: the page's own order, a counter or its monotonic
        clock) is marked already: then False, and it is not. The order of one page is the person's, not the
        server's: an older request that reaches the server late (a thread starved under load) cannot cancel
        the newer one it was replaced by. Work of another page (a second tab) replaces it as it arrives;
        no clock is compared with another's (a browser's clock may be anything)."""

    def is_newest(self, key: str, token: str) -> bool:
        """Whether ``token`` is still the newest under ``key`` (when the store cannot say: yes)."""


# "<page> <asked> <token>" under the key, unless what is there was asked for later by the same page (one
# step: two web processes). A value of another form (an older version's) is replaced.
_MARK_NEWEST = """
local there = redis.call('GET', KEYS[1])
if there then
    local page, at = string.match(there, '^(%S+) (%S+) ')
    if page == ARGV[1] and tonumber(at) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3], 'EX', ARGV[4])
return 1
"""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._mark = client.register_script(_MARK_NEWEST)

    def allow(self, key: str, limit: int, window_seconds: int, now: datetime) -> bool:
        window = int(now.timestamp() // window_seconds)
        name = f"{self._prefix}:{key}:{window}"
        pipeline = self._client.pipeline()
        pipeline.incr(name)
        pipeline.expire(name, window_seconds + 5)
        try:
            count, _ = pipeline.execute()
        except redis.RedisError:
            # Redis away: let people sign up (the database still paces confirmations per mailbox)
            # rather than turn everyone away.
            log.warning("rate limit unavailable (Redis unreachable); allowing %s", key)
            return True
        return int(count) <= limit

    def mark_newest(self, key: str, token: str, page: str, asked: float, seconds: int) -> bool:
        try:
            return bool(
                self._mark(keys=[f"{self._prefix}:newest:{key}"], args=[page, repr(float(asked)), token, seconds])
            )
        except redis.RedisError:
            log.warning("newest-wins unavailable (Redis unreachable) for %s", key)
            return True

    def is_newest(self, key: str, token: str) -> bool:
        try:
            newest = self._client.get(f"{self._prefix}:newest:{key}")
        except redis.RedisError:
            return True  # nothing is cancelled for want of Redis
        if isinstance(newest, bytes):
            newest = newest.decode()
        return newest is None or newest.split(" ", 2)[-1] == token


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        # key: (page, asked, token, until: time.monotonic())
        self._newest: dict[str, tuple[str, float, str, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, limit: int, window_seconds: int, now: datetime) -> bool:
        window = int(now.timestamp() // window_seconds)
        name = f"{key}:{window}"
        with self._lock:
            if len(self._counts) > 10_000:  # old windows: forget them
                self._counts = {k: v for k, v in self._counts.items() if k.endswith(f":{window}")}
            self._counts[name] = self._counts.get(name, 0) + 1
            return self._counts[name] <= limit

    def mark_newest(self, key: str, token: str, page: str, asked: float, seconds: int) -> bool:
        with self._lock:
            there = self._newest.get(key)
            if there is not None and there[0] == page and there[1] > asked and there[3] > time.monotonic():
                return False
            self._newest[key] = (page, asked, token, time.monotonic() + seconds)
            return True

    def is_newest(self, key: str, token: str) -> bool:
        with self._lock:
            there = self._newest.get(key)
            return there is None or there[2] == token or there[3] <= time.monotonic()
