"""Readers in the middle of a course whose shape changes: they keep their place by who their last email was.

An email put in after their place comes in its turn, one put in before it does not reach them; an email
taken out is passed over, also by whoever had it last; an email they had already and that was moved later
is never sent again; the same rules row by row (a confirmation) and set-based (the beat's claim).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from course.curriculum import Course
from course.deliveries.claim import claim_due, claim_next_step
from course.deliveries.timing import Timing
from course.models.deliveries import Delivery, DeliveryState, SendBatch
from course.models.subscribers import Subscriber, SubscriberStatus

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
TIMING = Timing(address_key=b"k" * 32, day_seconds=None, lease_seconds=600, sending_pause_seconds=900)


def reshaped(course: Course, change: Any) -> Course:
    data = course.model_dump(mode="json")
    change(data)
    return Course.model_validate(data)


def reader(session: Session, name: str, place: int | None, had: tuple[int, ...] = ()) -> Subscriber:
    found = Subscriber(course_slug="building-emotional-intimacy", email=f"{name}@example.com", timezone="Europe/Paris",
                       send_time=time(8, 0), status=SubscriberStatus.ACTIVE.value, current_step=place,
                       next_send_at=NOW, created_at=NOW - timedelta(days=30))  # fmt: skip
    session.add(found)
    session.flush()
    for step in had:
        session.add(Delivery(subscriber_id=found.id, enrolment=1, step=step, email=f"day-{step:02d}",
                             state=DeliveryState.SENT.value, due_at=NOW - timedelta(days=40 - step),
                             created_at=NOW - timedelta(days=40 - step)))  # fmt: skip
    session.flush()
    return found


def claimed_emails(session: Session, course: Course) -> dict[int, str | None]:
    """Each due reader's next email, as one round of the beat claims it (None: their course is complete)."""
    claim_due(session, course, NOW, 100, TIMING, "r1", 50)
    session.commit()
    found: dict[int, str | None] = {
        reader: email
        for batch in session.scalars(select(SendBatch))
        for reader, email in zip(batch.subscriber_ids or [], batch.emails or [], strict=True)
    }
    for subscriber in session.scalars(select(Subscriber).execution_options(populate_existing=True)):
        if subscriber.status == SubscriberStatus.COMPLETED.value and subscriber.id not in found:
            found[subscriber.id] = None
    return found


def test_an_email_put_in_after_a_readers_place_comes_in_its_turn(session: Session, course: Course) -> None:
    def insert_after_day_4(data: dict[str, Any]) -> None:
        new = {**data["days"][3], "number": course.next_number(), "title": "A new day"}
        data["days"].insert(4, new)

    changed = reshaped(course, insert_after_day_4)
    assert changed.next_number() == 21  # the completion keeps its 19; the new day took 20
    at_4 = reader(session, "at4", 4)
    at_5 = reader(session, "at5", 5)
    session.commit()
    got = claimed_emails(session, changed)
    assert got[at_4.id] == "day-20"  # in its turn
    assert got[at_5.id] == "day-06"  # put in before their place: not for them


def test_an_email_taken_out_is_passed_over_also_by_who_had_it_last(session: Session, course: Course) -> None:
    def take_out_day_5(data: dict[str, Any]) -> None:
        data["days"] = [day for day in data["days"] if day["number"] != 5]
        data["retired"] = {5: 4}

    changed = reshaped(course, take_out_day_5)
    at_4 = reader(session, "at4", 4)
    at_5 = reader(session, "at5", 5)  # had day 5 just before it was taken out
    session.commit()
    got = claimed_emails(session, changed)
    assert got[at_4.id] == "day-06" and got[at_5.id] == "day-06"


def test_a_place_whose_email_was_taken_out_after_its_own_anchor_follows_the_chain(course: Course) -> None:
    def take_out_days_4_and_5(data: dict[str, Any]) -> None:
        data["days"] = [day for day in data["days"] if day["number"] not in (4, 5)]
        data["retired"] = {5: 4, 4: 3}

    changed = reshaped(course, take_out_days_4_and_5)
    assert changed.next_step(5) == changed.step(6)
    assert changed.next_step(4) == changed.step(6)
    with pytest.raises(ValueError, match="is in the course and among those taken out"):
        reshaped(course, lambda data: data.update(retired={6: 5}))


def test_an_email_moved_later_is_never_sent_twice(session: Session, course: Course) -> None:
    def move_day_2_after_day_6(data: dict[str, Any]) -> None:
        day_2 = data["days"].pop(1)
        data["days"].insert(5, day_2)
        data["moved"] = [2]

    changed = reshaped(course, move_day_2_after_day_6)
    assert [step.number for step in changed.steps[:8]] == [0, 1, 3, 4, 5, 6, 2, 7]
    had_it = reader(session, "had", 6, had=(1, 2, 3, 4, 5, 6))
    never = reader(session, "never", 6, had=(1, 3, 4, 5, 6))  # (a reader for whom it was skipped)
    at_1 = reader(session, "at1", 1, had=(1,))
    session.commit()
    got = claimed_emails(session, changed)
    assert got[had_it.id] == "day-07"
    assert got[never.id] == "day-02"
    assert got[at_1.id] == "day-03"


def test_the_same_rules_row_by_row(session: Session, course: Course) -> None:
    def move_day_2_after_day_6(data: dict[str, Any]) -> None:
        data["days"].insert(5, data["days"].pop(1))
        data["moved"] = [2]

    changed = reshaped(course, move_day_2_after_day_6)
    had_it = reader(session, "had", 6, had=(1, 2, 3, 4, 5, 6))
    delivery = claim_next_step(session, had_it, changed, NOW, TIMING)
    assert delivery is not None and delivery.email == "day-07"


def test_after_the_last_email_the_course_is_complete(session: Session, course: Course) -> None:
    done = reader(session, "done", course.completion.step)
    last_day = reader(session, "last", course.days[-1].number)
    session.commit()
    got = claimed_emails(session, course)
    assert got[done.id] is None
    assert got[last_day.id] == "completion"
