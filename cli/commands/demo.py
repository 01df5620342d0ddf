"""`course demo`: the parser of the one-process demo; cli/demo.py runs it."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="run everything in one process on this machine and watch the course arrive",
        description="A PostgreSQL of its own (from a wheel), an in-process broker, worker and beat, and the web "
        "app with an inbox page that "
        "shows every email sent. A sample subscriber signs up and the course arrives in minutes.",
    )
    demo.add_argument("--day-seconds", type=int, default=10, help="length of a course day (default 10)")
    demo.add_argument("--port", type=int, default=8000, help="web port (default 8000; 0: a free one, printed)")
    demo.add_argument("--email", default="you@example.com", help="the sample subscriber's address")
    demo.add_argument("--keep", action="store_true", help="keep the previous demo's data instead of starting afresh")
    demo.add_argument("--until-complete", action="store_true", help="stop once the whole course has been sent")
    demo.set_defaults(handler=_demo)


def _demo(arguments: argparse.Namespace) -> int:
    from cli import demo

    return demo.run(
        day_seconds=arguments.day_seconds,
        port=arguments.port,
        fresh=not arguments.keep,
        until_complete=arguments.until_complete,
        email=arguments.email,
    )
