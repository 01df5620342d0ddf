from __future__ import annotations

import re

import pytest

from cli.main import main


def test_bench_prints_a_row_of_figures_per_email(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--count", "3", "day-01", "welcome"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    figures = {row[0]: row[1:] for row in rows if row and row[0] in {"day-01", "welcome"}}
    assert set(figures) == {"day-01", "welcome"}
    for values in figures.values():
        render_ms, mime_ms, per_second, html_kb, message_kb = (float(value) for value in values)
        assert render_ms > 0 and mime_ms > 0 and per_second > 0
        assert 0 < html_kb < 100 < message_kb * 10  # HTML under Gmail's clip; a message is KBs, not bytes
    assert re.search(r"\(3 messages each", "\n".join(" ".join(row) for row in rows))
