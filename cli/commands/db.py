"""`course db`: migrate the database schema to the latest, or check the models against the migrations."""

from __future__ import annotations

import argparse
import sys

from course.settings import get_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the database schema")
    db.add_argument("action", choices=["upgrade", "check"], help="upgrade: migrate to the latest; check: drift")
    db.set_defaults(handler=_db)


def _db(arguments: argparse.Namespace) -> int:
    from cli import database

    settings = get_settings()
    if arguments.action == "upgrade":
        database.upgrade(settings.database_url)
        print("The database schema is up to date.")
        return 0
    drift = database.check(settings.database_url)
    if drift:
        print(f"course db check: the models and the migrations differ: {drift}", file=sys.stderr)
        return 1
    print("The models and the migrations agree.")
    return 0
