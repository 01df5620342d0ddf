"""`python -m bench chaos --small`, as CI runs it: the real beat and worker through a few faults, strict figures.

A few hundred subscribers, six-second course days: a worker SIGKILLed after the server's 250 and before
the "sent" commit, 451 on RCPT, Redis flushed while tasks are queued, every database connection killed
by pg_terminate_backend. Nothing may be lost, duplicates stay within the messages in flight at each kill,
and nobody gets two course days on one (compressed) date.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.chaos import SMALL_SCENARIOS

from ..support.databases import sqlalchemy_url


def test_the_small_chaos_suite_loses_nothing_and_duplicates_only_what_was_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["chaos", "--small", "--results", str(tmp_path), "--postgres", sqlalchemy_url("postgres")])
    out = capsys.readouterr().out
    table = json.loads(next(tmp_path.glob("*-chaos-300.json")).read_text())
    figures = {row["scenario"]: row for row in table["scenarios"]}
    assert list(figures) == list(SMALL_SCENARIOS), out
    for name, row in figures.items():
        assert row["not_run"] is None, (name, row["not_run"])
        assert row["due"] > 0 and row["delivered"] == row["due"], (name, out)
        assert row["lost"] == 0 and row["extra"] == 0, (name, out)
        assert row["duplicated"] <= row["duplicate_bound"], (name, out)
        assert row["two_on_one_date"] == 0, (name, out)
        assert row["fault_seconds"] is not None, f"{name}: the fault never happened"
    # Each kill hit a chunk mid-way: at least the message that had its 250 was in flight, at most a chunk
    # (10) per pool process (2).
    kills = figures["kill-after-250"]["in_flight_at_faults"]
    assert len(kills) == 2 and all(1 <= count <= 10 * 2 for count in kills), kills
    assert figures["smtp-451-rcpt"]["refused"].get("rcpt 451", 0) > 0
    assert figures["smtp-451-rcpt"]["duplicated"] == figures["redis-flush"]["duplicated"] == 0
    assert code == 0 and table["ok"], out
    assert "scenario" in out and "kill-after-250" in out
