"""The beat's set-based claim on PostgreSQL: a round in two statements, the same rules as row by row; its
emails wait in the send queue's batches, with no delivery row until they are sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course.curriculum import Course
from course.deliveries.claim import claim_due, in_flight
from course.deliveries.timing import Timing
from course.models.deliveries import COURSE_DAYS, Delivery, DeliveryState, SendBatch
from course.models.subscribers import Subscriber, SubscriberStatus
from course.schedule import Schedule
from workers.engine import send_next, tick

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


def queued(session: Session) -> dict[int, tuple[int, str, str | None]]:
    """The send queue's course emails: reader -> (step, email, release)."""
    found: dict[int, tuple[int, str, str | None]] = {}
    for batch in session.scalars(select(SendBatch).where(SendBatch.subscriber_ids.is_not(None))):
        for reader_id, step, email in zip(
            batch.subscriber_ids or [], batch.steps or [], batch.emails or [], strict=True
        ):
            assert reader_id not in found, "a reader queued twice"
            found[reader_id] = (step, email, batch.release)
    return found


def claim(session: Session, course: Course, limit: int = 100, release: str = "r7", size: int = 50) -> list[int]:
    """One round; the readers whose emails it queued."""
    before = set(queued(session))
    claim_due(session, course, NOW, limit, TIMING, release, size)
    return sorted(set(queued(session)) - before)


def test_one_round_claims_each_due_readers_next_step_once(session: Session, course: Course) -> None:
    welcome = reader(session, "welcome", None)
    day_5 = reader(session, "day5", 4)
    done = reader(session, "done", len(course.steps) - 1)  # had the completion: finishes
    already = reader(session, "already", 0)
    delivery(session, already, 1, DeliveryState.SENT)  # its day 1 went out: queued, never sent again
    skipped = reader(session, "skipped", 1)
    delivery(session, skipped, 2, DeliveryState.SKIPPED)  # skipped while paused: it goes now
    later = reader(session, "later", 3, due=NOW + timedelta(minutes=1))
    paused = reader(session, "paused", 3, status=SubscriberStatus.PAUSED)
    session.commit()

    deliveries_before = session.scalar(select(func.count()).select_from(Delivery))
    assert claim(session, course) == sorted([welcome.id, day_5.id, already.id, skipped.id])
    session.commit()
    claimed = queued(session)
    assert claimed[welcome.id] == (0, "welcome", "r7")
    assert claimed[day_5.id] == (5, "day-05", "r7")
    assert claimed[skipped.id] == (2, "day-02", "r7")
    assert claimed[already.id] == (1, "day-01", "r7")  # the worker finds it on record (test_engine.py)
    # No delivery row until a worker records the email: the reader's own row is the claim's one write.
    assert session.scalar(select(func.count()).select_from(Delivery)) == deliveries_before
    assert session.scalar(select(SendBatch.lane)) == COURSE_DAYS
    for subscriber, step in ((welcome, 0), (day_5, 5), (skipped, 2), (already, 1)):
        session.refresh(subscriber)
        assert subscriber.current_step == step and subscriber.last_sent_at == NOW  # moved on as it is claimed
        assert subscriber.next_send_at is not None and subscriber.next_send_at > NOW  # the next email's time
    session.refresh(done)
    assert done.next_send_at is None and done.status == "completed" and done.completed_at == NOW
    session.refresh(later)
    session.refresh(paused)
    assert later.next_send_at is not None and paused.next_send_at is not None
    assert claim(session, course) == []  # nothing is due twice


