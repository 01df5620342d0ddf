"""The send-rate limit: one token bucket shared through Redis by every worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from workers.throttle import LocalTokenBucket, RedisTokenBucket

from ..conftest import REDIS_URL


@pytest.fixture
def key() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}:send-rate"
    yield name
    redis.Redis.from_url(REDIS_URL).delete(name)


@pytest.fixture
def client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)


# A token every 100 s: the time the test itself takes (even a slow moment of several seconds) cannot
# change what the bucket answers, so the bounds hold on any machine.
SLOW_RATE = 0.01


def test_a_bucket_gives_its_capacity_then_asks_to_wait(client: redis.Redis, key: str) -> None:
    bucket = RedisTokenBucket(client, key, rate=SLOW_RATE, capacity=2)
    assert bucket.try_acquire() == 0
    assert bucket.try_acquire() == 0
    wait = bucket.try_acquire()
    assert 90 < wait <= 100  # 100 s for the next token, less the moment that passed


def test_workers_share_one_quota(client: redis.Redis, key: str) -> None:
    first_worker = RedisTokenBucket(client, key, rate=SLOW_RATE, capacity=1)
    second_worker = RedisTokenBucket(redis.Redis.from_url(REDIS_URL), key, rate=SLOW_RATE, capacity=1)
    assert first_worker.try_acquire() == 0
    assert second_worker.try_acquire() > 90  # the token the first one took is gone for both


def test_separate_deployments_do_not_share_a_bucket(client: redis.Redis, key: str) -> None:
    other = f"{key}-other"
    try:
        assert RedisTokenBucket(client, key, rate=1, capacity=1).try_acquire() == 0
        assert RedisTokenBucket(client, other, rate=1, capacity=1).try_acquire() == 0
    finally:
        client.delete(other)


def test_the_in_process_bucket_behaves_the_same() -> None:
    bucket = LocalTokenBucket(rate=SLOW_RATE, capacity=2)
    assert bucket.try_acquire() == 0 and bucket.try_acquire() == 0
    assert 90 < bucket.try_acquire() <= 100


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_a_chunk_takes_its_tokens_in_one_call_and_never_more_than_the_bucket_holds(
    client: redis.Redis, key: str, kind: str
) -> None:
    bucket = (
        RedisTokenBucket(client, key, rate=SLOW_RATE, capacity=3)
        if kind == "redis"
        else LocalTokenBucket(rate=SLOW_RATE, capacity=3)
    )
    assert bucket.take(5) == (3, 0.0)  # all there is, not the five asked for
    taken, wait = bucket.take(5)
    assert taken == 0 and 90 < wait <= 100  # none left: wait for the next one
    assert bucket.take(0)[0] == 0


def test_a_block_larger_than_the_bucket_is_taken_in_parts_at_the_rate() -> None:
    bucket = LocalTokenBucket(rate=200, capacity=2)
    calls = []
    take = bucket.take

    def counted(wanted: int) -> tuple[int, float]:
        calls.append(wanted)
        return take(wanted)

    bucket.take = counted  # type: ignore[method-assign]
    bucket.acquire(6)
    assert calls[0] == 6 and sum(1 for wanted in calls if wanted) >= 3  # 2, then the rest as tokens come
