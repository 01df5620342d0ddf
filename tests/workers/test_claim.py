"""The beat's set-based claim on PostgreSQL: one statement a round, the same rules as row by row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from course.curriculum import Course
from course.deliveries.claim import claim_due_ids, in_flight
from course.deliveries.timing import Timing
from course.models.deliveries import Delivery, DeliveryState
from course.models.subscribers import Subscriber, SubscriberStatus
from workers.engine import send_batch, tick

from .conftest import Harness

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
TIMING = Timing(address_key=b"k" * 32, day_seconds=None, lease_seconds=600, sending_pause_seconds=900)


def reader(session: Session, name: str, step: int | None, *, due: datetime | None = NOW,
           status: SubscriberStatus = SubscriberStatus.ACTIVE) -> Subscriber:  # fmt: skip
    found = Subscriber(course_slug="building-emotional-intimacy", email=f"{name}@example.com", timezone="Europe/Paris",
                       send_time=time(8, 0), status=status.value, current_step=step, next_send_at=due,
                       created_at=NOW - timedelta(days=30))  # fmt: skip
    session.add(found)
    session.flush()
    return found


def delivery(session: Session, subscriber: Subscriber, step: int, state: DeliveryState) -> None:
    session.add(Delivery(subscriber_id=subscriber.id, enrolment=1, step=step, email=f"day-{step:02d}",
                         state=state.value, due_at=NOW - timedelta(days=1),
                         created_at=NOW - timedelta(days=1)))  # fmt: skip
    session.flush()


def test_one_round_claims_each_due_readers_next_step_once(session: Session, course: Course) -> None:
    welcome = reader(session, "welcome", None)
    day_5 = reader(session, "day5", 4)
    done = reader(session, "done", len(course.steps) - 1)  # had the completion: finishes
    already = reader(session, "already", 0)
    delivery(session, already, 1, DeliveryState.SENT)  # its day 1 went out: nothing new
    skipped = reader(session, "skipped", 1)
    delivery(session, skipped, 2, DeliveryState.SKIPPED)  # skipped while paused: it goes now
    later = reader(session, "later", 3, due=NOW + timedelta(minutes=1))
    paused = reader(session, "paused", 3, status=SubscriberStatus.PAUSED)
    session.commit()

    ids = claim_due_ids(session, course, NOW, 100, TIMING, "r7")
    session.commit()
    claimed = {row.subscriber_id: row for row in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
    assert set(claimed) == {welcome.id, day_5.id, skipped.id}
    assert (claimed[welcome.id].step, claimed[welcome.id].email) == (0, "welcome")
    assert (claimed[day_5.id].step, claimed[day_5.id].email) == (5, "day-05")
    assert all(
        row.state == "claimed" and row.template_version == "r7" and row.due_at == NOW for row in claimed.values()
    )
    assert claimed[day_5.id].lease_until == NOW + TIMING.lease
    for subscriber in (welcome, day_5, done, already, skipped):
        session.refresh(subscriber)
        assert subscriber.next_send_at is None  # until its email is sent
    assert done.status == "completed" and done.completed_at == NOW
    session.refresh(later)
    session.refresh(paused)
    assert later.next_send_at is not None and paused.next_send_at is not None
    assert claim_due_ids(session, course, NOW, 100, TIMING, "r7") == []  # nothing is due twice


def test_two_beats_at_once_never_claim_one_reader(session: Session, course: Course) -> None:
    readers = [reader(session, f"r{number}", 0) for number in range(10)]
    session.commit()
    other = Session(bind=session.get_bind())
    first = claim_due_ids(session, course, NOW, 6, TIMING, "r1")  # holds its six, not committed yet
    second = claim_due_ids(other, course, NOW, 6, TIMING, "r1")  # skips them: takes the other four
    other.commit()
    session.commit()
    other.close()
    assert len(first) == 6 and len(second) == 4
    owners = session.scalars(select(Delivery.subscriber_id)).all()
    assert sorted(owners) == sorted(subscriber.id for subscriber in readers)


def test_the_beat_stops_claiming_while_the_workers_have_enough_to_do(
    harness_factory: Callable[..., Harness], course: Course
) -> None:
    harness = harness_factory(max_in_flight=5, claim_batch_size=2)  # its clock is past NOW: all are due
    with harness.runtime.sessions() as session:
        for number in range(9):
            reader(session, f"r{number}", 0)
        session.commit()
    assert tick(harness.runtime).queued == 5  # in rounds of two, up to five in flight
    assert tick(harness.runtime).queued == 0  # none sent yet: no room
    first = [delivery_id for batch in harness.queued for delivery_id in batch]
    send_batch(harness.runtime, first[:3])
    assert tick(harness.runtime).queued == 3  # three sent: three more
    with harness.runtime.sessions() as session:
        assert in_flight(session, harness.clock()) == 5


def test_a_tick_claims_on_two_connections_and_each_due_reader_once(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(claim_batch_size=40)  # its clock is past NOW: all are due
    with harness.runtime.sessions() as session:
        readers = [reader(session, f"r{number}", 0).id for number in range(1000)]
        session.commit()
    outcome = tick(harness.runtime)  # 25 rounds of 40, by two claimers side by side
    assert outcome.queued == 1000 and not outcome.more_due
    queued = [delivery_id for batch in harness.queued for delivery_id in batch]
    assert len(queued) == len(set(queued)) == 1000  # each delivery queued once, after its commit
    with harness.runtime.sessions() as session:
        owners = session.scalars(select(Delivery.subscriber_id).where(Delivery.id.in_(queued))).all()
        assert sorted(owners) == sorted(readers)  # every due reader, each once
    assert tick(harness.runtime).queued == 0  # nothing left due
