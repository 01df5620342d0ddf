"""What happens after the emails go out: the funnel, each day's figures, the answers, per template version.

The figures are sums per sign-up week (a *cohort*), kept in ``insight_counts``. :func:`refresh` sums
them from the deliveries, events and answers in a few set-based statements per range of cohorts (the
beat: every cohort once a day, those still in the course every few minutes; the studio's button and
``course insights`` on demand), so the studio's page reads a few thousand rows, not the tables behind.

One unit everywhere: a *time through the course*. Each sign-up begins one and each restart another, so a
person who starts again counts again, in the week they first signed up; a link counts in the time
through it was sent in (course/links.py). Every figure counts things that belong to one cohort, so any
choice of cohorts is a sum. Each figure is defined once here, as which rows count (``_DELIVERY_MEASURES``,
``_event_measure`` and the rest): the sums group those rows, and :func:`people` lists them, so the people
behind a figure are always the ones it counted.

- A step's figures are split by the release its email was sent with; an event of a step (a click, an
  exercise done, leaving after it) counts under that step's email's release. The page then joins the
  releases that did not change that email (:class:`Changes`): a version of an email is a change to it.
- An email *reached* its reader when the mail server accepted it and no hard bounce came back for it
  (a soft bounce may still be delivered by the provider; a complaint means it arrived). Hard and soft
  bounces and complaints are counted apart, each as a rate.
- Clicks by mail scanners (``automated``) are counted apart, as clicks, and never as people acting.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    and_,
    case,
    cast,
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
from sqlalchemy.orm import InstrumentedAttribute, Session

from course.curriculum import Checklist, Course
from course.db import serialise
from course.lifecycle import EmailKind
from course.models import (
    Answer,
    Bounce,
    Delivery,
    DeliveryState,
    Event,
    EventKind,
    InsightCohort,
    InsightCount,
    Subscriber,
    TemplatePublication,
)

NONE = -1  # the step of a figure that belongs to no step (signed up, began, confirmed)
# The cohorts the beat sums again each time: those that signed up within this long of now (the
# course's 20 emails, plus two weeks for pauses and late clicks). The beat sums every cohort once a
# day (FULL_SUM_EVERY), and the studio or `course insights --all` on demand.
ACTIVE_COHORTS = timedelta(days=7 * 5)
FULL_SUM_EVERY = timedelta(days=1)
# A rate is told apart from another only with at least this many people behind each.
FEW = 30
# PostgreSQL's memory for each sort and hash of a sum (work_mem), for the summing transaction only.
SUM_MEMORY = "128MB"
# Kinds of event a person makes by reading an email and acting on it (opening the unsubscribe page is not).
ENGAGING = (EventKind.CLICK, EventKind.CONSULTATION, EventKind.RESOURCE, EventKind.ANSWER, EventKind.EXERCISE_DONE)
NOT_ENGAGING_CLICKS = ("unsubscribe",)
# Kinds of event that are a click on a link of an email.
CLICKS = (EventKind.CLICK, EventKind.CONSULTATION, EventKind.RESOURCE)
# The key of "clicked the consultation" for those who did not answer the baseline checklist (band keys
# are [a-z0-9-]+: this is none of them).
NO_ANSWER = "(none)"


def week_of(moment: ColumnElement[datetime] | InstrumentedAttribute[datetime]) -> ColumnElement[date]:
    """The Monday (UTC) of a timestamp's week, as a date."""
    return cast(func.date_trunc("week", func.timezone("UTC", moment)), Date)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- What each figure counts ------------------------------------------------------------------------

# Figures of a time through the course as a whole (step NONE), each from the subscribers' rows:
# people who signed up, times through begun (a sign-up, and each restart), of them confirmed.
PEOPLE, BEGAN, CONFIRMED = "signed-up", "began", "confirmed"
# Figures of a step's email, each delivery counted once under the rule it meets (see _delivery_rules).
SENT, DELIVERED, FAILED, SOFT, COMPLAINED = "sent", "delivered", "failed", "soft-bounced", "complained"
DELIVERY_MEASURES = (SENT, DELIVERED, FAILED, SOFT, COMPLAINED)
# Figures of a step from events, each time through once (LINK_CLICKS and SCANNER: every click).
EXERCISE, CONSULTATION, RESOURCE = "exercise", "consultation", "resource"
UNSUBSCRIBED, PAUSED, LEFT, ENGAGED = "unsubscribed", "paused", "left", "engaged"
LINK_PEOPLE, LINK_CLICKS, SCANNER = "link-people", "link-clicks", "link-scanner"
EVENT_MEASURES = (EXERCISE, CONSULTATION, RESOURCE, UNSUBSCRIBED, PAUSED, LEFT, ENGAGED, LINK_PEOPLE, LINK_CLICKS,
                  SCANNER)  # fmt: skip
