"""A course's people as the studio lists them (course/audience.py), on a real PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from course import audience
from course.audience import (
    COUNT_UP_TO,
    NOT_STARTED,
    PAGE_SIZE,
    BadCursor,
    Filters,
    Order,
    Person,
    _count,
    page,
)
from course.models.subscribers import SubscriberStatus, progress, subscribers

SLUG, OTHER = "building-emotional-intimacy", "calm-mornings"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def add(session: Session, email: str, *, name: str | None = None, course: str = SLUG,
        status: SubscriberStatus = SubscriberStatus.ACTIVE, signed_up: datetime = START,
        last_sent: datetime | None = None, step: int | None = None) -> int:  # fmt: skip
    person_id = session.execute(
        insert(subscribers).values(course_slug=course, email=email, first_name=name, timezone="Europe/Paris",
                                   send_time=time(8), created_at=signed_up, updated_at=signed_up)
        .returning(subscribers.c.id)
    ).scalar_one()  # fmt: skip
    session.execute(insert(progress).values(subscriber_id=person_id, status=status.value, enrolment=1,
                                            current_step=step, last_sent_at=last_sent))  # fmt: skip
    return int(person_id)


def every_page(session: Session, filters: Filters, size: int) -> list[list[Person]]:
    pages, after = [], None
    while True:
        found = page(session, SLUG, filters, after, size=size)
        pages.append(found.people)
        if found.after is None:
            return pages
        after = found.after


@pytest.fixture
def crowd(session: Session) -> dict[int, tuple[datetime, datetime | None]]:
    """137 people of the course, many signed up and last emailed in the same microsecond (an import, one
    claim round), some with no email yet; and people of another course, who never show."""
    chance = random.Random(7)
    made = {}
    for n in range(137):
        signed_up = START + timedelta(minutes=chance.choice([0, 0, 0, 5, 9, 30]))
        last_sent = None if n % 7 == 0 else START + timedelta(days=chance.choice([1, 1, 2, 3]))
        made[add(session, f"reader{n}@example.com", signed_up=signed_up, last_sent=last_sent, step=None if
                 last_sent is None else n % 5)] = (signed_up, last_sent)  # fmt: skip
    for n in range(5):
        add(session, f"reader{n}@example.com", course=OTHER, last_sent=START)
    session.commit()
    return made


@pytest.fixture(params=["along the order", "by the filters first"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each page read along its order's index, or (as when that read runs too long) found by the filters first
    and sorted: the same people, in the same order."""
    if request.param == "by the filters first":
        bounded = audience._bounded

        def too_long_along_the_order(session: Session, statement: Any, milliseconds: int) -> Any:
            return None if milliseconds == audience.ORDERED_MS else bounded(session, statement, milliseconds)

        monkeypatch.setattr(audience, "_bounded", too_long_along_the_order)
    return str(request.param)


@pytest.mark.parametrize("order", list(Order))
@pytest.mark.parametrize("newest_first", [True, False])
def test_every_person_is_on_exactly_one_page_in_the_orders_key(
    session: Session, crowd: dict[int, tuple[datetime, datetime | None]], order: Order, newest_first: bool, way: str
) -> None:
    """Paged by keyset through ties of the sort key (the same sign-up or last-email moment for dozens):
    nobody twice, nobody missing, each page in order, those without an email after everyone else."""
    pages = every_page(session, Filters(order=order, newest_first=newest_first), size=10)
    assert all(len(people) == 10 for people in pages[:-1]) and 0 < len(pages[-1]) <= 10
    listed = [person for people in pages for person in people]
    assert sorted(person.id for person in listed) == sorted(crowd)  # every one, once; no other course's

    def key(person: Person) -> tuple[object, ...]:
        signed_up, last_sent = crowd[person.id]
        if order is Order.SIGNUP:
            return (signed_up, person.id) if not newest_first else (-signed_up.timestamp(), -person.id)
        if last_sent is None:
            return (1, -person.id)  # after everyone emailed, newest first
        return (0, last_sent.timestamp(), person.id) if not newest_first else (0, -last_sent.timestamp(), -person.id)

    assert listed == sorted(listed, key=key)


def test_a_person_signing_up_between_two_pages_neither_repeats_nor_hides_anyone(
    session: Session, crowd: dict[int, tuple[datetime, datetime | None]]
) -> None:
    first = page(session, SLUG, Filters(), size=20)
    add(session, "newcomer@example.com", signed_up=START + timedelta(days=30))
    session.commit()
    after, seen = first.after, [person.id for person in first.people]
    while after is not None:
        found = page(session, SLUG, Filters(), after, size=20)
        seen += [person.id for person in found.people]
        after = found.after
    assert sorted(seen) == sorted(crowd)  # the newcomer is on the first page, when it is read again:
    assert page(session, SLUG, Filters(), size=20).people[0].email == "newcomer@example.com"


