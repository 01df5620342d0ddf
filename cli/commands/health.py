"""`course health`: exit 0 when the database and the broker answer (and the beat ticks), for health checks."""

from __future__ import annotations

import argparse

from course.settings import get_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    health = commands.add_parser("health", help="exit 0 when the database and broker answer (for health checks)")
    health.add_argument("--tick-age", type=float, help="also require a beat tick to have run within this many seconds")
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
    for name, state in results.items():
        print(f"{name}: {state}")
    return 0 if all(state.startswith("ok") for state in results.values()) else 1
