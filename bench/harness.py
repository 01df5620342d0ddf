"""``python -m bench send``: the send path end to end, measured beside the limit of this machine.

One run:

1. starts the SMTP sink (bench/sink.py) and measures the limit: pre-built messages of the same size as
   ours, over the same number of connections, with nothing else (bench/limit.py);
2. creates a database of its own on the PostgreSQL server, migrates it, and inserts N subscribers due
   now for day 1, in several time zones (one INSERT ... SELECT);
3. runs the production commands, ``course beat`` and ``course worker --concurrency C``, on Redis with a
   queue of their own, sending to the sink, and shows the progress;
4. measures the click endpoints on the same database (bench/clicks.py: ``course web`` and wrk);
5. reports emails/s end to end and once sending started, the time to the first email, the p50 and p99
   from due to accepted, CPU seconds per 1,000 emails and peak memory of each process, the ratio to
   the limit, and our CPU per email (every process of ours, the PostgreSQL backends serving them and the
   broker; the sink's apart); how many Message-IDs arrived twice and how many deliveries are marked sent; writes
   every figure as JSON under ``bench/results/``; drops its database and its queue.

Speed is reported, never asserted: CI runs a small N only to know the harness works.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import sqlalchemy
from sqlalchemy.engine import make_url

from bench.clicks import CONNECTIONS, DURING_SEND, ENDPOINTS, click_paths, measure_clicks, run_wrk, warm_up, web_server
from bench.limit import measure_limit
from bench.sink import Sink

RESULTS = Path("bench") / "results"
ZONES = ("America/Denver", "America/New_York", "Europe/Paris", "Asia/Tokyo", "Australia/Sydney")
STALLED_AFTER = 120.0  # seconds without a new email: give up and report what arrived


@dataclass(frozen=True)
class Options:
    subscribers: int = 100_000
    concurrency: int = 2
    server_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    broker_url: str = "redis://127.0.0.1:6379/0"
    limit_messages: int | None = None  # default: as many as subscribers, at most 20,000
    results: Path = RESULTS
    course_slug: str = "building-emotional-intimacy"
    tick_seconds: float | None = None  # None: the production default
    click_seconds: float = 10.0  # how long wrk requests each click endpoint afterwards; 0: no click figures
    # wrk on the consultation links, then the exercise pages, click_seconds each while the workers send (the
    # figures of such a run's send then carry the web's database work too: its backends are the database's)
    clicks_during_send: bool = False
    # Milliseconds the sink holds each reply back (a mail server that far away: each wait for a reply costs
    # a round trip); 0, on loopback, as the ratio is measured.
    smtp_latency_ms: float = 0.0


@dataclass
class Usage:
    """A process's CPU time and peak memory, read from /proc while it runs (Linux)."""

    role: str
    cpu_seconds: float = 0.0
    peak_mb: float = 0.0


