"""The rate limiter's "newest wins", in Redis (several web processes share it) and in memory (the demo):
the newest is the one asked for last, whichever reaches the store first; a mark lapses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from web.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

from ..conftest import REDIS_URL


@pytest.fixture(params=["redis", "memory"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test-limits-{uuid.uuid4().hex}"
    yield RedisRateLimiter(client, prefix)
    for name in client.scan_iter(f"{prefix}:*"):
        client.delete(name)
    client.close()


def test_the_newest_asked_wins_in_whatever_order_they_arrive(limiter: RateLimiter) -> None:
    assert limiter.is_newest("preview:1", "anything")  # nothing marked: nothing is cancelled
    assert limiter.mark_newest("preview:1", "second", "page-a", 2000.0, 30)
    assert not limiter.mark_newest("preview:1", "first", "page-a", 1000.0, 30)  # asked earlier, arrived later
    assert limiter.is_newest("preview:1", "second") and not limiter.is_newest("preview:1", "first")
    assert limiter.mark_newest("preview:1", "third", "page-a", 3000.0, 30)
    assert not limiter.is_newest("preview:1", "second") and limiter.is_newest("preview:1", "third")
    assert limiter.mark_newest("preview:1", "same time", "page-a", 3000.0, 30)  # a tie: the one that arrived last
    assert limiter.mark_newest("preview:2", "another person's", "page-a", 1.0, 30)  # each key is its own
    assert limiter.is_newest("preview:1", "same time")


def test_another_pages_work_replaces_as_it_arrives_whatever_its_clock_says(limiter: RateLimiter) -> None:
    """Two tabs (or two browsers) of one person: their clocks are never compared, the later arrival wins."""
    assert limiter.mark_newest("preview:1", "tab a", "page-a", 10.0**15, 30)  # a clock far ahead
    assert limiter.mark_newest("preview:1", "tab b", "page-b", 5.0, 30)
    assert limiter.is_newest("preview:1", "tab b") and not limiter.is_newest("preview:1", "tab a")
    assert limiter.mark_newest("preview:1", "tab a again", "page-a", 1.0, 30)  # and back
    assert not limiter.mark_newest("preview:1", "tab a, late", "page-a", 0.5, 30)


def test_a_mark_lapses(limiter: RateLimiter) -> None:
    assert limiter.mark_newest("preview:1", "far ahead", "page-a", 10.0**15, 1)
    assert not limiter.mark_newest("preview:1", "now", "page-a", 1000.0, 1)
    deadline = time.monotonic() + 10
    while not limiter.mark_newest("preview:1", "now", "page-a", 1000.0, 1):
        assert time.monotonic() < deadline, "the mark never lapsed"
        time.sleep(0.05)
    assert limiter.is_newest("preview:1", "now")


def test_without_redis_nothing_is_cancelled() -> None:
    away = RedisRateLimiter(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5), "away")
    assert away.mark_newest("preview:1", "a", "page-a", 1.0, 30) and away.is_newest("preview:1", "b")


def test_a_mark_an_older_version_left_is_replaced() -> None:
    """A value of an earlier version's form (a bare token; a time and a token), left during an upgrade."""
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test-limits-{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(client, prefix)
    for older in ("an-old-token", "1e15 a-token"):  # a bare token; a time and a token
        client.set(f"{prefix}:newest:preview:1", older, ex=30)
        assert limiter.mark_newest("preview:1", "new", "page-a", 1000.0, 30) and limiter.is_newest("preview:1", "new")
    client.delete(f"{prefix}:newest:preview:1")
    client.close()
