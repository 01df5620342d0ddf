"""``python -m bench chaos``: the production commands through faults, and what each fault cost the subscribers.

Each scenario:

1. creates a database of its own (bench/harness.py's ``own_database``), migrates it, and seeds N
   confirmed subscribers over several time zones: by default (production's settings: real days, the
   30-second tick, the 600-second lease, chunks of 10) 20,000 with their last email due as the run
   starts, a morning; with ``--compressed`` (COURSE_DAY_SECONDS) ``--days`` course emails each, the first
   due within the first compressed day;
2. starts a Redis of its own on a free port (the broker, unless ``--broker`` names another, and the
   send-rate bucket; no persistence: a restart loses what it held), the fault SMTP server
   (bench/faults.py) and the real ``course beat`` and ``course worker`` in production mode;
3. injects its fault while the course goes out (SIGKILL at an exact SMTP point, Redis or PostgreSQL
   restarted, a beat gone, an SMTP server that refuses, drops or stalls, a clock that is off ...);
4. waits until every subscriber is through (no subscriber active, no delivery claimed or being sent),
   then counts, per (subscriber, course step), from the messages the SMTP server accepted:

   - **due**: the course emails the subscribers were to get, less those the server refused for good
     (a 552 or 550 5.7.x-free permanent refusal is that one email; after a 550 5.1.1 the address is gone);
   - **delivered** and **lost** (due, never accepted), **duplicated** (accepted more than once),
     **extra** (accepted though not due: after a bad-address bounce, say);
   - **longest delay**: the most an email arrived after it was due (the first email at its seeded time;
     each next one a compressed day after the previous one arrived, or was refused for good; of an
     email that arrived twice, the later copy, the one the engine recorded: with compressed days the
     next is due a day after the recorded send, where real days go by the reader's local hour, so
     measuring from the first copy would count a duplicate's resend again as the next day's delay);
   - **recovered in**: seconds from the fault's end until the last email that was late (more than
     two ticks and a second after due) arrived: 0 when nothing was late after the fault ended;
   - **last after**: seconds from the fault's end to the last email of the run. With everyone due at
     once (real days) it is the rest of the morning plus what the fault cost; after a routine fault (a
     process or a service lost and back) it must be at most 60 s;
   - **two days on one local date**: with compressed days a "local date" is a compressed day, so a
     subscriber who gets two different course emails less than COURSE_DAY_SECONDS apart got two on
     one date.

The figures to reach: 0 lost, 0 extra, no two days on one date, and duplicates within the bound: the
messages in flight (accepted by the server, not yet recorded as sent) when a worker is SIGKILLed, as
counted at each kill, or SEND_CHUNK_SIZE per pool process for a database that goes away mid-batch.
The table and every figure go to bench/results/ as JSON. ``python -m bench chaos`` exits 1 when a figure misses.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy
from sqlalchemy.engine import make_url

from bench import harness
from bench.faults import Accepted, FaultServer, Hook, Refused, Rule
from bench.net import TimedOut, free_port, wait_until

RESULTS = harness.RESULTS
STEPS = 20  # the course's steps: the welcome, 18 days, the completion
_MESSAGE_STEP = re.compile(r"^<[^.]+\.(\d+)\.")  # <slug.step.digest@domain>, emails/mime.py's message_id_for
# libfaketime fakes the wall clock only: a faked monotonic clock that jumps leaves Python's waits (which
# wait for a monotonic deadline) hanging. (Its 0.9.10 then fails time.sleep with EINVAL, which the beat
# and the worker do not call on these paths.)
FAKE_WALL_CLOCK_ONLY = {"DONT_FAKE_MONOTONIC": "1"}
FAKETIME_LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


@dataclass(frozen=True)
class Options:
    """By default production's settings: real days (each subscriber is due their one email as the run
    starts), the 30-second tick, the 600-second lease, chunks of 10 and batches of 50. With
    ``day_seconds`` (COURSE_DAY_SECONDS), compressed days: several emails each, a tick of a fraction of a
    day, and what two emails on one date, a bounce's later emails or a pause do over days."""

    subscribers: int = 20_000
    days: int = 1  # course emails each subscriber still has to get in a scenario (real days: one)
    day_seconds: int | None = None  # COURSE_DAY_SECONDS; None: real days
    tick_seconds: float = 30.0  # TICK_SECONDS (with compressed days, at most an eighth of a day)
    lease_seconds: int = 600  # DELIVERY_LEASE_SECONDS
    smtp_timeout_seconds: float = 3.0
    concurrency: int = 2
    chunk: int = 10  # SEND_CHUNK_SIZE
    batch: int = 50  # SEND_BATCH_SIZE
    repeats: int = 3  # SIGKILLs a kill scenario makes
    minute: float = 60.0  # how long a "minute" of a timed fault lasts (Redis away 1, no beat 10)
    server_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    broker_url: str | None = None  # None: the run's own Redis
    results: Path = RESULTS
    course_slug: str = "building-emotional-intimacy"
    scenarios: tuple[str, ...] = ()  # empty: all
    burst_subscribers: int = 100_000  # the burst scenario's subscribers, due in one minute
    window_seconds: float = 15.0  # with real days: how long an SMTP fault or a skewed clock lasts
    on_time_seconds: float = 60.0  # with real days: the last email at most this long after a routine fault

    @property
    def day(self) -> float:
        """A "course day" of a fault's length: the compressed day, or with real days the fault's window."""
        return float(self.day_seconds) if self.day_seconds is not None else self.window_seconds

    @property
    def tick(self) -> float:
        return min(self.tick_seconds, self.day_seconds / 8) if self.day_seconds is not None else self.tick_seconds


# The CI version: compressed days, a fast tick, and production's lease: a recovery that waited for a lease
# would not finish in time.
SMALL = Options(subscribers=300, days=3, day_seconds=6, tick_seconds=0.5, repeats=2, minute=6.0)
# The multi-day version: compressed days of 12 s, three emails each (two on one date, a bounce's later emails).
COMPRESSED = Options(subscribers=2_000, days=3, day_seconds=12, tick_seconds=0.5)
SMALL_SCENARIOS = ("kill-after-250", "smtp-451-rcpt", "redis-flush", "postgres-terminate")