def test_each_reader_is_moved_on_by_their_own_zone_hour_and_sign_up_and_queued_in_due_order(
    session: Session, course: Course
) -> None:
    """The claim asks the schedule once per group of readers who share their next email, zone and hour (and
    their confirmation time where the wait counts from it): each reader's next time is still the one the
    schedule gives for them alone, and the queue holds them in the order they were due."""
    days = [day.model_dump() for day in course.days]
    days[2]["wait"] = {"days": 5, "after": "signup"}  # day 3 counts from sign-up: day 2's readers differ
    varied = Course.model_validate({**course.model_dump(), "days": days})
    places = [(1, "Europe/Paris", time(8, 0)), (1, "Europe/Paris", time(8, 0)), (1, "Asia/Tokyo", time(8, 0)),
              (4, "Europe/Paris", time(8, 0)), (4, "Europe/Paris", time(21, 30)), (4, "America/New_York", time(6, 0)),
              (4, "Pacific/Apia", time(8, 0)), (varied.steps[-2].number, "Europe/Paris", time(8, 0))]  # fmt: skip
    readers = []
    for number, (place, zone, hour) in enumerate(places):
        found = reader(session, f"v{number}", place, due=NOW - timedelta(minutes=len(places) - number))
        found.timezone, found.send_time = zone, hour
        found.confirmed_at = NOW - timedelta(days=3, hours=number)  # each their own
        readers.append(found)
    session.commit()

    claim_due(session, varied, NOW, 100, TIMING, "r1", 50)
    session.commit()
    by_number = {step.number: step for step in varied.steps}
    for found, (place, zone, hour) in zip(readers, places, strict=True):
        session.refresh(found)
        claimed = varied.next_step(place)
        assert claimed is not None and found.current_step == claimed.number
        following = varied.following(claimed.number)
        if not following:
            assert found.next_send_at is None and found.status == "completed"
            continue
        expected = Schedule.for_subscriber(zone, hour, None).after_wait(following[0].wait, NOW, found.confirmed_at)
        assert found.next_send_at == expected, (place, zone, hour)
        assert by_number[claimed.number].email == queued(session)[found.id][1]
    (batch,) = session.scalars(select(SendBatch))
    assert batch.subscriber_ids == [found.id for found in readers]  # each group in its readers' due order


def test_the_claim_of_the_last_email_completes_its_reader_and_the_email_still_goes(
    harness: Harness, course: Course
) -> None:
    with harness.runtime.sessions() as session:
        last = reader(session, "last", course.steps[-2].number, due=harness.clock() - timedelta(minutes=1))
        session.commit()
    tick(harness.runtime)
    with harness.runtime.sessions() as session:
        found = session.get_one(Subscriber, last.id)
        assert (found.status, found.current_step, found.next_send_at) == ("completed", course.steps[-1].number, None)
    harness.drain()
    assert len(harness.smtp.to("last@example.com")) == 1
    with harness.runtime.sessions() as session:
        row = session.scalars(select(Delivery).where(Delivery.subscriber_id == last.id)).one()
        assert (row.step, row.state) == (course.steps[-1].number, "sent")


def test_two_beats_at_once_never_claim_one_reader(session: Session, course: Course) -> None:
    readers = [reader(session, f"r{number}", 0) for number in range(10)]
    session.commit()
    other = Session(bind=session.get_bind())
    first = claim_due(session, course, NOW, 6, TIMING, "r1", 50)  # holds its six, not committed yet
    second = claim_due(other, course, NOW, 6, TIMING, "r1", 50)  # skips them: takes the other four
    other.commit()
    session.commit()
    other.close()
    assert (first.emails, second.emails) == (6, 4)
    assert sorted(queued(session)) == sorted(subscriber.id for subscriber in readers)  # each once


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
    send_next(harness.runtime)  # a batch of two
    assert tick(harness.runtime).queued == 2  # two sent: two more
    with harness.runtime.sessions() as session:
        assert in_flight(session) == 5


def test_a_tick_claims_on_two_connections_and_each_due_reader_once(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(claim_batch_size=40)  # its clock is past NOW: all are due
    with harness.runtime.sessions() as session:
        readers = [reader(session, f"r{number}", 0).id for number in range(1000)]
        session.commit()
    outcome = tick(harness.runtime)  # 25 rounds of 40, by two claimers side by side
    assert outcome.queued == 1000 and not outcome.more_due
    with harness.runtime.sessions() as session:
        batches = session.scalar(select(func.count()).select_from(SendBatch))
        assert sorted(queued(session)) == sorted(readers)  # every due reader, each once
    assert harness.woken == batches and outcome.woken == 0  # a wake-up for each batch, after its commit
    assert tick(harness.runtime).queued == 0  # nothing left due