# Figures of the checklists: the latest answer by band, how it moved from the baseline to the retake,
# who clicked the consultation by their baseline band (NO_ANSWER: none), and whom the baseline's email
# reached who did not answer it.
ANSWER, MOVEMENT, BOOKED, UNANSWERED = "answer", "movement", "consultation-by-band", "unanswered"
# What a version of an email is made of: the figures of its deliveries and of the events they led to.
VERSIONED = frozenset(DELIVERY_MEASURES + EVENT_MEASURES)
MEASURES = frozenset({PEOPLE, BEGAN, CONFIRMED, ANSWER, MOVEMENT, BOOKED, UNANSWERED}) | VERSIONED


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


def _scope(slug: str, start: datetime, end: datetime) -> _Scope:
    people = (
        select(Subscriber.id, week_of(Subscriber.created_at).label("cohort"), Subscriber.confirmed_at,
               Subscriber.enrolment)
        .where(Subscriber.course_slug == slug, Subscriber.created_at >= start, Subscriber.created_at < end)
        .cte("people")
    )  # fmt: skip
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


def asked_twice(course: Course) -> dict[str, tuple[int, int]]:
    """Checklists asked at more than one step: their first and last step (the baseline and the retake)."""
    steps: dict[str, list[int]] = defaultdict(list)
    for step in course.steps:
        if step.checklist is not None:
            steps[step.checklist].append(step.number)
    return {key: (numbers[0], numbers[-1]) for key, numbers in steps.items() if len(numbers) > 1}


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
    start, end = _midnight(since), _midnight(until)
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


def people(
    session: Session, course: Course, selection: Selection, measure: str, step: int, releases: Iterable[str] | None,
    key: str | None,
) -> Iterator[Behind]:  # fmt: skip
    """Who is behind one figure of the page: the very rows its sum counted, for the selected cohorts.
    ``releases``: the releases of the version chosen (None: every release; :meth:`Changes.releases`); ``key``:
    the band, link or movement (None: every one)."""
    if measure not in MEASURES:
        raise ValueError(f"no figure {measure!r}")
    scope = _scope(course.slug, _midnight(selection.first), _midnight(selection.last + timedelta(days=7)))
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
    chosen = chosen.order_by(facts.c.subscriber_id, facts.c.enrolment)
    for subscriber_id, email, enrolment, n in session.execute(chosen.execution_options(yield_per=2000)):
        yield Behind(int(subscriber_id), email, None if enrolment is None else int(enrolment), int(n))


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
        if self.share is None:
            return "–"
        shown = f"{self.share * 100:.0f}%"
        if shown == "0%" and self.count:  # a few of many is not none
            return "<1%" if self.share < 0.01 else shown
        return shown


@dataclass(frozen=True)
class Figure:
    """Where a number of the page comes from, to list the people behind it (:func:`people`)."""

    measure: str
    step: int = NONE
    version: str | None = None  # a version's id (see Changes); None: every release
    key: str | None = ""  # None: every key (the scanners' clicks on any link of the email)


@dataclass(frozen=True)
class DayRow:
    """One email's figures, each a count of times through the course (the clicks' figures: of clicks)."""

    step: int
    label: str
    sent: int  # handed to the mail server and settled: accepted, or refused for good
    delivered: int  # reached: accepted, and no hard bounce since
    failed: int  # refused for good, or a hard bounce since
    soft_bounced: int  # reached, with a soft bounce since
    complained: int
    exercise: int | None  # None: the email has no exercise
    consultation: int  # times through that clicked the consultation link (a click, not a booking)
    resource: int
    scanner_clicks: int
    engaged: int
    unsubscribed: int
    left: int  # unsubscribed, complained or stopped by a bounce, with this email their last
    paused: int
    version: str | None = None  # the version's id for the rows of a version

    def rate(self, count: int, of: str = "delivered") -> Rate:
        return Rate(count, self.sent if of == "sent" else self.delivered)

    @property
    def exercise_rate(self) -> Rate | None:
        return None if self.exercise is None else Rate(self.exercise, self.delivered)

    @property
    def engaged_rate(self) -> Rate:
        return Rate(self.engaged, self.delivered)

    def figure(self, measure: str, key: str | None = "") -> Figure:
        return Figure(measure, self.step, self.version, key)


