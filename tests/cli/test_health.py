"""Health checks: `course health` for containers and /healthz for load balancers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from web.app import create_app
from workers.engine import record_tick

from ..conftest import make_settings

COURSE = Path(sys.executable).parent / "course"


def health(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [str(COURSE), "health", *arguments], env={**os.environ, **environment}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_healthy_when_database_and_broker_answer(database_url: str) -> None:
    result = health(DATABASE_URL=database_url, BROKER_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database: ok" in result.stdout and "broker: ok" in result.stdout


def test_unhealthy_when_the_broker_is_away(database_url: str) -> None:
    result = health(DATABASE_URL=database_url, BROKER_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert "broker: unreachable" in result.stdout


def test_the_beat_is_healthy_only_after_a_tick_went_through(database_url: str) -> None:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    environment = {"DATABASE_URL": database_url, "BROKER_URL": "redis://127.0.0.1:6379/0", "CELERY_QUEUE": queue}
    try:
        stale = health("--tick-age", "60", **environment)
        assert stale.returncode == 1 and "tick: stale: never ran" in stale.stdout
        record_tick(make_settings(database_url=database_url, celery_queue=queue))
        fresh = health("--tick-age", "60", **environment)
        assert fresh.returncode == 0 and "tick: ok" in fresh.stdout
    finally:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(f"{queue}:last-tick")


def test_healthz_answers_503_when_the_database_is_away(tmp_path: Path) -> None:
    settings = make_settings(database_url="postgresql://nobody@127.0.0.1:1/none", broker_url="memory://")
    response = TestClient(create_app(settings)).get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"].startswith("unreachable")


def test_healthz_answers_200_when_all_is_well(database_url: str) -> None:
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:6379/0")
    response = TestClient(create_app(settings)).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
