"""Health checks: `course health` for containers and /healthz for load balancers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from cli import database
from course.db import expected_revisions
from web.app import create_app
from workers.engine import record_tick

from ..conftest import REDIS_URL, make_settings
from ..support.databases import empty_database

COURSE = Path(sys.executable).parent / "course"


def health(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [str(COURSE), "health", *arguments], env={**os.environ, **environment}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_healthy_when_database_and_broker_answer(database_url: str) -> None:
    result = health(DATABASE_URL=database_url, BROKER_URL=REDIS_URL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database: ok" in result.stdout and "broker: ok" in result.stdout


def test_unhealthy_when_the_broker_is_away(database_url: str) -> None:
    result = health(DATABASE_URL=database_url, BROKER_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert "broker: unreachable" in result.stdout


def test_the_beat_is_healthy_only_after_a_tick_went_through(database_url: str) -> None:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    environment = {"DATABASE_URL": database_url, "BROKER_URL": REDIS_URL, "CELERY_QUEUE": queue}
    try:
        stale = health("--tick-age", "60", **environment)
        assert stale.returncode == 1 and "tick: stale: never ran" in stale.stdout
        record_tick(make_settings(database_url=database_url, celery_queue=queue))
        fresh = health("--tick-age", "60", **environment)
        assert fresh.returncode == 0 and "tick: ok" in fresh.stdout
    finally:
        redis.Redis.from_url(REDIS_URL).delete(f"{queue}:last-tick")


def test_healthz_answers_503_when_the_database_is_away(tmp_path: Path) -> None:
    settings = make_settings(database_url="postgresql://nobody@127.0.0.1:1/none", broker_url="memory://")
    response = TestClient(create_app(settings)).get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"].startswith("unreachable")


def test_healthz_answers_200_when_all_is_well(database_url: str) -> None:
    settings = make_settings(database_url=database_url, broker_url=REDIS_URL)
    response = TestClient(create_app(settings)).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def run(*arguments: str, cwd: Path | None = None, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [str(COURSE), *arguments], env={**os.environ, **environment}, capture_output=True, text=True,
        timeout=60, check=False, cwd=cwd,
    )  # fmt: skip


def test_a_health_check_where_there_is_no_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    with empty_database() as url:
        missing = url.rsplit("/", 1)[0] + "/course_never_created"
    result = run("health", cwd=tmp_path, DATABASE_URL=missing, BROKER_URL="memory://")
    assert result.returncode == 1
    assert "database: unreachable: OperationalError" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_health_says_the_schema_is_missing_before_course_db_upgrade() -> None:
    with empty_database() as url:
        result = run("health", DATABASE_URL=url, BROKER_URL="memory://")
        assert result.returncode == 1
        assert "database: no schema yet: run `course db upgrade`" in result.stdout
        response = TestClient(create_app(make_settings(database_url=url, broker_url="memory://"))).get("/healthz")
        assert response.status_code == 503 and response.json()["database"].startswith("no schema yet")


def test_health_says_the_schema_is_behind_after_an_older_version(database_url: str) -> None:
    database.downgrade(database_url, "0002")
    result = run("health", DATABASE_URL=database_url, BROKER_URL="memory://")
    assert result.returncode == 1
    (head,) = expected_revisions()
    assert f"database: schema at 0002, this version needs {head}: run `course db upgrade`" in result.stdout


def test_commands_that_need_the_schema_say_so_in_one_line_and_stop() -> None:
    with empty_database() as url:
        for command in (["web", "--port", "1"], ["worker"]):
            result = run(*command, DATABASE_URL=url, BROKER_URL="memory://")
            assert result.returncode == 1, result.stderr
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith(f"course {command[0]}: the database (PostgreSQL at 127.0.0.1:5432/course_empty_")
            assert line.endswith("has no schema yet: run `course db upgrade`")


def test_an_unreachable_database_is_one_line_with_where_and_why() -> None:
    result = run("db", "upgrade", DATABASE_URL="postgresql://course@127.0.0.1:1/course")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("course db upgrade: cannot use the database (PostgreSQL at 127.0.0.1:1/course): ")
    assert "Connection refused" in line


def test_uptime_monitors_may_ask_with_head(database_url: str) -> None:
    settings = make_settings(database_url=database_url, broker_url="memory://")
    response = TestClient(create_app(settings)).head("/healthz")
    assert response.status_code == 200 and response.content == b""


def test_the_demo_stops_at_once_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("demo", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert f"course demo: port {port} is in use" in result.stderr and f"--port {port + 1}" in result.stderr
    assert list(tmp_path.iterdir()) == []  # it stopped before creating anything


def test_metrics_before_course_db_upgrade_say_why_they_are_missing() -> None:
    with empty_database() as url:
        settings = make_settings(database_url=url, broker_url="memory://")
        response = TestClient(create_app(settings)).get("/metrics")
    assert response.status_code == 503
    assert response.text == "# metrics unavailable: no schema yet: run `course db upgrade`\n"


def test_rabbitmq_as_the_broker_is_checked_with_redis_beside_it(database_url: str) -> None:
    result = health(DATABASE_URL=database_url, BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
                    REDIS_URL=REDIS_URL)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broker: ok" in result.stdout and "redis: ok" in result.stdout
    away = health(DATABASE_URL=database_url, BROKER_URL="amqp://guest:guest@127.0.0.1:1//",
                  REDIS_URL=REDIS_URL)  # fmt: skip
    assert away.returncode == 1 and "broker: unreachable" in away.stdout
    wrong = health(DATABASE_URL=database_url, BROKER_URL="amqp://guest:wrong@127.0.0.1:5672//",
                   REDIS_URL=REDIS_URL)  # fmt: skip
    assert wrong.returncode == 1 and "broker: unreachable" in wrong.stdout
