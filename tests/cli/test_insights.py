"""`course insights`: the figures summed on demand, for operators (the beat does it every few minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from course.curriculum import Course
from course.db import make_engine, make_sessionmaker
from course.insights.measures import Selection
from course.insights.reading import read
from course.models.insights import InsightCount

from ..course.test_insights import WEEK_A, WEEK_B, seed

COURSE = Path(sys.executable).parent / "course"


def insights(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [str(COURSE), "insights", *arguments], env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_every_week_is_summed_with_all_and_a_bad_date_is_named(database_url: str, course: Course) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        seed(session)
    result = insights(database_url, "--all")
    assert result.returncode == 0, result.stderr
    assert "Summed the figures of 2 sign-up weeks of building-emotional-intimacy" in result.stdout
    with sessions() as session:
        assert [stage.count for stage in read(session, course, Selection(WEEK_A, WEEK_B)).funnel][:2] == [6, 5]
        rows = session.scalar(select(func.count()).select_from(InsightCount))
    bad = insights(database_url, "--since", "last tuesday")
    assert bad.returncode == 1 and "--since takes a date such as 2026-11-02, not 'last tuesday'" in bad.stderr
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(InsightCount)) == rows  # nothing lost
    engine.dispose()