def test_filters_by_status_and_by_the_last_email(session: Session, way: str) -> None:
    paused = add(session, "paused@example.com", status=SubscriberStatus.PAUSED, step=3, last_sent=START)
    waiting = add(session, "waiting@example.com", status=SubscriberStatus.PENDING)
    active = add(session, "active@example.com", step=3, last_sent=START)
    add(session, "elsewhere@example.com", course=OTHER, status=SubscriberStatus.PAUSED, step=3)
    session.commit()

    def ids(**chosen: object) -> set[int]:
        return {person.id for person in page(session, SLUG, Filters(**chosen)).people}  # type: ignore[arg-type]

    assert ids(status=SubscriberStatus.PAUSED) == {paused}
    assert ids(status=SubscriberStatus.PENDING) == {waiting}
    assert ids(status=SubscriberStatus.COMPLAINED) == set()
    assert ids(place=3) == {paused, active}
    assert ids(place=NOT_STARTED) == {waiting}
    assert ids(place=3, status=SubscriberStatus.ACTIVE) == {active}
    assert page(session, SLUG, Filters(place=3)).counted == 2


def test_a_search_finds_a_part_of_an_address_or_a_name_and_its_wildcards_are_only_letters(session: Session) -> None:
    kayla = add(session, "kayla.n@clinic.example", name="Kayla")
    jo = add(session, "jo@example.org", name="Joanna Ruiz")
    percent = add(session, "100%sure@example.org")
    underscore = add(session, "a_b@example.org")
    add(session, "axb@example.org")
    add(session, "kayla@elsewhere.example", course=OTHER)
    session.commit()

    def ids(search: str) -> set[int]:
        return {person.id for person in page(session, SLUG, Filters(search=search)).people}

    assert ids("clinic") == {kayla}  # inside the address
    assert ids("RUIZ") == {jo}  # inside the name, whatever the case
    assert ids("  Kayla ") == {kayla}
    assert ids("ka") == {kayla}  # two letters: at the start of an address or a name
    assert ids("la") == set()  # ... not inside one
    assert ids("jo") == {jo}
    assert ids("%") == set()  # a wildcard is a character like any other: nobody's address starts with it
    assert ids("%sure") == {percent}
    assert ids("a_b") == {underscore}  # not "any one character": axb is not found
    assert ids("\\") == set()
    assert ids("nobody-at-all") == set()


def test_the_count_stops_at_its_cap_and_says_so(session: Session) -> None:
    session.execute(text(
        "INSERT INTO subscribers (course_slug, email, timezone, send_time, created_at, updated_at) "
        "SELECT :slug, 'r' || n || '@example.com', 'UTC', '08:00', :at, :at FROM generate_series(1, :count) AS n"
    ), {"slug": SLUG, "at": START, "count": COUNT_UP_TO + 3})  # fmt: skip
    session.execute(text("INSERT INTO progress (subscriber_id, status) SELECT id, 'active' FROM subscribers"))
    session.commit()
    found = page(session, SLUG, Filters())
    assert found.counted == COUNT_UP_TO and found.more_than_counted and len(found.people) == PAGE_SIZE
    narrower = page(session, SLUG, Filters(search="r100"))  # r100, r1000 to r1003
    assert narrower.counted == 5 and not narrower.more_than_counted


def test_a_count_that_would_hold_the_page_up_says_many_and_the_page_goes_on(session: Session) -> None:
    session.execute(text("SET statement_timeout = '5s'"))
    slow = select(func.pg_sleep(5))  # a count as slow as one over a million rows of a common search
    assert _count(session, slow) is None
    assert session.scalar(text("SELECT current_setting('statement_timeout')")) == "5s"  # its own limit back
    assert _count(session, select(func.generate_series(1, 7))) == 7  # and the transaction goes on
    assert session.scalar(text("SELECT current_setting('statement_timeout')")) == "5s"


@pytest.mark.parametrize("order", list(Order))
def test_a_cursor_the_list_did_not_make_is_refused(
    session: Session, crowd: dict[int, tuple[datetime, datetime | None]], order: Order
) -> None:
    made = page(session, SLUG, Filters(order=order), size=5).after
    assert made is not None
    other = next(o for o in Order if o is not order)
    for forged in ("", "x", "%%%", made + "A", "bm90OmE6Yjpj", "c2lnbnVwOmU6Oi0x", "c2lnbnVwOmU6MTA6MTA6MTA",
                   "c2lnbnVwOmU6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk6MQ",
                   page(session, SLUG, Filters(order=other), size=5).after or ""):  # fmt: skip
        with pytest.raises(BadCursor):
            page(session, SLUG, Filters(order=order), forged)
