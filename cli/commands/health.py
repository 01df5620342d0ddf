"""`course health`: exit 0 when the database and the broker answer (and the beat ticks, and a worker answers),
for health checks."""

from __future__ import annotations

import argparse
import socket

from course.settings import get_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    health = commands.add_parser("health", help="exit 0 when the database and broker answer (for health checks)")
    health.add_argument("--tick-age", type=float, help="also require a beat tick to have run within this many seconds")
    health.add_argument(
        "--worker", nargs="?", const="", metavar="NODE",
        help="also require this Celery worker to answer a ping (default node: CELERY_QUEUE@this host, as "
        "`course worker` names itself)",
    )  # fmt: skip
    health.set_defaults(handler=_health)


def _health(arguments: argparse.Namespace) -> int:
    from web.health import check
    from workers.engine import seconds_since_last_tick

    settings = get_settings()
    results = check(settings)
    if arguments.tick_age is not None:
        age = seconds_since_last_tick(settings)
        results["tick"] = "never ran" if age is None else f"{age:.0f}s ago"
        if age is None or age > arguments.tick_age:
            results["tick"] = f"stale: {results['tick']}"
        else:
            results["tick"] = f"ok ({results['tick']})"
    if arguments.worker is not None:
        results["worker"] = _ping_worker(arguments.worker or f"{settings.celery_queue}@{socket.gethostname()}")
    for name, state in results.items():
        print(f"{name}: {state}")
    return 0 if all(state.startswith("ok") for state in results.values()) else 1


def _ping_worker(node: str) -> str:
    """A Celery control ping to one worker node, through the deployment's broker."""
    from cli.root import Root

    with Root.from_environment() as root:
        try:
            replies = root.celery.control.ping(destination=[node], timeout=5)
        except Exception as error:  # the broker is away: reported above as well
            return f"unreachable: {type(error).__name__}"
    return f"ok ({node})" if any(node in reply for reply in replies) else f"no answer from {node}"
