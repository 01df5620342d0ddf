"""`python -m bench heights`: every email written as `course render` writes it, and its height on a phone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ..cli.test_render import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]


def heights(out: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the project's own module
        [sys.executable, "-m", "bench", "heights", "--out", str(out)], env={**os.environ, **ENVIRONMENT, **environment},
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_it_prints_how_long_each_email_is_on_a_phone(tmp_path: Path) -> None:
    result = heights(tmp_path, CHROMIUM="/usr/bin/chromium")
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    assert len(re.findall(r"^\S+ +[\d,]+ px \([\d.]+ screens\)$", printed, re.MULTILINE)) == 22, printed
    summary = re.search(
        r"On a phone \(375 x 812 px a screen\): welcome ([\d,]+) px \(([\d.]+) screens\), "
        r"completion ([\d,]+) px \(([\d.]+) screens\) the longest day (day-\d\d) ([\d,]+) px", printed)  # fmt: skip
    assert summary, printed[-600:]
    welcome_screens = float(summary.group(2))
    assert welcome_screens <= 4.0  # it was 12.9 before the edit: the checklist started on screen 10
    assert len(list(tmp_path.glob("*.eml"))) == 22


def test_without_a_browser_the_heights_are_not_measured_and_it_says_why(tmp_path: Path) -> None:
    result = heights(tmp_path, CHROMIUM="/nonexistent/chromium")
    assert result.returncode == 1
    assert "bench heights: not measured: Chromium at /nonexistent/chromium did not run" in result.stderr
    assert "Traceback" not in result.stderr
