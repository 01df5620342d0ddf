"""When a subscriber's course emails go out: one a local calendar day, at the hour they chose.

The welcome goes right after confirmation; day 1 at the chosen local time on the next calendar day;
then one a day. Every rule here is "the first slot on a later local date than the last email", which
is what makes two course emails on one local day impossible, and what makes a subscriber resume one a
day after downtime or a pause instead of receiving a burst.

DST: a send time that does not exist on a spring-forward day (02:30 in New York) goes out when the
clock has jumped (03:30), and one that happens twice on a fall-back day goes out the first time. This
is zoneinfo's fold=0, and it keeps the email on its own local date.

With ``day_seconds`` set (``COURSE_DAY_SECONDS``), a day is that many seconds after the last email
instead, for demos and tests.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from course.curriculum import Wait

DEFAULT_SEND_TIME = time(8, 0)

# The IANA areas of places where people live. Names outside them ("localtime", "Factory", "EST5EDT",
# "US/Eastern", "Etc/GMT+5") are not places, or are legacy spellings, and are refused.
REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian",
           "Pacific")  # fmt: skip
# What a device may report for UTC.
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Etc/Zulu"})


class UnknownTimezone(ValueError):
    pass


@functools.cache
def _zone_names() -> tuple[tuple[str, ...], dict[str, str]]:
    """The canonical zones, and the older names of places that now link to one (Asia/Calcutta, Europe/Kiev).

    Read from the ``tzdata`` package, so the list is the same on every machine whatever the system's own
    zoneinfo holds: ``zone.tab`` names a zone for every country's place (Europe/Amsterdam, which
    ``tzdata.zi`` has merged into Europe/Brussels, is still the name a Dutch reader expects), and
    ``tzdata.zi`` adds the other zones (Z lines) and the older names that link to them (L lines).
    """
    data = importlib.resources.files("tzdata") / "zoneinfo"
    canonical = {
        fields[2]
        for line in (data / "zone.tab").read_text(encoding="utf-8").splitlines()
        if not line.startswith("#") and len(fields := line.split("\t")) >= 3
    }
    source = data / "tzdata.zi"
    links: dict[str, str] = {}
    for line in source.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "Z" and parts[1].startswith(tuple(f"{r}/" for r in REGIONS)):
            canonical.add(parts[1])
        elif len(parts) == 3 and parts[0] == "L" and parts[2].startswith(tuple(f"{r}/" for r in REGIONS)):
            links[parts[2]] = parts[1]
    return tuple(sorted(canonical | {"UTC"})), {
        name: target for name, target in links.items() if target in canonical and name not in canonical
    }


def canonical_timezones() -> tuple[str, ...]:
    """Every time zone a subscriber may choose: "UTC" and the canonical Area/Place names."""
    return _zone_names()[0]


def canonical_timezone(name: str) -> str:
    """The canonical IANA name for ``name``: itself, or the zone an older name of the same place links
    to (browsers still report Asia/Calcutta). Anything else is refused."""
    canonical, links = _zone_names()
    if name in UTC_NAMES:
        return "UTC"
    if name in links:
        return links[name]
    if name in canonical:
        return name
    raise UnknownTimezone(f"not an IANA time zone name: {name!r}")


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name`` (canonical, or an older name of a place); anything else is refused."""
    try:
        return ZoneInfo(canonical_timezone(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone(f"not an IANA time zone name: {name!r}") from None


@dataclass(frozen=True)
class Schedule:
    timezone: ZoneInfo
    send_time: time = DEFAULT_SEND_TIME
    day_seconds: int | None = None

    @classmethod
    def for_subscriber(cls, timezone: str, send_time: time, day_seconds: int | None) -> Schedule:
        return cls(zone(timezone), send_time, day_seconds)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.timezone).date()

    def slot_on(self, local_date: date) -> datetime:
        """The send time on a local date, in UTC."""
        return datetime.combine(local_date, self.send_time, tzinfo=self.timezone).astimezone(UTC)

    def next_after(self, sent_at: datetime) -> datetime:
        """When the next course email goes, the last one having gone at ``sent_at``."""
        if self.day_seconds is not None:
            return sent_at + timedelta(seconds=self.day_seconds)
        last_date = self.local_date(sent_at)
        candidate = last_date + timedelta(days=1)
        # A local date can be missing altogether (Samoa skipped 30 December 2011): move on until the
        # slot really falls on a later local date.
        while self.local_date(slot := self.slot_on(candidate)) <= last_date:
            candidate += timedelta(days=1)
        return slot

    def after_wait(self, wait: Wait, sent_at: datetime, confirmed_at: datetime | None = None) -> datetime:
        """When an email with ``wait`` goes, the email before it having gone at ``sent_at`` (the reader
        confirmed at ``confirmed_at``). Never on the local date of the one before (but with a wait of
        0 days: straight after it), never on a weekend with ``weekdays_only``, at the email's own hour or
        the reader's."""
        if wait.days == 0 and wait.after == "previous":
            return sent_at
        if self.day_seconds is not None:
            start = confirmed_at if wait.after == "signup" and confirmed_at is not None else sent_at
            return max(sent_at, start + timedelta(seconds=self.day_seconds * wait.days))
        timed = self if wait.send_hour is None else replace(self, send_time=time(wait.send_hour))
        start = confirmed_at if wait.after == "signup" and confirmed_at is not None else sent_at
        after = self.local_date(sent_at)
        candidate = max(timed.local_date(start) + timedelta(days=wait.days), after + timedelta(days=1))
        while True:
            slot = timed.slot_on(candidate)
            landed = timed.local_date(slot)
            if landed <= after:  # a local date that does not exist (Samoa, 30 December 2011)
                candidate += timedelta(days=1)
            elif wait.weekdays_only and landed.weekday() >= 5:
                candidate = landed + timedelta(days=7 - landed.weekday())
            else:
                return slot

    def resume_at(self, now: datetime, last_sent_at: datetime | None) -> datetime:
        """After a pause or a change of time: the first slot from now that is not on the last email's date."""
        if self.day_seconds is not None:
            earliest = now if last_sent_at is None else max(now, last_sent_at + timedelta(seconds=self.day_seconds))
            return earliest
        today = self.local_date(now)
        slot = self.slot_on(today)
        if slot < now:
            slot = self.next_after(now)
        if last_sent_at is not None:
            slot = max(slot, self.next_after(last_sent_at))
        return slot
