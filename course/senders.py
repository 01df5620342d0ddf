"""Which workers are still sending, as PostgreSQL sees it: an advisory lock per batch.

A worker takes a session-level advisory lock (``LOCK_SPACE``, a random key) on a connection of its own
before it takes a batch, records the key on the batch (``send_batches.sender_key``), and lets go once the
batch is recorded. A lock belongs to its connection: when the worker's process dies (SIGKILL, the OOM
killer, a crash), its kernel closes the connection, PostgreSQL frees the lock at once, and the beat hands
out every batch whose key nobody holds at its next tick (:func:`course.deliveries.claim.recover_batches`),
instead of waiting for the lease to run out.

The lease stays, for what a lock cannot tell:

- a machine that vanishes without closing its connections (power, network): PostgreSQL notices only
  when TCP keepalives give up;
- behind PgBouncer in transaction mode a lock stays with the server's connection, not the worker's;
- a worker alive but stuck (a server that stalls past the timeout) keeps its lock, rightly: the lease
  is what takes its batch back (and the worker then sends only what is still its own).

A batch handed out while its first worker still sends (a lock lost with a terminated connection, a
lease run out) costs at most the chunk under way: the worker checks before each chunk that the batch is
still its own (course/deliveries/sending.py, ``still_ours``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# The first half of every key ("cour"), so that our locks are told from any other application's.
LOCK_SPACE = 0x636F7572
_TRIES = 8  # random 31-bit keys: a clash with a lock held at this moment is a one-in-hundreds-of-millions


@contextmanager
def batch_lock(engine: Engine) -> Iterator[int]:
    """Hold an advisory lock for the length of a batch and yield its key. Take it before the batch is
    marked "sending", leave after its last commit."""
    with engine.connect() as opened:
        # Autocommit: the connection sits idle for the whole batch, and an open transaction would hold
        # back VACUUM (and count as idle in transaction) all that time.
        connection = opened.execution_options(isolation_level="AUTOCOMMIT")
        key = _take(connection)
        try:
            yield key
        finally:
            _let_go(connection, key)


def _take(connection: Connection) -> int:
    for _ in range(_TRIES):
        key = secrets.randbelow(2**31 - 1) + 1
        taken = connection.scalar(text("SELECT pg_try_advisory_lock(:space, :key)"), {"space": LOCK_SPACE, "key": key})
        if taken:
            return key
    raise RuntimeError("could not take a sender's advisory lock: every key tried was held")


def _let_go(connection: Connection, key: int) -> None:
    """Unlock; a connection that cannot say it did (it died with the lock, or the unlock failed) is
    thrown away rather than pooled, so that no lock outlives its batch on a pooled connection."""
    try:
        released = connection.scalar(text("SELECT pg_advisory_unlock(:space, :key)"), {"space": LOCK_SPACE, "key": key})
    except SQLAlchemyError as error:
        log.info("sender lock %s: the connection is gone, and the lock with it: %s", key, error)
        released = False
    if not released:
        connection.invalidate()


def sender_gone() -> TextClause:
    """PostgreSQL: a batch whose worker no longer holds its lock (for a WHERE clause over
    ``send_batches``). pg_locks lists the locks held at this moment, in every database of the server:
    only ours count. Not correlated with the row: PostgreSQL reads the lock table once per statement
    (into a hashed set), not once per delivery in flight."""
    return text(
        "send_batches.sender_key IS NOT NULL AND send_batches.sender_key NOT IN (SELECT CAST(held.objid AS bigint)"
        " FROM pg_locks AS held WHERE held.locktype = 'advisory' AND held.granted AND held.objsubid = 2"
        " AND held.classid = CAST(:sender_space AS oid)"
        " AND held.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    ).bindparams(sender_space=LOCK_SPACE)
