"""What happens after the emails go out: the funnel, each day's figures, the answers, per template version.

The figures are sums per sign-up week (a *cohort*), kept in ``insight_counts``. :func:`refresh` sums
them from the deliveries, events and answers in a few set-based statements per range of cohorts (the
beat: every cohort once a day, those still in the course every few minutes; the studio's button and
``course insights`` on demand), so the studio's page reads a few thousand rows, not the tables behind.

Every figure counts things that belong to one cohort, so any choice of cohorts is a sum:
- people are counted per time through the course (a person who restarts counts again);
- a step's figures are split by the template version (release) its email was sent with; an event of
  a step (a click, an exercise done, leaving after it) counts under that step's email's version;
- clicks by mail scanners (``automated``) are counted apart, as clicks, and never as people engaged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from course.curriculum import Checklist, Course
from course.db import serialise
from course.models import (
    Answer,
    Delivery,
    DeliveryState,
    Event,
    EventKind,
    InsightCohort,
    InsightCount,
    Subscriber,
)

NONE = -1  # the step of a figure that belongs to no step (signed up, confirmed, completed)
# The cohorts the beat sums again each time: those that signed up within this long of now (the
# course's 20 emails, plus two weeks for pauses and late clicks). The beat sums every cohort once a
# day (FULL_SUM_EVERY), and the studio or `course insights --all` on demand.
ACTIVE_COHORTS = timedelta(days=7 * 5)
FULL_SUM_EVERY = timedelta(days=1)
# A rate is told apart from another only with at least this many people behind each.
FEW = 30
# PostgreSQL's memory for each sort and hash of a sum (work_mem), for the summing transaction only.
SUM_MEMORY = "128MB"
# Kinds of event a person makes by reading an email and acting on it.
ENGAGING = (EventKind.CLICK, EventKind.CONSULTATION, EventKind.RESOURCE, EventKind.ANSWER, EventKind.EXERCISE_DONE)


class week_of(FunctionElement[date]):
    """The Monday (UTC) of a timestamp's week, as a date, on PostgreSQL and on SQLite."""

    type = Date()
    inherit_cache = True


