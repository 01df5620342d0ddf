"""Bringing a list in from a CSV file: each row a person for the course, or a refusal with its reason.

The law decides who may be mailed: an imported person gets the double opt-in confirmation, as a sign-up
does, unless the operator records the consent the list was gathered with (what the people signed up on,
and when); then they start the course at their hour. An address on the suppression list (a bounce, a
complaint, an erasure) is never added, nor one already on the course (whatever their status: someone who
left stays left).

Set-based, a chunk of rows at a time: each row is checked in Python (the address as the sign-up form
checks it, the name, zone and hour), the chunk's suppressions are looked up in one statement, its people
inserted in one (``ON CONFLICT DO NOTHING``: an address met before, in this file or on the course, is
told apart by the import that made its row), and the chunk's progress is committed with its rows. A run
stopped anywhere (a crash, a restart) resumes from the last chunk committed; a file imported twice adds
no one the second time.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from course.deliveries.timing import Timing
from course.lifecycle import EmailKind
from course.models.deliveries import Suppression
from course.models.imports import ImportRefusal, ImportState, ListImport
from course.models.subscribers import Subscriber, SubscriberStatus, email_hash, mailbox_hash
from course.schedule import Schedule
from course.subscriptions import InvalidSubscription, check_timezone, clean_first_name, normalise_email, parse_send_time

MAX_FILE_BYTES = 20 * 1024 * 1024  # 100,000 rows of a few columns are about 6 MB
MAX_FIELD = 2_000  # characters in one cell: an address is at most 320
PREVIEW_ROWS = 20
CHUNK_ROWS = 1_000
# A running import with no chunk for this long lost its runner (a crash): the next runner resumes it.
STALLED_AFTER = timedelta(minutes=2)
DELIMITERS = ",;\t"


class ImportProblem(ValueError):
    """The file cannot be read as a list (said why, with its line where there is one)."""


@dataclass(frozen=True)
class Shape:
    """What a file is: its delimiter, whether its first line names the columns, those names (or "Column
    1", ...), and how many rows of people it has."""

    delimiter: str
    header: bool
    columns: list[str]
    rows: int


def _reader(source: bytes, delimiter: str) -> Iterator[list[str]]:
    """The file's rows, decoded and parsed as they are read (a big file is never held as text or rows)."""
    text_ = io.TextIOWrapper(io.BytesIO(source), encoding="utf-8-sig", newline="")
    reader = csv.reader(text_, delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            if any(len(cell) > MAX_FIELD for cell in cells):
                raise ImportProblem(f"line {reader.line_num} has a cell longer than {MAX_FIELD:,} characters")
            if "\x00" in "".join(cells):
                raise ImportProblem(f"line {reader.line_num} holds a NUL character: is it a CSV file?")
            yield cells
    except UnicodeDecodeError:
        raise ImportProblem(_not_utf8(source)) from None
    except csv.Error as error:
        if "field larger than field limit" in str(error):  # Python's own limit, far above ours
            raise ImportProblem(f"line {reader.line_num} has a cell longer than {MAX_FIELD:,} characters") from None
        raise ImportProblem(f"line {reader.line_num} is not CSV: {error}") from None


def _not_utf8(source: bytes) -> str:
    """What is wrong with a file that is not UTF-8, with the line (found on this rare path by decoding it whole)."""
    try:
        source.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = source[: error.start].count(b"\n") + 1
        return f"the file is not UTF-8 text (line {line}): save it as “CSV UTF-8”"
    return "the file is not UTF-8 text: save it as “CSV UTF-8”"


def shape(source: bytes) -> Shape:
    """Read the whole file once: ImportProblem when it is not a list of people we can read."""
    if len(source) > MAX_FILE_BYTES:
        raise ImportProblem(
            f"the file is {len(source) // 1024 // 1024} MB; at most {MAX_FILE_BYTES // 1024 // 1024} MB"
        )
    top = source[:65_536].decode("utf-8-sig", errors="replace").split("\n", 1)[0]
    counts = {delimiter: top.count(delimiter) for delimiter in DELIMITERS}
    delimiter = max(counts, key=lambda one: counts[one]) if any(counts.values()) else ","
    first: list[str] | None = None
    count = width = 0
    for cells in _reader(source, delimiter):
        if any(cell.strip() for cell in cells):
            first = cells if first is None else first
            count += 1
            width = max(width, len(cells))
    if first is None:
        raise ImportProblem("the file holds no rows")
    header = not any("@" in cell for cell in first)
    names = [cell.strip() or f"Column {n + 1}" for n, cell in enumerate(first)] if header else []
    names += [f"Column {n + 1}" for n in range(len(names), width)]
    count -= 1 if header else 0
    if count == 0:
        raise ImportProblem("the file names its columns but holds no people")
    return Shape(delimiter, header, names, count)


# The words a column's name is recognised by, in the order the values are looked for.
_COLUMN_WORDS = {"email": ("email", "mail", "address"), "name": ("firstname", "name", "prenom", "vorname"),
                 "timezone": ("timezone", "zone", "tz"), "send_time": ("sendtime", "time", "hour")}  # fmt: skip


def guess_columns(columns: list[str]) -> dict[str, int | None]:
    """Which column is likely which value, from its name ("E-mail address", "First name", "Time zone")."""
    found: dict[str, int | None] = dict.fromkeys(_COLUMN_WORDS)
    for n, name in enumerate(columns):
        plain = "".join(char for char in name.lower() if char.isalnum())
        key = next((key for key, words in _COLUMN_WORDS.items()
                    if found[key] is None and any(word in plain for word in words)), None)  # fmt: skip
        if key is not None:
            found[key] = n
    return found


def data_rows(source: bytes, imported: ListImport) -> Iterator[tuple[int, list[str]]]:
    """Each row of people with its line in the file (the header is line 1), blank lines left out."""
    line = 0
    for cells in _reader(source, imported.delimiter):
        line += 1
        if imported.header and line == 1:
            continue
        if any(cell.strip() for cell in cells):
            yield line, cells


@dataclass(frozen=True)
class Person:
    line: int
    address: str
    first_name: str | None
    timezone: str
    send_time: time


@dataclass(frozen=True)
class Refused:
    line: int
    address: str | None
    reason: ImportRefusal
    detail: str


def _cell(cells: list[str], column: int | None) -> str:
    return cells[column].strip() if column is not None and 0 <= column < len(cells) else ""


def read_person(imported: ListImport, line: int, cells: list[str]) -> Person | Refused:
    """The row as a person for the course, or why it cannot be one."""
    raw = _cell(cells, imported.email_column)
    try:
        address = normalise_email(raw)
    except InvalidSubscription as error:
        return Refused(
            line, raw[:320] or None, ImportRefusal.INVALID, str(error).replace("email:", "address:", 1)[:300]
        )
    try:
        name = clean_first_name(_cell(cells, imported.name_column) or None)
        zone = check_timezone(_cell(cells, imported.timezone_column) or imported.default_timezone)
        hour = _cell(cells, imported.send_time_column)
        at = parse_send_time(hour) if hour else imported.default_send_time
    except InvalidSubscription as error:
        return Refused(line, address, ImportRefusal.INVALID, str(error).replace("_", " ", 1)[:300])
    return Person(line, address, name, zone, at)


# --- A chunk of rows, in one transaction -------------------------------------------------------------------

_ADD = text("""
INSERT INTO subscribers AS s (course_slug, email, first_name, timezone, send_time, consent_at, consent_form,
                              confirmed_at, import_id, created_at, updated_at)
SELECT :slug, u.email, u.first_name, u.timezone, u.send_time, :consent_at, :consent_form, :consent_at, :import_id,
       :now, :now
FROM unnest(CAST(:emails AS text[]), CAST(:names AS text[]), CAST(:zones AS text[]), CAST(:times AS time[]))
     AS u(email, first_name, timezone, send_time)
ON CONFLICT (course_slug, email) DO NOTHING
RETURNING s.id, s.email
""")
_PROGRESS = text("""
INSERT INTO progress (subscriber_id, status, enrolment, next_send_at)
SELECT u.id, :status, 1, u.next_at
FROM unnest(CAST(:ids AS bigint[]), CAST(:next_at AS timestamptz[])) AS u(id, next_at)
""")
# Without recorded consent: a sign-up request of the import's and its confirmation, due now (the beat puts
# due confirmations in the send queue).
_CONFIRMATIONS = text("""
WITH requests AS (
    INSERT INTO signup_requests (subscriber_id, mailbox_hash, first_name, timezone, send_time, consent_form,
                                 created_at)
    SELECT u.id, u.mailbox, s.first_name, s.timezone, s.send_time, :form, :now
    FROM unnest(CAST(:ids AS bigint[]), CAST(:mailboxes AS text[])) AS u(id, mailbox)
    JOIN subscribers AS s ON s.id = u.id
    RETURNING id, subscriber_id
)
INSERT INTO deliveries (subscriber_id, enrolment, step, email, state, attempts, due_at, signup_request_id,
                        created_at, updated_at)
SELECT r.subscriber_id, 1, NULL, :email, 'claimed', 0, :now, r.id, :now, :now FROM requests AS r
""")
_REFUSE = text("""
INSERT INTO import_refusals (import_id, line, address, reason, detail)
SELECT :import_id, u.line, u.address, u.reason, u.detail
FROM unnest(CAST(:lines AS int[]), CAST(:addresses AS text[]), CAST(:reasons AS text[]), CAST(:details AS text[]))
     AS u(line, address, reason, detail)
ON CONFLICT (import_id, line) DO NOTHING
""")


def take_chunk(session: Session, imported: ListImport, rows: list[tuple[int, list[str]]], now: datetime,
               timing: Timing) -> tuple[int, list[Refused]]:  # fmt: skip
    """Add the people of ``rows`` to the course (the caller commits, with the import's progress): how many
    were added, and the rows refused with why."""
    refused: list[Refused] = []
    people: dict[str, Person] = {}
    for line, cells in rows:
        found = read_person(imported, line, cells)
        if isinstance(found, Refused):
            refused.append(found)
        elif found.address in people:
            refused.append(
                Refused(line, found.address, ImportRefusal.DUPLICATE, f"as on line {people[found.address].line}")
            )
        else:
            people[found.address] = found
    hashes = {email_hash(address, timing.address_key): address for address in people}
    for key, reason in session.execute(select(Suppression.email_hash, Suppression.reason)
                                       .where(Suppression.email_hash.in_(list(hashes)))):  # fmt: skip
        person = people.pop(hashes[key])
        refused.append(
            Refused(person.line, person.address, ImportRefusal.SUPPRESSED, f"on the suppression list: {reason}")
        )
    ordered = sorted(people.values(), key=lambda person: person.line)
    consent = imported.consent_source is not None and imported.consent_at is not None
    added: dict[int, str] = dict(session.execute(_ADD, {
        "slug": imported.course_slug, "import_id": imported.id, "now": now,
        "consent_at": imported.consent_at if consent else None,
        "consent_form": f"import: {imported.consent_source}"[:100] if consent else None,
        "emails": [person.address for person in ordered], "names": [person.first_name for person in ordered],
        "zones": [person.timezone for person in ordered], "times": [person.send_time for person in ordered],
    }).all())  # fmt: skip
    made = {address: subscriber_id for subscriber_id, address in added.items()}
    there = [person for person in ordered if person.address not in made]
    if there:
        earlier: dict[str, int | None] = dict(session.execute(
            text("SELECT email, import_id FROM subscribers WHERE course_slug = :slug AND email = ANY(:emails)"),
            {"slug": imported.course_slug, "emails": [person.address for person in there]},
        ).all())  # fmt: skip
        for person in there:
            if earlier.get(person.address) == imported.id:
                refused.append(Refused(person.line, person.address, ImportRefusal.DUPLICATE, "earlier in the file"))
            else:
                refused.append(Refused(person.line, person.address, ImportRefusal.ALREADY, "on the course already"))
    new = [person for person in ordered if person.address in made]
    if new:
        ids = [made[person.address] for person in new]
        if consent:
            firsts: dict[tuple[str, time], datetime] = {}
            for person in new:
                if (person.timezone, person.send_time) not in firsts:
                    schedule = Schedule.for_subscriber(person.timezone, person.send_time, timing.day_seconds)
                    firsts[(person.timezone, person.send_time)] = schedule.resume_at(now, None)
            session.execute(_PROGRESS, {"status": SubscriberStatus.ACTIVE.value, "ids": ids,
                                        "next_at": [firsts[(p.timezone, p.send_time)] for p in new]})  # fmt: skip
        else:
            session.execute(
                _PROGRESS, {"status": SubscriberStatus.PENDING.value, "ids": ids, "next_at": [None] * len(ids)}
            )
            session.execute(_CONFIRMATIONS, {
                "ids": ids, "mailboxes": [mailbox_hash(person.address, timing.address_key) for person in new],
                "form": f"import {imported.id}", "now": now, "email": EmailKind.CONFIRMATION.value,
            })  # fmt: skip
    if refused:
        session.execute(_REFUSE, {
            "import_id": imported.id, "lines": [one.line for one in refused],
            "addresses": [one.address for one in refused], "reasons": [one.reason.value for one in refused],
            "details": [one.detail for one in refused],
        })  # fmt: skip
    return len(new), refused


# --- The run ------------------------------------------------------------------------------------------------


def take_next(session: Session, now: datetime, stalled_after: timedelta = STALLED_AFTER) -> int | None:
    """An import to run now, marked as running (committed by the caller): one started and waiting, or one
    whose runner stopped (no chunk for ``stalled_after``: a crash); None when there is none."""
    found = session.scalar(
        select(ListImport.id).where(
            (ListImport.state == ImportState.QUEUED.value)
            | ((ListImport.state == ImportState.RUNNING.value) & (ListImport.updated_at < now - stalled_after))
        ).order_by(ListImport.id).limit(1).with_for_update(skip_locked=True)
    )  # fmt: skip
    if found is not None:
        session.execute(update(ListImport).where(ListImport.id == found)
                        .values(state=ImportState.RUNNING.value, updated_at=now))  # fmt: skip
    return found


def run_import(sessions: Callable[[], Session], import_id: int, clock: Callable[[], datetime], timing: Timing,
               chunk_rows: int = CHUNK_ROWS) -> None:  # fmt: skip
    """Take the import's rows from where it stopped to the end, a chunk a transaction (its people, its
    refusals and how far it got, together); a file that cannot be read after all ends it as failed."""
    with sessions() as session:
        imported = session.get(ListImport, import_id)
        if imported is None:
            return
        source, done = imported.source, imported.lines_done
    rows = data_rows(source, imported)
    try:
        for _ in range(done):
            next(rows, None)
        while True:
            chunk = list(itertools.islice(rows, chunk_rows))
            if not chunk:
                break
            with sessions() as session:
                imported = session.get(ListImport, import_id, with_for_update=True)
                assert imported is not None  # noqa: S101 - an import is never deleted while it runs
                now = clock()
                added, refused = take_chunk(session, imported, chunk, now, timing)
                imported.lines_done += len(chunk)
                imported.added += added
                imported.refused += len(refused)
                imported.updated_at = now
                session.commit()
    except ImportProblem as error:
        _end(sessions, import_id, ImportState.FAILED, clock(), str(error))
        return
    _end(sessions, import_id, ImportState.DONE, clock())


def _end(sessions: Callable[[], Session], import_id: int, state: ImportState, now: datetime,
         problem: str | None = None) -> None:  # fmt: skip
    with sessions() as session:
        session.execute(update(ListImport).where(ListImport.id == import_id)
                        .values(state=state.value, problem=problem, updated_at=now, finished_at=now))  # fmt: skip
        session.commit()


# --- What the first rows will become (the studio's preview) ------------------------------------------------


@dataclass(frozen=True)
class Foreseen:
    line: int
    cells: list[str]
    verdict: str  # "new", or an ImportRefusal's value
    detail: str


def foresee(session: Session, imported: ListImport, source: bytes, timing: Timing, rows: int = PREVIEW_ROWS
            ) -> list[Foreseen]:  # fmt: skip
    """What the import would do with its first ``rows`` rows, as the columns now map: nothing is written."""
    read = [(line, cells, read_person(imported, line, cells))
            for line, cells in itertools.islice(data_rows(source, imported), rows)]  # fmt: skip
    people = [person for _, _, person in read if isinstance(person, Person)]
    addresses = {person.address for person in people}
    hashes = {email_hash(address, timing.address_key): address for address in addresses}
    listed = select(Suppression.email_hash, Suppression.reason).where(Suppression.email_hash.in_(list(hashes)))
    suppressed = {hashes[key]: reason for key, reason in session.execute(listed)}
    there = set(session.scalars(select(Subscriber.email).where(Subscriber.course_slug == imported.course_slug,
                                                               Subscriber.email.in_(addresses))))  # fmt: skip
    found: list[Foreseen] = []
    first_line: dict[str, int] = {}
    for line, cells, person in read:
        if isinstance(person, Refused):
            found.append(Foreseen(line, cells, person.reason.value, person.detail))
        elif person.address in first_line:
            found.append(
                Foreseen(line, cells, ImportRefusal.DUPLICATE.value, f"as on line {first_line[person.address]}")
            )
        else:
            first_line[person.address] = line
            if person.address in suppressed:
                found.append(Foreseen(line, cells, ImportRefusal.SUPPRESSED.value,
                                      f"on the suppression list: {suppressed[person.address]}"))  # fmt: skip
            elif person.address in there:
                found.append(Foreseen(line, cells, ImportRefusal.ALREADY.value, "on the course already"))
            else:
                found.append(Foreseen(line, cells, "new", ""))
    return found