@dataclass
class Processes:
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    usage: dict[int, Usage] = field(default_factory=dict)
    # What else works for the run, by role, and its pids (PostgreSQL's backends for the run's database).
    helpers: dict[str, Callable[[], list[int]]] = field(default_factory=dict)

    def sample(self) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        seen = [
            (role if depth == 0 else f"{role} child {pid}", pid)
            for role, process in self.running.items()
            for pid, depth in _tree(process.pid)
        ]
        seen += [(role, pid) for role, pids in self.helpers.items() for pid in pids()]
        for name, pid in seen:
            found = _read_usage(pid, ticks)
            if found is None:
                continue
            cpu, peak = found
            usage = self.usage.setdefault(pid, Usage(name))
            usage.cpu_seconds = max(usage.cpu_seconds, cpu)
            usage.peak_mb = max(usage.peak_mb, peak)

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.running.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def machine_cpu_seconds() -> tuple[float, float]:
    """The machine's busy and total CPU seconds so far, all cores (Linux's /proc/stat)."""
    fields = [float(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle and waiting for I/O
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def process_cpu_seconds(pid: int) -> float:
    found = _read_usage(pid, os.sysconf("SC_CLK_TCK"))
    return found[0] if found else 0.0


def redis_cpu_seconds(broker_url: str) -> float:
    """The Redis server's own CPU seconds so far (INFO cpu)."""
    client = redis.Redis.from_url(broker_url)
    info = client.info("cpu")
    client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def backends(database_url: str) -> Callable[[], list[int]]:
    """The pids of PostgreSQL's backends serving this database (when the server runs on this machine,
    /proc shows them; elsewhere they are simply not found)."""
    engine = sqlalchemy.create_engine(make_url(database_url).set(database="postgres"), pool_size=1)
    name = make_url(database_url).database

    def pids() -> list[int]:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": name},
            )
            return [int(row[0]) for row in rows]

    return pids


def _tree(pid: int) -> Iterator[tuple[int, int]]:
    """The process and its descendants (a prefork worker's pool), with their depth."""
    pending = [(pid, 0)]
    while pending:
        current, depth = pending.pop()
        yield current, depth
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending += [(int(child), depth + 1) for child in children]


def _read_usage(pid: int, ticks: int) -> tuple[float, float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    peak = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)
    return cpu, peak


# --- The database ---------------------------------------------------------------------------------


@contextmanager
def own_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards."""
    name = f"course_bench_{secrets.token_hex(4)}"
    server = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.dispose()


@contextmanager
def studio_client(database_url: str, course_slug: str, email: str, password: str) -> Iterator[Any]:
    """The web app in this process on ``database_url``, with ``email`` (a studio account) signed in."""
    from fastapi.testclient import TestClient

    from course.settings import load_settings
    from web.app import create_app

    settings = load_settings(environment="test", database_url=database_url, broker_url="memory://",
                             course_slug=course_slug, secret_key=secrets.token_urlsafe(48))  # fmt: skip
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        page = client.get("/studio/sign-in")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/studio/sign-in", data={"csrf": token, "email": email, "password": password})
        yield client


def database_ahead(database_url: str) -> float:
    """How many seconds the database server's clock is ahead of this machine's (the beat and the workers
    go by the database's: course/clock.py). What the harness makes due is due by that clock."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            before = time.time()
            found = connection.scalar(sqlalchemy.text("SELECT clock_timestamp()"))
            after = time.time()
    finally:
        engine.dispose()
    assert isinstance(found, datetime)  # noqa: S101 - PostgreSQL's answer
    return float(found.timestamp() - (before + after) / 2)


def database_now(database_url: str) -> datetime:
    """The database server's time, in whole seconds."""
    return datetime.fromtimestamp(time.time() + database_ahead(database_url), UTC).replace(microsecond=0)


def seed(
    database_url: str, count: int, course_slug: str, due: datetime, first: int = 1, *, step: int = 0,
    spread_seconds: float = 0.0, zones: tuple[str, ...] = ZONES,
) -> float:  # fmt: skip
    """``count`` confirmed subscribers who had the welcome and are due for day 1 at ``due``; seconds taken.
    Their addresses are numbered from ``first``. ``step``: the course step they had last (0: the welcome);
    ``spread_seconds``: their due times spread evenly over this many seconds from ``due``."""
    engine = sqlalchemy.create_engine(database_url)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO subscribers (course_slug, email, first_name, timezone, send_time, confirmed_at,"
                " consent_at, consent_form, created_at, updated_at) "
                "SELECT :slug, 'reader' || n || '@bench.example', 'Alex',"
                " (CAST(:zones AS text[]))[1 + n % cardinality(CAST(:zones AS text[]))],"
                " '08:00', :yesterday, :yesterday, 'bench', :yesterday, :yesterday"
                " FROM generate_series(:first, :first + :count - 1) AS n"
            ),
            {"slug": course_slug, "count": count, "zones": list(zones), "first": first,
             "yesterday": due - timedelta(days=1)},
        )  # fmt: skip
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO progress (subscriber_id, status, enrolment, current_step, next_send_at, last_sent_at)"
                " SELECT s.id, 'active', 1, :step,"
                " CAST(:due AS timestamptz) + make_interval(secs => (n - :first) * CAST(:spread AS float8) / :count),"
                " :yesterday"
                " FROM generate_series(:first, :first + :count - 1) AS n"
                " JOIN subscribers AS s ON s.course_slug = :slug AND s.email = 'reader' || n || '@bench.example'"
            ),
            {"slug": course_slug, "due": due, "count": count, "first": first, "step": step,
             "spread": spread_seconds, "yesterday": due - timedelta(days=1)},
        )  # fmt: skip
        connection.exec_driver_sql("ANALYZE subscribers")
        connection.exec_driver_sql("ANALYZE progress")
    engine.dispose()
    return time.perf_counter() - started


