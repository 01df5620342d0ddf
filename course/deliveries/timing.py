"""The send path's clock, from the settings: day length, leases, backoff, pauses; and the key of the
keyed address hashes (suppressions, mailbox pacing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as time_of_day
from typing import TYPE_CHECKING

from course.models.subscribers import Subscriber
from course.schedule import Schedule
from course.settings import Settings

if TYPE_CHECKING:
    from course.curriculum import Course, CourseStep, Wait

MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Timing:
    """The engine's settings (from Settings): its clock (day length, leases, backoff, pauses) and the
    key of the keyed address hashes (suppressions, mailbox pacing)."""

    address_key: bytes
    day_seconds: int | None = None
    lease_seconds: int = 600
    sending_pause_seconds: int = 900

    @classmethod
    def of(cls, settings: Settings) -> Timing:
        return cls(
            address_key=settings.address_key,
            day_seconds=settings.course_day_seconds,
            lease_seconds=settings.delivery_lease_seconds,
            sending_pause_seconds=settings.sending_pause_seconds,
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def retry_delay(self, attempts: int) -> timedelta:
        """Minutes at first, doubling, capped at an hour (or proportionally shorter with compressed days)."""
        base, cap = (60.0, 3600.0) if self.day_seconds is None else (self.day_seconds / 16, self.day_seconds / 4)
        return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def schedule_for(subscriber: Subscriber, timing: Timing) -> Schedule:
    return Schedule.for_subscriber(subscriber.timezone, subscriber.send_time, timing.day_seconds)


def wait_after(course: Course, number: int) -> Wait | None:
    """The wait before the email that follows email ``number`` for its reader (None: it was the last)."""
    place, steps = course.place_after(number), course.steps
    return steps[place].wait if place < len(steps) else None


def counts_from_signup(wait: Wait | None) -> bool:
    """Whether a reader's confirmation time is part of when an email with ``wait`` goes (it counts from
    their sign-up), not only their zone and hour."""
    return wait is not None and wait.after == "signup"


class NextTimes:
    """When a reader's following email goes, the email ``step`` having gone at ``sent_at``; None: it was the
    last. Readers share a few zones, hours and waits, so each distinct question is asked of the schedule
    (course/schedule.py, its one owner) once: the beat's claim asks it for thousands of readers a round,
    and a reader's confirmation time is part of the question only where the wait counts from it."""

    def __init__(self, course: Course, sent_at: datetime, timing: Timing) -> None:
        self.course, self.sent_at, self.timing = course, sent_at, timing
        self._known: dict[tuple[object, ...], datetime | None] = {}

    def after(self, step: CourseStep, timezone: str, send_time: time_of_day, confirmed_at: datetime | None
              ) -> datetime | None:  # fmt: skip
        number = step.number
        wait = wait_after(self.course, number)
        if wait is None:
            return None
        since = confirmed_at if counts_from_signup(wait) else None
        key = (number, timezone, send_time, since)
        try:
            return self._known[key]
        except KeyError:
            schedule = Schedule.for_subscriber(timezone, send_time, self.timing.day_seconds)
            found = self._known[key] = schedule.after_wait(wait, self.sent_at, since)
            return found
