"""The composition root (cli/root.py): each process builds its resources once, from its settings, and hands
them to the web app, the beat and the workers; nothing below it builds anything on import."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from cli.root import Root
from course.db import make_engine, make_sessionmaker
from course.models.deliveries import Delivery, SendBatch
from workers.tasks import SEND_BATCH, SEND_NEXT

from ..conftest import REDIS_URL, make_settings

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("course", "emails", "workers", "web", "cli")


def product_modules() -> list[str]:
    found = []
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            if "node_modules" in path.parts or path.name == "__main__.py":
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_of_the_product_imports_without_reading_the_settings() -> None:
    # An environment whose settings would not validate: a module that read them on import (the Celery app
    # built from get_settings(), as workers/app.py once did) fails here.
    environment = {**os.environ, "SEND_RATE_PER_SECOND": "as fast as you can", "DATABASE_URL": "nowhere"}
    modules = product_modules()
    assert "workers.tasks" in modules and "web.app" in modules and "cli.root" in modules
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(  # noqa: S603 - this interpreter, our modules
        [sys.executable, "-c", script, *modules], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # And the settings do refuse that environment, so the run above proves something.
    refused = subprocess.run(
        [sys.executable, "-c", "from course.settings import get_settings; get_settings()"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0 and "send_rate_per_second" in refused.stderr.lower()


def test_a_root_builds_each_resource_once_and_the_runtime_uses_them(database_url: str) -> None:
    with Root(make_settings(database_url=database_url, broker_url="memory://")) as root:
        runtime = root.runtime
        assert root.runtime is runtime and root.sessions is root.sessions
        assert runtime.sessions is root.sessions and runtime.engine is root.engine
        assert runtime.sender is root.sender and runtime.throttle is root.throttle and runtime.clock is root.clock
        # The Celery app carries the task, and the one of the messages earlier versions queued.
        assert root.celery.tasks[SEND_NEXT].app is root.celery and SEND_BATCH in root.celery.tasks
        assert root.celery.conf.task_default_queue == root.settings.celery_queue
        assert runtime.now() is not None  # the database's clock answers through the root's engine
        # A second root (another process's, a test's) has its own app and task, reaching its own runtime.
        with Root(make_settings(database_url=database_url, broker_url="memory://")) as other:
            assert other.celery.tasks[SEND_NEXT] is not root.celery.tasks[SEND_NEXT]
            assert other.celery.tasks[SEND_NEXT].app is other.celery
            assert other.runtime is not runtime


def test_the_send_path_plans_each_statement_as_it_runs_and_the_web_keeps_its_plans(database_url: str) -> None:
    """The send queue's tables grow by orders of magnitude in a morning: a plan kept from when they were
    empty would scan them whole (course/db.py). The web's statements keep theirs."""
    with Root(make_settings(database_url=database_url, broker_url="memory://")) as root:
        with root.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
        web = root.web().state.context
        with web.session() as session:
            assert session.connection().exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"


def test_a_prefork_child_makes_its_own_connections(database_url: str) -> None:
    with Root(make_settings(database_url=database_url, broker_url="memory://")) as root:
        parent_engine, parent_runtime = root.engine, root.runtime
        with root.sessions() as session:
            session.execute(select(1))
        root.after_fork()  # what worker_process_init runs in each child
        assert root.engine is not parent_engine and root.runtime is not parent_runtime
        assert root.runtime.engine is root.engine
        with root.sessions() as session:
            assert session.scalar(select(1)) == 1


def test_the_web_app_of_the_root_queues_a_sign_up_on_the_deployments_broker(database_url: str) -> None:
    queue = f"test-root-{uuid.uuid4().hex[:12]}"
    settings = make_settings(database_url=database_url, broker_url=REDIS_URL, celery_queue=queue)
    broker = redis.Redis.from_url(REDIS_URL)
    try:
        with Root(settings) as root, TestClient(root.web()) as client:
            response = client.post("/subscribe", data={"email": "alex@example.com", "timezone": "UTC"},
                                   follow_redirects=False)  # fmt: skip
            assert response.status_code == 303
            # Woken as the sign-up's transaction committed: the message is there when the response is.
            assert broker.llen(queue) == 1
            message = json.loads(broker.lindex(queue, 0) or b"{}")
            assert root.waiting_wakeups() == 1
        engine = make_engine(database_url)
        with make_sessionmaker(engine)() as session:
            (delivery_id,) = session.scalars(select(Delivery.id))
            (batch,) = session.scalars(select(SendBatch))
        engine.dispose()
        assert batch.delivery_ids == [delivery_id]  # the queue is the database's
        assert message["headers"]["task"] == SEND_NEXT
        arguments, _, _ = json.loads(base64.b64decode(message["body"]))
        assert arguments == []  # a wake-up: the next batch in the queue
    finally:
        broker.delete(queue)


def test_a_worker_or_the_beat_never_loads_the_web_room() -> None:
    """What `course worker` and `course beat` import: the web app, FastAPI and every page stay out of their
    processes (50 MB each, walked by every garbage collection: 8% more CPU per email when they were in)."""
    script = (
        "import sys\nfrom cli.commands import beat, worker\nfrom cli.root import Root\n"
        "import workers.beat, workers.tasks\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('web', 'fastapi', 'starlette')))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our modules
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("process", "started", "frozen_at_least"),
    [("web", "web_app()", 100_000),
     ("pool", "import workers.tasks\nRoot.from_environment().pool_process_started()", 50_000)],
)  # fmt: skip
def test_a_process_keeps_what_it_built_out_of_the_collectors_walks(
    database_url: str, process: str, started: str, frozen_at_least: int
) -> None:
    """`course web`'s processes freeze what building the app made, and a worker's pool process what it
    inherited (cli.root.keep_for_good): a full garbage collection then walks what requests or tasks made,
    not the objects of the modules and the app (190,000 in the web)."""
    script = (
        f"import gc\nfrom cli.root import Root, web_app\n{started}\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()))\n"
    )
    environment = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "x" * 40, "BROKER_URL": REDIS_URL}
    done = subprocess.run(  # noqa: S603 - this interpreter, our modules
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    frozen, walked = map(int, done.stdout.split())
    assert frozen > frozen_at_least, process
    assert walked < frozen / 10