class NotRun(Exception):
    """The scenario cannot run here (a tool missing): reported as such, never as passed."""


@dataclass
class Figures:
    scenario: str
    description: str
    subscribers: int = 0
    due: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: int = 0
    two_on_one_date: int = 0
    longest_delay: float = 0.0
    recovered_in: float | None = None
    # Seconds from the fault's end to the last email of the run: with everyone due at once, the time the
    # fault cost on top of the morning's own length (the baseline's row has the length alone).
    last_after_fault: float | None = None
    on_time_limit: float | None = None  # the most last_after_fault may be (routine faults, real days)
    fault_seconds: float | None = None
    duplicate_bound: int = 0  # the messages in flight at the faults, as counted
    structural_bound: int = 0  # SEND_CHUNK_SIZE x pool processes, per fault that can leave a chunk unrecorded
    in_flight_at_faults: list[int] = field(default_factory=list)
    faults_at: list[float] = field(default_factory=list)  # seconds from the start of the run
    refused: dict[str, int] = field(default_factory=dict)
    # For a look at what went twice: a few duplicated (address, step), their arrivals (seconds from the
    # start of the run), and whether they were counted in flight at a fault.
    duplicates_sample: list[dict[str, Any]] = field(default_factory=list)
    # For a look at what recovered last: the latest few emails that arrived late after a fault began
    # (seconds from the start of the run).
    late_sample: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    not_run: str | None = None
    ok: bool = False

    def misses(self) -> list[str]:
        if self.not_run is not None:
            return []
        found = []
        if self.lost:
            found.append(f"{self.lost} lost")
        if self.extra:
            found.append(f"{self.extra} sent though not due")
        if self.duplicated > self.duplicate_bound:
            found.append(f"{self.duplicated} duplicated, above the bound of {self.duplicate_bound}")
        if self.duplicate_bound > self.structural_bound:
            found.append(f"{self.duplicate_bound} in flight, above a chunk per pool process ({self.structural_bound})")
        if self.two_on_one_date:
            found.append(f"{self.two_on_one_date} subscribers with two course days on one date")
        if self.delivered == 0:
            found.append("nothing delivered")
        if self.on_time_limit is not None and self.last_after_fault is not None \
                and self.last_after_fault > self.on_time_limit:  # fmt: skip
            found.append(
                f"the last email {self.last_after_fault:.0f} s after the fault, above {self.on_time_limit:.0f} s"
            )
        found += [note for note in self.notes if note.startswith("FAILED")]
        return found


