"""Summing the figures: each figure defined once, as which rows count, and summed per cohort into
``insight_counts`` in a few set-based statements per range of cohorts (:func:`refresh`); :func:`people`
lists the very rows a figure counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from course.curriculum import Course
from course.db import serialise
from course.insights.measures import (
    ACTIVE_COHORTS,
    ANSWER,
    BEGAN,
    BOOKED,
    CLICKS,
    COMPLAINED,
    CONFIRMED,
    CONSULTATION,
    DELIVERED,
    DELIVERY_MEASURES,
    ENGAGED,
    ENGAGING,
    EXERCISE,
    FAILED,
    LEFT,
    LINK_CLICKS,
    LINK_PEOPLE,
    MEASURES,
    MOVEMENT,
    NO_ANSWER,
    NONE,
    NOT_ENGAGING_CLICKS,
    PAUSED,
    PEOPLE,
    RESOURCE,
    SCANNER,
    SENT,
    SOFT,
    SUM_MEMORY,
    UNANSWERED,
    UNSUBSCRIBED,
    Selection,
    asked_twice,
    midnight,
    monday,
    week_of,
)
from course.models.deliveries import Delivery, DeliveryState
from course.models.engagement import Answer, Event, EventKind
from course.models.feedback import Bounce
from course.models.insights import InsightCohort, InsightCount
from course.models.subscribers import Subscriber


def _row(cohort: Any, measure: Any, step: Any, version: Any, key: Any, value: Any) -> list[Any]:
    return [cohort.label("cohort"), measure.label("measure"), step.label("step"), version.label("version"),
            key.label("key"), value.label("value")]  # fmt: skip


def _fact(cohort: Any, measure: Any, step: Any, version: Any, key: Any, subscriber_id: Any, enrolment: Any,
          n: Any) -> list[Any]:  # fmt: skip
    """The columns of one counted thing: whose (a time through the course: subscriber and enrolment) and
    how many it adds (1; the clicks it made; or, for a subscriber's row, the times through it began)."""
    return [*_row(cohort, measure, step, version, key, n)[:5], subscriber_id.label("subscriber_id"),
            enrolment.label("enrolment"), n.label("n")]  # fmt: skip


def _same_enrolment(one: Any, other: Any) -> ColumnElement[bool]:
    """Two rows (tables or their ``.c``) of the same person in the same time through the course."""
    return and_(one.subscriber_id == other.subscriber_id, one.enrolment == other.enrolment)


def _text(value: str) -> ColumnElement[str]:
    return literal(value)


def _flag(condition: ColumnElement[bool]) -> Any:
    return func.max(case((condition, 1), else_=0))


@dataclass(frozen=True)
class _Scope:
    """What one sum reads, each once: the chosen weeks' subscribers (``people``) and their deliveries of
    course steps (``emails``: whose, which step, its release, its state, and what came back about it:
    a hard or soft bounce, a complaint). Everything else joins these, never a whole table."""

    people: Any
    emails: Any


def _scope(slug: str, start: datetime, end: datetime, *, inline: bool = False) -> _Scope:
    """``inline``: each statement that reads the scope reads it for itself (NOT MATERIALIZED), so that a
    question about one figure of one email (:func:`people_query`) reads that email's rows only, where a sum
    of every figure reads the scope's rows once."""
    people = (
        select(Subscriber.id, week_of(Subscriber.created_at).label("cohort"), Subscriber.confirmed_at,
               Subscriber.enrolment)
        .where(Subscriber.course_slug == slug, Subscriber.created_at >= start, Subscriber.created_at < end)
        .cte("people")
    )  # fmt: skip
    if inline:
        people = people.prefix_with("NOT MATERIALIZED")
    bounce = Event.kind == EventKind.BOUNCE.value
    returned = (
        select(Event.subscriber_id, Event.enrolment, Event.step,
               _flag(and_(bounce, Event.value.in_(Bounce.undelivered()))).label("hard"),
               _flag(and_(bounce, Event.value.in_([Bounce.SOFT.value, Bounce.SOFT_LIMIT.value]))).label("soft"),
               _flag(Event.kind == EventKind.COMPLAINT.value).label("complained"))
        .join(people, people.c.id == Event.subscriber_id)
        .where(Event.kind.in_([EventKind.BOUNCE.value, EventKind.COMPLAINT.value]), Event.step.is_not(None))
        .group_by(Event.subscriber_id, Event.enrolment, Event.step)
        .subquery("returned")
    )  # fmt: skip
    emails = (
        select(Delivery.subscriber_id, Delivery.enrolment, Delivery.step, people.c.cohort, Delivery.state,
               func.coalesce(Delivery.template_version, "").label("version"),
               func.coalesce(returned.c.hard, 0).label("hard"), func.coalesce(returned.c.soft, 0).label("soft"),
               func.coalesce(returned.c.complained, 0).label("complained"))
        .join(people, people.c.id == Delivery.subscriber_id)
        .outerjoin(returned, and_(_same_enrolment(returned.c, Delivery), returned.c.step == Delivery.step))
        .where(Delivery.step.is_not(None),
               Delivery.state.in_([DeliveryState.SENT.value, DeliveryState.FAILED.value]))
        .cte("emails")
    )  # fmt: skip
    if inline:
        emails = emails.prefix_with("NOT MATERIALIZED")
    return _Scope(people, emails)


def _delivery_rules(emails: Any) -> dict[str, ColumnElement[bool]]:
    """Which settled deliveries of a step each figure counts: handed over (sent or refused for good);
    reached (accepted, no hard bounce since); failed (refused for good, or a hard bounce since); soft
    bounced (reached, with a soft bounce since); complained about."""
    accepted = emails.state == DeliveryState.SENT.value
    hard = emails.hard == 1
    return {
        SENT: true(),
        DELIVERED: and_(accepted, not_(hard)),
        FAILED: or_(emails.state == DeliveryState.FAILED.value, hard),
        SOFT: and_(accepted, not_(hard), emails.soft == 1),
        COMPLAINED: and_(accepted, emails.complained == 1),
    }


def _people_facts(scope: _Scope) -> list[Select[Any]]:
    """Signed up (people), began and confirmed (times through: a subscriber's row counts its enrolments)."""
    people = scope.people
    nobody = literal(None, Integer())
    rows = ((PEOPLE, true(), literal(1)), (BEGAN, true(), people.c.enrolment),
            (CONFIRMED, people.c.confirmed_at.is_not(None), people.c.enrolment))  # fmt: skip
    return [
        select(*_fact(people.c.cohort, _text(measure), literal(NONE), _text(""), _text(""), people.c.id, nobody,
                      n)).where(which)
        for measure, which, n in rows
    ]  # fmt: skip


def _delivery_facts(scope: _Scope) -> list[Select[Any]]:
    """Each delivery under each figure it counts toward (what :func:`people` lists)."""
    emails = scope.emails
    return [
        select(*_fact(emails.c.cohort, _text(measure), emails.c.step, emails.c.version, _text(""),
                      emails.c.subscriber_id, emails.c.enrolment, literal(1))).where(which)
        for measure, which in _delivery_rules(emails.c).items()
    ]  # fmt: skip


def _delivery_sums(scope: _Scope) -> list[Select[Any]]:
    """The same figures as :func:`_delivery_facts`, summed in one pass over the deliveries."""
    emails = scope.emails
    rules = _delivery_rules(emails.c)
    per_step = (
        select(emails.c.cohort, emails.c.step, emails.c.version,
               *(func.sum(case((which, 1), else_=0)).label(measure) for measure, which in rules.items()))
        .group_by(emails.c.cohort, emails.c.step, emails.c.version)
        .cte("per_step")
    )  # fmt: skip
    where = (per_step.c.cohort, per_step.c.step, per_step.c.version)
    return [select(*_row(*where[:1], _text(measure), *where[1:], _text(""), per_step.c[measure])) for measure in rules]


def _link_key() -> ColumnElement[str]:
    """Which link of an email a click opened: ``consultation``, ``resource:<key>``, ``click:<what>``
    (the exercise page, the checklist, a band's answer, the unsubscribe page)."""
    return case(
        (Event.kind == EventKind.CONSULTATION.value, CONSULTATION),
        (Event.kind == EventKind.RESOURCE.value, literal("resource:") + func.coalesce(Event.value, "")),
        else_=literal("click:") + func.coalesce(Event.value, ""),
    )


def _event_facts(scope: _Scope) -> list[Select[Any]]:
    """Per step and time through: did the exercise, clicked the consultation or a guide, acted on the email
    at all, left after it (unsubscribed, complained, or stopped by a bounce) or paused after it; and per
    link, people who clicked it, their clicks, and the scanners' clicks.

    The chosen weeks' events are read once, joined to their people and their email's release, into
    ``acts``: per time through, step, kind of event, link and whether a machine made it, how many there
    were. Each figure is a selection of those rows."""
    people, emails = scope.people, scope.emails
    link = case((Event.kind.in_([kind.value for kind in CLICKS]), _link_key()), else_="")
    stopping = and_(Event.kind == EventKind.BOUNCE.value, Event.value.in_(Bounce.stopping()))
    by = (people.c.cohort, Event.step, func.coalesce(emails.c.version, ""), Event.subscriber_id, Event.enrolment,
          Event.kind, link, Event.automated, stopping)  # fmt: skip
    names = ("cohort", "step", "version", "subscriber_id", "enrolment", "kind", "link", "automated", "stopping")
    acts = (
        select(*(column.label(name) for column, name in zip(by, names, strict=True)), func.count().label("n"))
        .join(people, people.c.id == Event.subscriber_id)
        .outerjoin(emails, and_(_same_enrolment(emails.c, Event), emails.c.step == Event.step))
        .where(Event.step.is_not(None))
        .group_by(*by)
        .cte("acts")
    )  # fmt: skip
    a = acts.c
    person = (a.cohort, a.step, a.version, a.subscriber_id, a.enrolment)
    human = a.automated.is_(False)

    def kind(*kinds: EventKind) -> ColumnElement[bool]:
        return a.kind.in_([one.value for one in kinds])

    def per_person(measure: str, which: ColumnElement[bool]) -> Select[Any]:
        """One row per time through that has such an event at the step: it adds 1."""
        return (
            select(*_fact(a.cohort, _text(measure), a.step, a.version, _text(""), a.subscriber_id, a.enrolment,
                          literal(1)))
            .where(which)
            .group_by(*person)
        )  # fmt: skip

    engaged = and_(kind(*ENGAGING), human, a.link.not_in([f"click:{value}" for value in NOT_ENGAGING_CLICKS]))
    clicked = case((human, LINK_CLICKS), else_=SCANNER)
    per_link = (
        select(*person, a.link, clicked.label("measure"), func.sum(a.n).label("n"))
        .where(kind(*CLICKS))
        .group_by(*person, a.link, clicked)
        .cte("per_link")
    )
    c = per_link.c
    return [
        per_person(EXERCISE, kind(EventKind.EXERCISE_DONE)),
        per_person(CONSULTATION, and_(kind(EventKind.CONSULTATION), human)),
        per_person(RESOURCE, and_(kind(EventKind.RESOURCE), human)),
        per_person(UNSUBSCRIBED, kind(EventKind.UNSUBSCRIBED)),
        per_person(PAUSED, kind(EventKind.PAUSED)),
        per_person(ENGAGED, engaged),
        per_person(LEFT, or_(kind(EventKind.UNSUBSCRIBED, EventKind.COMPLAINT), a.stopping.is_(True))),
        select(*_fact(c.cohort, c.measure, c.step, c.version, c.link, c.subscriber_id, c.enrolment, c.n)),
        select(*_fact(c.cohort, _text(LINK_PEOPLE), c.step, c.version, c.link, c.subscriber_id, c.enrolment,
                      literal(1))).where(c.measure == LINK_CLICKS),
    ]  # fmt: skip


def _answer_facts(course: Course, scope: _Scope) -> list[Select[Any]]:
    """Per step with a checklist: times through by their latest band. Per checklist asked twice (a
    baseline and a retake): by (first band, last band); those who clicked the consultation by their first
    band (NO_ANSWER: none); and those whom the baseline's email reached who did not answer it. Pairs are
    made by grouping each person's rows, not by joining the answers to themselves: an estimate gone wrong
    cannot turn that into rows times rows."""
    people, emails = scope.people, scope.emails
    # Each time through's current answer at each step (every save is a row, the latest counts), with the
    # release of the email that asked it.
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
    whose = (current.c.subscriber_id, current.c.enrolment)
    selects: list[Select[Any]] = [
        select(*_fact(current.c.cohort, _text(ANSWER), current.c.step, current.c.version, current.c.band, *whose,
                      literal(1)))
    ]  # fmt: skip
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
        selects.append(
            select(*_fact(both.c.cohort, _text(MOVEMENT), literal(last), both.c.version,
                          both.c.before + literal(">") + both.c.after, both.c.subscriber_id, both.c.enrolment,
                          literal(1)))
            .where(both.c.before.is_not(None), both.c.after.is_not(None))
        )  # fmt: skip
        # Who clicked to book, by where they stood at first: their baseline and their consultation
        # clicks (from any email of that time through), grouped per time through.
        rows = union_all(
            select(*person, current.c.band.label("band"), literal(0).label("booked")).where(current.c.step == first),
            select(Event.subscriber_id, Event.enrolment, people.c.cohort, literal(None, Answer.band.type).label("band"),
                   literal(1).label("booked"))
            .join(people, people.c.id == Event.subscriber_id)
            .where(Event.kind == EventKind.CONSULTATION.value, Event.automated.is_(False)),
        ).subquery("rows")  # fmt: skip
        per_person = (
            select(rows.c.subscriber_id, rows.c.enrolment, rows.c.cohort, func.max(rows.c.band).label("band"),
                   func.max(rows.c.booked).label("booked"))
            .group_by(rows.c.subscriber_id, rows.c.enrolment, rows.c.cohort)
            .subquery("per_person")
        )  # fmt: skip
        selects.append(
            select(*_fact(per_person.c.cohort, _text(BOOKED), literal(first), _text(""),
                          func.coalesce(per_person.c.band, NO_ANSWER), per_person.c.subscriber_id,
                          per_person.c.enrolment, literal(1)))
            .where(per_person.c.booked == 1)
        )  # fmt: skip
        # Whom the baseline's email reached, less those who answered it: grouped per time through too.
        reached = _delivery_rules(emails.c)[DELIVERED]
        marks = union_all(
            select(emails.c.subscriber_id, emails.c.enrolment, emails.c.cohort, literal(1).label("reached"),
                   literal(0).label("answered")).where(emails.c.step == first, reached),
            select(*person, literal(0), literal(1)).where(current.c.step == first),
        ).subquery("marks")  # fmt: skip
        selects.append(
            select(*_fact(marks.c.cohort, _text(UNANSWERED), literal(first), _text(""), _text(""),
                          marks.c.subscriber_id, marks.c.enrolment, literal(1)))
            .group_by(marks.c.subscriber_id, marks.c.enrolment, marks.c.cohort)
            .having(and_(func.max(marks.c.reached) == 1, func.max(marks.c.answered) == 0))
        )  # fmt: skip
    return selects


def _person_facts(course: Course, scope: _Scope) -> list[Select[Any]]:
    """Every figure's counted things but the deliveries' (summed in one pass: :func:`_delivery_sums`)."""
    return [*_people_facts(scope), *_event_facts(scope), *_answer_facts(course, scope)]


def _summed(facts: Select[Any]) -> Select[Any]:
    counted = facts.subquery()
    c = counted.c
    return select(*_row(c.cohort, c.measure, c.step, c.version, c.key, func.sum(c.n))).group_by(
        c.cohort, c.measure, c.step, c.version, c.key
    )


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
    start, end = midnight(since), midnight(until)
    # One sum of a course at a time (the beat's and a studio user's would insert the same rows): the
    # second waits for the first to commit, then sums afresh.
    serialise(session, f"course.insights:{course.slug}")
    # The sums sort and hash a few hundred thousand rows a week of sign-ups: in memory, not on disk
    # (the server's default is 4 MB). For this transaction only.
    session.execute(text(f"SET LOCAL work_mem = '{SUM_MEMORY}'"))
    # The sum is one statement of twenty parts: compiling it to machine code (JIT) took longer than it
    # saved (3.5 s of 9 for the weeks still in the course, at 200,000 subscribers).
    session.execute(text("SET LOCAL jit = off"))
    in_range = and_(InsightCount.course_slug == course.slug, InsightCount.cohort >= since, InsightCount.cohort < until)
    session.execute(delete(InsightCount).where(in_range))
    session.execute(
        delete(InsightCohort).where(
            InsightCohort.course_slug == course.slug, InsightCohort.cohort >= since, InsightCohort.cohort < until
        )
    )
    scope = _scope(course.slug, start, end)
    everything = union_all(
        *(_summed(facts) for facts in _person_facts(course, scope)), *_delivery_sums(scope)
    ).subquery("everything")
    columns = ["cohort", "measure", "step", "version", "key"]
    value = func.sum(everything.c.value)
    kept = [everything.c[name] for name in columns]
    session.execute(
        insert(InsightCount).from_select(
            ["course_slug", *columns, "value"],
            select(literal(course.slug), *kept, value).group_by(*kept).having(value > 0),
        )
    )
    cohorts = select(literal(course.slug), InsightCount.cohort, literal(now, InsightCohort.refreshed_at.type)).where(
        in_range, InsightCount.measure == PEOPLE
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


@dataclass(frozen=True)
class Behind:
    """One time through the course behind a figure (``enrolment`` None: a person, with ``n`` times
    through), and what it added to the figure."""

    subscriber_id: int
    email: str
    enrolment: int | None
    n: int


def people_query(
    course: Course, selection: Selection, measure: str, step: int, releases: Iterable[str] | None, key: str | None
) -> Select[Any]:
    """The statement of :func:`people`: (subscriber_id, email, enrolment, n) of each row the figure counted."""
    if measure not in MEASURES:
        raise ValueError(f"no figure {measure!r}")
    scope = _scope(course.slug, midnight(selection.first), midnight(selection.last + timedelta(days=7)), inline=True)
    sources = _delivery_facts(scope) if measure in DELIVERY_MEASURES else _person_facts(course, scope)
    facts = union_all(*sources).subquery("facts")
    chosen = (
        select(facts.c.subscriber_id, Subscriber.email, facts.c.enrolment, facts.c.n)
        .join(Subscriber, Subscriber.id == facts.c.subscriber_id)
        .where(facts.c.measure == measure, facts.c.step == step)
    )
    if key is not None:
        chosen = chosen.where(facts.c.key == key)
    if releases is not None:
        chosen = chosen.where(facts.c.version.in_(list(releases)))
    return chosen


def people(
    session: Session, course: Course, selection: Selection, measure: str, step: int, releases: Iterable[str] | None,
    key: str | None,
) -> Iterator[Behind]:  # fmt: skip
    """Who is behind one figure of the page: the very rows its sum counted, for the selected cohorts.
    ``releases``: the releases of the version chosen (None: every release; :meth:`Changes.releases`); ``key``:
    the band, link or movement (None: every one)."""
    chosen = people_query(course, selection, measure, step, releases, key)
    chosen = chosen.order_by(chosen.selected_columns[0], chosen.selected_columns[2])
    for row in session.execute(chosen.execution_options(yield_per=2000)):
        subscriber_id, email, enrolment, n = row
        yield Behind(int(subscriber_id), email, None if enrolment is None else int(enrolment), int(n))
