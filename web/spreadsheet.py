"""CSV that a spreadsheet opens as data, never as formulas: every export of the service writes through here.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or ``|``, DDE's pipe, a tab or a carriage return) is
read by Excel, LibreOffice and Google Sheets as a formula, and a formula can run a command or send the
sheet's other cells away ("CSV injection", OWASP). Addresses, names and answers are typed by people
outside: ``=cmd|'/Ccalc'!A0@evil.example`` is a valid address. So every text cell that starts with one
of these, also after leading spaces or line breaks, or with its full-width form, is written with a
leading apostrophe, which the spreadsheets show as text and do not display; numbers are written as
they are (ours are never negative). Whoever reads the file with a CSV reader sees the apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

# What makes a spreadsheet read a cell as a formula, and their full-width forms (some spreadsheets
# take those for the ASCII ones).
_FORMULA_STARTS = frozenset("=+-@|\t\r\n" + "\uff1d\uff0b\uff0d\uff20\uff5c")


def safe_cell(value: Any) -> Any:
    """The cell as a spreadsheet will take it for data: text that could start a formula gets a leading ``'``."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in _FORMULA_STARTS or value.lstrip(" \t\r\n\u00a0\u3000")[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` over a text buffer whose every cell goes through :func:`safe_cell`."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self._writer = csv.writer(self.buffer)

    def row(self, cells: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in cells])

    def rows(self, rows: Iterable[Iterable[Any]]) -> None:
        for cells in rows:
            self.row(cells)

    def take(self) -> str:
        """What was written since the last take."""
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text

    def size(self) -> int:
        return self.buffer.tell()