# --- Services of the run's own ---------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of the run's own on a free port: restarting or flushing it disturbs nobody else."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - the system's redis-server
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        wait_until(self.ping, timeout=30, interval=0.1, what="the run's Redis to start")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """As a crash: SIGKILL, nothing saved (it saves nothing anyway)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


class PrivateCluster:
    """A PostgreSQL cluster of the run's own (initdb on a free port), so that restarting it disturbs nobody."""

    def __init__(self, folder: Path, environment: dict[str, str] | None = None) -> None:
        """``environment``: for the server's processes (the DST scenario's fake clock)."""
        self.environment = environment or {}
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            raise NotRun("no initdb under /usr/lib/postgresql/*/bin (a private PostgreSQL cluster is needed)")
        self.bin = found[-1].parent
        self.port = free_port()
        folder.mkdir(exist_ok=True)
        self.data = folder / "pgdata"
        self.data.mkdir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own user runs it
            shutil.chown(folder, "postgres")
            shutil.chown(self.data, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *arguments: str, environment: dict[str, str] | None = None) -> None:
        settings = [f"{name}={value}" for name, value in (environment or {}).items()]
        subprocess.run(  # noqa: S603 - the system's PostgreSQL tools
            [*self.as_user, "env", *settings, str(self.bin / tool), *arguments], check=True, capture_output=True,
            timeout=120,
        )  # fmt: skip

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-o", options, "-l", str(self.data / "log"), *extra,
                  environment=self.environment)  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "immediate")  # as a crash: no checkpoint, every backend dropped at once

    def stop(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")


# --- One scenario's run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    inject: Callable[[Stage], None]
    environment: dict[str, str] = field(default_factory=dict)
    tls: bool = False  # the worker speaks STARTTLS to the fault server
    private_postgres: bool = False
    subscribers: int | None = None  # None: Options.subscribers
    days: int | None = None
    # Seconds the scenario may legitimately add to everyone's being through (a clock two minutes ahead
    # schedules the next day two minutes later).
    slack: float = 0.0
    calendar: bool = False  # real days on local calendars (DST_*), under a shared fake clock: see _time_lapse
    # A routine fault (a process or a service lost and back): with real days, the last email may come at
    # most Options.on_time_seconds after it ends. (An SMTP refusal is the mail server's pace, a retry's.)
    routine: bool = False


class Stage:
    """A scenario under way: its database, queue, SMTP server, Redis and processes, and what it noted."""

    def __init__(self, options: Options, scenario: Scenario, folder: Path, database_url: str, server: FaultServer,
                 private_redis: PrivateRedis | None, cluster: PrivateCluster | None) -> None:  # fmt: skip
        self.options = options
        self.scenario = scenario
        self.folder = folder
        self.database_url = database_url
        self.server = server
        self.redis = private_redis
        self.cluster = cluster
        self.engine = sqlalchemy.create_engine(database_url, pool_pre_ping=True, pool_size=2)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.environment: dict[str, str] = {}
        self.fault_started: float | None = None
        self.fault_ended: float | None = None
        self.in_flight: list[int] = []  # at each SIGKILL: accepted, not yet recorded as sent
        self.bound = 0
        self.structural_bound = 0
        self.notes: list[str] = []
        self.counted: set[tuple[str, int]] = set()
        self.began = time.time()
        self.last_count = 0.0
        self.faults_at: list[float] = []
        self.exited: list[str] = []
        self.fault_seconds: float | None = None
        self.tick = options.tick

    # --- processes ---

    def start(self, role: str, *, extra: dict[str, str] | None = None, preload: str | None = None) -> None:
        arguments = {"beat": ["beat", "--loglevel", "INFO"],
                     "worker": ["worker", "--concurrency", str(self.options.concurrency), "--loglevel", "INFO"]}[
            role.split("-")[0]]  # fmt: skip
        environment = {**self.environment, **(extra or {})}
        if preload is not None:
            environment["LD_PRELOAD"] = preload
        with (self.folder / f"{role}.log").open("ab") as log:
            self.processes[role] = subprocess.Popen(  # noqa: S603 - our own command
                [sys.executable, "-m", "cli.main", *arguments], env=environment, cwd=self.folder, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def kill(self, role: str) -> None:
        """SIGKILL the process and its pool: no warm shutdown, as when a machine dies."""
        process = self.processes.pop(role)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        _reap_group(process.pid)

    def stop(self, role: str) -> None:
        """SIGTERM to the main process: Celery's warm shutdown (the tasks under way finish first). Never to
        the whole group: a pool process that gets SIGTERM itself dies mid-chunk, which is a kill."""
        process = self.processes.pop(role)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        _reap_group(process.pid)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # the main process: a warm shutdown
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            _reap_group(process.pid)
        self.processes.clear()

    def check_alive(self) -> None:
        for role, process in list(self.processes.items()):
            if process.poll() is not None:
                self.exited.append(f"`course {role}` exited ({process.returncode})")
                self.processes.pop(role)

    def tail(self, role: str, characters: int = 3000) -> str:
        path = self.folder / f"{role}.log"
        return path.read_text(errors="replace")[-characters:] if path.exists() else ""

    # --- the fault's time ---

    def fault_begins(self) -> None:
        self.fault_started = time.time()
        self.faults_at.append(round(self.fault_started - self.began, 2))

    def fault_ends(self) -> None:
        self.fault_ended = time.time()
        if self.fault_started is not None:
            self.fault_seconds = round((self.fault_seconds or 0.0) + self.fault_ended - self.fault_started, 1)

    def sending_under_way(self, count: int = 1) -> None:
        wait_until(lambda: self.server.count() >= count, timeout=60 + self.options.day + self.tick, interval=0.1,
                   what="the first emails")  # fmt: skip

    def sleep(self, seconds: float) -> None:
        """A fault's own duration (never a wait for a result: those wait on conditions)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    # --- the database ---

    def sent(self) -> set[tuple[str, int]]:
        with self.engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text(
                "SELECT s.email, d.step FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
                " WHERE d.state = 'sent' AND d.step IS NOT NULL"))  # fmt: skip
            return {(str(email), int(step)) for email, step in rows}

    def count_in_flight(self) -> int:
        """After a SIGKILL: the copies the server accepted since the last count whose delivery is not
        recorded as sent (a resend of one killed before, killed again, is in flight again)."""
        accepted, _ = self.server.taken()
        since, self.last_count = self.last_count, time.time()
        unrecorded = {key for item in accepted if (key := _key(item.recipient, item.message_id))} - self.sent()
        found = [key for item in accepted if item.at > since and (key := _key(item.recipient, item.message_id))
                 and key in unrecorded]  # fmt: skip
        self.counted |= set(found)
        self.in_flight.append(len(found))
        self.bound += len(found)
        self.structural_bound += self.options.chunk * self.options.concurrency
        return len(found)

    def finished(self) -> bool:
        with self.engine.connect() as connection:
            row = connection.execute(sqlalchemy.text(
                "SELECT (SELECT count(*) FROM progress WHERE status = 'active'),"
                " (SELECT count(*) FROM deliveries WHERE state IN ('claimed', 'sending'))"
                " + (SELECT count(*) FROM send_batches)")).one()  # fmt: skip
        return int(row[0]) == 0 and int(row[1]) == 0

    def admin(self) -> sqlalchemy.Engine:
        return sqlalchemy.create_engine(make_url(self.database_url).set(database="postgres"),
                                        isolation_level="AUTOCOMMIT", pool_size=1)  # fmt: skip


def _reap_group(pid: int) -> None:
    """A pool child that outlived its parent's SIGKILL (it has the same process group): end it too."""
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _key(recipient: str, message_id: str | None) -> tuple[str, int] | None:
    found = _MESSAGE_STEP.match(message_id or "")
    return (recipient.lower(), int(found.group(1))) if found else None


# --- The scenarios' faults --------------------------------------------------------------------------


def _nothing(stage: Stage) -> None:
    stage.sending_under_way()


def _kill_at(point: str) -> Callable[[Stage], None]:
    def inject(stage: Stage) -> None:
        options = stage.options
        stage.sending_under_way()
        for repeat in range(options.repeats):
            stage.server.arm(Hook(point, options.chunk))
            event = stage.server.wait_event(timeout=options.day * 3 + 30)
            if event is None:
                stage.notes.append(f"FAILED: kill {repeat + 1}: no chunk reached the point {point!r}")
                return
            stage.fault_begins()
            if point == "after-commit":
                key = _key(event.recipient, event.message_id)
                wait_until(lambda: key in stage.sent(), timeout=30, interval=0.1,  # noqa: B023 - used at once
                           what="the chunk's commit")  # fmt: skip
            stage.kill("worker")
            stage.count_in_flight()
            stage.server.thaw()
            stage.start("worker")
            stage.fault_ends()
            if repeat + 1 < options.repeats:
                stage.sleep(options.day / 2 if options.day_seconds else 3.0)

    return inject


def _smtp(*rules: Rule, window: float | None = None) -> Callable[[Stage], None]:
    """Put ``rules`` in force once sending is under way, for ``window`` seconds (None: one course day)."""

    def inject(stage: Stage) -> None:
        stage.sending_under_way()
        stage.fault_begins()
        stage.server.rules(*rules)
        stage.sleep(window if window is not None else stage.options.day)
        stage.server.rules()
        stage.fault_ends()

    return inject


def _some(stage_name: str, reply: str = "", *, every: int = 7, once: bool = True, count: int | None = None,
          window: float | None = None) -> Callable[[Stage], None]:  # fmt: skip
    """A rule for every ``every``-th subscriber's address."""

    def inject(stage: Stage) -> None:
        total = stage.scenario.subscribers or stage.options.subscribers
        recipients = frozenset(f"reader{n}@bench.example" for n in range(1, total + 1, every))
        _smtp(Rule(stage_name, reply, recipients, once=once, count=count), window=window)(stage)

    return inject


def _stalls(count: int) -> Callable[[Stage], None]:
    """Stalls mid-DATA: each may slow its batch past its lease, and then the chunk under way may go twice
    (the worker renews its lease before each chunk and leaves the rest to whoever took the batch over)."""

    def inject(stage: Stage) -> None:
        _some("stall", every=1, once=True, count=count)(stage)
        stage.bound += count * stage.options.chunk
        stage.structural_bound += count * stage.options.chunk

    return inject


def _redis_restart(stage: Stage) -> None:
    redis = _own_redis(stage)
    _queued(stage)
    stage.fault_begins()
    redis.stop()
    redis.start()
    stage.fault_ends()


def _redis_flush(stage: Stage) -> None:
    redis = _own_redis(stage)
    _queued(stage)
    stage.fault_begins()
    redis.flush()
    stage.fault_ends()


def _redis_away(stage: Stage) -> None:
    redis = _own_redis(stage)
    stage.sending_under_way()
    stage.fault_begins()
    redis.stop()
    stage.sleep(stage.options.minute)
    redis.start()
    stage.fault_ends()


def _own_redis(stage: Stage) -> PrivateRedis:
    if stage.redis is None:
        raise NotRun("needs the run's own Redis")
    return stage.redis


def _queued(stage: Stage) -> None:
    """Wait until tasks wait in the queue (the worker paused with SIGSTOP, so that they pile up)."""
    import redis

    stage.sending_under_way()
    worker = stage.processes["worker"]
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        queue, broker = stage.environment["CELERY_QUEUE"], stage.environment["BROKER_URL"]
        if broker.startswith("redis"):
            client = redis.Redis.from_url(broker)

            def depth() -> int:
                return int(client.llen(queue))
        else:

            def depth() -> int:
                return _amqp_depth(broker, queue)

        wait_until(lambda: depth() >= 2, timeout=30, interval=0.1, what="tasks waiting in the queue")
        stage.notes.append(f"{depth()} tasks were queued when the fault hit")
    finally:
        os.killpg(worker.pid, signal.SIGCONT)


def _amqp_depth(broker_url: str, queue: str) -> int:
    from kombu.connection import Connection

    with Connection(broker_url, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
        declared = connection.channel().queue_declare(queue, passive=True)
        return int(declared.message_count)


def _postgres_restart(stage: Stage) -> None:
    if stage.cluster is None:
        raise NotRun("needs the run's own PostgreSQL cluster")
    stage.sending_under_way(stage.options.chunk * 2)
    stage.fault_begins()
    stage.cluster.restart()
    stage.fault_ends()
    stage.bound += stage.options.concurrency * stage.options.chunk
    stage.structural_bound += stage.options.concurrency * stage.options.chunk


def _postgres_terminate(stage: Stage) -> None:
    stage.sending_under_way(stage.options.chunk * 2)
    admin = stage.admin()
    name = make_url(stage.database_url).database
    stage.fault_begins()
    try:
        with admin.connect() as connection:
            ended = connection.execute(sqlalchemy.text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid() AND application_name NOT LIKE 'chaos%'"),
                {"name": name}).scalar_one()  # fmt: skip
    finally:
        admin.dispose()
    stage.fault_ends()
    stage.notes.append(f"{ended} connections terminated")
    stage.bound += stage.options.concurrency * stage.options.chunk
    stage.structural_bound += stage.options.concurrency * stage.options.chunk


def _beat_killed(stage: Stage) -> None:
    stage.sending_under_way()
    stage.sleep(stage.options.day / 2 if stage.options.day_seconds else 1.0)
    stage.fault_begins()
    stage.kill("beat")
    stage.start("beat")
    stage.fault_ends()


def _no_beat(stage: Stage) -> None:
    stage.sending_under_way()
    stage.fault_begins()
    stage.kill("beat")
    stage.sleep(stage.options.minute * 10)
    stage.start("beat")
    stage.fault_ends()


def _two_beats(stage: Stage) -> None:
    stage.start("beat-2")
    stage.sending_under_way()


def _faketime() -> str:
    for library in FAKETIME_LIBRARIES:
        if Path(library).exists():
            return library
    raise NotRun("libfaketime is not installed (Debian's faketime package)")


def _skewed_worker(seconds: int) -> Callable[[Stage], None]:
    def inject(stage: Stage) -> None:
        library = _faketime()
        stage.sending_under_way()
        stage.fault_begins()
        stage.stop("worker")
        stage.start("worker", extra={"FAKETIME": f"{seconds:+d}s", **FAKE_WALL_CLOCK_ONLY}, preload=library)
        stage.sleep(stage.options.day * 2)
        stage.stop("worker")
        stage.start("worker")
        stage.fault_ends()

    return inject


# The DST scenario: real course days on the subscribers' local calendars, across three changes of the
# clocks: Paris springs forward on 29 March 2026 (02:30 does not exist), Sydney falls back on 5 April
# (02:30 happens twice) and Santiago on 4-5 April (23:30 on the 4th happens twice).
DST_ZONES = ("Europe/Paris", "Australia/Sydney", "America/Santiago")
DST_TIMES = ("02:30", "23:30")
DST_START = date(2026, 3, 27)
DST_DAYS = 12
# 12 days of 6 slots: each jump waits for the beat's next tick (30 s in production) and its sending, with
# room for a loaded machine (at 30 s ticks the 1,800 s this used to be ran out at the 11th day).
TIME_LAPSE_SECONDS_PER_SLOT = 15


def _dst_slot(zone: str, send_time: str, on: date) -> datetime:
    """The send time on a local date, as zoneinfo's fold=0 places it (a time the spring skips goes an hour
    later, one that happens twice goes the first time): the rule of docs/reliability.md, computed here on its own."""
    hour, minute = (int(part) for part in send_time.split(":"))
    return datetime.combine(on, dt_time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _seed_calendar(database_url: str, subscribers: int, course_slug: str, days: int) -> None:
    """Subscribers in DST_ZONES at DST_TIMES with ``days`` emails left, the first due on DST_START."""
    engine = sqlalchemy.create_engine(database_url)
    combinations = [(zone, send_time) for send_time in DST_TIMES for zone in DST_ZONES]
    with engine.begin() as connection:
        for index, (zone, send_time) in enumerate(combinations):
            due = _dst_slot(zone, send_time, DST_START)
            connection.execute(sqlalchemy.text(
                "WITH who AS (INSERT INTO subscribers (course_slug, email, first_name, timezone, send_time,"
                " confirmed_at, consent_at, consent_form, created_at, updated_at)"
                " SELECT :slug, 'reader' || n || '@bench.example', 'Alex', :zone, CAST(:time AS time),"
                " :last, :last, 'bench', :last, :last"
                " FROM generate_series(1, :count) AS n WHERE n % :kinds = :index RETURNING id)"
                " INSERT INTO progress (subscriber_id, status, enrolment, current_step, next_send_at, last_sent_at)"
                " SELECT id, 'active', 1, :step, :due, :last FROM who"),
                {"slug": course_slug, "zone": zone, "time": send_time, "step": STEPS - days - 1, "due": due,
                 "last": due - timedelta(days=1), "count": subscribers, "kinds": len(combinations),
                 "index": index},
            )  # fmt: skip
    engine.dispose()


def _calendar_clock(folder: Path) -> dict[str, str]:
    """The DST scenario's clock: libfaketime's timestamp file, set just before the first due moment, and
    the environment that puts the scenario's PostgreSQL server on it. The beat and the worker go by the
    database's clock (course/clock.py), so they follow its jumps with their own clocks left alone."""
    library = _faketime()
    start = min(_dst_slot(zone, send_time, DST_START) for zone in DST_ZONES for send_time in DST_TIMES)
    (folder / "faketime").write_text(f"{start.timestamp() - time.time() - 2:+.1f}s\n")
    return {"LD_PRELOAD": library, "FAKETIME_TIMESTAMP_FILE": str(folder / "faketime"),
            "FAKETIME_CACHE_DURATION": "1", **FAKE_WALL_CLOCK_ONLY}  # fmt: skip


def _time_lapse(stage: Stage) -> None:
    """Days go by in seconds: whenever nothing is being sent, the shared fake clock (libfaketime's
    timestamp file, read by the database server) jumps to the next moment a subscriber is due."""
    clock = stage.folder / "faketime"
    budget = DST_DAYS * len(DST_ZONES) * len(DST_TIMES) * (stage.tick + TIME_LAPSE_SECONDS_PER_SLOT)
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        stage.check_alive()
        with stage.engine.connect() as connection:
            row = connection.execute(sqlalchemy.text(
                "SELECT (SELECT count(*) FROM deliveries WHERE state IN ('claimed', 'sending'))"
                " + (SELECT count(*) FROM send_batches),"
                " (SELECT min(next_send_at) FROM progress WHERE status = 'active')")).one()  # fmt: skip
        if row[0]:
            time.sleep(0.2)
            continue
        if row[1] is None:
            return
        offset = float(clock.read_text().strip().rstrip("s"))
        now = time.time() + offset
        due = row[1].timestamp()
        if due > now:
            clock.write_text(f"{offset + due - now + 0.2:+.1f}s\n")
        wait_until(lambda: _claimed_by(stage, row[1]), timeout=60, interval=0.1,  # noqa: B023 - used at once
                   what="the beat to claim what the jump made due")  # fmt: skip
    stage.notes.append(f"FAILED: the time lapse did not finish in {budget:.0f} s")


def _claimed_by(stage: Stage, moment: datetime) -> bool:
    with stage.engine.connect() as connection:
        left = connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM progress WHERE status = 'active' AND next_send_at <= :moment"),
            {"moment": moment}).scalar_one()  # fmt: skip
    return int(left) == 0


def scenarios(options: Options) -> list[Scenario]:
    day = options.day
    return [
        Scenario("baseline", "no fault: the figures every other scenario is read against", _nothing),
        Scenario("kill-before-data", "worker SIGKILLed on the RCPT of a chunk's first message (before DATA)",
                 _kill_at("before-data"), routine=True),
        Scenario("kill-after-250", "worker SIGKILLed after the server's 250 mid-chunk, before the 'sent' commit",
                 _kill_at("after-250"), routine=True),
        Scenario("kill-after-commit", "worker SIGKILLed once the chunk's 'sent' commit is in the database",
                 _kill_at("after-commit"), routine=True),
        Scenario("redis-restart", "Redis killed and restarted while tasks are queued", _redis_restart, routine=True),
        Scenario("redis-flush", "Redis flushed (FLUSHALL) while tasks are queued", _redis_flush, routine=True),
        Scenario("redis-away", "Redis unreachable for a minute (stopped, then started)", _redis_away, routine=True),
        Scenario("postgres-restart", "PostgreSQL restarted (immediate) in the middle of a batch", _postgres_restart,
                 private_postgres=True, routine=True),
        Scenario("postgres-terminate", "every connection of the database killed by pg_terminate_backend",
                 _postgres_terminate, routine=True),
        Scenario("two-beats", "two beats at once for the whole run", _two_beats),
        Scenario("beat-killed", "the beat SIGKILLed and restarted", _beat_killed, routine=True),
        Scenario("no-beat", "no beat for ten minutes", _no_beat, routine=True),
        Scenario("smtp-421-connect", "421 on connect for a course day", _smtp(Rule("connect", "421 4.3.2 try later"))),
        Scenario("smtp-450-rcpt", "450 on RCPT, once for every 7th address",
                 _some("rcpt", "450 4.2.0 mailbox busy")),
        Scenario("smtp-451-rcpt", "451 on RCPT, once for every 7th address",
                 _some("rcpt", "451 4.3.0 local error")),
        Scenario("smtp-452-rcpt", "452 on RCPT, once for every 7th address",
                 _some("rcpt", "452 4.2.2 over quota")),
        Scenario("smtp-552", "552 after DATA (refused for good), once for every 7th address",
                 _some("data", "552 5.3.4 message too big")),
        Scenario("smtp-550-5.1.1", "550 5.1.1 on RCPT (no such user) for every 7th address",
                 _some("rcpt", "550 5.1.1 no such user", once=False)),
        Scenario("smtp-550-5.7.26", "550 5.7.26 after DATA (sender blocked: sending pauses), 3 times",
                 _some("data", "550 5.7.26 unauthenticated sender", every=1, once=True, count=3)),
        Scenario("smtp-drop-after-data", "connection dropped after DATA, before any reply, for every 7th address",
                 _some("drop")),
        Scenario("smtp-stall", "server stalls mid-DATA past the timeout, 4 times",
                 _stalls(4),
                 environment={"SMTP_TIMEOUT_SECONDS": str(options.smtp_timeout_seconds)}),
        Scenario("smtp-tls", "the STARTTLS handshake fails for half a course day", _smtp(Rule("tls"), window=day / 2),
                 tls=True),
        Scenario("clock-skew", "a worker whose clock is two minutes slow, for two course days", _skewed_worker(-120),
                 slack=130),
        Scenario("clock-skew-fast", "a worker whose clock is two minutes fast, for two course days",
                 _skewed_worker(120), slack=130),
        Scenario("clock-dst", f"real days across DST changes in {', '.join(DST_ZONES)} (the database's clock, "
                 "faked, jumps from one due moment to the next)", _time_lapse, calendar=True, days=DST_DAYS),
        Scenario("burst", f"{options.burst_subscribers:,} subscribers due in the same minute, one email each",
                 _nothing, subscribers=options.burst_subscribers, days=1,
                 # The production lease: the backlog waits in the queue longer than the faults' short lease,
                 # which would only hand it out again and again (MAX_IN_FLIGHT's reason).
                 environment={"DELIVERY_LEASE_SECONDS": "600"}, slack=300),
    ]  # fmt: skip


# --- Running and counting -----------------------------------------------------------------------------


@contextmanager
def _tls_files(folder: Path) -> Iterator[tuple[str, str]]:
    """A throwaway certificate for 127.0.0.1 (the worker trusts it through SSL_CERT_FILE)."""
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603 - the system's openssl
        [shutil.which("openssl") or "/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(certificate), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    yield str(certificate), str(key)


def run_scenario(options: Options, scenario: Scenario, say: Callable[[str], None] = print) -> Figures:
    figures = Figures(scenario.name, scenario.description)
    subscribers = scenario.subscribers or options.subscribers
    days = scenario.days or options.days
    figures.subscribers = subscribers
    started = time.monotonic()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"chaos-{scenario.name}-")))
        folder.chmod(0o755)
        try:
            fake_clock = _calendar_clock(folder) if scenario.calendar else None
            cluster = (PrivateCluster(folder / "cluster", fake_clock)
                       if scenario.private_postgres or scenario.calendar else None)  # fmt: skip
        except NotRun as error:
            figures.not_run = str(error)
            return figures
        if cluster is not None:
            stack.callback(cluster.stop)
        private_redis = PrivateRedis(folder)
        stack.callback(private_redis.stop)
        tls = stack.enter_context(_tls_files(folder)) if scenario.tls else None
        server = FaultServer(tls=tls)
        stack.callback(server.stop)
        database_url = stack.enter_context(harness.own_database(cluster.url if cluster else options.server_url))
        from cli.database import upgrade

        upgrade(database_url)
        # Compressed days: the first emails are due once the processes are up, spread over the first course
        # day. Real days: everyone is due as the run starts, a morning at 08:00, claimed at the first tick.
        if options.day_seconds is None:
            spread, lead = 0.0, 0.0
        else:
            spread, lead = (60.0 if subscribers > 20_000 else float(options.day_seconds)), 4.0
        # Due by the database's clock (the processes go by it); arrivals are timed by this machine's, so
        # the figures below use first_due as this machine tells it.
        ahead = harness.database_ahead(database_url)
        first_due = time.time() + lead
        if scenario.calendar:
            _seed_calendar(database_url, subscribers, options.course_slug, days)
        else:
            harness.seed(database_url, subscribers, options.course_slug,
                         datetime.fromtimestamp(first_due + ahead, UTC), step=STEPS - days - 1,
                         spread_seconds=spread)  # fmt: skip
        stage = Stage(options, scenario, folder, database_url, server, private_redis, cluster)
        stack.callback(stage.engine.dispose)
        queue = f"chaos-{secrets.token_hex(4)}"
        broker = options.broker_url or private_redis.url
        settings = harness.Options(broker_url=broker, course_slug=options.course_slug,
                                   tick_seconds=options.tick_seconds)  # fmt: skip
        stage.environment = {
            **harness._environment(settings, database_url, queue, server.port),
            "REDIS_URL": private_redis.url,
            **({"COURSE_DAY_SECONDS": str(options.day_seconds)} if options.day_seconds is not None else {}),
            "DELIVERY_LEASE_SECONDS": str(options.lease_seconds),
            "SEND_CHUNK_SIZE": str(options.chunk),
            "SEND_BATCH_SIZE": str(options.batch),
            # A 5.7.x pause is the provider's word, not a recovery: half a course day here, a minute with
            # real days (production's is 15 minutes).
            "SENDING_PAUSE_SECONDS": str(max(1, int(options.day // 2)) if options.day_seconds else 60),
            "SMTP_TIMEOUT_SECONDS": "30",
            "PYTHONUNBUFFERED": "1",
            **({"SMTP_URL": f"smtp+starttls://127.0.0.1:{server.port}", "SSL_CERT_FILE": tls[0]} if tls else {}),
            **scenario.environment,
        }
        if scenario.calendar:  # real days; leases long enough that no jump of the clock hands work out twice
            stage.environment.pop("COURSE_DAY_SECONDS", None)
            stage.environment["DELIVERY_LEASE_SECONDS"] = "600"
            # The beat and the worker go by the database's clock, the one that jumps: read it often.
            stage.environment["CLOCK_CHECK_SECONDS"] = "0.2"
        stack.callback(stage.stop_all)
        if options.broker_url and options.broker_url.startswith("amqp"):
            stack.callback(_delete_amqp_queue, options.broker_url, queue)
        stage.start("beat")
        stage.start("worker")
        fault_error: BaseException | None = None
        try:
            scenario.inject(stage)
        except NotRun as error:
            figures.not_run = str(error)
            return figures
        except RuntimeError as error:  # bench/net.py's TimedOut among them: a wait for the fault's moment
            fault_error = error
            stage.notes.append(f"FAILED: the fault could not be carried out: {error}")
            say(f"  the fault could not be carried out: {error}")
        # Then wait until everyone is through: no subscriber active, nothing claimed or being sent.
        limit = days * options.day + 4 * options.tick + 90 + subscribers / 300 + scenario.slack
        if scenario.calendar:  # the time lapse went through the days (or said it could not): no day to wait for
            limit = 4 * options.tick + 90 + subscribers / 300 + scenario.slack
        if options.day_seconds is None:  # real days: retries back off by minutes (1, 2, 4 ...)
            limit += 600

        def through() -> bool:
            stage.check_alive()
            try:
                return stage.finished()
            except sqlalchemy.exc.OperationalError:
                return False  # the database coming back

        try:
            wait_until(through, timeout=limit, interval=0.5, what="everyone to be through")
        except TimedOut:
            stage.notes.append(f"FAILED: not everyone was through {limit:.0f} s after the fault")
        stage.stop_all()
        accepted, refused = server.taken()
        if scenario.calendar:
            _count_calendar(figures, stage, accepted, days, subscribers)
        else:
            _count(figures, stage, accepted, refused, days, first_due, spread, subscribers)
        if stage.exited:
            figures.notes.append("FAILED: " + "; ".join(stage.exited))
        if fault_error is not None or figures.misses():
            for role in ("worker", "beat"):
                say(f"--- {role} log (tail) ---\n{stage.tail(role)}")
    figures.seconds = round(time.monotonic() - started, 1)
    figures.ok = not figures.misses()
    return figures


def _count(figures: Figures, stage: Stage, accepted: list[Accepted], refused: list[Refused], days: int,
           first_due: float, spread: float, subscribers: int) -> None:  # fmt: skip
    options = stage.options
    day = options.day
    first_step = STEPS - days
    number = re.compile(r"^reader(\d+)@")
    arrivals: dict[tuple[str, int], list[float]] = defaultdict(list)
    for taken in accepted:
        key = _key(taken.recipient, taken.message_id)
        if key is not None:
            arrivals[key].append(taken.at)
    # What the server refused for good: that one email (a 5xx other than 5.1.x and 5.7.x), or, after a
    # 5.1.x (the mailbox does not exist), that email and every later one.
    not_due: set[tuple[str, int]] = set()
    permanent_at: dict[tuple[str, int], float] = {}
    figures.refused = dict(Counter(f"{item.stage} {item.reply.split(' ')[0]}" for item in refused))
    for item in refused:
        code = item.reply.split(" ")[:2]
        if not code or not code[0].startswith("5") or item.stage == "connect":
            continue
        enhanced = code[1] if len(code) > 1 else ""
        if enhanced.startswith("5.7."):
            continue  # our side: sending pauses, and the email goes later
        key = _key(item.recipient, item.message_id)
        if key is None:  # refused at RCPT: the step after the last one that arrived before the refusal
            before = [step for (recipient, step), times in arrivals.items()
                      if recipient == item.recipient and min(times) < item.at]  # fmt: skip
            key = (item.recipient, max(before) + 1 if before else first_step)
        permanent_at[key] = item.at
        last = STEPS if enhanced.startswith("5.1.") else key[1] + 1
        not_due |= {(key[0], step) for step in range(key[1], last)}
    expected = {(f"reader{n}@bench.example", step) for n in range(1, subscribers + 1)
                for step in range(first_step, STEPS)} - not_due  # fmt: skip
    delivered = expected & arrivals.keys()
    figures.due = len(expected)
    figures.delivered = len(delivered)
    figures.lost = len(expected - delivered)
    figures.extra = len(arrivals.keys() - expected)
    figures.duplicated = sum(len(times) - 1 for times in arrivals.values())
    figures.duplicates_sample = [
        {"address": key[0], "step": key[1], "arrivals": [round(moment - stage.began, 2) for moment in sorted(times)],
         "counted_in_flight": key in stage.counted}
        for key, times in sorted(arrivals.items()) if len(times) > 1
    ][:40]  # fmt: skip
    figures.duplicate_bound = stage.bound
    figures.structural_bound = stage.structural_bound
    figures.in_flight_at_faults = stage.in_flight
    figures.faults_at = stage.faults_at
    figures.fault_seconds = stage.fault_seconds
    # Delays: the first email at its seeded time, each next one a day after the previous arrived.
    late_after = 2 * stage.tick + 1.0
    longest, last_late = 0.0, None
    late: list[tuple[float, float, str, int]] = []
    for recipient, step in sorted(delivered):
        if step == first_step:
            found = number.match(recipient)
            n = int(found.group(1)) if found else 1
            due = first_due + (n - 1) * spread / subscribers
        else:
            previous = (recipient, step - 1)
            previous_at = max(arrivals[previous]) if previous in arrivals else permanent_at.get(previous)
            if previous_at is None:
                continue
            due = previous_at + day
        arrived = min(arrivals[(recipient, step)])
        delay = arrived - due
        longest = max(longest, delay)
        if delay > late_after and (stage.fault_started is None or arrived > stage.fault_started):
            last_late = arrived if last_late is None else max(last_late, arrived)
            late.append((arrived, due, recipient, step))
    figures.longest_delay = round(longest, 2)
    figures.late_sample = [
        {"address": recipient, "step": step, "due": round(due - stage.began, 2),
         "arrived": round(arrived - stage.began, 2)}
        for arrived, due, recipient, step in sorted(late)[-20:]
    ]  # fmt: skip
    if stage.fault_ended is not None:
        figures.recovered_in = round(max(0.0, (last_late or 0.0) - stage.fault_ended), 2)
        final = max((moment for times in arrivals.values() for moment in times), default=None)
        if final is not None:
            figures.last_after_fault = round(max(0.0, final - stage.fault_ended), 2)
        if options.day_seconds is None and stage.scenario.routine:
            figures.on_time_limit = options.on_time_seconds
    # Two course days on one (compressed) date: two different steps less than a day apart.
    by_subscriber: dict[str, list[float]] = defaultdict(list)
    for (recipient, _step), times in arrivals.items():
        by_subscriber[recipient].append(min(times))
    figures.two_on_one_date = sum(
        1 for times in by_subscriber.values()
        if any(later - earlier < day for earlier, later in itertools.pairwise(sorted(times)))
    )  # fmt: skip
    figures.notes += stage.notes


def _count_calendar(figures: Figures, stage: Stage, accepted: list[Accepted], days: int, subscribers: int) -> None:
    """Real days: each email's local date and time from its Date header (the clock the worker went by as it
    built it: the database's)."""
    first_step = STEPS - days
    engine = stage.engine
    with engine.connect() as connection:
        readers = {str(email): (str(zone), f"{send_time:%H:%M}") for email, zone, send_time in connection.execute(
            sqlalchemy.text("SELECT email, timezone, send_time FROM subscribers"))}  # fmt: skip
    arrivals: dict[tuple[str, int], list[datetime]] = defaultdict(list)
    for taken in accepted:
        key = _key(taken.recipient, taken.message_id)
        if key is not None:
            arrivals[key].append(parsedate_to_datetime(taken.date))
    expected = {(reader, step) for reader in readers for step in range(first_step, STEPS)}
    delivered = expected & arrivals.keys()
    figures.due, figures.delivered = len(expected), len(delivered)
    figures.lost = len(expected - delivered)
    figures.extra = len(arrivals.keys() - expected)
    figures.duplicated = sum(len(times) - 1 for times in arrivals.values())
    longest, off_time, skipped = 0.0, 0, 0
    dates: dict[str, list[date]] = defaultdict(list)
    for reader, step in sorted(delivered):
        zone, send_time = readers[reader]
        due = _dst_slot(zone, send_time, DST_START + timedelta(days=step - first_step))
        arrived = min(arrivals[(reader, step)])
        longest = max(longest, (arrived - due).total_seconds())
        local = arrived.astimezone(ZoneInfo(zone))
        dates[reader].append(local.date())
        if abs((arrived - due).total_seconds()) > 120:
            off_time += 1
    for found in dates.values():
        ordered = sorted(found)
        skipped += sum(1 for earlier, later in itertools.pairwise(ordered) if (later - earlier).days > 1)
    figures.two_on_one_date = sum(1 for found in dates.values() if len(set(found)) < len(found))
    figures.longest_delay = round(longest, 2)
    if off_time:
        figures.notes.append(f"FAILED: {off_time} emails more than two minutes from their local slot")
    if skipped:
        figures.notes.append(f"{skipped} local dates skipped")
    figures.notes.append(f"local dates {DST_START} to {DST_START + timedelta(days=days - 1)} in {', '.join(DST_ZONES)}"
                         f" at {' and '.join(DST_TIMES)}: every email on its own date at its local time")  # fmt: skip
    figures.notes += stage.notes


def _delete_amqp_queue(broker_url: str, queue: str) -> None:
    from kombu.connection import Connection

    with suppress(Exception), Connection(broker_url, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
        connection.channel().queue_delete(queue)


def run(options: Options, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every chosen scenario, one after the other; prints and writes the table; returns its figures."""
    known = {scenario.name: scenario for scenario in scenarios(options)}
    chosen = list(options.scenarios) or list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValueError(f"no such scenario: {', '.join(unknown)} (known: {', '.join(known)})")
    results: list[Figures] = []
    options.results.mkdir(parents=True, exist_ok=True)
    path = options.results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-chaos-{options.subscribers}.json"
    table: dict[str, Any] = {}
    for name in chosen:
        say(f"{name}: {known[name].description} ...")
        figures = run_scenario(options, known[name], say)
        results.append(figures)
        say("  " + _row(figures))
        table = {
            "options": {**{key: value for key, value in asdict(options).items() if key != "results"},
                        "broker": options.broker_url or "redis (the run's own)"},
            "bound": BOUND,
            "scenarios": [asdict(figures) for figures in results],
            "ok": all(figures.ok or figures.not_run for figures in results),
            "complete": len(results) == len(chosen),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }  # fmt: skip
        # Written after each scenario: a long run stopped half-way keeps its rows.
        path.write_text(json.dumps(table, indent=2, default=str) + "\n")
    for line in report(results):
        say(line)
    say(f"Written to {path}")
    return table


BOUND = (
    "A SIGKILLed worker duplicates at most the messages it had in flight: accepted by the server and not yet "
    "recorded as sent, which is at most one chunk (SEND_CHUNK_SIZE) per pool process sending at that moment, so "
    "SEND_CHUNK_SIZE x concurrency per worker. A database that goes away mid-batch (restart, terminated "
    "connection) costs at most the same: the chunk whose 'sent' commit failed. A server that stalls a batch past "
    "its lease (DELIVERY_LEASE_SECONDS) costs at most the chunk under way, once per stall. Every other fault "
    "duplicates nothing."
)

_HEADER = (f"{'scenario':<22}{'due':>8}{'delivered':>10}{'lost':>6}{'dup':>5}{'bound':>6}{'longest delay':>14}"
           f"{'recovered in':>13}{'fault s':>8}{'last after':>11}  result")  # fmt: skip


def _row(figures: Figures) -> str:
    if figures.not_run is not None:
        return f"{figures.scenario:<22}  not run: {figures.not_run}"
    recovered = "-" if figures.recovered_in is None else f"{figures.recovered_in:.1f} s"
    fault = "-" if figures.fault_seconds is None else f"{figures.fault_seconds:.1f}"
    last = "-" if figures.last_after_fault is None else f"{figures.last_after_fault:.1f} s"
    misses = figures.misses()
    return (f"{figures.scenario:<22}{figures.due:>8,}{figures.delivered:>10,}{figures.lost:>6}{figures.duplicated:>5}"
            f"{figures.duplicate_bound:>6}{figures.longest_delay:>12.1f} s{recovered:>13}{fault:>8}{last:>11}  "
            f"{'ok' if not misses else 'MISSED: ' + '; '.join(misses)}")  # fmt: skip


def report(results: list[Figures]) -> list[str]:
    lines = ["", _HEADER]
    lines += [_row(figures) for figures in results]
    notes = [f"  {figures.scenario}: {note}" for figures in results for note in figures.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    lines += ["", f"The duplicate bound: {BOUND}"]
    return lines
