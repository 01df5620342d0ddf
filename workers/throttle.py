"""The per-sender rate limit: a token bucket, shared by every worker through Redis.

A provider's quota (say 14 messages a second) is for the whole account, not per process, so the
bucket lives in Redis and is updated atomically by a Lua script. The embedded demo has no Redis and
one process: it uses the same bucket in memory.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

# KEYS[1]: the bucket. ARGV: rate (tokens/s), capacity, tokens wanted. Takes as many whole tokens as there
# are, up to the number wanted; returns how many it took and, if none, the seconds to wait. The time is the
# server's (every worker agrees on it), read in the script: one round trip a chunk (Redis 5 or later).
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local taken = math.min(wanted, math.floor(tokens))
local wait = 0
if taken >= 1 then
  tokens = tokens - taken
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {taken, tostring(wait)}
"""


class Throttle(Protocol):
    def acquire(self, count: int = 1) -> None: ...


class _Bucket:
    """Tokens are taken in blocks, as many as a chunk of messages needs: one Redis call per chunk, not per
    message. A block larger than what the bucket holds is taken in parts, waiting in between."""

    def take(self, wanted: int) -> tuple[int, float]:
        """Take up to ``wanted`` whole tokens; returns how many were taken and, if none, the seconds to wait."""
        raise NotImplementedError

    def try_acquire(self) -> float:
        """Take a token if there is one; else return how long until there is (and take nothing)."""
        taken, wait = self.take(1)
        return 0.0 if taken else wait

    def acquire(self, count: int = 1) -> None:
        while count > 0:
            taken, wait = self.take(count)
            count -= taken
            if not taken:
                time.sleep(wait)


class RedisTokenBucket(_Bucket):
    def __init__(self, client: redis.Redis, key: str, rate: float, capacity: float | None = None) -> None:
        self._client = client
        self._key = key
        self._rate = rate
        self._capacity = capacity if capacity is not None else max(1.0, rate)
        self._take = client.register_script(_TAKE)

    def take(self, wanted: int) -> tuple[int, float]:
        taken, wait = self._take(keys=[self._key], args=[self._rate, self._capacity, wanted])
        return int(taken), float(wait)


class LocalTokenBucket(_Bucket):
    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self._rate = rate
        self._capacity = capacity if capacity is not None else max(1.0, rate)
        self._tokens = self._capacity
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self, wanted: int) -> tuple[int, float]:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
            self._at = now
            taken = min(wanted, int(self._tokens))
            if taken >= 1:
                self._tokens -= taken
                return taken, 0.0
            return 0, (1 - self._tokens) / self._rate
