"""The suite on another day: ``TESTS_DAYS_AHEAD=365 make test`` runs every test with this machine's
calendar moved a year ahead (the wall clock only: PostgreSQL's clock, the tests' own injected clocks
and the monotonic clock stay as they are), so that a test or a piece of code that mixes the wall clock
with the database's or an injected one fails here, not on the day the calendar gets there.

time-machine moves ``time.time()``, ``datetime.now()`` and their kin inside a Python process, for every
thread; the processes the tests start get it through ``days_ahead/sitecustomize.py``. (libfaketime,
the usual tool, cannot: with the monotonic clock left alone it breaks Python 3.11's ``time.sleep``,
and with it moved it hangs ``threading.Event.wait``: wolfcw/libfaketime#426 and #390.)
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ENVIRONMENT = "TESTS_DAYS_AHEAD"
SITE = Path(__file__).resolve().parent / "days_ahead"


def days_ahead() -> int:
    text = os.environ.get(ENVIRONMENT, "").strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise SystemExit(f"{ENVIRONMENT} must be a whole number of days, not {text!r}") from None


_travelling = False  # this process's calendar is moved already


def travel_from_environment() -> None:
    """Move this process's calendar when the environment asks for it, once; else do nothing.

    Once: a pytest-xdist worker is a process the suite started, so its sitecustomize moves it before its
    conftest asks again (twice would put it two years ahead of the processes it starts)."""
    global _travelling
    days = days_ahead()
    if not days or _travelling:
        return
    import time_machine  # a test dependency: only when asked for

    time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True).start()
    # time-machine starts a ticking clock at its first reading, not at the travel: a process that first
    # read the time seconds after it started (imports, a sleep) ran that much behind the others, and the
    # chaos suite's harness and its SMTP server disagreed by five seconds. Read now: every process is the
    # machine's clock plus the same days.
    time.time()
    _travelling = True


def start() -> int:
    """In the test process: move its calendar, and that of every Python process it starts."""
    days = days_ahead()
    if days:
        travel_from_environment()
        root = str(Path(__file__).resolve().parents[2])  # so that sitecustomize finds tests.support
        paths = [str(SITE), root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    return days