@dataclass(frozen=True)
class LinkRow:
    key: str
    label: str
    people: int
    clicks: int
    scanner_clicks: int


@dataclass(frozen=True)
class Change:
    """A publication that changed an email (id 0: the course as shipped)."""

    id: int
    at: datetime | None
    note: str
    item: str

    @property
    def version(self) -> str:
        return f"v{self.id}"

    @property
    def label(self) -> str:
        if self.id == 0:
            return "As shipped"
        assert self.at is not None  # noqa: S101 - a publication has its time
        return f"{self.at:%d %b %Y %H:%M} UTC: {self.note or self.item}"


@dataclass(frozen=True)
class Changes:
    """Which publications changed which email: a publication changed an email when what the email says
    differs after it (``TemplatePublication.changed``; one published before that was kept: every email).
    The releases an email went out with are joined into its versions by the change each followed."""

    publications: list[tuple[int, datetime, str, str, list[str] | None]]

    @classmethod
    def of(cls, session: Session, course: Course) -> Changes:
        rows = session.execute(
            select(TemplatePublication.id, TemplatePublication.created_at, TemplatePublication.note,
                   TemplatePublication.item, TemplatePublication.changed)
            .where(TemplatePublication.course_slug == course.slug)
            .order_by(TemplatePublication.id)
        )  # fmt: skip
        return cls([(pid, at, note, item, None if changed is None else list(json.loads(changed)))
                    for pid, at, note, item, changed in rows])  # fmt: skip

    def change(self, email: str, release: str) -> Change | None:
        """The change an email sent with ``release`` carries (the latest publication up to it that changed
        the email); None for a delivery made before releases were recorded."""
        number = _release_number(release)
        if number is None:
            return None
        found = Change(0, None, "", "")
        for pid, at, note, item, changed in self.publications:
            if pid > number:
                break
            if changed is None or email in changed:
                found = Change(pid, at, note, item)
        return found

    def releases(self, email: str, version: str, known: Iterable[str]) -> list[str]:
        """Of the ``known`` releases, those an email's ``version`` (a :attr:`Change.version`, or OLDER) went
        out with."""

        def version_of(release: str) -> str:
            change = self.change(email, release)
            return change.version if change is not None else OLDER

        return [release for release in known if version_of(release) == version]


@dataclass(frozen=True)
class VersionRow:
    change: Change | None  # None: sent before releases were recorded
    day: DayRow
    judged_by: str  # what the verdict compares: "did the exercise" or "acted on it"
    rate: Rate  # the rate the verdict is based on
    verdict: str  # a plain-language note on this version against the one before it

    @property
    def version(self) -> str:
        return self.change.version if self.change is not None else OLDER

    @property
    def label(self) -> str:
        return self.change.label if self.change is not None else "Sent before releases were recorded"


OLDER = "older"  # the version id of deliveries made before releases were recorded


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
    key: str = ""


@dataclass(frozen=True)
class Answers:
    checklist: Checklist
    baseline_step: int
    retake_step: int
    baseline: list[BandCount]
    retake: list[BandCount]
    movement: list[Movement]
    # Per baseline band, and for those who did not answer (key NO_ANSWER, last): times through that
    # clicked the consultation link, of those in it.
    booked: list[BandCount]


@dataclass(frozen=True)
class Stage:
    label: str
    count: int
    rate: Rate  # of the times through begun
    figure: Figure


@dataclass
class Insights:
    course: Course
    selection: Selection
    cohorts: list[date]
    refreshed_at: datetime | None
    people: int  # people who signed up in the chosen weeks
    funnel: list[Stage]
    days: list[DayRow]
    links: dict[int, list[LinkRow]]  # per step: each link of its email, most clicked first
    versions: dict[int, list[VersionRow]]
    retention: dict[date, list[Rate | None]]  # per cohort and step: reached of those the welcome reached;
    # None after the furthest step the cohort has reached
    answers: Answers | None
    checklists: dict[int, list[BandCount]]  # per step with a checklist of its own (not the baseline's)
    counts: dict[tuple[str, int, str, str], int] = field(default_factory=dict, repr=False)


