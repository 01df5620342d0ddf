"""A course's people as the studio lists them: who is on it, found by a part of their address or name,
by status and by where they are in the course, in the order of their sign-up or of their last email.

Paged by keyset: a page ends with a cursor (the sort key and the id of its last person), and the next
page starts after it, read from an index in the list's order (migration 0018), so the ten-thousandth
page answers as fast as the first and a person signing up meanwhile neither repeats nor hides anyone.
The order of the last email puts those who have had none after everyone else (by id, newest first).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from psycopg.errors import QueryCanceled
from sqlalchemy import ColumnElement, Row, Select, func, or_, select, text, tuple_
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from course.models.deliveries import Delivery
from course.models.engagement import Answer, Event, EventKind
from course.models.studio import AuditEntry
from course.models.subscribers import SignupRequest, Subscriber, SubscriberStatus, progress, subscribers

PAGE_SIZE = 50
# A search this long or longer finds the text anywhere in an address or a name (trigrams); a shorter one,
# at their start (a trigram index cannot find one or two letters inside a word).
CONTAINS_FROM = 3
MAX_SEARCH = 320  # the longest address
# How far a count goes before it says "more than", and how long it may take before it says "many": counting
# a million rows, or the people a common search and a status share, would take longer than the page.
COUNT_UP_TO = 1_000
COUNT_MS = 100
# How long a page is read along its order's index before it is found by its filters' indexes instead.
ORDERED_MS = 60
NOT_STARTED = -1  # the place filter's "no email yet"
EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)


class Order(StrEnum):
    SIGNUP = "signup"
    LAST_EMAIL = "last-email"


class BadCursor(ValueError):
    """A page's cursor that this list did not make (edited by hand, or of another order)."""


@dataclass(frozen=True)
class Filters:
    """What the marketer chose: every field may be left out."""

    search: str = ""
    status: SubscriberStatus | None = None
    place: int | None = None  # the last email's number (identity), or NOT_STARTED
    order: Order = Order.SIGNUP
    newest_first: bool = True
    # Only these people: a statement whose first column is a subscriber's id (the people behind a figure of
    # the insights, course/insights/summing.py ``people_query``).
    among: Select[Any] | None = None


@dataclass(frozen=True)
class Person:
    """One row of the list."""

    id: int
    email: str
    first_name: str | None
    status: str
    enrolment: int
    current_step: int | None
    timezone: str
    send_time: time
    created_at: datetime
    last_sent_at: datetime | None
    paused_until: datetime | None


@dataclass(frozen=True)
class Page:
    people: list[Person]
    after: str | None  # the next page's cursor; None on the last page
    counted: int | None  # how many match, up to COUNT_UP_TO; None: too many to count in COUNT_MS
    more_than_counted: bool = field(default=False)


_COLUMNS = (
    subscribers.c.id, subscribers.c.email, subscribers.c.first_name, progress.c.status, progress.c.enrolment,
    progress.c.current_step, subscribers.c.timezone, subscribers.c.send_time, subscribers.c.created_at,
    progress.c.last_sent_at, progress.c.paused_until,
)  # fmt: skip


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matching(course_slug: str, filters: Filters) -> Select[tuple[object, ...]]:
    """The course's people the filters choose, in no order yet."""
    query = select(*_COLUMNS).select_from(subscribers.join(progress, progress.c.subscriber_id == subscribers.c.id))
    query = query.where(subscribers.c.course_slug == course_slug)
    search = filters.search.strip().lower()
    if search:
        pattern = _escaped(search) + "%"
        if len(search) >= CONTAINS_FROM:
            pattern = "%" + pattern
        query = query.where(or_(subscribers.c.email.ilike(pattern, escape="\\"),
                                subscribers.c.first_name.ilike(pattern, escape="\\")))  # fmt: skip
    if filters.status is not None:
        query = query.where(progress.c.status == filters.status.value)
    if filters.among is not None:
        behind = filters.among.subquery("behind")
        query = query.where(subscribers.c.id.in_(select(behind.c[behind.c.keys()[0]])))
    if filters.place == NOT_STARTED:
        query = query.where(progress.c.current_step.is_(None))
    elif filters.place is not None:
        query = query.where(progress.c.current_step == filters.place)
    return query


