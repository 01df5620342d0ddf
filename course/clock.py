"""One clock for every process: the database server's.

The beat stamps what is due, a worker checks that it is due before it sends and records when it sent,
the web app records a sign-up and queues its confirmation: when these run on machines whose clocks
disagree, a worker two minutes slow finds nothing due yet (and the batch waits out its lease), one two
minutes fast records sends in the future (and the next day waits for it). So they all go by the
database's clock, as job queues on a database usually do: each process reads it every
``CLOCK_CHECK_SECONDS`` and keeps the offset to its own, so that reading the time costs nothing between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # after a failed reading (the database away): the last offset meanwhile
WARN_SECONDS = 2.0  # an offset beyond this is logged: the machine's clock needs NTP


def system_clock() -> datetime:
    return datetime.now(UTC)


class DatabaseClock:
    """A callable that tells the time by the database server's clock (see the module's doc)."""

    def __init__(self, engine: Engine, check_every: float = 30.0, local: Callable[[], datetime] = system_clock):
        self.engine = engine
        self.check_every = check_every
        self.local = local
        self.offset = timedelta(0)
        self._next_check = 0.0  # monotonic: now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        if time.monotonic() >= self._next_check:
            self.check()
        return self.local() + self.offset

    def check(self) -> None:
        """Read the database's clock and keep its offset to ours. One thread reads; the others go on with
        the offset they have. A failed reading keeps the last offset and is tried again soon."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            with self.engine.connect() as connection:
                before, started = self.local(), time.monotonic()
                theirs = connection.scalar(text("SELECT clock_timestamp()"))
                took = time.monotonic() - started
            # The server read its clock somewhere within the round trip: take the middle.
            offset = theirs - (before + timedelta(seconds=took / 2))
            if abs((offset - self.offset).total_seconds()) > WARN_SECONDS:  # the first reading's, or a jump
                log.warning("this machine's clock is %+.1f s off the database's: going by the database's",
                            -offset.total_seconds())  # fmt: skip
            self.offset = offset
            self._next_check = time.monotonic() + self.check_every
        except SQLAlchemyError as error:
            log.info("could not read the database's clock (trying again in %ss): %s", RETRY_SECONDS, error)
            self._next_check = time.monotonic() + min(self.check_every, RETRY_SECONDS)
        finally:
            self._lock.release()
