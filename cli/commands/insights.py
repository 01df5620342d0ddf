"""`course insights`: sum the figures of the studio's insights page now, not at the beat's next refresh."""

from __future__ import annotations

import argparse

from cli.common import CommandError, require_schema
from course.curriculum import load_course
from course.settings import get_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summing = commands.add_parser(
        "insights",
        help="sum the studio's insights now",
        description="Sum the figures the studio's insights page reads, now: the sign-up weeks still in the course "
        "(what the beat does every INSIGHTS_REFRESH_SECONDS), every week (--all), or the weeks from a date on.",
    )
    summing.add_argument("--all", action="store_true", help="every sign-up week, not only those still in the course")
    summing.add_argument("--since", help="the weeks from this date (YYYY-MM-DD) on")
    summing.set_defaults(handler=_insights)


def _insights(arguments: argparse.Namespace) -> int:
    """`course insights`: sum the studio's insights now (the beat does it every few minutes)."""
    import time
    from datetime import date

    from cli.root import Root
    from course.insights import summing

    settings = get_settings()
    require_schema(settings)
    course = load_course(settings.course_slug)
    since = None
    if arguments.since:
        try:
            since = date.fromisoformat(arguments.since)
        except ValueError:
            raise CommandError(f"--since takes a date such as 2026-11-02, not {arguments.since!r}") from None
    with Root(settings) as root, root.sessions() as session:
        started, now = time.perf_counter(), root.clock()
        if arguments.all or since:
            cohorts = summing.refresh(session, course, now, since=since)
        else:
            cohorts = summing.refresh_active(session, course, now)
        session.commit()
    print(f"Summed the figures of {cohorts} sign-up weeks of {course.slug} in {time.perf_counter() - started:.2f} s.")
    return 0