# --- Cursors: the last row's sort key and id, opaque to the browser ----------------------------------------


def _cursor(order: Order, emailed: bool, at: datetime | None, person_id: int) -> str:
    stamp = "" if at is None else str((at - EPOCH) // MICROSECOND)  # exact: a float would lose the last digit
    text = f"{order.value}:{'e' if emailed else 'n'}:{stamp}:{person_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read_cursor(order: Order, cursor: str) -> tuple[bool, datetime | None, int | None]:
    """(in the emailed part of the list, the sort key, the id) of a cursor this order made; BadCursor."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        made_by, part, stamp, person_id = text.split(":")
        at = EPOCH + int(stamp) * MICROSECOND if stamp else None
        found = (part == "e", at, int(person_id))
    except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError, OSError):
        raise BadCursor("this page's link is not one the list made") from None
    if made_by != order.value or part not in ("e", "n") or (at is None) != (order is Order.LAST_EMAIL and part == "n"):
        raise BadCursor("this page's link is not one the list made")
    return found


def _after(key: ColumnElement[object], person: ColumnElement[int], at: object, person_id: int,
           newest_first: bool) -> ColumnElement[bool]:  # fmt: skip
    """The rows after (key, id) in the list's order: a row comparison an index in that order reads from."""
    if newest_first:
        return tuple_(key, person) < tuple_(at, person_id)
    return tuple_(key, person) > tuple_(at, person_id)


def _ordered(query: Select[tuple[object, ...]], key: ColumnElement[object], person: ColumnElement[int],
             newest_first: bool) -> Select[tuple[object, ...]]:  # fmt: skip
    if newest_first:
        return query.order_by(key.desc(), person.desc())
    return query.order_by(key.asc(), person.asc())


def _people(session: Session, query: Select[tuple[object, ...]], limit: int, key: str, newest_first: bool,
            *, along: bool = True) -> tuple[list[Person], int | None]:  # fmt: skip
    """The first ``limit`` rows of ``query`` in the order of ``key`` (a column it selects) and the id.

    Read along the order's index, a page of common filters is found in its first rows. Filters that are each
    common but rare together (a status and a search whose people do not overlap) would have it read the index
    to its end (2 s at a million, in the plan PostgreSQL chooses, not knowing they are rare together): after
    ORDERED_MS that read is stopped, and the rows are found by the filters' own indexes first, then sorted:
    then how many they are is known too (the second of the pair; None: not counted). Not ``along``: found by
    the filters first at once (the people behind a figure: a set worked out whole before any row is read)."""
    columns = query.selected_columns
    ordered = _ordered(query, columns[key], columns["id"], newest_first).limit(limit)
    found = _bounded(session, ordered, ORDERED_MS) if along else None
    if found is not None:
        return [Person(**row._mapping) for row in found], None
    hits = query.cte("hits").prefix_with("MATERIALIZED")
    sorted_hits = _ordered(select(*hits.c, func.count().over().label("total")), hits.c[key], hits.c.id, newest_first)
    rows = list(session.execute(sorted_hits.limit(limit)))
    people = [Person(**{name: value for name, value in row._mapping.items() if name != "total"}) for row in rows]
    return people, int(rows[0].total) if rows else 0


def _bounded(session: Session, statement: Select[Any], milliseconds: int) -> list[Row[Any]] | None:
    """``statement``'s rows, or None when it would take more than ``milliseconds`` (it is stopped, in a
    savepoint: the transaction goes on, its own time limit back)."""
    before = session.scalar(text("SELECT current_setting('statement_timeout')"))
    try:
        with session.begin_nested():
            session.execute(text("SELECT set_config('statement_timeout', :limit, true)"), {"limit": str(milliseconds)})
            rows = list(session.execute(statement))
            session.execute(text("SELECT set_config('statement_timeout', :before, true)"), {"before": before})
    except OperationalError as error:
        if not isinstance(error.orig, QueryCanceled):
            raise
        return None  # the savepoint's rollback put the time limit back
    return rows


def page(session: Session, course_slug: str, filters: Filters, after: str | None = None,
         size: int = PAGE_SIZE, *, count: bool = True) -> Page:  # fmt: skip
    """The page of the course's people that ``filters`` choose, starting after the cursor ``after`` (none:
    the first page), and (``count``) how many they are, up to COUNT_UP_TO. BadCursor for a cursor the list
    did not make."""
    matching = _matching(course_slug, filters)
    found: list[Person]
    if filters.order is Order.SIGNUP:
        key, person = subscribers.c.created_at, subscribers.c.id
        query = matching
        if after is not None:
            _, at, person_id = _read_cursor(filters.order, after)
            query = query.where(_after(key, person, at, person_id or 0, filters.newest_first))
        found, total = _people(session, query, size + 1, "created_at", filters.newest_first,
                               along=filters.among is None)  # fmt: skip
        more = len(found) > size
        found = found[:size]
        cursor = _cursor(filters.order, True, found[-1].created_at, found[-1].id) if more and found else None
    else:
        found, cursor, total = _by_last_email(session, matching, filters.newest_first, after, size,
                                              along=filters.among is None)  # fmt: skip
    if not count:
        return Page(found, cursor, len(found))
    counted = _count(session, matching) if total is None or after is not None else total
    if counted is None:
        return Page(found, cursor, None)
    return Page(found, cursor, min(counted, COUNT_UP_TO), counted > COUNT_UP_TO)


def _count(session: Session, matching: Select[tuple[object, ...]]) -> int | None:
    """How many ``matching`` finds, up to one more than COUNT_UP_TO; None when that takes more than COUNT_MS."""
    rows = _bounded(session, select(func.count()).select_from(matching.limit(COUNT_UP_TO + 1).subquery()), COUNT_MS)
    return None if rows is None else int(rows[0][0] or 0)


def _by_last_email(session: Session, matching: Select[tuple[object, ...]], newest_first: bool, after: str | None,
                   size: int, *, along: bool = True) -> tuple[list[Person], str | None, int | None]:  # fmt: skip
    """Those who had an email, in the order of their last; then those who had none, newest first."""
    emailed, at, last_id = (True, None, None) if after is None else _read_cursor(Order.LAST_EMAIL, after)
    key, person = progress.c.last_sent_at, progress.c.subscriber_id
    found: list[Person] = []
    if emailed:
        query = matching.where(key.is_not(None))
        if at is not None and last_id is not None:
            query = query.where(_after(key, person, at, last_id, newest_first))
        found, _ = _people(session, query, size + 1, "last_sent_at", newest_first, along=along)
        if len(found) > size:
            last = found[size - 1]
            return found[:size], _cursor(Order.LAST_EMAIL, True, last.last_sent_at, last.id), None
        last_id = None  # the emailed part ended on this page: those without an email follow from the top
    unsent = matching.where(key.is_(None))
    if last_id is not None:
        unsent = unsent.where(subscribers.c.id < last_id)
    rest, _ = _people(session, unsent, size - len(found) + 1, "id", True, along=along)
    found += rest
    if len(found) > size:
        found = found[:size]
        return found, _cursor(Order.LAST_EMAIL, False, None, found[-1].id), None
    return found, None, None


# --- One person's story ------------------------------------------------------------------------------------

# How many of each kind of record a story shows, newest kept: a person has a few dozen; a scanner that
# opened every link a thousand times should not make the page a megabyte.
STORY_LIMIT = 500


@dataclass(frozen=True)
class Happening:
    """One thing in a person's story, at ``at``: an email (``email``: its state, release and the mail
    server's last answer), a click or another event (its kind), an answer to a checklist (``answer``: its
    band, and the band it replaced), a sign-up request (``sign-up``)."""

    at: datetime
    kind: str
    step: int | None = None
    enrolment: int | None = None
    email: str | None = None  # an email's template folder
    state: str | None = None
    release: str | None = None
    reply: str | None = None  # the mail server's last answer to an email; a bounce's or complaint's report
    value: str | None = None  # a click's link, an answer's band, a bounce's kind
    before: str | None = None  # an answer's earlier band for the same checklist of the same email
    checklist: str | None = None
    score: int | None = None
    automated: bool = False  # a mail scanner's click, not a person's
    seconds_after_delivery: float | None = None
    detail: str | None = None
    by: str | None = None  # who in the studio did it (``studio``: an action taken for the person)


@dataclass(frozen=True)
class Story:
    subscriber: Subscriber
    requests: list[SignupRequest]
    happenings: list[Happening]  # newest first
    cut: bool  # some older records are left out (STORY_LIMIT)


def person_item(subscriber_id: int) -> str:
    """What the audit log names a person by (never their address: the entry outlives an erasure)."""
    return f"subscriber:{subscriber_id}"


def story(session: Session, course_slug: str, subscriber_id: int) -> Story | None:
    """Everything that happened to one person of the course, newest first; None when the course has no such
    person (another course's person is not this course's to show)."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.course_slug != course_slug:
        return None
    requests = list(session.scalars(
        select(SignupRequest).where(SignupRequest.subscriber_id == subscriber_id)
        .order_by(SignupRequest.created_at.desc()).limit(STORY_LIMIT)
    ))  # fmt: skip
    deliveries = list(session.scalars(
        select(Delivery).where(Delivery.subscriber_id == subscriber_id).order_by(Delivery.id.desc()).limit(STORY_LIMIT)
    ))  # fmt: skip
    events = list(session.scalars(
        select(Event).where(Event.subscriber_id == subscriber_id, Event.kind != EventKind.ANSWER.value)
        .order_by(Event.id.desc()).limit(STORY_LIMIT)
    ))  # fmt: skip
    answers = list(session.scalars(
        select(Answer).where(Answer.subscriber_id == subscriber_id)
        .order_by(Answer.created_at.desc(), Answer.id.desc()).limit(STORY_LIMIT)
    ))  # fmt: skip
    happenings = [_of_delivery(delivery) for delivery in deliveries] + [_of_event(event) for event in events]
    happenings += _of_answers(answers)
    acted = list(session.scalars(
        select(AuditEntry).where(AuditEntry.course_slug == course_slug, AuditEntry.item == person_item(subscriber_id))
        .order_by(AuditEntry.id.desc()).limit(STORY_LIMIT)
    ))  # fmt: skip
    happenings += [Happening(at=entry.created_at, kind="studio", value=entry.action, detail=entry.detail,
                             by=entry.user_email) for entry in acted]  # fmt: skip
    happenings += [Happening(at=request.created_at, kind="sign-up", detail=request.consent_form,
                             value="confirmed" if request.confirmed_at else None) for request in requests]  # fmt: skip
    happenings.sort(key=lambda happening: happening.at, reverse=True)
    cut = any(len(found) == STORY_LIMIT for found in (requests, deliveries, events, answers, acted))
    return Story(subscriber, requests, happenings, cut)


def _of_delivery(delivery: Delivery) -> Happening:
    return Happening(
        at=delivery.sent_at or delivery.updated_at, kind="email", step=delivery.step, enrolment=delivery.enrolment,
        email=delivery.email, state=delivery.state, release=delivery.template_version, reply=delivery.last_reply,
    )  # fmt: skip


def _of_event(event: Event) -> Happening:
    return Happening(
        at=event.created_at, kind=event.kind, step=event.step, enrolment=event.enrolment, value=event.value,
        automated=event.automated, seconds_after_delivery=event.seconds_since_delivery, reply=event.detail,
    )  # fmt: skip


def _of_answers(answers: list[Answer]) -> list[Happening]:
    """Each answer, with the band it replaced (the one before it for the same email of the same time through)."""
    found: list[Happening] = []
    earlier: dict[tuple[int, int, str], str] = {}
    for answer in sorted(answers, key=lambda answer: (answer.created_at, answer.id)):
        place = (answer.enrolment, answer.step, answer.checklist)
        found.append(Happening(at=answer.created_at, kind="answer", step=answer.step, enrolment=answer.enrolment,
                               checklist=answer.checklist, value=answer.band, before=earlier.get(place),
                               score=answer.score))  # fmt: skip
        earlier[place] = answer.band
    return found
