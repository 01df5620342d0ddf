"""The real thing: `course worker` and `course beat` processes on Redis, sending to an SMTP server.

Each test has its own PostgreSQL database and its own Celery queue, so runs never see each other.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from kombu.connection import Connection as KombuConnection
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from cli.root import Root
from course.models.deliveries import Delivery, DeliveryState, SendBatch
from course.models.insights import InsightCount
from course.models.subscribers import Subscriber, SubscriberStatus
from course.settings import Settings
from course.subscriptions import Consent, confirm, subscribe
from workers.engine import Runtime

from ..conftest import REDIS_URL, TEST_SECRET, make_settings
from ..support.databases import sqlalchemy_url
from ..support.processes import Processes, processes
from ..support.smtp import ScriptedHandler
from ..support.waiting import wait_until

SLUG = "building-emotional-intimacy"


@pytest.fixture(scope="module", autouse=True)
def redis_is_there() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        raise RuntimeError(
            f"Redis is not reachable at {REDIS_URL} ({error}). Start it: redis-server --daemonize yes "
            '--bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
        ) from None


class Deployment:
    """One test's deployment: settings in the environment, processes, and a way to enqueue."""

    def __init__(self, settings: Settings, environment: dict[str, str], running: Processes) -> None:
        self.settings = settings
        self.environment = environment
        self.processes = running
        # What `course worker` and `course beat` build, built here the same way: their Celery app, its task,
        # a runtime whose commits queue to it.
        self.root = Root(settings)
        self.celery: Celery = self.root.celery
        self.engine = self.root.engine
        self.runtime: Runtime = self.root.runtime

    def enqueue(self, wakeups: int) -> None:
        self.root.enqueue(wakeups)

    def worker(self, name: str = "worker") -> Any:
        return self.processes.start(name, "worker", "--pool=threads", "--concurrency=2", "--loglevel=INFO")

    def beat(self, name: str = "beat") -> Any:
        return self.processes.start(name, "beat", "--loglevel=INFO")


@pytest.fixture
def deploy(database_url: str, smtp: tuple[ScriptedHandler, int], tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    made: list[Deployment] = []
    contexts = []

    def build(**overrides: str) -> Deployment:
        environment = {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "BROKER_URL": REDIS_URL,
            "CELERY_QUEUE": queue,
            "SMTP_URL": f"smtp://127.0.0.1:{smtp[1]}",
            "SECRET_KEY": TEST_SECRET,
            "BASE_URL": "https://course.example.org",
            "MAIL_FROM": "South Denver Therapy <course@mail.example.org>",
            "PRACTICE_POSTAL_ADDRESS": "100 Example Street, Castle Rock, CO 80104",
            "SEND_RATE_PER_SECOND": "1000",
            **overrides,
        }
        settings = make_settings(**{key.lower(): value for key, value in environment.items()})
        context = processes(tmp_path, environment)
        contexts.append(context)
        deployment = Deployment(settings, environment, context.__enter__())
        made.append(deployment)
        return deployment

    yield build
    for context in contexts:
        context.__exit__(None, None, None)
    for deployment in made:
        deployment.root.close()
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(queue, f"_kombu.binding.{queue}", f"{queue}:send-rate", f"{queue}:last-tick")


def enrol(deployment: Deployment, email: str) -> int:
    runtime = deployment.runtime
    with runtime.sessions() as session:
        result = subscribe(
            session, course_slug=SLUG, email=email, first_name="Alex", timezone="Pacific/Chatham",
            consent=Consent(at=runtime.now(), form="test"), timing=runtime.timing,
        )  # fmt: skip
        session.commit()
    assert result.subscriber_id is not None  # its confirmation was queued as the session committed
    return result.subscriber_id


def confirm_now(deployment: Deployment, subscriber_id: int) -> None:
    runtime = deployment.runtime
    with runtime.sessions() as session:
        confirm(session, subscriber_id, now=runtime.now(), timing=runtime.timing)
        session.commit()  # the welcome is queued as it commits


def test_a_subscriber_goes_through_the_whole_course_on_a_real_worker(
    deploy: Callable[..., Deployment], smtp: tuple[ScriptedHandler, int]
) -> None:
    server, _ = smtp
    deployment = deploy(COURSE_DAY_SECONDS="2")  # the beat ticks every 0.25 s
    deployment.worker()
    deployment.beat("beat-1")
    deployment.beat("beat-2")  # two beats at once, as a misconfigured deployment would run
    alex = enrol(deployment, "alex@example.com")
    try:
        wait_until(lambda: server.to("alex@example.com"), timeout=60, what="the confirmation")
        confirm_now(deployment, alex)
        wait_until(lambda: len(server.to("alex@example.com")) >= 21, timeout=150, what="the whole course")
    except AssertionError:
        raise AssertionError(deployment.processes.tails()) from None
    received = server.to("alex@example.com")
    subjects = [message.subject for message in received]
    assert subjects[0] == "Confirm your place in Building Emotional Intimacy"
    assert subjects[1].startswith("Welcome: where do you two stand today?")
    assert [subject.split(":")[0] for subject in subjects[2:20]] == [f"Day {n}" for n in range(1, 19)]
    assert subjects[20].startswith("You did it: see how far you two have come")
    assert len(received) == 21, "each exactly once"

    def status() -> str | None:
        with deployment.runtime.sessions() as session:
            subscriber = session.get(Subscriber, alex)
            return None if subscriber is None else subscriber.status

    # The last "sent" (and with it "completed") is committed just after the server's 250: wait for it.
    wait_until(lambda: status() == SubscriberStatus.COMPLETED.value, timeout=30, what="the course to be completed")
    with deployment.runtime.sessions() as session:
        sent = session.scalars(
            select(Delivery.sent_at).where(Delivery.subscriber_id == alex, Delivery.step.is_not(None))
            .order_by(Delivery.step)
        ).all()  # fmt: skip
    moments = [moment for moment in sent if moment is not None]
    assert len(moments) == 20
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(moments)]
    assert min(gaps) >= 2.0, "never two course emails within one (compressed) day"


RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def test_rabbitmq_as_the_broker_carries_the_course_in_order(
    deploy: Callable[..., Deployment], smtp: tuple[ScriptedHandler, int]
) -> None:
    server, _ = smtp
    deployment = deploy(COURSE_DAY_SECONDS="2", BROKER_URL=RABBITMQ_URL, REDIS_URL=REDIS_URL)
    try:
        deployment.worker()
        deployment.beat()
        alex = enrol(deployment, "alex@example.com")
        try:
            wait_until(lambda: server.to("alex@example.com"), timeout=60, what="the confirmation")
            confirm_now(deployment, alex)
            wait_until(lambda: len(server.to("alex@example.com")) >= 5, timeout=90, what="the welcome and 3 days")
        except AssertionError:
            raise AssertionError(deployment.processes.tails()) from None
        subjects = [message.subject.split(":")[0] for message in server.to("alex@example.com")][:5]
        assert subjects == ["Confirm your place in Building Emotional Intimacy", "Welcome", "Day 1", "Day 2", "Day 3"]
    finally:
        deployment.processes.stop_all()
        with KombuConnection(RABBITMQ_URL, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
            connection.default_channel.queue_delete(deployment.settings.celery_queue)


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_at_most_the_chunk_in_flight(
    deploy: Callable[..., Deployment], smtp: tuple[ScriptedHandler, int]
) -> None:
    server, _ = smtp
    # Four messages a second, so a batch of twelve (four chunks of three) is still going when the worker
    # dies; the production lease (10 minutes) and a quick tick: the beat must see the dead worker's lock
    # gone (course/senders.py) and hand its batch out again at once, not when the lease runs out.
    deployment = deploy(SEND_RATE_PER_SECOND="4", SEND_BATCH_SIZE="12", SEND_CHUNK_SIZE="3",
                        DELIVERY_LEASE_SECONDS="600", TICK_SECONDS="0.5")  # fmt: skip
    readers = [f"reader{number}@example.com" for number in range(12)]
    with deployment.runtime.sessions() as session:
        now = deployment.runtime.now()  # the deployment's clock: the database's
        for email in readers:
            session.add(Subscriber(course_slug=SLUG, email=email, timezone="UTC", status=SubscriberStatus.ACTIVE.value,
                                   next_send_at=now, confirmed_at=now, created_at=now))  # fmt: skip
        session.commit()
    first = deployment.worker("worker-1")
    deployment.beat()
    try:
        wait_until(lambda: len(server.received) >= 3, timeout=60, what="the batch to be under way")
        deployment.processes.kill(first)
        killed_at = len(server.received)
        assert killed_at < 12, "the batch finished before the worker could be killed"
        deployment.worker("worker-2")
        wait_until(lambda: {m.recipient for m in server.received} == set(readers), timeout=90, what="every welcome")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{deployment.processes.tails()}") from None
    counts = Counter(message.recipient for message in server.received)
    # What went out but was not yet recorded: at most a chunk (3) per batch in flight. The beat's two claimers
    # may hand the twelve out as two batches, and this worker runs two at once (--concurrency=2): 3 x 2.
    assert sum(count - 1 for count in counts.values()) <= 3 * 2, counts

    def states() -> list[str]:
        with deployment.runtime.sessions() as session:
            return sorted(session.scalars(select(Delivery.state).where(Delivery.step == 0)))

    # The worker commits "sent" just after the server's 250: wait for that, not only for the messages.
    wait_until(lambda: states() == [DeliveryState.SENT.value] * 12, timeout=60, what=f"every welcome sent ({states()})")


def test_a_task_delivered_twice_sends_its_message_once(
    deploy: Callable[..., Deployment], smtp: tuple[ScriptedHandler, int]
) -> None:
    server, _ = smtp
    deployment = deploy()
    with deployment.runtime.sessions() as session:
        subscribe(session, course_slug=SLUG, email="alex@example.com",
                           consent=Consent(at=deployment.runtime.now()), timing=deployment.runtime.timing)  # fmt: skip
        session.commit()  # queued once as it commits
    deployment.enqueue(1)  # the broker redelivers the same task
    deployment.worker()
    log = deployment.processes.logs / "worker.log"

    def finished() -> list[str]:
        lines = log.read_text(errors="replace").splitlines()
        return [line.split("s: ", 1)[-1].strip() for line in lines if "send_next[" in line and "succeeded" in line]

    def both_tasks_ran() -> bool:
        return len(finished()) >= 2

    try:
        wait_until(both_tasks_ran, timeout=60, what="both deliveries of the task to run")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{deployment.processes.tails()}") from None
    assert sorted(finished()) == ["{'accepted': 1}", "{}"]  # the second found nothing left to send
    assert len(server.to("alex@example.com")) == 1


def test_the_beat_starts_from_an_empty_folder_and_keeps_no_state_file(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(COURSE_DAY_SECONDS="2")  # a tick every 0.25 s
    deployment.beat()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        wait_until(lambda: client.get(f"{deployment.settings.celery_queue}:last-tick") is not None, timeout=60,
                   what="a tick")  # fmt: skip
    except AssertionError as error:
        raise AssertionError(f"{error}\n{deployment.processes.tails()}") from None
    assert list(deployment.processes.workdir.iterdir()) == []  # no var/, no schedule file


def due_subscriber(deployment: Deployment, email: str) -> int:
    """A confirmed subscriber whose welcome is due now."""
    with deployment.runtime.sessions() as session:
        now = deployment.runtime.now()  # the deployment's clock: the database's
        subscriber = Subscriber(course_slug=SLUG, email=email, timezone="UTC", status=SubscriberStatus.ACTIVE.value,
                                next_send_at=now, confirmed_at=now, created_at=now)  # fmt: skip
        session.add(subscriber)
        session.commit()
        return subscriber.id


def test_course_health_worker_answers_once_the_worker_does(deploy: Callable[..., Deployment]) -> None:
    """The worker's container health check (docker-compose.yml): a Celery ping to CELERY_QUEUE@host."""
    deployment = deploy()

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script
            [str(Path(sys.executable).parent / "course"), "health", "--worker"],
            env={**os.environ, **deployment.environment}, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    before = health()
    assert before.returncode == 1 and f"worker: no answer from {deployment.settings.celery_queue}@" in before.stdout
    deployment.worker()
    try:
        wait_until(lambda: health().returncode == 0, timeout=60, what="the worker to answer its ping")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{deployment.processes.tails()}") from None
    assert f"worker: ok ({deployment.settings.celery_queue}@" in health().stdout
    # Below the web's priority by default (`course worker --nice`): the pages people open go first.
    (worker,) = [process for name, process in deployment.processes.running if name == "worker"]
    assert os.getpriority(os.PRIO_PROCESS, worker.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10


def queued_for(deployment: Deployment, reader: int) -> list[str]:
    """The emails waiting for ``reader`` in the send queue's batches."""
    with deployment.runtime.sessions() as session:
        return [
            email
            for batch in session.scalars(select(SendBatch))
            for subscriber, email in zip(batch.subscriber_ids or [], batch.emails or [], strict=True)
            if subscriber == reader
        ]


def test_the_beat_claims_as_it_starts_not_one_interval_later_and_needs_no_worker_to_tick(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(TICK_SECONDS="3600")  # the next tick would be in an hour
    alex = due_subscriber(deployment, "alex@example.com")
    deployment.beat()  # and no worker: the tick is the beat's own work, not a task waiting for a slot
    queue = redis.Redis.from_url(REDIS_URL)
    try:
        wait_until(lambda: queue.llen(deployment.settings.celery_queue) > 0, timeout=60, what="the first batch")
        message = json.loads(queue.lindex(deployment.settings.celery_queue, -1) or b"{}")
        assert message["headers"]["task"] == "workers.tasks.send_next"
    except AssertionError as error:
        raise AssertionError(f"{error}\n{deployment.processes.tails()}") from None
    finally:
        queue.delete(deployment.settings.celery_queue)
    assert queued_for(deployment, alex) == ["welcome"]  # in the send queue, waiting for a worker


def test_the_beat_outlives_a_database_that_refuses_it_and_claims_once_it_is_back(
    deploy: Callable[..., Deployment], database_url: str
) -> None:
    deployment = deploy(TICK_SECONDS="0.5")
    client = redis.Redis.from_url(REDIS_URL)
    last_tick = f"{deployment.settings.celery_queue}:last-tick"
    name = make_url(database_url).database
    admin = create_engine(sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        deployment.beat()
        wait_until(lambda: client.get(last_tick) is not None, timeout=60, what="a first tick")
        deployment.engine.dispose()
        with admin.connect() as connection:  # the database goes away under the running beat
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
        log = deployment.processes.logs / "beat.log"

        def failed_ticks() -> int:
            return log.read_text().count("the tick failed")

        # A tick that had done its work just before the database went away may still record itself; once one
        # has failed, the ticks after it run with the database refusing them: none of them may record.
        wait_until(lambda: failed_ticks() >= 1, timeout=60, what="a failed tick, logged")
        client.delete(last_tick)
        failed = failed_ticks()
        wait_until(lambda: failed_ticks() > failed, timeout=60, what="another failed tick, logged")
        assert client.get(last_tick) is None
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        alex = due_subscriber(deployment, "alex@example.com")
        wait_until(lambda: client.get(last_tick) is not None, timeout=60, what="ticks again")

        wait_until(lambda: queued_for(deployment, alex) == ["welcome"], timeout=60,
                   what="the welcome claimed by the same beat")  # fmt: skip
    except AssertionError as error:
        raise AssertionError(f"{error}\n{deployment.processes.tails()}") from None
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()
        client.delete(deployment.settings.celery_queue)


def test_the_beat_sums_the_insights_while_people_go_through_the_course(
    deploy: Callable[..., Deployment], smtp: tuple[ScriptedHandler, int]
) -> None:
    server, _ = smtp
    deployment = deploy(INSIGHTS_REFRESH_SECONDS="0.5")
    deployment.worker()
    deployment.beat()
    alex = enrol(deployment, "alex@example.com")
    wait_until(lambda: server.to("alex@example.com"), timeout=60, what="the confirmation")

    def summed(measure: str, step: int) -> int:
        with deployment.runtime.sessions() as session:
            found = session.scalar(
                select(func.sum(InsightCount.value)).where(InsightCount.measure == measure, InsightCount.step == step)
            )
            return int(found or 0)

    wait_until(lambda: summed("signed-up", -1) == 1, timeout=60, what="the sign-up in the insights' sums")
    assert summed("confirmed", -1) == 0
    confirm_now(deployment, alex)
    wait_until(lambda: summed("delivered", 0) == 1, timeout=60, what="the welcome in the insights' sums")
    assert summed("confirmed", -1) == 1


def test_two_beats_and_two_worker_groups_on_queues_of_their_own_send_each_welcome_once(
    deploy: Callable[..., Deployment], smtp: tuple[ScriptedHandler, int]
) -> None:
    """Beyond one machine, as `course beat` and `course worker` run: two groups, each with its beat and its
    worker on a queue of its own (CELERY_QUEUE), on one database. Any worker takes any batch."""
    server, _ = smtp
    queues = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    groups = [deploy(CELERY_QUEUE=queue, TICK_SECONDS="0.5") for queue in queues]
    readers = [due_subscriber(groups[0], f"reader{number}@example.com") for number in range(120)]
    try:
        for name, group in zip("ab", groups, strict=True):
            group.worker(f"worker-{name}")
            group.beat(f"beat-{name}")
        try:
            wait_until(lambda: len(server.received) >= len(readers), timeout=120, what="every welcome")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{groups[0].processes.tails()}\n{groups[1].processes.tails()}") from None
        with groups[0].runtime.sessions() as session:
            wait_until(lambda: session.scalar(select(func.count()).select_from(SendBatch)) == 0, timeout=60,
                       what="the send queue to empty")  # fmt: skip
        welcomes = Counter(message.recipient for message in server.received)
        assert sorted(welcomes.values()) == [1] * len(readers)  # none twice, none missing
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for queue in queues:
            client.delete(queue, f"_kombu.binding.{queue}", f"{queue}:send-rate", f"{queue}:last-tick")
