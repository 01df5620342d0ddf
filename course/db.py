"""Engines and sessions for PostgreSQL (production, tests) and SQLite (the embedded demo), and whether a
database's schema is the one this code expects."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

# The migrations, beside the packages in the repository (and in the container image).
MIGRATIONS = Path(__file__).resolve().parents[1] / "alembic"
UPGRADE_HINT = "run `course db upgrade`"


def make_engine(database_url: str, *, create_folder: bool = True, pre_ping: bool = True, **options: Any) -> Engine:
    """An engine. For SQLite, ``create_folder`` makes the file's folder (only what creates a database should).

    ``pre_ping``: test each connection as it is taken from the pool (a round trip), so that a process
    that sat idle through a database restart does not fail its next statement. The web app does without:
    it takes a connection per request, thousands a second, and SQLAlchemy drops the whole pool on the
    first disconnect it sees, so a restart costs one failed request per process at most."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if create_folder and url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # The demo's web app, worker and beat are threads of one process sharing this file.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, **options)


def serialise(session: Session, name: str) -> None:
    """Wait until no other transaction holds ``name``, and hold it until this one ends (commit or rollback).

    PostgreSQL: a transaction-level advisory lock on the name's hash (a rare collision only makes two
    names wait for each other). SQLite, the one-process demo, has none: its single writer already runs
    one write transaction at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def describe(database_url: str) -> str:
    """Where the database is, for messages: host, port and name, never the password."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {Path(str(url.database)).resolve()}"
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def sqlite_file_missing(database_url: str) -> bool:
    url: URL = make_url(database_url)
    return (
        url.get_backend_name() == "sqlite"
        and bool(url.database)
        and url.database != ":memory:"
        and not Path(str(url.database)).is_file()
    )


@dataclass(frozen=True)
class SchemaState:
    """How the database's schema compares with the migrations this code ships with."""

    current: tuple[str, ...]
    expected: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.expected)

    def describe(self) -> str:
        if self.up_to_date:
            return "ok"
        if not self.current:
            return f"no schema yet: {UPGRADE_HINT}"
        return f"schema at {', '.join(self.current)}, this version needs {', '.join(self.expected)}: {UPGRADE_HINT}"


@functools.cache  # the migrations ship with the code: read once per process
def expected_revisions() -> tuple[str, ...]:
    return tuple(ScriptDirectory(str(MIGRATIONS)).get_heads())


def schema_state(engine: Engine) -> SchemaState:
    """Read the database's Alembic revision (connecting raises when the database is unreachable)."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return SchemaState(tuple(current), expected_revisions())
