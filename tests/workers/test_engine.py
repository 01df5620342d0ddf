"""The delivery engine against a real PostgreSQL and a real SMTP server, with injected time."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from course.catalog import course_at, release_name
from course.deliveries.claim import claim_due
from course.deliveries.sending import take_batch
from course.engagement.privacy import erase
from course.models.deliveries import Delivery, DeliveryState, SendBatch, SendingPause, Suppression
from course.models.subscribers import Subscriber, SubscriberStatus
from course.senders import batch_lock
from course.subscriptions import Consent, SubscribeOutcome, confirm, pause, restart, subscribe, unsubscribe
from emails.senders import OneAtATime
from emails.store import current_release
from workers.engine import send_next, send_while_queued, tick

from .conftest import Harness

# Day 1 as the course writes its subject.
DAY_ONE = "Day 1: A 5-minute check-in that keeps you close"
SUBJECTS = [
    "Confirm your place in Building Emotional Intimacy",
    "Welcome: where do you two stand today?",
    *[f"Day {n}: " for n in range(1, 19)],
    "You did it: see how far you two have come",
]


def enrol(
    harness: Harness,
    email: str,
    *,
    timezone: str = "Europe/Paris",
    send_time: time = time(8, 0),
    confirm_it: bool = True,
) -> int:
    runtime = harness.runtime
    with runtime.sessions() as session:
        result = subscribe(
            session,
            course_slug="building-emotional-intimacy",
            email=email,
            first_name="Alex",
            timezone=timezone,
            send_time=send_time,
            consent=Consent(at=harness.clock(), ip="203.0.113.9", user_agent="pytest", form="test"),
            timing=runtime.timing,
        )
        session.commit()
    assert result.outcome is SubscribeOutcome.CONFIRMATION_QUEUED and result.subscriber_id
    assert harness.wakeups == [1]  # a worker woken for its batch as the session committed
    harness.drain()
    if confirm_it:
        with runtime.sessions() as session:
            confirm(session, result.subscriber_id, now=harness.clock(), timing=runtime.timing)
            session.commit()
        harness.drain()
    return result.subscriber_id


def subscriber(harness: Harness, subscriber_id: int) -> Subscriber:
    with harness.runtime.sessions() as session:
        found = session.get(Subscriber, subscriber_id)
        assert found is not None
        return found


def deliveries(harness: Harness, subscriber_id: int) -> list[Delivery]:
    with harness.runtime.sessions() as session:
        return list(
            session.scalars(select(Delivery).where(Delivery.subscriber_id == subscriber_id).order_by(Delivery.id))
        )


def run_course_by_the_clock(harness: Harness, subscriber_id: int) -> None:
    for _ in range(40):
        current = subscriber(harness, subscriber_id)
        if current.status == SubscriberStatus.COMPLETED.value:
            return
        assert current.next_send_at is not None
        harness.clock.to(max(harness.clock(), current.next_send_at))
        harness.tick_and_send()
    raise AssertionError("the course did not finish")


def test_a_subscriber_receives_the_whole_course_once_each_in_order_one_a_local_day(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com", timezone="America/New_York", send_time=time(7, 30))
    run_course_by_the_clock(harness, alex)
    received = harness.smtp.to("alex@example.com")
    subjects = [message.subject for message in received]
    assert len(subjects) == 21
    for expected, subject in zip(SUBJECTS, subjects, strict=True):
        assert subject.startswith(expected)
    assert len({message.message["Message-ID"] for message in received}) == 21
    # Days 1-18 and the completion each at 07:30 New York time, on consecutive local days.
    new_york = ZoneInfo("America/New_York")
    sent = [message.message["Date"].datetime.astimezone(new_york) for message in received[2:]]
    assert all(moment.time() == time(7, 30) for moment in sent)
    assert [moment.date() for moment in sent] == [sent[0].date() + timedelta(days=n) for n in range(19)]
    assert sent[0].date() == harness.clock.now.astimezone(new_york).date() - timedelta(days=18)
    assert subscriber(harness, alex).status == SubscriberStatus.COMPLETED.value


def test_day_one_comes_the_next_local_morning_after_the_welcome(harness: Harness) -> None:
    # 15:00 UTC is 16:00 in Paris: the welcome now, day 1 tomorrow at 08:00 Paris time.
    alex = enrol(harness, "alex@example.com")
    assert subscriber(harness, alex).next_send_at == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    harness.clock.advance(hours=15, minutes=59)  # 06:59 UTC: not yet
    harness.tick_and_send()
    assert len(harness.smtp.to("alex@example.com")) == 2
    harness.clock.advance(minutes=1)
    harness.tick_and_send()
    assert harness.smtp.to("alex@example.com")[-1].subject == DAY_ONE


def test_a_wake_up_delivered_twice_sends_once(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    harness.clock.advance(days=1)
    tick(harness.runtime)
    harness.wakeups.append(1)  # the broker hands the same task out again
    assert harness.drain() == 2
    assert len(harness.smtp.to("alex@example.com")) == 3  # the confirmation, the welcome, day 1: once each
    assert [d.step for d in deliveries(harness, alex) if d.state == "sent"] == [None, 0, 1]


def test_two_workers_running_the_same_batch_at_once_send_each_message_once(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory()
    for number in range(30):
        enrol(harness, f"reader{number}@example.com")
    harness.clock.advance(days=1)
    tick(harness.runtime)
    harness.wakeups.clear()

    def worker() -> None:
        while send_next(harness.runtime):  # until the queue is empty
            pass

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1:"))
    assert sorted(day_one.values()) == [1] * 30


def test_two_beats_ticking_at_once_claim_each_subscriber_once(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(claim_batch_size=7)  # several rounds per tick, interleaved between the two
    for number in range(40):
        enrol(harness, f"reader{number}@example.com")
    harness.clock.advance(days=1)
    start = threading.Barrier(2)

    def beat() -> None:
        start.wait()
        tick(harness.runtime)

    beats = [threading.Thread(target=beat) for _ in range(2)]
    for thread in beats:
        thread.start()
    for thread in beats:
        thread.join(timeout=60)
    with harness.runtime.sessions() as session:
        queued = [reader for batch in session.scalars(select(SendBatch)) for reader in batch.subscriber_ids or []]
    assert len(queued) == len(set(queued)) == 40
    harness.drain()
    with harness.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.step == 1)) == 40
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1:"))
    assert sorted(day_one.values()) == [1] * 40


def test_temporary_failures_are_retried_with_backoff_then_sent_once(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    harness.smtp.plan("alex@example.com", "data", "421 4.7.0 Try again later")
    harness.smtp.plan("alex@example.com", "data", "451 4.3.0 Mail server temporarily rejected message")
    harness.clock.to(subscriber(harness, alex).next_send_at)  # type: ignore[arg-type]
    harness.tick_and_send()
    (day_one,) = [d for d in deliveries(harness, alex) if d.step == 1]
    assert day_one.state == DeliveryState.CLAIMED.value and day_one.attempts == 1
    assert day_one.due_at == harness.clock() + timedelta(minutes=1)  # minutes at first
    assert "421" in (day_one.last_reply or "")
    harness.clock.advance(minutes=1)
    harness.tick_and_send()
    (day_one,) = [d for d in deliveries(harness, alex) if d.step == 1]
    assert day_one.attempts == 2 and day_one.due_at == harness.clock() + timedelta(minutes=2)  # doubling
    harness.clock.advance(minutes=2)
    harness.tick_and_send()
    (day_one,) = [d for d in deliveries(harness, alex) if d.step == 1]
    assert day_one.state == DeliveryState.SENT.value and day_one.attempts == 3
    assert [m.subject for m in harness.smtp.to("alex@example.com")].count(DAY_ONE) == 1


def test_a_day_that_cannot_go_before_the_next_slot_waits_for_it_and_never_doubles_up(
    harness_factory: Callable[..., Harness],
) -> None:
    # Sixteen-second days: retries back off 1, 2, 4, 4, ... seconds (a sixteenth of a day, capped at a
    # quarter), so the fifth retry would fall after the next day's slot.
    harness = harness_factory(course_day_seconds=16)
    alex = enrol(harness, "alex@example.com")
    for _ in range(12):
        harness.smtp.plan("alex@example.com", "data", "452 4.2.2 Mailbox full")
    day_one_slot = subscriber(harness, alex).next_send_at
    assert day_one_slot is not None
    next_slot = day_one_slot + timedelta(seconds=16)
    harness.clock.to(day_one_slot)
    dues = []
    for _ in range(6):
        harness.tick_and_send()
        (day_one,) = [d for d in deliveries(harness, alex) if d.step == 1]
        dues.append((day_one.due_at - day_one_slot).total_seconds())
        harness.clock.to(max(harness.clock(), day_one.due_at))
    assert dues == [1, 3, 7, 11, 15, 16]  # the last wait is cut short at the next day's slot
    (day_one,) = [d for d in deliveries(harness, alex) if d.step == 1]
    assert day_one.state == DeliveryState.CLAIMED.value and day_one.due_at == next_slot
    # One delivery outstanding, and day 2 not claimed alongside it: nothing piles up.
    assert [d.step for d in deliveries(harness, alex)] == [None, 0, 1]
    assert subscriber(harness, alex).next_send_at is None


def test_a_mailbox_that_does_not_exist_is_suppressed_and_never_mailed_again(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    harness.smtp.plan("alex@example.com", "rcpt", "550 5.1.1 The email account that you tried to reach does not exist")
    harness.clock.to(subscriber(harness, alex).next_send_at)  # type: ignore[arg-type]
    harness.tick_and_send()
    gone = subscriber(harness, alex)
    assert gone.status == SubscriberStatus.BOUNCED.value and gone.next_send_at is None
    with harness.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1
        again = subscribe(
            session, course_slug="building-emotional-intimacy", email="ALEX@example.com",
            consent=Consent(at=harness.clock()), timing=harness.runtime.timing,
        )  # fmt: skip
        assert again.outcome is SubscribeOutcome.SUPPRESSED
    harness.clock.advance(days=3)
    harness.tick_and_send()
    assert len(harness.smtp.to("alex@example.com")) == 2  # the confirmation and the welcome, nothing after


def test_a_sender_side_refusal_pauses_sending_and_never_blames_the_reader(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    alex = enrol(harness, "alex@example.com")
    # Sam's day 1 is due two minutes after Alex's: it is claimed only once sending has been paused (two
    # deliveries due at once may go out in either order, and one sent before the refusal is no fault).
    sam = enrol(harness, "sam@example.com", send_time=time(8, 2))
    harness.smtp.plan("alex@example.com", "data", "550 5.7.26 Unauthenticated email is not accepted (DMARC)")
    harness.clock.to(subscriber(harness, alex).next_send_at)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="course.deliveries"):
        harness.tick_and_send()
    assert any("ALERT sending paused" in record.message and "5.7.26" in record.message for record in caplog.records)
    for reader in (alex, sam):
        assert subscriber(harness, reader).status == SubscriberStatus.ACTIVE.value
    with harness.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        (pause,) = session.scalars(select(SendingPause))
    # Nothing goes while paused, for anyone: Sam's day 1 is due now and waits too.
    harness.clock.advance(minutes=5)
    assert subscriber(harness, sam).next_send_at <= harness.clock() < pause.until  # type: ignore[operator]
    harness.tick_and_send()
    assert not any(m.subject.startswith("Day 1") for m in harness.smtp.received)
    harness.clock.to(pause.until + timedelta(seconds=1))
    harness.tick_and_send()
    day_ones = sorted(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))
    assert day_ones == ["alex@example.com", "sam@example.com"]


def test_a_sender_side_refusal_mid_chunk_holds_the_rest_though_the_next_message_had_begun(
    harness_factory: Callable[..., Harness],
) -> None:
    """Within a chunk, a message's commands go out behind the one before it (emails/senders.py): when that
    one is refused with a 5.7.x, the next message had begun (its DATA accepted) and is given up with the
    connection; it and the rest of the chunk wait for the pause, nobody gets an empty message, and after
    the pause each reader gets their email once."""
    harness = harness_factory(send_chunk_size=4)
    readers = {enrol(harness, f"reader{n}@example.com"): f"reader{n}@example.com" for n in range(4)}
    harness.clock.advance(days=1)
    order = [readers[reader] for reader in harness.claim_one_batch()]
    harness.wakeups.clear()
    harness.smtp.plan(order[1], "data", "550 5.7.26 Unauthenticated email is not accepted (DMARC)")

    def day_one() -> Counter[str]:
        return Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))

    assert send_next(harness.runtime) == {"accepted": 1, "sender-blocked": 1, "held": 2}
    assert day_one() == {order[0]: 1}
    assert all(m.message["Message-ID"] for m in harness.smtp.received)  # no empty message reached the server
    with harness.runtime.sessions() as session:
        (pause,) = session.scalars(select(SendingPause))
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    harness.clock.to(pause.until + timedelta(seconds=1))
    harness.tick_and_send()
    assert day_one() == dict.fromkeys(order, 1)


@pytest.mark.parametrize(
    ("stage", "reply", "tally"),
    [
        ("data", "550 5.7.26 Unauthenticated email is not accepted (DMARC)",
         {"accepted": 1, "sender-blocked": 1, "held": 2}),
        ("data", "451 4.3.0 Try again later", {"accepted": 3, "retry": 1}),
        ("rcpt", "550 5.1.1 No such user", {"accepted": 3, "bad-address": 1}),
        ("data", "552 5.3.4 Message too big", {"accepted": 3, "failed": 1}),
    ],
    ids=["5.7.26", "451", "5.1.1", "552"],
)  # fmt: skip
def test_a_refusal_of_a_reader_erased_while_it_went_leaves_the_chunk_whole(
    harness_factory: Callable[..., Harness], stage: str, reply: str, tally: dict[str, int]
) -> None:
    """A reader erased while their email went (after the chunk's check), and refused: nothing is left to
    record for them, and the rest of the chunk is recorded as ever (a 5.7.x is about us, whoever it was
    for: sending pauses and the rest waits for it); nobody's email is lost or sent twice."""
    harness = harness_factory(send_chunk_size=4)
    readers = {enrol(harness, f"reader{n}@example.com"): f"reader{n}@example.com" for n in range(4)}
    harness.clock.advance(days=1)
    order = list(harness.claim_one_batch())
    harness.wakeups.clear()
    refused = order[1]
    harness.smtp.plan(readers[refused], stage, reply)
    sender = harness.runtime.sender

    class ErasingWhileItGoes:
        @contextlib.contextmanager
        def connect(self) -> Iterator[object]:
            with sender.connect() as connection:

                class Connection(OneAtATime):
                    def send(self, envelope: Any) -> Any:
                        if envelope.recipient == readers[refused]:
                            with harness.runtime.sessions() as session:
                                gone = session.get(Subscriber, refused)
                                assert gone is not None
                                erase(session, gone, harness.clock(), harness.runtime.timing.address_key)
                                session.commit()
                        return connection.send(envelope)

                yield Connection()

    harness.runtime.sender = ErasingWhileItGoes()  # type: ignore[assignment]
    assert send_next(harness.runtime) == tally
    harness.runtime.sender = sender
    with harness.runtime.sessions() as session:
        pauses = list(session.scalars(select(SendingPause)))
    assert len(pauses) == ("held" in tally)
    harness.clock.to(max([pause.until for pause in pauses], default=harness.clock()) + timedelta(minutes=10))
    harness.tick_and_send()
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))
    assert day_one == {readers[reader]: 1 for reader in order if reader != refused}


