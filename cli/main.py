"""The ``course`` command: one entry point that wires the rooms together for operators.

It lives outside ``course/`` because it reaches every room (``course`` must not import ``emails``),
and each subcommand only parses arguments and calls into the room that does the work. Each subcommand
is a module of cli/commands/ with its arguments and its handler; this one puts them together.
"""

from __future__ import annotations

import argparse
import sys

from cli.commands import beat, db, demo, dkim_record, health, insights, mailbox, render, studio, web, worker
from cli.common import CommandError, reason
from course.db import describe
from course.settings import get_settings
from emails.dkim import DkimError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="Run and inspect the email course.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The order of `course --help`.
    for command in (render, demo, web, worker, beat, health, studio, insights, dkim_record, mailbox, db):
        command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    arguments = build_parser().parse_args(argv)
    handler = arguments.handler
    try:
        return int(handler(arguments))
    except (CommandError, DkimError) as error:
        print(f"{_name(arguments)}: {error}", file=sys.stderr)
        return 1
    except OperationalError as error:
        # One line with where and why, not a driver's traceback.
        print(
            f"{_name(arguments)}: cannot use the database ({describe(get_settings().database_url)}): {reason(error)}",
            file=sys.stderr,
        )
        return 1


def _name(arguments: argparse.Namespace) -> str:
    action = getattr(arguments, "action", None)
    return f"course {arguments.command}" + (f" {action}" if action else "")


if __name__ == "__main__":
    sys.exit(main())
