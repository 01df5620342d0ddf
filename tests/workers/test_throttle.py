"""The send-rate limit: one token bucket shared through Redis by every worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from workers.throttle import LocalTokenBucket, RedisTokenBucket


@pytest.fixture
def key() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}:send-rate"
    yield name
    redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(name)


@pytest.fixture
def client() -> redis.Redis:
    return redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=3)


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
    second_worker = RedisTokenBucket(redis.Redis.from_url("redis://127.0.0.1:6379/0"), key, rate=SLOW_RATE, capacity=1)
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