def claim_plan(database_url: str, course_slug: str, due: datetime, limit: int = 200) -> list[str]:
    """PostgreSQL's plan for the claim's choice of due subscribers (the claim's own statement, with a round's
    parameters): it must use the index, not read the table."""
    from course.catalog import course_at
    from course.db import make_engine, make_sessionmaker
    from course.deliveries.claim import due_plan
    from course.deliveries.timing import Timing

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:  # the plan reads the lease of the timing alone
        plan = due_plan(session, course_at(session, course_slug), due, limit, Timing(address_key=b""))
    engine.dispose()
    return plan


def sent_deliveries(database_url: str) -> int:
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        found = connection.exec_driver_sql("SELECT count(*) FROM deliveries WHERE state = 'sent'").scalar_one()
    engine.dispose()
    return int(found)


def seeded_subscribers(database_url: str, limit: int = 20_000) -> list[int]:
    """Subscribers of the run, due or sent: the links clicked while the send runs."""
    return _ids(database_url, "SELECT id FROM subscribers ORDER BY id LIMIT :limit", limit)


def sent_subscribers(database_url: str, limit: int = 20_000) -> list[int]:
    """Subscribers whose day 1 was sent: the links whose clicks the web app is measured with."""
    return _ids(database_url, "SELECT subscriber_id FROM deliveries WHERE state = 'sent' AND step = 1 LIMIT :limit",
                limit)  # fmt: skip


def _ids(database_url: str, query: str, limit: int) -> list[int]:
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        ids = [int(value) for value in connection.execute(sqlalchemy.text(query), {"limit": limit}).scalars()]
    engine.dispose()
    return ids


def recorded_clicks(database_url: str, kind: str) -> int:
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        found = connection.execute(
            sqlalchemy.text("SELECT count(*) FROM events WHERE kind = :kind"), {"kind": kind}
        ).scalar_one()
    engine.dispose()
    return int(found)


# --- One run --------------------------------------------------------------------------------------


def sample_message(course_slug: str) -> bytes:
    """Day 1 as our workers build it, with a Message-ID the bare sender replaces per copy."""
    from course.curriculum import load_course
    from course.settings import Settings
    from emails.mime import MessageBuilder
    from emails.rendering import Recipient, Renderer

    settings = Settings(base_url="https://course.bench.example", mail_from="Bench <course@bench.example>")
    course = load_course(course_slug)
    rendered = Renderer(course, settings).render("day-01", Recipient(1, "reader1@bench.example", "Alex"))
    builder = MessageBuilder(settings, course.slug, course.title)
    envelope = builder.build(rendered, to_address="reader1@bench.example", to_name="Alex",
                             message_id="<bench-limit-0@bench.example>", date=datetime.now(UTC))  # fmt: skip
    return envelope.data


