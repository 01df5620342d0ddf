"""The insights' figures, from a seeded course with known answers: two sign-up weeks, people who drop
off, a scanner, a bounce, a template change in the middle of the course, answers that move. Every
figure is checked exactly. The same causes played
through the real path are in tests/web/test_insights_truth.py."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course.curriculum import Course
from course.db import make_engine, make_sessionmaker
from course.insights.measures import Selection
from course.insights.reading import DayRow, Rate, compare, read
from course.insights.summing import people, refresh, refresh_active
from course.models.deliveries import Delivery
from course.models.engagement import Answer, Event, EventKind
from course.models.feedback import Bounce
from course.models.insights import InsightCohort, InsightCount
from course.models.subscribers import Subscriber
from course.models.templates import TemplatePublication

SLUG = "building-emotional-intimacy"
WEEK_A = date(2026, 11, 2)  # a Monday
WEEK_B = date(2026, 11, 9)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(session: Session) -> Session:
    return session


class Seed:
    def __init__(self, session: Session) -> None:
        self.session = session

    def person(
        self, name: str, week: date, *, day: int = 2, confirmed: bool = True, completed: bool = False
    ) -> Subscriber:
        signed_up = datetime(week.year, week.month, week.day, 9, tzinfo=UTC) + timedelta(days=day)
        person = Subscriber(
            course_slug=SLUG, email=f"{name}@example.com", timezone="UTC", status="active", created_at=signed_up,
            confirmed_at=signed_up + timedelta(hours=1) if confirmed else None,
            completed_at=signed_up + timedelta(days=20) if completed else None,
        )  # fmt: skip
        self.session.add(person)
        self.session.flush()
        return person

    def sent(self, person: Subscriber, step: int, version: str, state: str = "sent") -> Delivery:
        delivery = Delivery(subscriber_id=person.id, enrolment=1, step=step, email=f"step-{step}", state=state,
                            template_version=version, sent_at=NOW if state == "sent" else None,
                            due_at=person.created_at, created_at=person.created_at)  # fmt: skip
        self.session.add(delivery)
        self.session.flush()
        return delivery

    def event(self, person: Subscriber, kind: EventKind, step: int, *, automated: bool = False,
              value: str | None = None, delivery: Delivery | None = None) -> None:  # fmt: skip
        self.session.add(Event(subscriber_id=person.id, enrolment=1, kind=kind.value, step=step, value=value,
                               automated=automated, delivery_id=delivery.id if delivery else None,
                               created_at=NOW))  # fmt: skip

    def answer(self, person: Subscriber, step: int, checklist: str, band: str) -> None:
        self.session.add(
            Answer(subscriber_id=person.id, enrolment=1, step=step, checklist=checklist, band=band, created_at=NOW)
        )
        self.session.flush()


def seed(session: Session) -> None:
    # Two publications: the first published before what each changed was kept (so it changed every
    # email), the second changed day 1 and day 2 only.
    for number, changed in ((1, None), (2, '["day-01", "day-02"]')):
        session.add(TemplatePublication(id=number, course_slug=SLUG, item="day", action="publish",
                                        note=f"change {number}", changed=changed,
                                        created_at=NOW - timedelta(days=30 - number)))  # fmt: skip
    session.flush()
    s = Seed(session)
    a1, a2, a3 = s.person("a1", WEEK_A), s.person("a2", WEEK_A, day=0), s.person("a3", WEEK_A, day=6)
    s.person("a4", WEEK_A, confirmed=False)
    for person in (a1, a2, a3):
        s.sent(person, 0, "r1")
    s.answer(a1, 0, "warning-signs", "normal")  # a first answer, changed a minute later: the latest counts
    s.answer(a1, 0, "warning-signs", "significant")
    s.answer(a2, 0, "warning-signs", "prioritise")
    s.sent(a1, 1, "r1")
    s.sent(a2, 1, "r1")
    s.sent(a3, 1, "r1", state="failed")  # refused for good
    s.sent(a3, 2, "r1", state="claimed")  # not yet settled: not counted anywhere
    s.event(a1, EventKind.EXERCISE_DONE, 1)
    s.event(a1, EventKind.CLICK, 1, value="exercise")
    s.event(a1, EventKind.CONSULTATION, 1)
    s.event(a1, EventKind.CONSULTATION, 1)  # the same person again: one person
    s.event(a2, EventKind.CONSULTATION, 1, automated=True)  # a scanner: two clicks, nobody engaged
    s.event(a2, EventKind.CONSULTATION, 1, automated=True)
    s.event(a2, EventKind.CLICK, 1, automated=True, value="exercise")
    s.event(a2, EventKind.RESOURCE, 1, value="couples-exercise-guide")
    s.event(a2, EventKind.UNSUBSCRIBED, 1)
    s.sent(a1, 2, "r2")  # the day-2 template changed between them
    s.event(a1, EventKind.PAUSED, 2)

    b1, b2 = s.person("b1", WEEK_B, completed=True), s.person("b2", WEEK_B)
    for person in (b1, b2):
        s.sent(person, 0, "r2")
    s.answer(b1, 0, "warning-signs", "significant")
    s.sent(b1, 1, "r2")
    s.event(b1, EventKind.EXERCISE_DONE, 1)
    bounced = s.sent(b2, 1, "r2")
    s.event(b2, EventKind.BOUNCE, 1, value=Bounce.HARD.value, delivery=bounced)  # accepted, then bounced for good
    s.sent(b1, 18, "r2")
    s.answer(b1, 18, "professional-support", "any")
    s.sent(b1, 19, "r2")
    s.answer(b1, 19, "warning-signs", "prioritise")  # 4+ at the start, 2-3 at the end
    s.event(b1, EventKind.CONSULTATION, 19)
    session.commit()


def test_the_funnel_and_each_days_figures_are_exact(db: Session, course: Course) -> None:
    seed(db)
    assert refresh(db, course, NOW) == 2
    db.commit()
    both = read(db, course, Selection(WEEK_A, WEEK_B))
    assert [(stage.label, stage.count) for stage in both.funnel] == [
        ("Began the course", 6), ("Confirmed", 5), ("Got the welcome", 5), ("Reached day 1", 3), ("Reached day 5", 0),
        ("Reached day 10", 0), ("Reached day 14", 0), ("Reached day 18", 1),
        ("Completed: the last email reached them", 1),
    ]  # fmt: skip
    assert both.people == 6 and both.funnel[1].rate.percent == "83%"
    day1 = both.days[1]
    assert (day1.label, day1.sent, day1.delivered, day1.failed) == ("Day 1", 5, 3, 2)
    assert (day1.exercise, day1.consultation, day1.resource, day1.scanner_clicks) == (2, 1, 1, 3)
    assert (day1.engaged, day1.unsubscribed, day1.left, day1.paused) == (3, 1, 2, 0)  # left: a2, and b2's bounce
    assert day1.exercise_rate == Rate(2, 3)
    day2 = both.days[2]
    assert (day2.sent, day2.delivered, day2.paused, day2.exercise) == (1, 1, 1, 0)
    welcome, completion = both.days[0], both.days[19]
    assert (welcome.label, welcome.exercise, welcome.engaged) == ("Welcome", None, 0)  # answers come with no click here
    assert (completion.label, completion.consultation) == ("Completion", 1)
    assert [(link.key, link.people, link.clicks, link.scanner_clicks) for link in both.links[1]] == [
        ("consultation", 1, 2, 2), ("click:exercise", 1, 1, 1), ("resource:couples-exercise-guide", 1, 1, 0),
    ]  # fmt: skip

    week_a = read(db, course, Selection(WEEK_A, WEEK_B, cohort=WEEK_A))
    assert [stage.count for stage in week_a.funnel][:4] == [4, 3, 3, 2]  # a3's day 1 was refused
    assert (week_a.days[1].delivered, week_a.days[1].failed, week_a.days[1].exercise) == (2, 1, 1)
    assert both.cohorts == [WEEK_B, WEEK_A]


def test_each_day_splits_by_the_changes_that_touched_it(db: Session, course: Course) -> None:
    seed(db)
    refresh(db, course, NOW)
    db.commit()
    both = read(db, course, Selection(WEEK_A, WEEK_B))
    welcome = both.versions[0]
    # r1 and r2: the second publication did not change the welcome, so both are its first change's version.
    assert [(row.version, row.label, row.day.delivered) for row in welcome] == [
        ("v1", "30 Oct 2026 12:00 UTC: change 1", 5)
    ]
    day1 = both.versions[1]
    assert [(row.version, row.day.delivered, row.day.exercise, row.day.failed) for row in day1] == [
        ("v1", 2, 1, 1),  # a1 and a2; a3 refused
        ("v2", 1, 1, 1),  # b1; b2 bounced
    ]
    assert day1[0].verdict.startswith("The first version these weeks got")
    assert day1[1].verdict.startswith("Too few people to tell yet")
    assert (day1[1].judged_by, day1[1].rate) == ("did the exercise", Rate(1, 1))
    assert [(row.version, row.day.paused) for row in both.versions[2]] == [("v2", 1)]


def test_answers_baseline_retake_movement_and_who_booked(db: Session, course: Course) -> None:
    seed(db)
    refresh(db, course, NOW)
    db.commit()
    answers = read(db, course, Selection(WEEK_A, WEEK_B)).answers
    assert answers is not None and (answers.baseline_step, answers.retake_step) == (0, 19)
    assert [(band.key, band.count) for band in answers.baseline] == [
        ("normal", 0),
        ("prioritise", 1),
        ("significant", 2),
    ]
    assert [(band.key, band.count) for band in answers.retake] == [("normal", 0), ("prioritise", 1), ("significant", 0)]
    assert [(m.before, m.after, m.count) for m in answers.movement] == [("4+ checked", "2-3 checked", 1)]
    # a1 (4+ at the start) and b1 (4+) clicked the consultation; a2's clicks were a scanner's. Whom the
    # welcome reached without an answer (a3, b2) clicked nothing.
    assert [(band.key, band.count, band.share.of) for band in answers.booked] == [
        ("normal", 0, 0), ("prioritise", 0, 1), ("significant", 2, 2), ("(none)", 0, 2),
    ]  # fmt: skip
    day18 = read(db, course, Selection(WEEK_A, WEEK_B)).checklists[18]
    assert [(band.key, band.count) for band in day18] == [("none", 0), ("any", 1)]


def test_retention_is_per_cohort_of_those_the_welcome_reached(db: Session, course: Course) -> None:
    seed(db)
    refresh(db, course, NOW)
    db.commit()
    retention = read(db, course, Selection(WEEK_A, WEEK_B)).retention
    assert list(retention) == [WEEK_A, WEEK_B]
    assert retention[WEEK_A][:3] == [Rate(3, 3), Rate(2, 3), Rate(1, 3)]  # day 1: a3 refused
    assert retention[WEEK_A][3:] == [None] * 17  # nobody of week A got further yet: not a fall to 0%
    assert retention[WEEK_B][1] == Rate(1, 2) and retention[WEEK_B][19] == Rate(1, 2)  # day 1: b2 bounced
    assert retention[WEEK_B][2] == Rate(0, 2)  # before the furthest step reached, a 0 is a 0


def test_a_refresh_replaces_the_sums_of_its_weeks_and_keeps_the_others(db: Session, course: Course) -> None:
    seed(db)
    refresh(db, course, NOW)
    db.commit()
    before = db.scalars(select(InsightCount).where(InsightCount.cohort == WEEK_A)).all()
    values_a = {(c.measure, c.step, c.version, c.key): c.value for c in before}
    late = db.scalar(select(Subscriber).where(Subscriber.email == "b2@example.com"))
    assert late is not None
    db.add(Event(subscriber_id=late.id, enrolment=1, kind=EventKind.EXERCISE_DONE.value, step=1, created_at=NOW))
    db.commit()
    later = NOW + timedelta(minutes=5)
    assert refresh(db, course, later, since=WEEK_B) == 1
    db.commit()
    after = {(c.measure, c.step, c.version, c.key): c.value
             for c in db.scalars(select(InsightCount).where(InsightCount.cohort == WEEK_A))}  # fmt: skip
    assert after == values_a  # week A untouched
    assert read(db, course, Selection(WEEK_B, WEEK_B)).days[1].exercise == 2
    refreshed = {row[0]: row[1] for row in db.execute(select(InsightCohort.cohort, InsightCohort.refreshed_at))}
    assert refreshed == {WEEK_A: NOW, WEEK_B: later}
    # The beat's refresh: the weeks still in the course (both, eight weeks back from the 28th).
    assert refresh_active(db, course, later) == 2


def test_nothing_to_sum_is_no_figure_and_no_error(db: Session, course: Course) -> None:
    assert refresh(db, course, NOW) == 0
    empty = read(db, course, Selection(WEEK_A, WEEK_B))
    assert all(stage.count == 0 for stage in empty.funnel) and empty.funnel[0].rate.percent == "–"
    assert empty.versions[1] == [] and empty.retention == {}


def test_a_difference_is_called_clear_only_when_chance_would_rarely_make_it() -> None:
    assert compare(Rate(10, 20), Rate(15, 20)).startswith("Too few")
    assert compare(Rate(50, 100), Rate(55, 100)) == "No clear difference: it could be chance."
    assert compare(Rate(200, 1000), Rate(300, 1000)) == "Clearly higher: 10 points, more than chance would make."
    assert compare(Rate(300, 1000), Rate(200, 1000)).startswith("Clearly lower: 10 points")


def test_every_figure_of_every_email_reached(db: Session, course: Course) -> None:
    seed(db)
    refresh(db, course, NOW)
    db.commit()
    days = {day.step: day for day in read(db, course, Selection(WEEK_A, WEEK_B)).days}
    zero: dict[str, Any] = {"soft_bounced": 0, "complained": 0, "consultation": 0, "resource": 0,
                            "scanner_clicks": 0, "engaged": 0, "unsubscribed": 0, "left": 0, "paused": 0}  # fmt: skip
    expected = {
        0: DayRow(0, "Welcome", sent=5, delivered=5, failed=0, exercise=None, **zero),
        1: DayRow(1, "Day 1", sent=5, delivered=3, failed=2, exercise=2,
                  **{**zero, "consultation": 1, "resource": 1, "scanner_clicks": 3, "engaged": 3, "unsubscribed": 1,
                     "left": 2}),
        2: DayRow(2, "Day 2", sent=1, delivered=1, failed=0, exercise=0, **{**zero, "paused": 1}),
        18: DayRow(18, "Day 18", sent=1, delivered=1, failed=0, exercise=0, **zero),
        19: DayRow(19, "Completion", sent=1, delivered=1, failed=0, exercise=None,
                   **{**zero, "consultation": 1, "engaged": 1}),
    }  # fmt: skip
    for step, day in days.items():
        assert day == expected.get(step, DayRow(step, day.label, sent=0, delivered=0, failed=0,
                                                exercise=0, **zero)), step  # fmt: skip


def test_the_people_behind_each_figure_are_the_ones_it_counted(db: Session, course: Course) -> None:
    """Every stored figure, listed by people(): as many rows (or what they add up to) as the figure says."""
    seed(db)
    refresh(db, course, NOW)
    db.commit()
    selection = Selection(WEEK_A, WEEK_B)
    kept = (InsightCount.measure, InsightCount.step, InsightCount.version, InsightCount.key)
    figures = db.execute(select(*kept, func.sum(InsightCount.value)).group_by(*kept)).all()  # both weeks
    assert len(figures) > 30
    totals: dict[tuple[str, int, str], int] = {}
    for measure, step, version, key, value in figures:
        totals[(measure, step, key)] = totals.get((measure, step, key), 0) + value
        listed = list(people(db, course, selection, measure, step, [version], key))
        assert sum(behind.n for behind in listed) == value, (measure, step, version, key)
    for (measure, step, key), value in totals.items():
        assert sum(behind.n for behind in people(db, course, selection, measure, step, None, key)) == value
    emails = {behind.email for behind in people(db, course, selection, "failed", 1, None, "")}
    assert emails == {"a3@example.com", "b2@example.com"}


def test_two_sums_at_once_wait_for_each_other_and_agree(database_url: str, course: Course) -> None:
    """The beat's sum and a studio user's at the same moment: neither fails on the other's rows."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        seed(session)
    errors: list[BaseException] = []

    def sum_all() -> None:
        try:
            with sessions() as session:
                refresh(session, course, NOW)
                session.commit()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=sum_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with sessions() as session:
        assert [stage.count for stage in read(session, course, Selection(WEEK_A, WEEK_B)).funnel][:3] == [6, 5, 5]
    engine.dispose()
