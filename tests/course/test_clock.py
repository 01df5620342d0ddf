"""Every process tells the time by the database's clock (course/clock.py), whatever its own machine says."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from course.clock import DatabaseClock
from course.db import make_engine


class Skewed:
    """This machine's clock, off by ``skew`` (and movable)."""

    def __init__(self, skew: timedelta) -> None:
        self.skew = skew

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skew


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again on leaving: nothing listens there


def _in_step(database_url: str) -> timedelta:
    """What to add to this machine's clock to read the database's: nothing on most machines, a year when
    the suite runs with its calendar moved (TESTS_DAYS_AHEAD) and the database's is not."""
    return _database_now(database_url) - datetime.now(UTC)


def _database_now(database_url: str) -> datetime:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        value = connection.scalar(text("SELECT clock_timestamp()"))
    engine.dispose()
    assert isinstance(value, datetime)
    return value


@pytest.mark.parametrize("skew", [timedelta(minutes=-2), timedelta(minutes=2), timedelta(0)])
def test_a_machine_whose_clock_is_off_goes_by_the_databases(database_url: str, skew: timedelta) -> None:
    engine = make_engine(database_url)
    in_step = _in_step(database_url)
    clock = DatabaseClock(engine, check_every=60, local=Skewed(in_step + skew))
    told = clock()
    assert abs((told - _database_now(database_url)).total_seconds()) < 1.0
    assert abs((clock.offset + skew).total_seconds()) < 1.0
    engine.dispose()


def test_the_offset_is_read_again_and_a_jump_of_the_local_clock_is_logged(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    in_step = _in_step(database_url)
    local = Skewed(in_step)
    clock = DatabaseClock(engine, check_every=3600, local=local)
    clock()
    local.skew = in_step + timedelta(hours=3)  # someone set this machine's clock
    assert (clock() - _database_now(database_url)).total_seconds() > 3 * 3600 - 5, "not read again before its time"
    with caplog.at_level(logging.WARNING, logger="course.clock"):
        clock.check()
    assert abs((clock() - _database_now(database_url)).total_seconds()) < 1.0
    assert "this machine's clock is +10800" in caplog.text
    engine.dispose()


def test_a_database_out_of_reach_leaves_the_last_offset_and_raises_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nowhere?connect_timeout=2")
    clock = DatabaseClock(engine, check_every=60, local=Skewed(timedelta(minutes=5)))
    clock.offset = timedelta(minutes=-5)  # as read before the database went away
    with caplog.at_level(logging.INFO, logger="course.clock"):
        told = clock()
    assert abs((told - datetime.now(UTC)).total_seconds()) < 1.0
    assert "could not read the database's clock" in caplog.text
    engine.dispose()
