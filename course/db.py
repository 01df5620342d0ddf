"""Engines and sessions for PostgreSQL (the one database: production, the tests and the demo's embedded
server), and whether a database's schema is the one this code expects."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
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


def make_engine(database_url: str, *, pre_ping: bool = True, **options: Any) -> Engine:
    """An engine.

    ``pre_ping``: test each connection as it is taken from the pool (a round trip), so that a process
    that sat idle through a database restart does not fail its next statement. The web app does without:
    it takes a connection per request, thousands a second, and SQLAlchemy drops the whole pool on the
    first disconnect it sees, so a restart costs one failed request per process at most."""
    return create_engine(make_url(database_url), pool_pre_ping=pre_ping, **options)


def serialise(session: Session, name: str) -> None:
    """Wait until no other transaction holds ``name``, and hold it until this one ends (commit or rollback):
    a transaction-level advisory lock on the name's hash (a rare collision only makes two names wait for
    each other)."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# --- Handing deliveries to the workers once they are committed -------------------------------------------
#
# A worker must find a delivery committed, so it is queued only after the transaction that made it commits,
# and never if it rolls back. The rules that make deliveries due now (a sign-up's confirmation, a welcome,
# the beat's claim) say so with :func:`hand_over_after_commit`; the session remembers them, and its commit
# gives them to the queue its sessionmaker was given (:func:`hand_over_with`, in the composition root). No
# caller has to remember to enqueue, or to wait for the commit first.

_QUEUED = "course.queued_deliveries"  # Session.info: the transaction's deliveries for the workers
_ENQUEUE = "course.enqueue"  # Session.info, from its sessionmaker: where they go


def hand_over_after_commit(session: Session, delivery_ids: Iterable[int]) -> None:
    """Give these deliveries to the workers once this session's transaction commits (forgotten if it rolls
    back)."""
    session.info.setdefault(_QUEUED, []).extend(delivery_ids)


def hand_over_with(sessions: sessionmaker[Session], enqueue: Callable[[list[int]], None]) -> None:
    """The sessions ``sessions`` makes give what they hand over to ``enqueue``, after each commit.

    Sessions made without one (a script's, a test's) commit what they hand over and leave it to the
    beat, which hands out a claimed delivery nobody took once its lease runs out
    (:func:`course.deliveries.claim.release_abandoned`), as when the broker was away."""
    sessions.kw.setdefault("info", {})[_ENQUEUE] = enqueue


@event.listens_for(Session, "after_commit")
def _hand_over(session: Session) -> None:
    queued = session.info.pop(_QUEUED, None)
    enqueue = session.info.get(_ENQUEUE)
    if queued and enqueue is not None:
        enqueue(queued)


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
