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


def test_a_bucket_gives_its_capacity_then_asks_to_wait(client: redis.Redis, key: str) -> None:
    bucket = RedisTokenBucket(client, key, rate=2, capacity=2)
    assert bucket.try_acquire() == 0
    assert bucket.try_acquire() == 0
    wait = bucket.try_acquire()
    assert 0.3 < wait <= 0.5  # half a second for the next token at two a second, less the time passed


def test_workers_share_one_quota(client: redis.Redis, key: str) -> None:
    first_worker = RedisTokenBucket(client, key, rate=1, capacity=1)
    second_worker = RedisTokenBucket(redis.Redis.from_url("redis://127.0.0.1:6379/0"), key, rate=1, capacity=1)
    assert first_worker.try_acquire() == 0
    assert second_worker.try_acquire() > 0.5  # the token the first one took is gone for both


def test_separate_deployments_do_not_share_a_bucket(client: redis.Redis, key: str) -> None:
    other = f"{key}-other"
    try:
        assert RedisTokenBucket(client, key, rate=1, capacity=1).try_acquire() == 0
        assert RedisTokenBucket(client, other, rate=1, capacity=1).try_acquire() == 0
    finally:
        client.delete(other)


def test_the_in_process_bucket_behaves_the_same() -> None:
    bucket = LocalTokenBucket(rate=2, capacity=2)
    assert bucket.try_acquire() == 0 and bucket.try_acquire() == 0
    assert 0.3 < bucket.try_acquire() <= 0.5