def test_a_connection_dropped_during_data_is_retried_and_the_batch_goes_on(harness: Harness) -> None:
    for name in ("alex", "sam", "kim"):
        enrol(harness, f"{name}@example.com")
    harness.smtp.plan("sam@example.com", "drop")
    harness.clock.advance(days=1)
    harness.tick_and_send()
    day_one = sorted(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))
    assert day_one == ["alex@example.com", "kim@example.com"]  # the connection was opened again for kim
    harness.clock.advance(minutes=1)
    harness.tick_and_send()
    day_one = sorted(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1"))
    assert day_one == ["alex@example.com", "kim@example.com", "sam@example.com"]


def test_an_unsubscribe_stops_a_delivery_already_claimed(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    harness.clock.advance(days=1)
    tick(harness.runtime)  # claimed and queued, not yet sent
    with harness.runtime.sessions() as session:
        unsubscribe(session, alex, now=harness.clock())
        session.commit()
    harness.drain()
    assert [m.subject for m in harness.smtp.to("alex@example.com")][2:] == []
    assert [d.state for d in deliveries(harness, alex) if d.step == 1] == [DeliveryState.SKIPPED.value]
    assert subscriber(harness, alex).current_step == 0  # their place given back: day 1 is theirs if they return


def test_an_unsubscribe_committed_while_a_batch_is_sending_stops_its_message_in_a_later_chunk(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(send_chunk_size=2)
    readers = [enrol(harness, f"reader{number}@example.com") for number in range(4)]
    harness.clock.advance(days=1)
    # The four day-1 emails as one batch, two chunks of two: one round of the claim (the beat's claimers
    # work side by side and may split them into two batches).
    with harness.runtime.sessions() as session:
        release = current_release(session, "building-emotional-intimacy")
        course = course_at(session, "building-emotional-intimacy", release)
        claim_due(session, course, harness.clock(), 10, harness.runtime.timing, release_name(release), 50)
        session.commit()
        (batch,) = session.scalars(select(SendBatch))
    last = (batch.subscriber_ids or [])[-1]  # in the second chunk
    sender = harness.runtime.sender

    class UnsubscribeOnFirstSend:
        """The last reader unsubscribes, in their own transaction, while the first chunk is being sent."""

        def __init__(self) -> None:
            self.done = False

        @contextlib.contextmanager
        def connect(self) -> Iterator[object]:
            with sender.connect() as connection:
                outer = self

                class Connection(OneAtATime):
                    def send(self, envelope: Any) -> Any:
                        if not outer.done:
                            outer.done = True
                            with harness.runtime.sessions() as session:
                                unsubscribe(session, last, now=harness.clock())
                                session.commit()
                        return connection.send(envelope)

                yield Connection()

    harness.runtime.sender = UnsubscribeOnFirstSend()  # type: ignore[assignment]
    harness.drain()
    others = [reader for reader in readers if reader != last]
    day_one = {reader: [d.state for d in deliveries(harness, reader) if d.step == 1] for reader in readers}
    assert day_one == {**{reader: ["sent"] for reader in others}, last: ["skipped"]}
    assert not any(m.subject.startswith("Day 1") for m in harness.smtp.to(subscriber(harness, last).email))
    assert [subscriber(harness, reader).current_step for reader in others] == [1, 1, 1]
    assert subscriber(harness, last).current_step == 0


def take_and_die(harness: Harness, sender_key: int | None) -> None:
    """A worker takes the next batch and dies before it records anything (its wake-up gone with it)."""
    harness.wakeups.clear()
    with harness.runtime.sessions() as session:
        assert take_batch(session, harness.clock(), harness.runtime.timing, sender_key) is not None
        session.commit()


def test_a_batch_whose_worker_died_goes_again_at_the_next_tick_ahead_of_new_work(
    harness_factory: Callable[..., Harness],
) -> None:
    from course.deliveries.sending import take_batch

    harness = harness_factory()  # the production lease: ten minutes
    alex, sam = enrol(harness, "alex@example.com"), enrol(harness, "sam@example.com")
    harness.clock.advance(days=1)
    with harness.runtime.sessions() as session:  # two batches: the older waits, the newer is taken
        release = current_release(session, "building-emotional-intimacy")
        course = course_at(session, "building-emotional-intimacy", release)
        for _ in range(2):
            claim_due(session, course, harness.clock(), 1, harness.runtime.timing, release_name(release), 50)
        session.commit()
        waiting, taken = session.scalars(select(SendBatch).order_by(SendBatch.id)).all()
        taken.taken_at, taken.sender_key = harness.clock(), 987_654  # a key nobody holds: its worker is gone
        session.commit()
    harness.wakeups.clear()  # and the broker lost their wake-ups
    outcome = tick(harness.runtime)
    # One wake-up as it went back in the queue, one for the batch waiting without its own.
    assert (outcome.recovered, outcome.woken, harness.woken) == (1, 1, 2)
    with harness.runtime.sessions() as session:
        again = take_batch(session, harness.clock(), harness.runtime.timing, None)
        assert again is not None and again.id == taken.id and again.id > waiting.id  # ahead of older new work
        session.rollback()
    harness.drain()
    for reader, address in ((alex, "alex@example.com"), (sam, "sam@example.com")):
        assert [m.subject for m in harness.smtp.to(address)][-1].startswith("Day 1")
        assert subscriber(harness, reader).current_step == 1


def test_a_batch_whose_worker_lives_but_stalls_goes_again_once_its_lease_runs_out(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(delivery_lease_seconds=60)
    alex = enrol(harness, "alex@example.com")
    harness.clock.advance(days=1)
    tick(harness.runtime)
    with batch_lock(harness.runtime.engine) as held:  # the worker lives on, stuck: its lock is held
        take_and_die(harness, sender_key=held)
        harness.tick_and_send()
        assert not any(m.subject.startswith("Day 1") for m in harness.smtp.received)  # lease still running
        harness.clock.advance(seconds=61)
        assert tick(harness.runtime).recovered == 1
        harness.drain()
    assert [m.subject for m in harness.smtp.to("alex@example.com")][-1].startswith("Day 1")
    assert subscriber(harness, alex).current_step == 1


def twelve_due_tomorrow(harness_factory: Callable[..., Harness]) -> Harness:
    """Twelve readers whose day 1 is due, claimed in rounds of 7 into batches of up to 5."""
    harness = harness_factory(claim_batch_size=7, send_batch_size=5)
    for number in range(12):
        enrol(harness, f"reader{number}@example.com")
    harness.clock.advance(days=1)
    return harness


def test_batches_whose_wake_ups_the_broker_lost_are_woken_for_at_the_next_tick(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = twelve_due_tomorrow(harness_factory)
    assert tick(harness.runtime).queued == 12
    woken = harness.woken
    assert woken >= 3
    harness.wakeups.clear()  # a broker restarted without persistence: every wake-up gone
    outcome = tick(harness.runtime)
    assert outcome.queued == 0 and outcome.woken == woken  # one for each batch in the queue, no more
    assert tick(harness.runtime).woken == 0  # those wait in the broker now: none twice
    harness.drain()
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1:"))
    assert sorted(day_one.values()) == [1] * 12


def test_after_downtime_each_subscriber_gets_one_email_then_one_a_day(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    harness.clock.advance(days=5)  # nobody ran the beat for five days
    harness.tick_and_send()
    harness.tick_and_send()
    assert [m.subject for m in harness.smtp.to("alex@example.com")][2:] == [DAY_ONE]
    resumed = subscriber(harness, alex).next_send_at
    assert resumed is not None and resumed > harness.clock()
    assert resumed.astimezone(ZoneInfo("Europe/Paris")).time() == time(8, 0)


def test_a_pause_for_a_week_ends_by_itself_and_the_course_resumes_one_a_day(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    with harness.runtime.sessions() as session:
        pause(session, alex, now=harness.clock(), until=harness.clock() + timedelta(days=7))
        session.commit()
    harness.clock.advance(days=6)
    harness.tick_and_send()
    assert subscriber(harness, alex).status == SubscriberStatus.PAUSED.value
    assert len(harness.smtp.to("alex@example.com")) == 2
    harness.clock.advance(days=1)
    harness.tick_and_send()  # the pause ends: back to active, day 1 at the next 08:00 Paris time
    resumed = subscriber(harness, alex)
    assert resumed.status == SubscriberStatus.ACTIVE.value and resumed.next_send_at is not None
    harness.clock.to(resumed.next_send_at)
    harness.tick_and_send()
    assert [m.subject for m in harness.smtp.to("alex@example.com")][2:] == [DAY_ONE]


def test_restarting_the_course_sends_it_again_from_the_welcome_with_new_message_ids(harness: Harness) -> None:
    alex = enrol(harness, "alex@example.com")
    run_course_by_the_clock(harness, alex)
    first_run = {m.message["Message-ID"] for m in harness.smtp.to("alex@example.com")}
    with harness.runtime.sessions() as session:
        assert restart(session, alex, now=harness.clock(), timing=harness.runtime.timing) is True
        session.commit()
    harness.clock.to(subscriber(harness, alex).next_send_at)  # type: ignore[arg-type]
    harness.tick_and_send()
    again = harness.smtp.to("alex@example.com")[21:]
    assert [m.subject for m in again] == ["Welcome: where do you two stand today?"]
    assert again[0].message["Message-ID"] not in first_run
    run_course_by_the_clock(harness, alex)
    assert len(harness.smtp.to("alex@example.com")) == 21 + 20


def test_two_beats_and_two_worker_groups_on_queues_of_their_own_send_each_email_once(
    harness_factory: Callable[..., Harness],
) -> None:
    """Beyond one machine: two beats and two groups of workers, each group woken through a queue of its own
    (CELERY_QUEUE), on one database. The send queue is the database's: any worker takes any batch."""
    groups = [harness_factory(claim_batch_size=9, send_batch_size=4, celery_queue=f"group-{n}") for n in (1, 2)]
    first = groups[0]
    readers = [enrol(first, f"reader{number}@example.com") for number in range(60)]
    tomorrow = first.clock() + timedelta(days=1)
    for group in groups:
        group.wakeups.clear()
        group.clock.to(tomorrow)
    start = threading.Barrier(4)

    def beat(group: Harness) -> None:
        start.wait()
        for _ in range(3):
            tick(group.runtime)

    def workers(group: Harness) -> None:
        start.wait()
        for _ in range(400):  # until both queues are empty, taking whatever batch is next
            if not send_next(group.runtime) and not tick(group.runtime).queued:
                with group.runtime.sessions() as session:
                    if session.scalar(select(func.count()).select_from(SendBatch)) == 0:
                        return

    threads = [threading.Thread(target=job, args=(group,)) for group in groups for job in (beat, workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    day_one = Counter(m.recipient for m in first.smtp.received if m.subject.startswith("Day 1:"))
    assert sorted(day_one.values()) == [1] * 60  # none twice, none missing
    assert {subscriber(first, reader).current_step for reader in readers} == {1}


def test_one_wake_up_goes_on_through_the_backlog_so_wake_ups_lost_cost_nothing_while_a_worker_works(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = twelve_due_tomorrow(harness_factory)
    tick(harness.runtime)
    harness.wakeups.clear()  # every wake-up but the one a worker already holds: gone
    assert send_while_queued(harness.runtime, seconds=60) == {"accepted": 12}
    assert send_while_queued(harness.runtime, seconds=60) == {}  # the next finds the queue empty
    day_one = Counter(m.recipient for m in harness.smtp.received if m.subject.startswith("Day 1:"))
    assert sorted(day_one.values()) == [1] * 12
