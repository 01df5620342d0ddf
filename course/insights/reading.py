"""Reading the figures for the studio's page: a selection of cohorts and versions, each day's rates, the
links, the answers, and whether a change to an email made a difference.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import (
    and_,
    func,
    select,
)
from sqlalchemy.orm import Session

from course.curriculum import Checklist, Course
from course.insights.measures import (
    ANSWER,
    BEGAN,
    BOOKED,
    COMPLAINED,
    CONFIRMED,
    CONSULTATION,
    DELIVERED,
    ENGAGED,
    EXERCISE,
    FAILED,
    FEW,
    LEFT,
    LINK_CLICKS,
    LINK_PEOPLE,
    MOVEMENT,
    NO_ANSWER,
    NONE,
    PAUSED,
    PEOPLE,
    RESOURCE,
    SCANNER,
    SENT,
    SOFT,
    UNANSWERED,
    UNSUBSCRIBED,
    VERSIONED,
    Selection,
    asked_twice,
    monday,
)
from course.lifecycle import EmailKind
from course.models.insights import InsightCohort, InsightCount
from course.models.templates import TemplatePublication


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