def _environment(options: Options, database_url: str, queue: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "BROKER_URL": options.broker_url,
        "REDIS_URL": options.broker_url,
        "CELERY_QUEUE": queue,
        "SMTP_URL": f"smtp://127.0.0.1:{port}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "BASE_URL": "https://course.bench.example",
        "MAIL_FROM": "Bench <course@bench.example>",
        "PRACTICE_POSTAL_ADDRESS": "1 Bench Street, Castle Rock, CO 80104",
        "SEND_RATE_PER_SECOND": "1000000",  # the throttle is for real servers; the sink takes anything
        "COURSE_SLUG": options.course_slug,
        **({"TICK_SECONDS": str(options.tick_seconds)} if options.tick_seconds else {}),
    }


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _forget_queue(broker_url: str, queue: str) -> None:
    client = redis.Redis.from_url(broker_url)
    keys = list(client.scan_iter(f"{queue}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _progress(line: str) -> None:
    """One line kept up to date on a terminal; a line at a time elsewhere (a CI log)."""
    if sys.stdout.isatty():
        print(f"\r{line}\033[K", end="", flush=True)
    else:
        print(line, flush=True)


def run(
    options: Options, say: Callable[[str], None] = print, progress: Callable[[str], None] = _progress
) -> dict[str, Any]:
    """One run of the harness; returns (and writes) its figures."""
    queue = f"bench-{secrets.token_hex(4)}"
    sink = Sink(options.smtp_latency_ms / 1000)
    try:
        message = sample_message(options.course_slug)
        limit_count = options.limit_messages or min(options.subscribers, 20_000)
        say(f"The limit: {limit_count:,} pre-built {len(message) / 1024:.1f} KB messages over "
            f"{options.concurrency} SMTP connections, nothing else ...")  # fmt: skip
        limit = measure_limit(message, sink.port, limit_count, options.concurrency)
        taken = sink.taken()
        if taken.count != limit_count or taken.duplicates:
            raise RuntimeError(f"the sink took {taken.count} of {limit_count} ({taken.duplicates} twice)")
        say(f"  {limit.per_second:,.0f} emails/s")
        sink.reset()

        with own_database(options.server_url) as database_url, tempfile.TemporaryDirectory() as folder:
            from cli.database import upgrade

            upgrade(database_url)
            due = database_now(database_url)
            seconds = seed(database_url, options.subscribers, options.course_slug, due)
            plan = claim_plan(database_url, options.course_slug, due)
            say("The claim's plan for its due subscribers:\n    " + "\n    ".join(plan))
            say(f"Seeded {options.subscribers:,} subscribers due for day 1 in {seconds:.1f} s; starting "
                f"`course beat` and `course worker --concurrency {options.concurrency}` ...")  # fmt: skip
            environment = _environment(options, database_url, queue, sink.port)
            command = [sys.executable, "-m", "cli.main"]
            processes = Processes(helpers={"postgres backend": backends(database_url)})
            logs = Path(folder)
            sink_cpu, redis_cpu, machine = (process_cpu_seconds(sink.process.pid or 0),
                                            redis_cpu_seconds(options.broker_url), machine_cpu_seconds())  # fmt: skip
            during: dict[str, Any] = {}
            beside = contextlib.ExitStack()
            wrk = shutil.which("wrk") if options.clicks_during_send and options.click_seconds > 0 else None
            if options.clicks_during_send and wrk is None:
                say("wrk is not installed (apt-get install wrk): no clicks during the send.")
            if wrk is not None:
                with contextlib.ExitStack() as starting:  # a web server that started is stopped if the rest fails
                    port = starting.enter_context(web_server(environment, Path(folder)))
                    every = click_paths(environment, seeded_subscribers(database_url), 1)
                    paths = {name: warm_up(wrk, port, every[name], Path(folder), f"{name} during the send")
                             for name in DURING_SEND}  # fmt: skip
                    beside = starting.pop_all()

                def click_while_sending() -> None:
                    """Each endpoint in turn, CLICK_SECONDS each; when each window ended, to tell afterwards
                    whether the send was still running all through it."""
                    try:
                        for name in DURING_SEND:
                            found = run_wrk(wrk, port, paths[name], options.click_seconds, Path(folder),
                                            f"{name} during the send")  # fmt: skip
                            during[name] = {**found, "ended_after_s": time.time() - started}
                    except (OSError, subprocess.SubprocessError) as error:
                        during["error"] = str(error)

                clicking = threading.Thread(target=click_while_sending, daemon=True)
            started = time.time()
            sending_seconds = 0.0
            try:
                for role, arguments in (("beat", ["beat", "--loglevel", "WARNING"]),
                                        ("worker", ["worker", "--concurrency", str(options.concurrency),
                                                    "--loglevel", "WARNING"])):  # fmt: skip
                    with (logs / f"{role}.log").open("wb") as log:
                        processes.running[role] = subprocess.Popen(  # noqa: S603 - our own command
                            [*command, *arguments], env=environment, cwd=folder, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True,
                        )  # fmt: skip
                last_count, last_change = 0, time.monotonic()
                while True:
                    time.sleep(1)
                    processes.sample()
                    count = sink.count()
                    now = time.monotonic()
                    if count != last_count:
                        last_count, last_change = count, now
                    if wrk is not None and count and clicking.ident is None:
                        clicking.start()  # the first emails are out: the scanners begin
                    elapsed = time.time() - started
                    if sys.stdout.isatty() or int(elapsed) % 10 == 0:  # in a log, every ten seconds
                        progress(f"  {count:,} of {options.subscribers:,} sent, {elapsed:.0f} s")
                    if count >= options.subscribers:
                        break
                    if now - last_change > STALLED_AFTER:
                        say(f"  nothing new for {STALLED_AFTER:.0f} s: stopping with what arrived")
                        break
                    for role, process in processes.running.items():
                        if process.poll() is not None:
                            tail = (logs / f"{role}.log").read_text(errors="replace")[-2000:]
                            raise RuntimeError(f"`course {role}` exited ({process.returncode}):\n{tail}")
                processes.sample()
                sending_seconds = time.time() - started
                progress(f"  {count:,} of {options.subscribers:,} sent, {elapsed:.0f} s")
                if sys.stdout.isatty():
                    print()
            finally:
                elsewhere = {
                    "SMTP sink (the harness)": process_cpu_seconds(sink.process.pid or 0) - sink_cpu,
                    "redis-server": redis_cpu_seconds(options.broker_url) - redis_cpu,
                }
                machine_after = machine_cpu_seconds()
                processes.stop()
                if wrk is not None and clicking.is_alive():
                    clicking.join()
                beside.close()
            marked_sent = sent_deliveries(database_url)
            clicks = None
            if options.click_seconds > 0:
                say(f"The click endpoints: `course web` as in production, wrk with {CONNECTIONS} connections ...")
                clicks = measure_clicks(environment, sent_subscribers(database_url), 1, options.click_seconds,
                                        logs, say)  # fmt: skip
                if clicks is not None:
                    clicks["consultation_clicks_recorded"] = recorded_clicks(database_url, "consultation")
        taken = sink.taken()
    finally:
        sink.stop()
        _forget_queue(options.broker_url, queue)

    used = (machine_after[0] - machine[0], machine_after[1] - machine[1])
    figures = _figures(options, limit.per_second, limit_count, len(message), started, due, taken, processes,
                       marked_sent, elsewhere, used)  # fmt: skip
    figures["claim_plan"] = plan
    figures["database"] = make_url(database_url).database  # its own, dropped by now
    figures["smtp_latency_ms"] = options.smtp_latency_ms
    figures["clicks"] = clicks
    for name in DURING_SEND:  # a window that outlasted the send measured the clicks partly alone
        if name in during:
            during[name]["within_send"] = during[name].pop("ended_after_s") <= sending_seconds
    figures["clicks_during_send"] = {"connections": CONNECTIONS, "seconds": options.click_seconds, **during} \
        if during else None  # fmt: skip
    options.results.mkdir(parents=True, exist_ok=True)
    path = options.results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{options.subscribers}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    for line in report(figures):
        say(line)
    say(f"Written to {path}")
    return figures


def _figures(
    options: Options, limit_rate: float, limit_count: int, message_bytes: int, started: float, due: datetime,
    taken: Any, processes: Processes, marked_sent: int, elsewhere: dict[str, float], machine: tuple[float, float],
) -> dict[str, Any]:  # fmt: skip
    times = taken.times
    first, last = (times[0], times[-1]) if times else (started, started)
    end_to_end = taken.count / (last - started) if taken.count and last > started else 0.0
    once_started = (taken.count - 1) / (last - first) if taken.count > 1 and last > first else 0.0
    latencies = [moment - due.timestamp() for moment in times]
    per_thousand = max(taken.count, 1) / 1000
    ours = [usage for usage in processes.usage.values() if not usage.role.startswith("postgres")]
    postgres = [usage for usage in processes.usage.values() if usage.role.startswith("postgres")]
    if postgres:
        elsewhere = {f"postgres ({len(postgres)} backends)": sum(usage.cpu_seconds for usage in postgres), **elsewhere}
    busy, total = machine
    # Our CPU per email: every process of ours (beat, workers and their pool), the PostgreSQL backends that
    # serve them and the broker; the sink stands for the mail server and is counted apart.
    ours_seconds = sum(usage.cpu_seconds for usage in processes.usage.values())
    ours_seconds += sum(seconds for role, seconds in elsewhere.items() if role.startswith("redis"))
    sink_seconds = sum(seconds for role, seconds in elsewhere.items() if role.startswith("SMTP sink"))
    emails = max(taken.count, 1)
    return {
        "subscribers": options.subscribers,
        "delivered": taken.count,
        "marked_sent": marked_sent,
        "duplicates": taken.duplicates,
        "without_message_id": taken.without_id,
        "emails_per_second": round(end_to_end, 1),
        "emails_per_second_once_sending": round(once_started, 1),
        "limit_emails_per_second": round(limit_rate, 1),
        "limit_messages": limit_count,
        "ratio": round(end_to_end / limit_rate, 3) if limit_rate else 0.0,
        "cpu_ms_per_email": round(ours_seconds * 1000 / emails, 3),
        "sink_cpu_ms_per_email": round(sink_seconds * 1000 / emails, 3),
        "seconds_to_first_email": round(first - started, 2),
        "seconds_total": round(last - started, 2),
        "due_to_accepted_p50_seconds": round(_percentile(latencies, 0.50), 2),
        "due_to_accepted_p99_seconds": round(_percentile(latencies, 0.99), 2),
        "message_bytes": message_bytes,
        "mean_message_bytes": round(taken.mean_bytes),
        "concurrency": options.concurrency,
        "processes": [
            {
                "process": usage.role,
                "cpu_seconds": round(usage.cpu_seconds, 2),
                "cpu_seconds_per_1000_emails": round(usage.cpu_seconds / per_thousand, 3),
                "peak_memory_mb": round(usage.peak_mb, 1),
            }
            for usage in ours
        ],
        # The rest of the work on this machine while ours ran: the database, the broker and the sink.
        "elsewhere": [
            {
                "process": role,
                "cpu_seconds": round(seconds, 2),
                "cpu_seconds_per_1000_emails": round(seconds / per_thousand, 3),
            }
            for role, seconds in elsewhere.items()
        ],
        "machine_busy": round(busy / total, 3) if total else 0.0,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def report(figures: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"{figures['delivered']:,} of {figures['subscribers']:,} emails arrived "
        f"({figures['duplicates']} twice; {figures['marked_sent']:,} marked sent).",
        f"  ours, end to end       {figures['emails_per_second']:>9,.1f} emails/s",
        f"  ours, once sending     {figures['emails_per_second_once_sending']:>9,.1f} emails/s",
        f"  the limit (bare sender){figures['limit_emails_per_second']:>9,.1f} emails/s"
        + (f" (each SMTP reply {figures['smtp_latency_ms']:g} ms late)" if figures.get("smtp_latency_ms") else ""),
        f"  ratio ours/limit       {figures['ratio']:>9.3f}",
        f"  our CPU per email      {figures['cpu_ms_per_email']:>9.3f} ms (beat, workers, PostgreSQL, broker; "
        f"the sink {figures['sink_cpu_ms_per_email']:.3f} ms apart)",
        f"  first email after      {figures['seconds_to_first_email']:>9.1f} s",
        f"  due to accepted        p50 {figures['due_to_accepted_p50_seconds']:.1f} s, "
        f"p99 {figures['due_to_accepted_p99_seconds']:.1f} s",
        f"  {'process':<28}{'CPU s':>8}{'CPU s/1000':>12}{'peak MB':>9}",
    ]
    for process in figures["processes"]:
        lines.append(f"  {process['process']:<28}{process['cpu_seconds']:>8.1f}"
                     f"{process['cpu_seconds_per_1000_emails']:>12.3f}{process['peak_memory_mb']:>9.1f}")  # fmt: skip
    for process in figures.get("elsewhere", []):
        lines.append(f"  {process['process']:<28}{process['cpu_seconds']:>8.1f}"
                     f"{process['cpu_seconds_per_1000_emails']:>12.3f}")  # fmt: skip
    if figures.get("machine_busy"):
        lines.append(f"  the machine's {figures['machine']['cpus']} cores were {figures['machine_busy']:.0%} busy")
    clicks = figures.get("clicks")
    if clicks:
        lines.append(
            f"  clicks, {clicks['connections']} connections{'requests/s':>14}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        )
        for name in ENDPOINTS:
            found = clicks[name]
            lines.append(f"    {name:<26}{found['requests_per_second']:>12,.0f}{found['p50_ms']:>9.1f}"
                         f"{found['p99_ms']:>9.1f}{found['errors']:>8}")  # fmt: skip
        lines.append(f"    consultation clicks recorded: {clicks['consultation_clicks_recorded']:,}")
    during = figures.get("clicks_during_send")
    if during and "error" in during:
        lines.append(f"  clicks during the send: wrk failed: {during['error']}")
    elif during:
        lines.append(f"  clicks during the send, {during['connections']} connections (the send's PostgreSQL "
                     f"figure holds the web's statements too)")  # fmt: skip
        for name in DURING_SEND:
            found = during[name]
            late = "" if found["within_send"] else "  (the send ended first: partly alone)"
            lines.append(f"    {name:<26}{found['requests_per_second']:>12,.0f}{found['p50_ms']:>9.1f}"
                         f"{found['p99_ms']:>9.1f}{found['errors']:>8}{late}")  # fmt: skip
    return lines