def step_label(course: Course, step: int) -> str:
    email = course.step(step).email
    return {EmailKind.WELCOME.value: "Welcome", EmailKind.COMPLETION.value: "Completion"}.get(
        email, f"Day {course.step(step).day_number}"
    )


def link_label(course: Course, key: str) -> str:
    """A link of an email, as the page names it."""
    kind, _, value = key.partition(":")
    if kind == CONSULTATION:
        return "Book a consultation"
    if kind == "resource":
        resource = course.resources.get(value)
        return f"Guide: {resource.title if resource else value}"
    names = {"exercise": "The exercise page", "checklist": "The checklist", "unsubscribe": "Unsubscribe"}
    if value in names:
        return names[value]
    for checklist in course.checklists.values():
        if (band := checklist.band(value)) is not None:
            return f"Answer: {band.label}"
    return value


def cohorts_known(session: Session, course: Course) -> tuple[list[date], datetime | None]:
    """Every cohort with figures, newest first, and when the oldest of their sums was made."""
    rows = session.execute(
        select(InsightCohort.cohort, InsightCohort.refreshed_at)
        .where(InsightCohort.course_slug == course.slug)
        .order_by(InsightCohort.cohort.desc())
    ).all()
    return [row[0] for row in rows], min((row[1] for row in rows), default=None)


def _day_row(course: Course, step: int, counts: Callable[[str], int], version: str | None = None) -> DayRow:
    has_exercise = course.step(step).day_number is not None
    return DayRow(
        step=step, label=step_label(course, step), sent=counts(SENT), delivered=counts(DELIVERED),
        failed=counts(FAILED), soft_bounced=counts(SOFT), complained=counts(COMPLAINED),
        exercise=counts(EXERCISE) if has_exercise else None, consultation=counts(CONSULTATION),
        resource=counts(RESOURCE), scanner_clicks=counts(SCANNER), engaged=counts(ENGAGED),
        unsubscribed=counts(UNSUBSCRIBED), left=counts(LEFT), paused=counts(PAUSED), version=version,
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
        .where(mine, InsightCount.measure == DELIVERED)
        .group_by(InsightCount.cohort, InsightCount.step)
    ):
        per_cohort[cohort][step] = int(value)
    cohorts, refreshed_at = known or cohorts_known(session, course)
    return _insights(course, selection, counts, per_cohort, cohorts, refreshed_at, Changes.of(session, course))


