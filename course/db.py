"""Engines and sessions for PostgreSQL (the one database: production, the tests and the demo's embedded
server), and whether a database's schema is the one this code expects."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

# The migrations: the package course.migrations of an installed wheel (the container image's), the
# top-level alembic/ folder of a checkout.
_SHIPPED = Path(__file__).resolve().parent / "migrations"
MIGRATIONS = _SHIPPED if (_SHIPPED / "env.py").is_file() else Path(__file__).resolve().parents[1] / "alembic"
UPGRADE_HINT = "run `course db upgrade`"


def make_engine(database_url: str, *, pre_ping: bool = True, plan_each_time: bool = False, **options: Any) -> Engine:
    """An engine.

    ``pre_ping``: test each connection as it is taken from the pool (a round trip), so that a process
    that sat idle through a database restart does not fail its next statement. The web app does without:
    it takes a connection per request, thousands a second, and SQLAlchemy drops the whole pool on the
    first disconnect it sees, so a restart costs one failed request per process at most.

    ``plan_each_time``: PostgreSQL plans each statement when it runs (``plan_cache_mode``), for the send
    path. Its statements are prepared (psycopg prepares what a connection runs five times), and PostgreSQL
    soon keeps one generic plan per prepared statement; but the send queue's tables grow by orders of
    magnitude in a morning: a plan made while ``deliveries`` was empty scans it whole for every reader of a
    chunk (30 ms a chunk at 20,000 rows, until autovacuum's next ANALYZE), where a plan made now takes its
    index. Planning each time costs tens of microseconds a statement; a chunk holds ten emails."""
    url = make_url(database_url)
    if plan_each_time and url.get_backend_name() == "postgresql":
        arguments = dict(options.pop("connect_args", {}))
        arguments["options"] = f"{arguments.get('options', '')} -c plan_cache_mode=force_custom_plan".strip()
        options["connect_args"] = arguments
    return create_engine(url, pool_pre_ping=pre_ping, **options)


def serialise(session: Session, name: str) -> None:
    """Wait until no other transaction holds ``name``, and hold it until this one ends (commit or rollback):
    a transaction-level advisory lock on the name's hash (a rare collision only makes two names wait for
    each other)."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# --- Waking the workers once their batches are committed --------------------------------------------------
#
# A worker must find a batch committed, so it is woken only after the transaction that queued the batch
# commits, and never if it rolls back. The rules that queue batches (a sign-up's confirmation, a welcome, the
# beat's claim) say so with :func:`hand_over_after_commit`; the session remembers how many, and its commit
# gives them to the waking its sessionmaker was given (:func:`hand_over_with`, in the composition root). No
# caller has to remember to wake a worker, or to wait for the commit first.

_QUEUED = "course.queued_batches"  # Session.info: how many batches the transaction queued
_WAKE = "course.wake"  # Session.info, from its sessionmaker: who to tell


def hand_over_after_commit(session: Session, batches: int) -> None:
    """Wake a worker for each of ``batches`` once this session's transaction commits (forgotten if it rolls
    back)."""
    session.info[_QUEUED] = session.info.get(_QUEUED, 0) + batches


def hand_over_with(sessions: sessionmaker[Session], wake: Callable[[int], None]) -> None:
    """The sessions ``sessions`` makes wake the workers with ``wake`` (how many batches), after each commit.

    Sessions made without one (a script's, a test's) commit their batches and leave them to the beat, which
    wakes a worker for each batch nobody took at its next tick, as when the broker lost its messages."""
    sessions.kw.setdefault("info", {})[_WAKE] = wake


@event.listens_for(Session, "after_commit")
def _hand_over(session: Session) -> None:
    queued = session.info.pop(_QUEUED, 0)
    wake = session.info.get(_WAKE)
    if queued and wake is not None:
        wake(queued)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction (a savepoint's keeps the rest's)
        session.info.pop(_QUEUED, None)


def describe(database_url: str) -> str:
    """Where the database is, for messages: host (or socket folder), port and name, never the password."""
    url = make_url(database_url)
    host = url.host or str(url.query.get("host") or "localhost")
    return f"PostgreSQL at {host}:{url.port or 5432}/{url.database or ''}"


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
