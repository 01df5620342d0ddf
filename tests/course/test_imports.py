"""Bringing a list in from a file (course/imports.py), on a real PostgreSQL: what each row becomes, consent,
the suppression list, a second run, a crash halfway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from course import imports
from course.db import make_engine, make_sessionmaker
from course.deliveries.suppressions import suppress
from course.deliveries.timing import Timing
from course.imports import ImportProblem, guess_columns, run_import, shape, take_next
from course.lifecycle import SuppressionReason
from course.models.deliveries import Delivery
from course.models.imports import ImportRefusalRow, ImportState, ListImport
from course.models.subscribers import Subscriber

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
TIMING = Timing(address_key=b"test-address-key")
SLUG = "building-emotional-intimacy"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def made(sessions: sessionmaker[Session], source: bytes, *, consent: str | None = None) -> int:
    found = shape(source)
    columns = guess_columns(found.columns)
    with sessions() as session:
        imported = ListImport(
            course_slug=SLUG, user_email="kayla@example.org", file_name="list.csv", source=source,
            delimiter=found.delimiter, header=found.header, email_column=columns["email"],
            name_column=columns["name"], timezone_column=columns["timezone"], send_time_column=columns["send_time"],
            default_timezone="Europe/Paris", default_send_time=time(8), consent_source=consent,
            consent_at=NOW - timedelta(days=30) if consent else None, state=ImportState.QUEUED.value,
            rows_total=found.rows, created_at=NOW, updated_at=NOW,
        )  # fmt: skip
        session.add(imported)
        session.commit()
        return imported.id


def refusals(sessions: sessionmaker[Session], import_id: int) -> dict[int, tuple[str, str | None]]:
    with sessions() as session:
        rows = session.scalars(select(ImportRefusalRow).where(ImportRefusalRow.import_id == import_id)).all()
        return {row.line: (row.reason, row.address) for row in rows}


LIST = (
    "Email,First name,Time zone\n"
    "kayla@example.org,Kayla,America/Denver\n"  # line 2: new
    "not an address,Sam,\n"  # 3: invalid
    "=cmd|'/C calc'!A0,Evil,\n"  # 4: a formula, not an address
    "KAYLA@Example.org,Kayla,\n"  # 5: the same address again
    "old@example.org,Old,\n"  # 6: on the course already
    "bounced@example.org,,\n"  # 7: on the suppression list
    "gone@example.org,,\n"  # 8: erased their data
    "ana@example.org,=HYPERLINK(1),\n"  # 9: a formula for a name
    "jo@example.org,Jo,Mars/Base\n"  # 10: no such zone
    "\n"  # a blank line
    "lee@example.org,Lee,Asia/Tokyo\n"  # 12: new
)


def test_each_row_is_a_person_or_a_refusal_with_its_line_and_reason(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(Subscriber(course_slug=SLUG, email="old@example.org", timezone="UTC", send_time=time(8),
                               status="unsubscribed", created_at=NOW))  # fmt: skip
        suppress(session, "bounced@example.org", TIMING.address_key, SuppressionReason.BOUNCE, None, NOW)
        suppress(session, "gone@example.org", TIMING.address_key, SuppressionReason.ERASED, None, NOW)
        session.commit()
    import_id = made(sessions, LIST.encode())
    run_import(sessions, import_id, lambda: NOW, TIMING, chunk_rows=4)
    found = refusals(sessions, import_id)
    assert {line: reason for line, (reason, _) in found.items()} == {
        3: "invalid", 4: "invalid", 5: "duplicate", 6: "already", 7: "suppressed", 8: "suppressed", 9: "invalid",
        10: "invalid",
    }  # fmt: skip
    assert found[4][1] == "=cmd|'/C calc'!A0"  # kept as written, for the report (which writes it formula-safe)
    with sessions() as session:
        imported = session.get(ListImport, import_id)
        assert imported is not None
        assert (imported.state, imported.added, imported.refused, imported.lines_done) == ("done", 2, 8, 10)
        people = {s.email: s for s in session.scalars(select(Subscriber).where(Subscriber.import_id == import_id))}
        assert set(people) == {"kayla@example.org", "lee@example.org"}
        assert (
            people["kayla@example.org"].timezone == "America/Denver" and people["lee@example.org"].first_name == "Lee"
        )
        # No consent recorded: each waits for their confirmation, which is due now.
        assert {person.status for person in people.values()} == {"pending"}
        confirmations = session.scalars(select(Delivery).where(Delivery.email == "confirmation")).all()
        assert sorted(d.subscriber_id for d in confirmations) == sorted(p.id for p in people.values())
        assert all(d.state == "claimed" and d.due_at == NOW and d.signup_request_id for d in confirmations)
        old = session.scalars(select(Subscriber).where(Subscriber.email == "old@example.org")).one()
        assert old.status == "unsubscribed"  # someone who left is never re-added


def test_with_consent_recorded_they_start_the_course_at_their_hour_and_no_confirmation_goes(
    sessions: sessionmaker[Session],
) -> None:
    import_id = made(sessions, LIST.encode(), consent="the practice's newsletter form")
    run_import(sessions, import_id, lambda: NOW, TIMING)
    with sessions() as session:
        people = {s.email: s for s in session.scalars(select(Subscriber).where(Subscriber.import_id == import_id))}
        kayla = people["kayla@example.org"]
        assert kayla.status == "active" and kayla.consent_form == "import: the practice's newsletter form"
        assert kayla.consent_at == NOW - timedelta(days=30) and kayla.next_send_at is not None
        assert kayla.next_send_at.astimezone(__import__("zoneinfo").ZoneInfo("America/Denver")).time() == time(8)
        assert not session.scalars(select(Delivery)).all()


def test_a_file_imported_twice_adds_no_one_the_second_time(sessions: sessionmaker[Session]) -> None:
    first = made(sessions, LIST.encode())
    run_import(sessions, first, lambda: NOW, TIMING)
    second = made(sessions, LIST.encode())
    run_import(sessions, second, lambda: NOW, TIMING)
    with sessions() as session:
        imported = session.get(ListImport, second)
        assert imported is not None and imported.added == 0
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 5  # the first run's
    assert refusals(sessions, second)[2][0] == "already"


def test_a_run_stopped_halfway_resumes_where_it_stopped_and_ends_as_a_whole_run_would(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "".join(f"reader{n}@example.org,Reader\n" for n in range(25))
    source = f"email,name\n{rows}reader3@example.org,Again\n".encode()
    import_id = made(sessions, source)
    take = imports.take_chunk
    taken: list[int] = []

    def crashing(*args: object, **kwargs: object) -> object:
        if len(taken) == 2:
            raise KeyboardInterrupt("the runner's process is killed")
        taken.append(1)
        return take(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(imports, "take_chunk", crashing)
    with sessions() as session:
        assert take_next(session, NOW) == import_id
        session.commit()
    with pytest.raises(KeyboardInterrupt):
        run_import(sessions, import_id, lambda: NOW, TIMING, chunk_rows=10)
    with sessions() as session:
        imported = session.get(ListImport, import_id)
        assert imported is not None and (imported.state, imported.lines_done, imported.added) == ("running", 20, 20)
        assert take_next(session, NOW + timedelta(seconds=30)) is None  # not stalled yet: its runner may live
        assert take_next(session, NOW + imports.STALLED_AFTER + timedelta(seconds=1)) == import_id
        session.commit()
    monkeypatch.undo()
    run_import(sessions, import_id, lambda: NOW, TIMING, chunk_rows=10)
    with sessions() as session:
        imported = session.get(ListImport, import_id)
        assert imported is not None and (imported.state, imported.added, imported.refused) == ("done", 25, 1)
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 25
        assert session.scalar(select(func.count()).select_from(Delivery)) == 25  # one confirmation each
    assert refusals(sessions, import_id) == {27: ("duplicate", "reader3@example.org")}


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (b"", "no rows"),
        (b"email,name\n", "no people"),
        ("email\ncaf\u00e9@example.org\n".encode("latin-1"), r"not UTF-8 text \(line 2\)"),
        (b"email,name\nkayla@example.org," + b"x" * 10_000_000 + b"\n", "longer than 2,000 characters"),
        (b"email,name\nkayla@example.org,\x00\n", "NUL"),
        (b'email,name\n"kayla@example.org,unfinished\n', "not CSV"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_list_is_refused_with_why(source: bytes, says: str) -> None:
    with pytest.raises(ImportProblem, match=says):
        shape(source)


def test_the_shape_of_a_file_its_delimiter_header_and_columns() -> None:
    semicolons = shape("\ufeffE-mail;Vorname;Zeitzone\nkayla@example.org;Kayla;Europe/Berlin\n".encode())
    assert (semicolons.delimiter, semicolons.header, semicolons.rows) == (";", True, 1)
    assert guess_columns(semicolons.columns) == {"email": 0, "name": 1, "timezone": 2, "send_time": None}
    bare = shape(b"kayla@example.org\tKayla\nsam@example.org\tSam\n")
    assert (bare.delimiter, bare.header, bare.rows, bare.columns) == ("\t", False, 2, ["Column 1", "Column 2"])
    assert guess_columns(["Name", "Email address", "Send time"]) == {"email": 1, "name": 0, "timezone": None,
                                                                     "send_time": 2}  # fmt: skip
