"""The suite's calendar (tests/support/calendar.py): with TESTS_DAYS_AHEAD, this process and every Python
process it starts are moved exactly that many days ahead of PostgreSQL's clock, no more; without, none."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import psycopg

from .support import calendar
from .support.databases import ADMIN_URL


def test_this_process_and_the_ones_it_starts_are_moved_by_the_days_asked_once() -> None:
    with psycopg.connect(ADMIN_URL) as connection:
        row = connection.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    ahead = (datetime.now(UTC) - row[0]).total_seconds()
    assert abs(ahead - calendar.days_ahead() * 86400) < 60, f"{ahead / 86400:.2f} days ahead"
    started = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"], capture_output=True, text=True, check=True,
        timeout=60,
    )  # fmt: skip
    assert abs(float(started.stdout) - time.time()) < 60  # the same calendar as ours


def test_a_process_that_reads_the_clock_late_has_the_same_clock_as_the_others() -> None:
    """A ticking moved clock starts at the travel, not at the process's first reading of it (time-machine's
    own starts at the first reading: a process that read it seconds after starting ran seconds behind)."""
    started = subprocess.run(
        [sys.executable, "-c", "import time; time.sleep(3); print(time.time())"], capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    behind = time.time() - float(started.stdout)  # the time since it printed, on a clock shared with it
    assert 0 <= behind < 1.5, behind
