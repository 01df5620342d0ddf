"""One course email a local calendar day, at the chosen hour, in every IANA zone and across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course.curriculum import Wait
from course.schedule import Schedule, UnknownTimezone, zone

ZONES = sorted(available_timezones())
instants = st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2045, 12, 31)).map(  # noqa: DTZ001
    lambda naive: naive.replace(tzinfo=UTC)
)
send_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
schedules = st.builds(Schedule, st.sampled_from(ZONES).map(ZoneInfo), send_times)


def exists(local_date: date, wall: time, tz: ZoneInfo) -> bool:
    """Whether the wall time happens on that date (it does not inside a spring-forward gap)."""
    instant = datetime.combine(local_date, wall, tzinfo=tz)
    back = instant.astimezone(UTC).astimezone(tz)
    return (back.date(), back.time().replace(tzinfo=None)) == (local_date, wall)


@settings(max_examples=600, deadline=None)
@given(schedule=schedules, sent_at=instants)
def test_it_never_sends_two_course_emails_on_one_local_day(schedule: Schedule, sent_at: datetime) -> None:
    following = schedule.next_after(sent_at)
    assert following > sent_at
    assert schedule.local_date(following) > schedule.local_date(sent_at)


@settings(max_examples=600, deadline=None)
@given(schedule=schedules, sent_at=instants)
def test_the_next_email_goes_on_the_next_local_day_at_the_chosen_time(schedule: Schedule, sent_at: datetime) -> None:
    following = schedule.next_after(sent_at)
    tomorrow = schedule.local_date(sent_at) + timedelta(days=1)
    local = following.astimezone(schedule.timezone)
    if local.date() != tomorrow:
        # Only when tomorrow does not exist in that zone at all (a date-line move).
        assert not exists(tomorrow, schedule.send_time, schedule.timezone)
        assert local.date() - tomorrow <= timedelta(days=1)
        return
    if exists(tomorrow, schedule.send_time, schedule.timezone):
        assert local.time().replace(tzinfo=None) == schedule.send_time
    else:
        # Inside a spring-forward gap: it goes when the clock has jumped, the same local day.
        assert timedelta(0) < local - datetime.combine(tomorrow, schedule.send_time, tzinfo=schedule.timezone)
        gap = datetime.combine(tomorrow, schedule.send_time) - local.replace(tzinfo=None)
        assert abs(gap) <= timedelta(hours=2)


@settings(max_examples=400, deadline=None)
@given(schedule=schedules, now=instants, days_since=st.one_of(st.none(), st.integers(0, 30)))
def test_resuming_waits_for_a_new_local_day_and_never_looks_back(
    schedule: Schedule, now: datetime, days_since: int | None
) -> None:
    last_sent = None if days_since is None else now - timedelta(days=days_since, hours=1)
    resume = schedule.resume_at(now, last_sent)
    assert resume >= now
    if last_sent is not None:
        assert schedule.local_date(resume) > schedule.local_date(last_sent)
    assert resume - now <= timedelta(days=2, hours=1)


@settings(max_examples=200, deadline=None)
@given(schedule=schedules, confirmed_at=instants)
def test_a_whole_course_takes_nineteen_consecutive_local_days(schedule: Schedule, confirmed_at: datetime) -> None:
    sent = [confirmed_at]  # the welcome, right after confirmation
    for _ in range(19):  # days 1-18 and the completion
        sent.append(schedule.next_after(sent[-1]))
    dates = [schedule.local_date(instant) for instant in sent]
    assert len(set(dates)) == 20
    assert dates == sorted(dates)
    assert dates[-1] - dates[0] <= timedelta(days=21)  # 19, plus a date-line skip at most


def at(zone_name: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone_name))  # type: ignore[arg-type,misc]


def test_the_missing_spring_forward_hour_sends_when_the_clock_has_jumped() -> None:
    new_york = Schedule(zone("America/New_York"), time(2, 30))
    following = new_york.next_after(at("America/New_York", 2026, 3, 7, 2, 30))
    assert following == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT, on the 8th
    assert following.astimezone(new_york.timezone).date() == date(2026, 3, 8)


def test_the_repeated_fall_back_hour_sends_the_first_time() -> None:
    new_york = Schedule(zone("America/New_York"), time(1, 30))
    following = new_york.next_after(at("America/New_York", 2026, 10, 31, 1, 30))
    assert following == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not 01:30 EST


@pytest.mark.parametrize(
    ("zone_name", "expected_utc"),
    [
        ("Pacific/Kiritimati", datetime(2026, 11, 27, 18, 0, tzinfo=UTC)),  # UTC+14: the previous UTC day
        ("Asia/Kolkata", datetime(2026, 11, 28, 2, 30, tzinfo=UTC)),  # UTC+5:30
        ("Asia/Kathmandu", datetime(2026, 11, 28, 2, 15, tzinfo=UTC)),  # UTC+5:45
        ("Pacific/Pago_Pago", datetime(2026, 11, 28, 19, 0, tzinfo=UTC)),  # UTC-11
        ("Australia/Lord_Howe", datetime(2026, 11, 27, 21, 0, tzinfo=UTC)),  # +11 in summer (30-minute DST)
    ],
)
def test_day_one_goes_at_eight_local_the_next_calendar_day(zone_name: str, expected_utc: datetime) -> None:
    schedule = Schedule(zone(zone_name))
    confirmed = at(zone_name, 2026, 11, 27, 12, 0)
    assert schedule.next_after(confirmed) == expected_utc
    assert schedule.next_after(confirmed).astimezone(schedule.timezone).time() == time(8, 0)


def test_a_skipped_calendar_date_does_not_cause_two_emails_on_one_day() -> None:
    # Samoa moved across the date line: 29 December 2011 was followed by 31 December.
    apia = Schedule(zone("Pacific/Apia"))
    following = apia.next_after(at("Pacific/Apia", 2011, 12, 29, 9, 0))
    assert following.astimezone(apia.timezone).date() == date(2011, 12, 31)


def test_after_downtime_the_course_resumes_today_not_in_a_burst() -> None:
    paris = Schedule(zone("Europe/Paris"))
    last = at("Europe/Paris", 2026, 5, 1, 8, 0)
    now = at("Europe/Paris", 2026, 5, 6, 7, 0)  # five days of downtime
    assert paris.resume_at(now, last) == at("Europe/Paris", 2026, 5, 6, 8, 0)
    sent_late = at("Europe/Paris", 2026, 5, 6, 15, 0)
    assert paris.next_after(sent_late) == at("Europe/Paris", 2026, 5, 7, 8, 0)


def test_resuming_on_a_day_already_mailed_waits_for_tomorrow() -> None:
    paris = Schedule(zone("Europe/Paris"), time(18, 0))
    last = at("Europe/Paris", 2026, 5, 6, 8, 0)  # sent this morning at the old time
    assert paris.resume_at(at("Europe/Paris", 2026, 5, 6, 9, 0), last) == at("Europe/Paris", 2026, 5, 7, 18, 0)


def test_compressed_days_are_seconds_after_the_last_email() -> None:
    fast = Schedule(zone("UTC"), day_seconds=5)
    sent = datetime(2026, 1, 1, tzinfo=UTC)
    assert fast.next_after(sent) == sent + timedelta(seconds=5)
    assert fast.resume_at(sent + timedelta(seconds=60), sent) == sent + timedelta(seconds=60)
    assert fast.resume_at(sent + timedelta(seconds=1), sent) == sent + timedelta(seconds=5)


@pytest.mark.parametrize("name", ["PST", "../../etc/passwd", "Mars/Olympus_Mons", "", "europe/paris"])
def test_only_iana_zone_names_are_accepted(name: str) -> None:
    with pytest.raises(UnknownTimezone):
        zone(name)


# --- Waits: how long after the email before, on which days, at what hour ------------------------------

waits = st.builds(
    Wait,
    days=st.integers(0, 30),
    after=st.sampled_from(["previous", "signup"]),
    weekdays_only=st.booleans(),
    send_hour=st.none() | st.integers(0, 23),
)


@settings(max_examples=600, deadline=None)
@given(schedule=schedules, sent_at=instants, wait=waits, signed_up_days=st.integers(0, 60))
def test_a_wait_never_puts_two_emails_on_one_local_date_nor_one_on_a_weekend(
    schedule: Schedule, sent_at: datetime, wait: Wait, signed_up_days: int
) -> None:
    confirmed_at = sent_at - timedelta(days=signed_up_days)
    slot = schedule.after_wait(wait, sent_at, confirmed_at)
    if wait.days == 0 and wait.after == "previous":
        assert slot == sent_at  # straight after the one before
        return
    local = slot.astimezone(schedule.timezone)
    assert local.date() > schedule.local_date(sent_at)
    if wait.weekdays_only:
        assert local.weekday() < 5
    start = confirmed_at if wait.after == "signup" else sent_at
    assert local.date() >= schedule.local_date(start) + timedelta(days=wait.days)
    hour = schedule.send_time if wait.send_hour is None else time(wait.send_hour)
    if exists(local.date(), hour, schedule.timezone):
        assert local.time().replace(tzinfo=None) == hour


def test_a_wait_by_example() -> None:
    paris = Schedule(ZoneInfo("Europe/Paris"), time(8, 0))
    friday = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    assert paris.after_wait(Wait(), friday) == datetime(2026, 12, 5, 7, 0, tzinfo=UTC)  # Saturday
    assert paris.after_wait(Wait(weekdays_only=True), friday) == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday
    assert paris.after_wait(Wait(days=3, send_hour=18), friday) == datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    # Ten days after signing up, which was a week ago: in three days; long past: the next day, no burst.
    week_ago = friday - timedelta(days=7)
    assert paris.after_wait(Wait(days=10, after="signup"), friday, week_ago) == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    assert paris.after_wait(Wait(days=2, after="signup"), friday, week_ago) == datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
    demo = Schedule(ZoneInfo("UTC"), time(8, 0), day_seconds=30)
    assert demo.after_wait(Wait(days=2), friday) == friday + timedelta(seconds=60)