@compiles(week_of, "postgresql")
def _week_of_postgresql(element: week_of, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('week', {compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AS date)"


@compiles(week_of, "sqlite")
def _week_of_sqlite(element: week_of, compiler: Any, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text: to the next Sunday (or that day), then back six days.
    return f"date({compiler.process(element.clauses, **kw)}, 'weekday 0', '-6 days')"


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- Summing -------------------------------------------------------------------------------------


def _row(cohort: Any, measure: Any, step: Any, version: Any, key: Any, value: Any) -> list[Any]:
    return [cohort.label("cohort"), measure.label("measure"), step.label("step"), version.label("version"),
            key.label("key"), value.label("value")]  # fmt: skip


def _same_enrolment(one: Any, other: Any) -> ColumnElement[bool]:
    """Two rows (tables or their ``.c``) of the same person in the same time through the course."""
    return and_(one.subscriber_id == other.subscriber_id, one.enrolment == other.enrolment)


def _text(value: str) -> ColumnElement[str]:
    return literal(value)


@dataclass(frozen=True)
class _Scope:
    """What one sum reads, each once: the chosen weeks' subscribers (``people``: id, cohort, confirmed,
    completed) and their deliveries of course steps (``emails``: who, which step, its version, its
    state, whether it bounced since). Everything else joins these, never a whole table."""

    people: Any
    emails: Any


def _scope(slug: str, start: datetime, end: datetime) -> _Scope:
    people = (
        select(Subscriber.id, week_of(Subscriber.created_at).label("cohort"), Subscriber.confirmed_at,
               Subscriber.completed_at)
        .where(Subscriber.course_slug == slug, Subscriber.created_at >= start, Subscriber.created_at < end)
        .cte("people")
    )  # fmt: skip
    bounced = (
        select(Event.delivery_id)
        .join(people, people.c.id == Event.subscriber_id)
        .where(Event.kind.in_([EventKind.BOUNCE.value, EventKind.COMPLAINT.value]), Event.delivery_id.is_not(None))
        .distinct()
        .subquery("bounced")
    )
    emails = (
        select(Delivery.subscriber_id, Delivery.enrolment, Delivery.step, people.c.cohort, Delivery.state,
               func.coalesce(Delivery.template_version, "").label("version"),
               bounced.c.delivery_id.is_not(None).label("bounced"))
        .join(people, people.c.id == Delivery.subscriber_id)
        .outerjoin(bounced, bounced.c.delivery_id == Delivery.id)
        .where(Delivery.step.is_not(None))
        .cte("emails")
    )  # fmt: skip
    return _Scope(people, emails)


def _people_selects(scope: _Scope) -> list[Select[Any]]:
    """Signed up, confirmed, completed: per cohort."""
    people = scope.people
    return [
        select(*_row(people.c.cohort, _text(measure), literal(NONE), _text(""), _text(""), counted))
        .group_by(people.c.cohort)
        for measure, counted in (("signed-up", func.count()), ("confirmed", func.count(people.c.confirmed_at)),
                                 ("completed", func.count(people.c.completed_at)))
    ]  # fmt: skip


def _delivery_selects(scope: _Scope) -> list[Select[Any]]:
    """Per step and version: sent (handed over and settled), delivered, failed or bounced."""
    emails = scope.emails
    sent = emails.c.state == DeliveryState.SENT.value
    failed = or_(emails.c.state == DeliveryState.FAILED.value, emails.c.bounced)
    per_step = (
        select(
            emails.c.cohort, emails.c.step, emails.c.version, func.count().label("sent"),
            func.sum(case((and_(sent, ~emails.c.bounced), 1), else_=0)).label("delivered"),
            func.sum(case((failed, 1), else_=0)).label("failed"),
        )
        .where(emails.c.state.in_([DeliveryState.SENT.value, DeliveryState.FAILED.value]))
        .group_by(emails.c.cohort, emails.c.step, emails.c.version)
        .subquery("per_step")
    )  # fmt: skip
    where = (per_step.c.cohort, per_step.c.step, per_step.c.version)
    return [
        select(*_row(where[0], _text(measure), where[1], where[2], _text(""), per_step.c[measure]))
        for measure in ("sent", "delivered", "failed")
    ]


def _event_measure() -> ColumnElement[str]:
    """Which figure an event counts toward (people, or the scanners' clicks)."""
    human = Event.automated.is_(False)
    return case(
        (Event.kind == EventKind.EXERCISE_DONE.value, "exercise"),
        (and_(Event.kind == EventKind.CONSULTATION.value, human), "consultation"),
        (Event.kind == EventKind.CONSULTATION.value, "consultation-automated"),
        (and_(Event.kind == EventKind.RESOURCE.value, human), "resource"),
        (Event.kind == EventKind.RESOURCE.value, "resource-automated"),
        (and_(Event.kind == EventKind.CLICK.value, ~human), "click-automated"),
        (Event.kind == EventKind.UNSUBSCRIBED.value, "unsubscribed"),
        (Event.kind == EventKind.PAUSED.value, "paused"),
        else_="",
    )


def _event_selects(scope: _Scope) -> list[Select[Any]]:
    """Per step and version: people who did the exercise, clicked the consultation or a guide (people),
    left or paused after that email; the scanners' clicks (clicks); people who acted on it at all."""
    people, emails = scope.people, scope.emails
    version = func.coalesce(emails.c.version, "")
    measure = _event_measure()
    engaged = and_(Event.kind.in_([kind.value for kind in ENGAGING]), Event.automated.is_(False))

    def per_person(counted: ColumnElement[str], which: ColumnElement[bool], *by: ColumnElement[Any]) -> Select[Any]:
        """One row per person and figure (with how many events made it), from the chosen weeks' events."""
        return (
            select(people.c.cohort, counted.label("measure"), Event.step.label("step"), version.label("version"),
                   Event.subscriber_id, Event.enrolment, func.count().label("n"))
            .join(people, people.c.id == Event.subscriber_id)
            .outerjoin(emails, and_(_same_enrolment(emails.c, Event), emails.c.step == Event.step))
            .where(Event.step.is_not(None), which)
            .group_by(people.c.cohort, *by, Event.step, version, Event.subscriber_id, Event.enrolment)
        )  # fmt: skip

    persons = union_all(per_person(measure, measure != "", measure), per_person(_text("engaged"), engaged)).subquery(
        "persons"
    )
    # People once each; the scanners' clicks as many as they made.
    value = case((persons.c.measure.like("%-automated"), func.sum(persons.c.n)), else_=func.count())
    kept = (persons.c.cohort, persons.c.measure, persons.c.step, persons.c.version)
    return [select(*_row(*kept, _text(""), value)).group_by(*kept)]


def _answer_selects(course: Course, scope: _Scope) -> list[Select[Any]]:
    """Per step with a checklist: people by band. Per checklist asked twice (a baseline and a retake):
    people by (first band, last band), and people who clicked the consultation by their first band.
    Pairs are made by grouping each person's rows, not by joining the answers to themselves: an
    estimate gone wrong cannot turn that into rows times rows."""
    people, emails = scope.people, scope.emails
    # Each person's current answer at each step (every save is a row, the latest counts), with the
    # version of the email that asked it.
    latest = (
        select(func.max(Answer.id).label("id"))
        .join(people, people.c.id == Answer.subscriber_id)
        .group_by(Answer.subscriber_id, Answer.enrolment, Answer.step)
        .subquery("latest")
    )
    current = (
        select(Answer.subscriber_id, Answer.enrolment, Answer.step, Answer.band, people.c.cohort,
               func.coalesce(emails.c.version, "").label("version"))
        .join(latest, latest.c.id == Answer.id)
        .join(people, people.c.id == Answer.subscriber_id)
        .outerjoin(emails, and_(_same_enrolment(emails.c, Answer), emails.c.step == Answer.step))
        .cte("current")
    )  # fmt: skip
    kept = (current.c.cohort, current.c.step, current.c.version, current.c.band)
    selects: list[Select[Any]] = [select(*_row(kept[0], _text("answer"), *kept[1:], func.count())).group_by(*kept)]
    for first, last in asked_twice(course).values():
        person = (current.c.subscriber_id, current.c.enrolment, current.c.cohort)
        both = (
            select(*person, func.max(case((current.c.step == first, current.c.band))).label("before"),
                   func.max(case((current.c.step == last, current.c.band))).label("after"),
                   func.max(case((current.c.step == last, current.c.version))).label("version"))
            .where(current.c.step.in_([first, last]))
            .group_by(*person)
            .subquery("both_times")
        )  # fmt: skip
        movement = both.c.before + literal(">") + both.c.after
        selects.append(
            select(*_row(both.c.cohort, _text("movement"), literal(last), both.c.version, movement, func.count()))
            .where(both.c.before.is_not(None), both.c.after.is_not(None))
            .group_by(both.c.cohort, both.c.version, movement)
        )
        # Who booked, by where they stood at first ('': no answer): their baseline and their
        # consultation clicks, grouped per person.
        rows = union_all(
            select(*person, current.c.band.label("band"), literal(0).label("booked")).where(current.c.step == first),
            select(Event.subscriber_id, Event.enrolment, people.c.cohort, literal(None, Answer.band.type).label("band"),
                   literal(1).label("booked"))
            .join(people, people.c.id == Event.subscriber_id)
            .where(Event.kind == EventKind.CONSULTATION.value, Event.automated.is_(False)),
        ).subquery("rows")  # fmt: skip
        per_person = (
            select(rows.c.cohort, func.max(rows.c.band).label("band"), func.max(rows.c.booked).label("booked"))
            .group_by(rows.c.subscriber_id, rows.c.enrolment, rows.c.cohort)
            .subquery("per_person")
        )
        band = func.coalesce(per_person.c.band, "")
        selects.append(
            select(*_row(per_person.c.cohort, _text("consultation-by-band"), literal(first), _text(""), band,
                         func.count()))
            .where(per_person.c.booked == 1)
            .group_by(per_person.c.cohort, band)
        )  # fmt: skip
    return selects


def asked_twice(course: Course) -> dict[str, tuple[int, int]]:
    """Checklists asked at more than one step: their first and last step (the baseline and the retake)."""
    steps: dict[str, list[int]] = defaultdict(list)
    for step in course.steps:
        if step.checklist is not None:
            steps[step.checklist].append(step.number)
    return {key: (numbers[0], numbers[-1]) for key, numbers in steps.items() if len(numbers) > 1}


def refresh(
    session: Session, course: Course, now: datetime, since: date | None = None, until: date | None = None
) -> int:
    """Sum again the figures of the cohorts that signed up from ``since`` to before ``until`` (whole weeks;
    none: from the first sign-up, to now). Returns how many cohorts have figures. The caller commits:
    a reader sees the old sums or the new ones, never a mix."""
    if since is None:
        first = session.scalar(select(func.min(Subscriber.created_at)).where(Subscriber.course_slug == course.slug))
        if first is None:
            return 0
        since = first.date()
    since = monday(since)
    until = monday(until or now.date()) + timedelta(days=7)
    start, end = _midnight(since), _midnight(until)
    # One sum of a course at a time (the beat's and a studio user's would insert the same rows): the
    # second waits for the first to commit, then sums afresh.
    serialise(session, f"course.insights:{course.slug}")
    if session.get_bind().dialect.name == "postgresql":
        # The sums sort and hash a few hundred thousand rows a week of sign-ups: in memory, not on disk
        # (the server's default is 4 MB). For this transaction only.
        session.execute(text(f"SET LOCAL work_mem = '{SUM_MEMORY}'"))
    in_range = and_(InsightCount.course_slug == course.slug, InsightCount.cohort >= since, InsightCount.cohort < until)
    session.execute(delete(InsightCount).where(in_range))
    session.execute(
        delete(InsightCohort).where(
            InsightCohort.course_slug == course.slug, InsightCohort.cohort >= since, InsightCohort.cohort < until
        )
    )
    scope = _scope(course.slug, start, end)
    everything = union_all(
        *_people_selects(scope), *_delivery_selects(scope), *_event_selects(scope), *_answer_selects(course, scope)
    ).subquery("everything")
    columns = ["cohort", "measure", "step", "version", "key", "value"]
    session.execute(
        insert(InsightCount).from_select(
            ["course_slug", *columns],
            select(literal(course.slug), *(everything.c[name] for name in columns)).where(everything.c.value > 0),
        )
    )
    cohorts = select(literal(course.slug), InsightCount.cohort, literal(now, InsightCohort.refreshed_at.type)).where(
        in_range, InsightCount.measure == "signed-up"
    )
    session.execute(insert(InsightCohort).from_select(["course_slug", "cohort", "refreshed_at"], cohorts))
    return int(
        session.scalar(
            select(func.count())
            .select_from(InsightCohort)
            .where(
                InsightCohort.course_slug == course.slug, InsightCohort.cohort >= since, InsightCohort.cohort < until
            )
        )
        or 0
    )


def refresh_active(session: Session, course: Course, now: datetime) -> int:
    """What the beat does every few minutes: the cohorts still going through the course."""
    return refresh(session, course, now, since=(now - ACTIVE_COHORTS).date())


# --- Reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which cohorts: those that signed up from ``since`` to ``until`` (Mondays, inclusive), or one week."""

    since: date
    until: date
    cohort: date | None = None

    @property
    def first(self) -> date:
        return self.cohort or self.since

    @property
    def last(self) -> date:
        return self.cohort or self.until


@dataclass(frozen=True)
class Rate:
    count: int
    of: int

    @property
    def share(self) -> float | None:
        return self.count / self.of if self.of else None

    @property
    def percent(self) -> str:
        return "–" if self.share is None else f"{self.share * 100:.0f}%"


@dataclass(frozen=True)
class DayRow:
    step: int
    label: str
    sent: int
    delivered: int
    failed: int
    exercise: int | None  # None: the email has no exercise
    consultation: int
    consultation_automated: int
    resource: int
    resource_automated: int
    clicks_automated: int
    engaged: int
    unsubscribed: int
    paused: int

    @property
    def exercise_rate(self) -> Rate | None:
        return None if self.exercise is None else Rate(self.exercise, self.delivered)

    @property
    def engaged_rate(self) -> Rate:
        return Rate(self.engaged, self.delivered)


@dataclass(frozen=True)
class VersionRow:
    version: str
    day: DayRow
    verdict: str  # a plain-language note on this version against the one before it


@dataclass(frozen=True)
class BandCount:
    key: str
    label: str
    count: int
    share: Rate


@dataclass(frozen=True)
class Movement:
    before: str
    after: str
    count: int


@dataclass(frozen=True)
class Answers:
    checklist: Checklist
    baseline_step: int
    retake_step: int
    baseline: list[BandCount]
    retake: list[BandCount]
    movement: list[Movement]
    booked: list[BandCount]  # per baseline band: people who clicked the consultation, of those in it


@dataclass
class Insights:
    course: Course
    selection: Selection
    cohorts: list[date]
    refreshed_at: datetime | None
    funnel: list[tuple[str, int, Rate]]
    days: list[DayRow]
    versions: dict[int, list[VersionRow]]
    retention: dict[date, list[Rate | None]]  # per cohort and step: reached of those the welcome reached;
    # None after the furthest step the cohort has reached
    answers: Answers | None
    checklists: dict[int, list[BandCount]]  # per step with a checklist of its own (not the baseline's)


def step_label(course: Course, step: int) -> str:
    email = course.step(step).email
    return {"welcome": "Welcome", "completion": "Completion"}.get(email, f"Day {course.step(step).day_number}")


def cohorts_known(session: Session, course: Course) -> tuple[list[date], datetime | None]:
    """Every cohort with figures, newest first, and when the oldest of their sums was made."""
    rows = session.execute(
        select(InsightCohort.cohort, InsightCohort.refreshed_at)
        .where(InsightCohort.course_slug == course.slug)
        .order_by(InsightCohort.cohort.desc())
    ).all()
    return [row[0] for row in rows], min((row[1] for row in rows), default=None)


def _day_row(course: Course, step: int, counts: dict[tuple[str, str], int]) -> DayRow:
    def get(measure: str) -> int:
        return counts.get((measure, ""), 0)

    has_exercise = course.step(step).day_number is not None
    return DayRow(
        step=step, label=step_label(course, step), sent=get("sent"), delivered=get("delivered"), failed=get("failed"),
        exercise=get("exercise") if has_exercise else None, consultation=get("consultation"),
        consultation_automated=get("consultation-automated"), resource=get("resource"),
        resource_automated=get("resource-automated"), clicks_automated=get("click-automated"), engaged=get("engaged"),
        unsubscribed=get("unsubscribed"), paused=get("paused"),
    )  # fmt: skip


def compare(before: Rate, after: Rate) -> str:
    """A plain-language note on two rates: whether the difference is more than chance would make."""
    if before.of < FEW or after.of < FEW:
        return f"Too few people to tell yet (fewer than {FEW} on one side)."
    pooled = (before.count + after.count) / (before.of + after.of)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / before.of + 1 / after.of))
    difference = (after.share or 0) - (before.share or 0)
    if spread == 0 or abs(difference / spread) < 1.96:
        return "No clear difference: it could be chance."
    direction = "higher" if difference > 0 else "lower"
    return f"Clearly {direction}: {abs(difference) * 100:.0f} points, more than chance would make."


def read(
    session: Session, course: Course, selection: Selection, known: tuple[list[date], datetime | None] | None = None
) -> Insights:
    """The figures of the selected cohorts, summed from ``insight_counts``. ``known``: what
    :func:`cohorts_known` says, when the caller has just read it (to choose the selection)."""
    mine = and_(
        InsightCount.course_slug == course.slug,
        InsightCount.cohort >= selection.first,
        InsightCount.cohort <= selection.last,
    )
    counts: dict[tuple[str, int, str, str], int] = {
        (measure, step, version, key): int(value)
        for measure, step, version, key, value in session.execute(
            select(
                InsightCount.measure,
                InsightCount.step,
                InsightCount.version,
                InsightCount.key,
                func.sum(InsightCount.value),
            )
            .where(mine)
            .group_by(InsightCount.measure, InsightCount.step, InsightCount.version, InsightCount.key)
        )
    }
    per_cohort: dict[date, dict[int, int]] = defaultdict(dict)
    for cohort, step, value in session.execute(
        select(InsightCount.cohort, InsightCount.step, func.sum(InsightCount.value))
        .where(mine, InsightCount.measure == "delivered")
        .group_by(InsightCount.cohort, InsightCount.step)
    ):
        per_cohort[cohort][step] = int(value)
    cohorts, refreshed_at = known or cohorts_known(session, course)
    return _insights(course, selection, counts, per_cohort, cohorts, refreshed_at)


def _insights(
    course: Course, selection: Selection, counts: dict[tuple[str, int, str, str], int],
    per_cohort: dict[date, dict[int, int]], cohorts: list[date], refreshed_at: datetime | None,
) -> Insights:  # fmt: skip
    by_step: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    by_version: dict[int, dict[str, dict[tuple[str, str], int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    for (measure, step, version, key), value in counts.items():
        by_step[step][(measure, key)] += value
        if key == "":
            by_version[step][version][(measure, "")] += value
    steps = [step.number for step in course.steps]
    days = [_day_row(course, step, by_step[step]) for step in steps]
    signed_up = by_step[NONE][("signed-up", "")]

    def reached(step: int) -> int:  # the step's email reached them: sent, and neither refused nor bounced
        return by_step[step][("delivered", "")]

    funnel = [
        ("Signed up", signed_up),
        ("Confirmed", by_step[NONE][("confirmed", "")]),
        ("Got the welcome", reached(0)),
    ]
    for day in (1, 5, 10, 14, 18):
        if day < len(steps) - 1:
            funnel.append((f"Reached day {day}", reached(day)))
    funnel.append(("Completed", by_step[NONE][("completed", "")]))
    versions: dict[int, list[VersionRow]] = {}
    for step in steps:
        rows: list[VersionRow] = []
        for version in sorted(by_version[step], key=_release_order):
            figures = _day_row(course, step, by_version[step][version])
            if rows:
                verdict = compare(_main_rate(rows[-1].day), _main_rate(figures))
            else:
                verdict = "The first version these cohorts got."
            rows.append(VersionRow(version or "before releases were recorded", figures, verdict))
        versions[step] = rows
    retention = {cohort: _so_far([Rate(sent.get(step, 0), sent.get(0, 0)) for step in steps])
                 for cohort, sent in sorted(per_cohort.items())}  # fmt: skip
    checklists: dict[int, list[BandCount]] = {}
    twice = asked_twice(course)
    answers = None
    for key, (first, last) in twice.items():
        checklist = course.checklists[key]
        baseline, retake = _bands(checklist, by_step[first], "answer"), _bands(checklist, by_step[last], "answer")
        movement = [Movement(before.label, after.label, by_step[last][("movement", f"{before.key}>{after.key}")])
                    for before in checklist.bands for after in checklist.bands]  # fmt: skip
        booked = [
            BandCount(band.key, band.label, by_step[first][("consultation-by-band", band.key)],
                      Rate(by_step[first][("consultation-by-band", band.key)], by_step[first][("answer", band.key)]))
            for band in checklist.bands
        ]  # fmt: skip
        answers = Answers(checklist, first, last, baseline, retake, [m for m in movement if m.count], booked)
        break  # the course's baseline; a second checklist asked twice would get a section of its own
    for course_step in course.steps:
        if course_step.checklist is not None and course_step.checklist not in twice:
            checklists[course_step.number] = _bands(
                course.checklists[course_step.checklist], by_step[course_step.number], "answer"
            )
    return Insights(course, selection, cohorts, refreshed_at, [(label, n, Rate(n, signed_up)) for label, n in funnel],
                    days, versions, retention, answers, checklists)  # fmt: skip


def _so_far(rates: list[Rate]) -> list[Rate | None]:
    """A cohort's rates up to the furthest step anybody in it has reached; after it, nothing yet (None),
    not a fall to 0%."""
    reached = [index for index, rate in enumerate(rates) if rate.count]
    last = reached[-1] if reached else -1
    return [rate if index <= last else None for index, rate in enumerate(rates)]


def _main_rate(day: DayRow) -> Rate:
    """What a version of a day is judged by: its exercise done; for an email without one, people acting on it."""
    return day.exercise_rate or day.engaged_rate


def _bands(checklist: Checklist, counts: dict[tuple[str, str], int], measure: str) -> list[BandCount]:
    total = sum(counts[(measure, band.key)] for band in checklist.bands)
    return [BandCount(band.key, band.label, counts[(measure, band.key)], Rate(counts[(measure, band.key)], total))
            for band in checklist.bands]  # fmt: skip


def _release_order(version: str) -> tuple[int, str]:
    """r2 before r10; a version without a release number (older deliveries) first."""
    return (int(version[1:]), version) if version[1:].isdigit() else (-1, version)


def selection_of(
    cohorts: Iterable[date], since: date | None, until: date | None, cohort: date | None, today: date
) -> Selection:
    """What the page shows when its form leaves something out: every cohort there is (none yet: this
    week, by the caller's clock, the one every other figure goes by)."""
    known = sorted(cohorts)
    first = monday(since) if since else (known[0] if known else monday(today))
    last = monday(until) if until else (known[-1] if known else first)
    if last < first:
        first, last = last, first
    return Selection(first, last, monday(cohort) if cohort else None)