def _insights(
    course: Course, selection: Selection, counts: dict[tuple[str, int, str, str], int],
    per_cohort: dict[date, dict[int, int]], cohorts: list[date], refreshed_at: datetime | None, changes: Changes,
) -> Insights:  # fmt: skip
    by_step: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    by_version: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    links: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    changed: dict[tuple[int, str], Change | None] = {}
    for (measure, step, release, key), value in counts.items():
        by_step[step][(measure, key)] += value
        if measure in (LINK_PEOPLE, LINK_CLICKS, SCANNER):
            links[step][key][measure] += value
            by_step[step][(measure, "")] += value
            if measure != SCANNER:
                continue
        if measure in VERSIONED and step != NONE:
            if (step, release) not in changed:
                changed[(step, release)] = changes.change(course.step(step).email, release)
            found = changed[(step, release)]
            by_version[step][found.version if found is not None else OLDER][measure] += value
    steps = [step.number for step in course.steps]
    days = [_day_row(course, step, _getter(by_step[step])) for step in steps]
    began = by_step[NONE][(BEGAN, "")]
    last = steps[-1]

    def stage(label: str, measure: str, step: int = NONE) -> Stage:
        count = by_step[step][(measure, "")]
        return Stage(label, count, Rate(count, began), Figure(measure, step))

    funnel = [stage("Began the course", BEGAN), stage("Confirmed", CONFIRMED),
              stage("Got the welcome", DELIVERED, 0)]  # fmt: skip
    funnel += [stage(f"Reached day {day}", DELIVERED, day) for day in (1, 5, 10, 14, 18) if day < last]
    funnel.append(stage("Completed: the last email reached them", DELIVERED, last))
    versions = {step: _versions(course, step, by_version[step], changed) for step in steps}
    retention = {cohort: _so_far([Rate(sent.get(step, 0), sent.get(0, 0)) for step in steps])
                 for cohort, sent in sorted(per_cohort.items())}  # fmt: skip
    link_rows = {
        step: sorted((LinkRow(key, link_label(course, key), figures[LINK_PEOPLE], figures[LINK_CLICKS],
                              figures[SCANNER]) for key, figures in keyed.items()),
                     key=lambda row: (-row.people, -row.clicks, -row.scanner_clicks, row.label))
        for step, keyed in links.items()
    }  # fmt: skip
    checklists: dict[int, list[BandCount]] = {}
    twice = asked_twice(course)
    answers = None
    for key, (first, retake) in twice.items():
        checklist = course.checklists[key]
        baseline, end = _bands(checklist, by_step[first]), _bands(checklist, by_step[retake])
        movement = [Movement(before.label, after.label, by_step[retake][(MOVEMENT, f"{before.key}>{after.key}")],
                             f"{before.key}>{after.key}")
                    for before in checklist.bands for after in checklist.bands]  # fmt: skip
        booked = [
            BandCount(band.key, band.label, by_step[first][(BOOKED, band.key)],
                      Rate(by_step[first][(BOOKED, band.key)], by_step[first][(ANSWER, band.key)]))
            for band in checklist.bands
        ]  # fmt: skip
        booked.append(
            BandCount(
                NO_ANSWER,
                "Did not answer",
                by_step[first][(BOOKED, NO_ANSWER)],
                Rate(by_step[first][(BOOKED, NO_ANSWER)], by_step[first][(UNANSWERED, "")]),
            )
        )
        answers = Answers(checklist, first, retake, baseline, end, [m for m in movement if m.count], booked)
        break  # the course's baseline; a second checklist asked twice would get a section of its own
    for course_step in course.steps:
        if course_step.checklist is not None and course_step.checklist not in twice:
            checklists[course_step.number] = _bands(
                course.checklists[course_step.checklist], by_step[course_step.number]
            )
    return Insights(course, selection, cohorts, refreshed_at, by_step[NONE][(PEOPLE, "")], funnel, days, link_rows,
                    versions, retention, answers, checklists, counts)  # fmt: skip


def _getter(counts: dict[tuple[str, str], int]) -> Callable[[str], int]:
    def get(measure: str) -> int:
        return counts.get((measure, ""), 0)

    return get


def _versions(
    course: Course, step: int, figures: dict[str, dict[str, int]], changed: dict[tuple[int, str], Change | None]
) -> list[VersionRow]:
    """An email's figures per version (a change that touched it), oldest first, each judged against the one
    before by its main rate."""
    found = {change.version: change for (at, _), change in changed.items() if at == step and change is not None}
    order = sorted(figures, key=lambda version: -1 if version == OLDER else found[version].id)
    rows: list[VersionRow] = []
    for version in order:
        per_measure = figures[version]
        day = _day_row(course, step, per_measure.__getitem__, version)
        judged_by, rate = _main_rate(day)
        if rows:
            verdict = compare(rows[-1].rate, rate)
        else:
            verdict = "The first version these weeks got: nothing to compare it with."
        rows.append(VersionRow(found.get(version), day, judged_by, rate, verdict))
    return rows


def _so_far(rates: list[Rate]) -> list[Rate | None]:
    """A cohort's rates up to the furthest step anybody in it has reached; after it, nothing yet (None),
    not a fall to 0%."""
    reached = [index for index, rate in enumerate(rates) if rate.count]
    last = reached[-1] if reached else -1
    return [rate if index <= last else None for index, rate in enumerate(rates)]


def _main_rate(day: DayRow) -> tuple[str, Rate]:
    """What a version of an email is judged by: its exercise done; for an email without one, acting on it."""
    if day.exercise_rate is not None:
        return "did the exercise", day.exercise_rate
    return "acted on it", day.engaged_rate


def _bands(checklist: Checklist, counts: dict[tuple[str, str], int]) -> list[BandCount]:
    total = sum(counts[(ANSWER, band.key)] for band in checklist.bands)
    return [BandCount(band.key, band.label, counts[(ANSWER, band.key)], Rate(counts[(ANSWER, band.key)], total))
            for band in checklist.bands]  # fmt: skip


def _release_number(version: str) -> int | None:
    """``r17`` -> 17; anything else (an older delivery's content hash, none) -> None."""
    return int(version[1:]) if version.startswith("r") and version[1:].isdigit() else None


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
