"""Every CSV the service writes opens in a spreadsheet as data: no cell starts a formula."""

from __future__ import annotations

import csv
import io

import pytest

from course.models.studio import StudioRole
from web.spreadsheet import SafeWriter, safe_cell

from ..support.naughty import naughty_strings
from .conftest import Site
from .test_studio_editing import signed_in

FORMULA_STARTS = (*"=+-@|\t\r\n", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\uff5c")
ATTACK = "=cmd|'/ccalc'!a0@evil.example.com"  # valid syntax; addresses are kept in lower case


def starts_a_formula(cell: str) -> bool:
    """What a spreadsheet would run: a cell that starts with a formula sign, also after leading blanks."""
    return cell.startswith(FORMULA_STARTS) or cell.lstrip(" \t\r\n\u00a0\u3000").startswith(FORMULA_STARTS)


def read_back(rows: list[list[object]]) -> list[list[str]]:
    writer = SafeWriter()
    writer.rows(rows)
    return list(csv.reader(io.StringIO(writer.take(), newline="")))


@pytest.mark.parametrize("value", [ATTACK, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "|calc", "  =1",
                                   "\n=HYPERLINK(\"x\")", "\uff1d1+1", "\u3000=1"])  # fmt: skip
def test_a_cell_that_would_start_a_formula_is_written_as_text(value: str) -> None:
    (row,) = read_back([[value]])
    assert row == ["'" + value]


def test_data_that_starts_no_formula_is_written_as_it_is() -> None:
    assert read_back([["alex@example.com", 12, 0.25, "", None, "a-b", "x=1"]]) == [
        ["alex@example.com", "12", "0.25", "", "", "a-b", "x=1"]
    ]
    assert safe_cell(-3) == -3  # numbers are numbers


def test_no_naughty_string_starts_a_formula_and_each_reads_back_whole() -> None:
    strings = naughty_strings()
    cells = read_back([[value] for value in strings])
    assert len(cells) == len(strings)
    for value, (cell,) in zip(strings, cells, strict=True):
        assert not starts_a_formula(cell), repr(value)
        assert cell in (value, "'" + value), repr(value)  # nothing lost, at most an apostrophe before it
    marked = [value for value, (cell,) in zip(strings, cells, strict=True) if cell == "'" + value]
    assert len(marked) > 10


def test_an_address_that_is_a_formula_lands_in_the_events_csv_as_text(site: Site) -> None:
    site.sign_up_and_confirm(ATTACK)
    signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    today = site.clock().date().isoformat()
    text = site.client.get(f"/studio/insights/events.csv?since={today}").text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [row[4] for row in rows[1:]] == ["'" + ATTACK]
    assert not any(starts_a_formula(cell) for row in rows for cell in row)


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01", "since=9999-12-31&until=9999-12-31"])
def test_a_date_out_of_range_is_refused_with_a_400(site: Site, query: str) -> None:
    signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    for path in ("/studio/insights", "/studio/insights/events.csv", "/studio/insights.csv"):
        response = site.client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, response.status_code)
        assert "from 1970 to 2999" in response.text
