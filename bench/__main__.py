"""``python -m bench``: the development measurements (``make bench``, ``make chaos``).

Not part of the product: the wheel does not ship ``bench/`` and nothing in ``course``, ``emails``,
``workers``, ``web`` or ``cli`` imports it. Each command measures and prints (and writes its figures to
``bench/results/`` as JSON); only ``chaos`` judges, by its exit code, whether a figure missed its target.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from course.curriculum import load_course
from course.settings import get_settings

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _send(arguments: argparse.Namespace) -> int:
    from bench.harness import Options, run

    run(Options(subscribers=arguments.subscribers, concurrency=arguments.concurrency, server_url=arguments.postgres,
                broker_url=arguments.redis, tick_seconds=arguments.tick_seconds,
                click_seconds=arguments.click_seconds, clicks_during_send=arguments.clicks_during_send,
                smtp_latency_ms=arguments.smtp_latency))  # fmt: skip
    return 0


def _claim(arguments: argparse.Namespace) -> int:
    from bench.claim import measure_claim

    measure_claim(arguments.postgres, arguments.table, arguments.due or max(1, arguments.table // 100),
                  get_settings().course_slug)  # fmt: skip
    return 0


def _insights(arguments: argparse.Namespace) -> int:
    from bench.insights import measure_insights

    measure_insights(arguments.postgres, arguments.subscribers, get_settings().course_slug)
    return 0


def _audience(arguments: argparse.Namespace) -> int:
    from bench.audience import measure_audience

    measure_audience(arguments.postgres, arguments.subscribers, get_settings().course_slug)
    return 0


def _import(arguments: argparse.Namespace) -> int:
    from bench.imports import measure_import

    measure_import(arguments.postgres, arguments.rows, get_settings().course_slug)
    return 0


def _studio(arguments: argparse.Namespace) -> int:
    from bench.studio import measure_studio

    measure_studio(arguments.postgres, get_settings().course_slug, arguments.runs)
    return 0


def _micro(arguments: argparse.Namespace) -> int:
    from bench.micro import print_table

    print_table(get_settings(), arguments.emails, arguments.count)
    return 0


def _heights(arguments: argparse.Namespace) -> int:
    from bench.screens import NotMeasured, print_heights

    settings = get_settings()
    try:
        print_heights(load_course(settings.course_slug), settings, arguments.out)
    except NotMeasured as error:
        print(f"bench heights: not measured: {error}", file=sys.stderr)
        return 1
    return 0


def _chaos(arguments: argparse.Namespace) -> int:
    from bench.chaos import COMPRESSED, SMALL, SMALL_SCENARIOS, Options, run

    base = SMALL if arguments.small else COMPRESSED if arguments.compressed or arguments.day_seconds else Options()
    if base.day_seconds is None and arguments.days not in (None, 1):
        raise ValueError("with real days each subscriber gets one email: --days needs --compressed")
    chosen = [name for name in (arguments.scenarios or "").split(",") if name]
    overrides = {name: value for name, value in (
        ("subscribers", arguments.subscribers), ("days", arguments.days), ("day_seconds", arguments.day_seconds),
        ("minute", arguments.fault_minute), ("repeats", arguments.repeats), ("concurrency", arguments.concurrency),
        ("burst_subscribers", arguments.burst_subscribers), ("broker_url", arguments.broker),
        ("results", arguments.results),
    ) if value is not None}  # fmt: skip
    options = dataclasses.replace(
        base, server_url=arguments.postgres, scenarios=tuple(chosen or (SMALL_SCENARIOS if arguments.small else ())),
        **overrides,
    )  # fmt: skip
    table = run(options)
    return 0 if table["ok"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Measure the course service (development).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    send = commands.add_parser(
        "send",
        help="the send path end to end beside this machine's limit (make bench)",
        description="Seed SUBSCRIBERS due now into a database of its own on PostgreSQL, run `course beat` and "
        "`course worker` on Redis sending to an SMTP sink on loopback, and print emails/s end to end beside a "
        "bare sender's on the same sink, with latency, CPU and memory per process; the figures also go to "
        "bench/results/ as JSON. A measurement, not a test: nothing is asserted.",
    )
    send.add_argument("--subscribers", type=int, default=100_000, help="subscribers due (default 100,000)")
    send.add_argument("--concurrency", type=int, default=2, help="worker processes, and SMTP connections (2)")
    send.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL server to create the database on")
    send.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the broker (a queue of its own)")
    send.add_argument("--tick-seconds", type=float, help="the beat's interval (default: as in production)")
    send.add_argument("--click-seconds", type=float, default=10.0,
                      help="seconds wrk requests each click endpoint after the send run (10; 0: none)")  # fmt: skip
    send.add_argument("--clicks-during-send", action="store_true",
                      help="also request consultation links, then exercise pages, for CLICK_SECONDS each "
                           "while the workers send")  # fmt: skip
    send.add_argument("--smtp-latency", type=float, default=0.0, metavar="MS",
                      help="the sink answers each write MS milliseconds late, as a mail server that far away "
                      "would (0: at once, as the ratio is measured)")  # fmt: skip
    send.set_defaults(handler=_send)

    claim = commands.add_parser("claim", help="one tick's claim among TABLE subscribers, 1%% of them due")
    claim.add_argument("table", type=int, metavar="TABLE", help="subscribers in the table (e.g. 1000000)")
    claim.add_argument("--due", type=int, help="how many are due (default: 1%% of TABLE)")
    claim.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL server to create the database on")
    claim.set_defaults(handler=_claim)

    insights = commands.add_parser(
        "insights", help="the studio's insights (their sums and the page) on a year of SUBSCRIBERS sign-ups"
    )
    insights.add_argument("subscribers", type=int, metavar="SUBSCRIBERS", help="sign-ups, about 20 events each")
    insights.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL server to create the database on")
    insights.set_defaults(handler=_insights)

    audience = commands.add_parser(
        "audience", help="the studio's list of a course's people (search, filters, pages) and a person's story"
    )
    audience.add_argument("subscribers", type=int, metavar="SUBSCRIBERS", help="people of the course (e.g. 1000000)")
    audience.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL server to create the database on")
    audience.set_defaults(handler=_audience)

    imports = commands.add_parser(
        "import", help="a list of ROWS people imported into a course, twice (the second: all known)"
    )
    imports.add_argument("rows", type=int, metavar="ROWS", help="rows of the file (e.g. 100000)")
    imports.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL server to create the database on")
    imports.set_defaults(handler=_import)

    studio = commands.add_parser(
        "studio", help="the studio's waits: a preview as typed, a burst of typing, the day-3 change saved and published"
    )
    studio.add_argument("--runs", type=int, default=20, help="previews measured (default 20; saves and publishes: 5)")
    studio.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL server to create the database on")
    studio.set_defaults(handler=_studio)

    micro = commands.add_parser("micro", help="render and MIME of COUNT messages of each email, in this process")
    micro.add_argument("--count", type=int, default=500, help="messages per email (default 500)")
    micro.add_argument("emails", nargs="*", help="only these emails (e.g. day-05 welcome)")
    micro.set_defaults(handler=_micro)

    heights = commands.add_parser(
        "heights", help="write every email (course render) and print how many phone screens each is tall"
    )
    heights.add_argument("--out", type=Path, required=True, help="folder to write the emails into")
    heights.set_defaults(handler=_heights)

    chaos = commands.add_parser(
        "chaos",
        help="run the real beat and worker through faults and count what the subscribers got (make chaos)",
        description="Each scenario seeds SUBSCRIBERS over several time zones into a database of its own, runs "
        "`course beat` and `course worker` with production's settings (real days: a morning of 20,000 due at "
        "once; the 30 s tick, the 600 s lease) on a Redis of its own (or --broker), sending to a scriptable SMTP "
        "server on loopback, injects its fault (SIGKILL at an SMTP point, Redis or PostgreSQL restarted, no beat, "
        "SMTP refusals, clock skew ...) and counts, per subscriber and course day, what was due, delivered, lost "
        "and duplicated, the longest delay, how long recovery took and when the last email came after the fault. "
        "Prints the table, writes it to bench/results/ as JSON, and exits 1 when a figure misses its target.",
    )
    chaos.add_argument(
        "--small",
        action="store_true",
        help="the CI version: 300 subscribers, 6-second days, production's lease, a few scenarios",
    )
    chaos.add_argument(
        "--compressed",
        action="store_true",
        help="compressed days (12 s, three emails each, 2,000 subscribers): what goes on over days",
    )
    chaos.add_argument("--scenarios", help="comma-separated scenario names (default: all; --small: a few)")
    chaos.add_argument("--subscribers", type=int, help="subscribers in each scenario (default 20,000)")
    chaos.add_argument("--days", type=int, help="course emails each subscriber gets (--compressed: default 3)")
    chaos.add_argument("--day-seconds", type=int, help="COURSE_DAY_SECONDS (implies --compressed; default 12)")
    chaos.add_argument("--fault-minute", type=float, metavar="SECONDS",
                       help="how long a minute of fault lasts (Redis away 1, no beat 10; default 60)")  # fmt: skip
    chaos.add_argument("--repeats", type=int, help="SIGKILLs in each kill scenario (default 3)")
    chaos.add_argument("--concurrency", type=int, help="the worker's pool processes (default 2)")
    chaos.add_argument("--burst-subscribers", type=int, help="the burst scenario's subscribers (default 100,000)")
    chaos.add_argument("--broker", help="BROKER_URL (default: the run's own Redis; amqp://... for RabbitMQ)")
    chaos.add_argument("--postgres", default=POSTGRES, help="the PostgreSQL server to create each database on")
    chaos.add_argument("--results", type=Path, help="the folder the JSON table goes to (default bench/results)")
    chaos.set_defaults(handler=_chaos)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except (ValueError, RuntimeError, OSError, SQLAlchemyError, RedisError) as error:
        print(f"bench {arguments.command}: {error}", file=sys.stderr)
        return 2 if arguments.command == "chaos" else 1


if __name__ == "__main__":
    sys.exit(main())
