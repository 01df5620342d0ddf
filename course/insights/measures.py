"""The figures' names and the vocabulary the sums and the page share: which measures there are, the
cohorts (sign-up weeks) and how many people make a rate worth telling apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Date,
    cast,
    func,
)
from sqlalchemy.orm import InstrumentedAttribute

from course.curriculum import Course
from course.models.engagement import EventKind

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


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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


def asked_twice(course: Course) -> dict[str, tuple[int, int]]:
    """Checklists asked at more than one step: their first and last step (the baseline and the retake)."""
    steps: dict[str, list[int]] = defaultdict(list)
    for step in course.steps:
        if step.checklist is not None:
            steps[step.checklist].append(step.number)
    return {key: (numbers[0], numbers[-1]) for key, numbers in steps.items() if len(numbers) > 1}
