"""The send path's clock, from the settings: day length, leases, backoff, pauses; and the key of the
keyed address hashes (suppressions, mailbox pacing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from course.models.subscribers import Subscriber
from course.schedule import Schedule
from course.settings import Settings

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
