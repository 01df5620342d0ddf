"""Double opt-in and the subscriber's lifecycle, on a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from course.db import make_engine, make_sessionmaker
from course.deliveries import Timing
from course.models import Delivery, DeliveryState, Subscriber, SubscriberStatus
from course.subscriptions import (
    ConfirmOutcome,
    Consent,
    InvalidSubscription,
    SubscribeOutcome,
    confirm,
    normalise_email,
    pause,
    resume,
    subscribe,
    unsubscribe,
)

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
TIMING = Timing()
SLUG = "building-emotional-intimacy"


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def sign_up(session: Session, email: str = "alex@example.com", at: datetime = NOW, **fields: object):  # type: ignore[no-untyped-def]
    result = subscribe(session, course_slug=SLUG, email=email, consent=Consent(at=at, ip="203.0.113.9",
                       user_agent="Mozilla/5.0", form="landing"), timing=TIMING, **fields)  # type: ignore[arg-type]  # fmt: skip
    session.commit()
    return result


def test_subscribing_creates_a_pending_subscriber_with_consent_and_a_confirmation(session: Session) -> None:
    result = sign_up(
        session, "  Alex@Example.COM ", first_name=" Alex ", timezone="Asia/Kolkata", send_time=time(6, 45)
    )
    assert result.outcome is SubscribeOutcome.CONFIRMATION_QUEUED
    alex = session.get(Subscriber, result.subscriber_id)
    assert alex is not None
    assert (alex.email, alex.first_name, alex.timezone, alex.send_time) == (
        "alex@example.com",
        "Alex",
        "Asia/Kolkata",
        time(6, 45),
    )
    assert alex.status == SubscriberStatus.PENDING.value
    assert (alex.consent_at, alex.consent_ip, alex.consent_user_agent, alex.consent_form) == (
        NOW,
        "203.0.113.9",
        "Mozilla/5.0",
        "landing",
    )
    (delivery,) = session.scalars(select(Delivery))
    assert (delivery.id, delivery.email, delivery.step, delivery.state) == (
        result.delivery_ids[0],
        "confirmation",
        None,
        "claimed",
    )


def test_at_most_one_confirmation_an_hour_per_address(session: Session) -> None:
    assert sign_up(session).outcome is SubscribeOutcome.CONFIRMATION_QUEUED
    again = sign_up(session, at=NOW + timedelta(minutes=59))
    assert again.outcome is SubscribeOutcome.CONFIRMATION_RECENTLY_SENT and again.delivery_ids == []
    later = sign_up(session, at=NOW + timedelta(minutes=61))
    assert later.outcome is SubscribeOutcome.CONFIRMATION_QUEUED
    assert len(session.scalars(select(Delivery)).all()) == 2


def test_confirming_activates_and_claims_the_welcome_at_once(session: Session) -> None:
    alex = sign_up(session).subscriber_id
    assert alex is not None
    result = confirm(session, alex, now=NOW + timedelta(minutes=3), timing=TIMING)
    session.commit()
    assert result.outcome is ConfirmOutcome.CONFIRMED
    welcome = session.get(Delivery, result.delivery_ids[0])
    assert welcome is not None and (welcome.step, welcome.email) == (0, "welcome")
    assert confirm(session, alex, now=NOW, timing=TIMING).outcome is ConfirmOutcome.ALREADY_CONFIRMED


def test_an_active_subscriber_does_not_get_a_second_course(session: Session) -> None:
    alex = sign_up(session).subscriber_id
    assert alex is not None
    confirm(session, alex, now=NOW, timing=TIMING)
    session.commit()
    again = sign_up(session, at=NOW + timedelta(days=2))
    assert again.outcome is SubscribeOutcome.ALREADY_SUBSCRIBED and again.delivery_ids == []


def test_coming_back_after_unsubscribing_takes_a_new_confirmation(session: Session) -> None:
    alex = sign_up(session).subscriber_id
    assert alex is not None
    confirm(session, alex, now=NOW, timing=TIMING)
    session.commit()
    assert unsubscribe(session, alex, now=NOW + timedelta(days=1)) is True
    assert unsubscribe(session, alex, now=NOW + timedelta(days=1)) is False  # idempotent
    session.commit()
    back = sign_up(session, at=NOW + timedelta(days=3))
    assert back.outcome is SubscribeOutcome.CONFIRMATION_QUEUED
    assert session.get(Subscriber, alex).status == SubscriberStatus.PENDING.value  # type: ignore[union-attr]
    # An old confirmation link is no way back on its own: only after this new request.
    assert confirm(session, alex, now=NOW + timedelta(days=3), timing=TIMING).outcome is ConfirmOutcome.CONFIRMED


def test_an_old_confirmation_link_does_not_resubscribe_someone_who_left(session: Session) -> None:
    alex = sign_up(session).subscriber_id
    assert alex is not None
    confirm(session, alex, now=NOW, timing=TIMING)
    unsubscribe(session, alex, now=NOW + timedelta(hours=1))
    session.commit()
    assert confirm(session, alex, now=NOW + timedelta(hours=2), timing=TIMING).outcome is ConfirmOutcome.NOT_PENDING
    assert session.get(Subscriber, alex).status == SubscriberStatus.UNSUBSCRIBED.value  # type: ignore[union-attr]


def test_pausing_skips_the_waiting_email_and_resuming_sends_it_from_a_new_day(session: Session) -> None:
    alex = sign_up(session, timezone="Europe/Paris").subscriber_id
    assert alex is not None
    confirm(session, alex, now=NOW, timing=TIMING)
    session.commit()
    welcome = session.scalar(select(Delivery).where(Delivery.step == 0))
    assert welcome is not None
    pause(session, alex, now=NOW)
    session.commit()
    session.refresh(welcome)
    assert welcome.state == DeliveryState.SKIPPED.value
    resume(session, alex, now=NOW + timedelta(days=4), timing=TIMING)
    session.commit()
    resumed = session.get(Subscriber, alex)
    assert resumed is not None and resumed.status == SubscriberStatus.ACTIVE.value
    assert resumed.next_send_at == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 08:00 Paris, the next morning


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "alex@@example.com"}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"email": "alex@example.com\r\nBcc: x@example.org"}, "email"),
        ({"first_name": "Alex\r\nBcc: x@example.org"}, "first_name"),
        ({"first_name": "Al\0ex"}, "first_name"),
        ({"first_name": "A" * 101}, "first_name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/localtime"}, "timezone"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_stored(
    session: Session, fields: dict[str, str], field: str
) -> None:
    values = {"email": "alex@example.com", **fields}
    with pytest.raises(InvalidSubscription) as error:
        subscribe(session, course_slug=SLUG, consent=Consent(at=NOW), timing=TIMING, **values)  # type: ignore[arg-type]
    assert error.value.field == field
    session.rollback()
    assert session.scalars(select(Subscriber)).all() == []


def test_addresses_are_compared_in_one_form() -> None:
    assert normalise_email(" Alex@Bücher.Example ") == "alex@xn--bcher-kva.example"


def test_two_sign_ups_of_one_new_address_at_once_queue_one_confirmation(database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    start = threading.Barrier(2)
    outcomes: list[SubscribeOutcome] = []

    def sign_up_in_own_session() -> None:
        with sessions() as session:
            start.wait()
            result = subscribe(session, course_slug=SLUG, email="alex@example.com", consent=Consent(at=NOW),
                               timing=TIMING)  # fmt: skip
            session.commit()
            outcomes.append(result.outcome)

    threads = [threading.Thread(target=sign_up_in_own_session) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == sorted(
        [SubscribeOutcome.CONFIRMATION_QUEUED, SubscribeOutcome.CONFIRMATION_RECENTLY_SENT]
    )
    with sessions() as session:
        assert len(session.scalars(select(Delivery)).all()) == 1
    engine.dispose()
