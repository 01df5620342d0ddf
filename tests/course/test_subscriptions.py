"""Double opt-in and the subscriber's lifecycle, on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course.db import make_engine, make_sessionmaker
from course.deliveries.suppressions import is_suppressed, suppress
from course.deliveries.timing import Timing
from course.engagement.privacy import erase
from course.lifecycle import SuppressionReason
from course.models.deliveries import Delivery, DeliveryState
from course.models.subscribers import SignupRequest, Subscriber, SubscriberStatus, mailbox
from course.subscriptions import (
    ConfirmOutcome,
    Consent,
    InvalidSubscription,
    SubscribeOutcome,
    clean_first_name,
    confirm,
    normalise_email,
    parse_send_time,
    pause,
    resume,
    subscribe,
    unsubscribe,
)

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
TIMING = Timing(address_key=b"test-address-key")
SLUG = "building-emotional-intimacy"


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
    # Consent belongs to the request until the address confirms it.
    assert alex.consent_at is None
    (request,) = session.scalars(select(SignupRequest))
    assert (request.created_at, request.consent_ip, request.consent_user_agent, request.consent_form) == (
        NOW,
        "203.0.113.9",
        "Mozilla/5.0",
        "landing",
    )
    (delivery,) = session.scalars(select(Delivery))
    assert (delivery.id, delivery.email, delivery.step, delivery.state, delivery.signup_request_id) == (
        result.delivery_ids[0],
        "confirmation",
        None,
        "claimed",
        request.id,
    )
    confirm(session, alex.id, now=NOW + timedelta(minutes=5), timing=TIMING, request_id=request.id)
    session.commit()
    confirmed = session.get(Subscriber, alex.id)
    assert confirmed is not None
    assert (confirmed.consent_at, confirmed.consent_ip, confirmed.consent_form) == (NOW, "203.0.113.9", "landing")


def send_confirmations(session: Session, at: datetime) -> None:
    """What a worker does with the confirmations due by ``at``: send them."""
    for delivery in session.scalars(
        select(Delivery).where(Delivery.state == DeliveryState.CLAIMED.value, Delivery.due_at <= at)
    ):
        delivery.state, delivery.sent_at = DeliveryState.SENT.value, at
    session.commit()


def confirmation_times(session: Session) -> list[datetime]:
    return sorted(session.scalars(select(Delivery.due_at).where(Delivery.email == "confirmation")))


def test_confirmations_to_one_mailbox_are_paced_and_a_request_is_never_dropped(session: Session) -> None:
    assert sign_up(session).outcome is SubscribeOutcome.CONFIRMATION_QUEUED
    send_confirmations(session, NOW)
    paced = sign_up(session, at=NOW + timedelta(minutes=10), first_name="Mallory")
    assert paced.outcome is SubscribeOutcome.CONFIRMATION_PACED and paced.delivery_ids == []
    # The latest request rides on the confirmation that is waiting: no extra email, its settings kept.
    latest = sign_up(session, at=NOW + timedelta(minutes=20), first_name="Alex", timezone="Asia/Tokyo")
    assert latest.outcome is SubscribeOutcome.CONFIRMATION_UPDATED
    waiting = session.scalar(select(Delivery).where(Delivery.state == DeliveryState.CLAIMED.value))
    assert waiting is not None and waiting.due_at == NOW + timedelta(hours=1)
    assert waiting.signup_request is not None
    assert (waiting.signup_request.first_name, waiting.signup_request.timezone) == ("Alex", "Asia/Tokyo")
    send_confirmations(session, NOW + timedelta(hours=1))
    sign_up(session, at=NOW + timedelta(hours=1, minutes=5))
    send_confirmations(session, NOW + timedelta(hours=2))
    # Three in a day is the most: the fourth waits until a day after the first.
    fourth = sign_up(session, at=NOW + timedelta(hours=2, minutes=5))
    assert fourth.outcome is SubscribeOutcome.CONFIRMATION_PACED
    assert confirmation_times(session) == [NOW + timedelta(hours=hours) for hours in (0, 1, 2, 24)]


def live_confirmations(session: Session) -> list[tuple[datetime, str]]:
    """The confirmations that went or will go (not given up), with their address, by time."""
    return sorted(
        session.execute(
            select(Delivery.due_at, Subscriber.email)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.email == "confirmation", Delivery.state != DeliveryState.SKIPPED.value)
        ).all()
    )


def test_tagged_and_dotted_addresses_of_one_mailbox_share_its_pace(session: Session) -> None:
    for number in range(3):
        sign_up(session, f"victim+{number}@example.com", at=NOW + timedelta(minutes=number))
    # The first goes now; the newest request waits for the next turn, in the place of the one before it.
    assert live_confirmations(session) == [(NOW, "victim+0@example.com"),
                                           (NOW + timedelta(hours=1), "victim+2@example.com")]  # fmt: skip
    dotted = sign_up(session, "v.i.c.t.i.m@googlemail.com", at=NOW)
    plain = sign_up(session, "victim@gmail.com", at=NOW + timedelta(minutes=1))
    assert dotted.outcome is SubscribeOutcome.CONFIRMATION_QUEUED
    assert plain.outcome is SubscribeOutcome.CONFIRMATION_PACED
    assert mailbox("Victim+x@Example.com") == "victim@example.com"
    assert mailbox("a.b+c@googlemail.com") == "ab@gmail.com" and mailbox("a.b@example.com") == "a.b@example.com"


def test_a_sign_up_never_changes_a_subscriber_before_the_address_confirms(session: Session) -> None:
    alex = sign_up(session, first_name="Alex", timezone="Europe/Paris", send_time=time(7, 0)).subscriber_id
    assert alex is not None
    (own,) = session.scalars(select(SignupRequest))
    confirm(session, alex, now=NOW, timing=TIMING, request_id=own.id)
    unsubscribe(session, alex, now=NOW + timedelta(days=1))
    session.commit()
    # Someone else types Alex's address with their own words.
    stranger = sign_up(session, at=NOW + timedelta(days=2), first_name="Mallory", timezone="Pacific/Kiritimati",
                       send_time=time(3, 0))  # fmt: skip
    assert stranger.outcome is SubscribeOutcome.CONFIRMATION_QUEUED
    subscriber = session.get(Subscriber, alex)
    assert subscriber is not None
    session.refresh(subscriber)
    assert (subscriber.status, subscriber.first_name, subscriber.timezone, subscriber.send_time) == (
        SubscriberStatus.UNSUBSCRIBED.value,
        "Alex",
        "Europe/Paris",
        time(7, 0),
    )
    assert (subscriber.consent_at, subscriber.consent_form) == (NOW, "landing")
    # Alex asks again; Alex's own confirmation link applies Alex's own request.
    sign_up(session, at=NOW + timedelta(days=2, hours=2), first_name="Alex", timezone="Europe/Paris",
            send_time=time(7, 30))  # fmt: skip
    mine = session.scalars(select(SignupRequest).order_by(SignupRequest.id.desc())).first()
    assert mine is not None
    later = NOW + timedelta(days=2, hours=3)
    assert confirm(session, alex, now=later, timing=TIMING, request_id=mine.id).outcome is ConfirmOutcome.CONFIRMED
    session.commit()
    assert (subscriber.status, subscriber.first_name, subscriber.send_time) == ("active", "Alex", time(7, 30))


def test_a_person_who_erased_their_data_can_join_again(session: Session) -> None:
    alex = sign_up(session).subscriber_id
    subscriber = session.get(Subscriber, alex)
    assert subscriber is not None
    erase(session, subscriber, NOW, TIMING.address_key)
    session.commit()
    assert is_suppressed(session, "alex@example.com", TIMING.address_key)
    back = sign_up(session, at=NOW + timedelta(days=1))
    assert back.outcome is SubscribeOutcome.CONFIRMATION_QUEUED  # a fresh double opt-in
    (request,) = session.scalars(select(SignupRequest))
    assert back.subscriber_id is not None
    assert confirm(session, back.subscriber_id, now=NOW + timedelta(days=1), timing=TIMING,
                   request_id=request.id).outcome is ConfirmOutcome.CONFIRMED  # fmt: skip
    session.commit()
    assert not is_suppressed(session, "alex@example.com", TIMING.address_key)


def test_a_bounced_address_stays_suppressed(session: Session) -> None:
    suppress(session, "gone@example.com", TIMING.address_key, SuppressionReason.BOUNCE, "550 5.1.1", NOW)
    session.commit()
    assert sign_up(session, "gone@example.com").outcome is SubscribeOutcome.SUPPRESSED
    assert session.scalars(select(Delivery)).all() == []


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
    # Still unsubscribed until the new confirmation is used: a sign-up alone changes nothing.
    assert session.get(Subscriber, alex).status == SubscriberStatus.UNSUBSCRIBED.value  # type: ignore[union-attr]
    new_request = session.scalars(select(SignupRequest).order_by(SignupRequest.id.desc())).first()
    assert new_request is not None
    assert confirm(session, alex, now=NOW + timedelta(days=3), timing=TIMING, request_id=new_request.id).outcome is (
        ConfirmOutcome.CONFIRMED
    )


def test_an_old_confirmation_link_does_not_resubscribe_someone_who_left(session: Session) -> None:
    alex = sign_up(session).subscriber_id
    assert alex is not None
    confirm(session, alex, now=NOW, timing=TIMING)
    unsubscribe(session, alex, now=NOW + timedelta(hours=1))
    session.commit()
    (old_request,) = session.scalars(select(SignupRequest))
    for request_id in (old_request.id, None):  # the old link, and a link that names no request
        assert confirm(session, alex, now=NOW + timedelta(hours=2), timing=TIMING, request_id=request_id).outcome is (
            ConfirmOutcome.NOT_PENDING
        )
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
        ({"first_name": "A" * 41}, "first_name"),
        ({"first_name": "Your account is suspended - call"}, "first_name"),
        ({"first_name": "evil.example/login"}, "first_name"),
        ({"first_name": "https://evil.example"}, "first_name"),
        ({"first_name": "555 0100 2000"}, "first_name"),
        ({"first_name": "Alex 2"}, "first_name"),
        ({"first_name": "=?utf-8?q?A=0D=0ABcc:_x@example.org?="}, "first_name"),
        ({"first_name": "--"}, "first_name"),
        ({"email": "=?utf-8?q?victim=40example.org?=@example.com"}, "email"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/localtime"}, "timezone"),
        ({"timezone": "localtime"}, "timezone"),
        ({"timezone": "Factory"}, "timezone"),
        ({"timezone": "EST5EDT"}, "timezone"),
        ({"timezone": "US/Eastern"}, "timezone"),
        ({"timezone": "Etc/GMT+5"}, "timezone"),
        ({"send_time": time(8, 0, 30)}, "send_time"),
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


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (" Alex ", "Alex"),
        ("Mary-Jane", "Mary-Jane"),
        ("O’Neil", "O’Neil"),
        ("J. R.", "J. R."),
        ("José", "José"),
        ("Zoë  Ann", "Zoë Ann"),
        ("李小龙", "李小龙"),
        ("", None),
    ],
)
def test_a_first_name_keeps_what_names_are_made_of(typed: str, kept: str | None) -> None:
    assert clean_first_name(typed) == kept


@pytest.mark.parametrize(
    ("device", "stored"),
    [("Europe/Paris", "Europe/Paris"), ("Asia/Calcutta", "Asia/Kolkata"), ("Europe/Kiev", "Europe/Kyiv"),
     ("Etc/UTC", "UTC"), ("Europe/Amsterdam", "Europe/Amsterdam")],
)  # fmt: skip
def test_a_device_time_zone_is_kept_under_its_canonical_name(session: Session, device: str, stored: str) -> None:
    result = sign_up(session, timezone=device)
    subscriber = session.get(Subscriber, result.subscriber_id)
    assert subscriber is not None and subscriber.timezone == stored


def test_send_times_are_whole_minutes_written_hh_mm() -> None:
    assert parse_send_time("07:45") == time(7, 45)
    for bad in ("7:45", "07:45:30", "24:00", "08:00.5", "eight", ""):
        with pytest.raises(InvalidSubscription, match="whole minutes"):
            parse_send_time(bad)


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
    # The second waits for the first's row, then rides on its confirmation.
    assert sorted(outcomes) == sorted([SubscribeOutcome.CONFIRMATION_QUEUED, SubscribeOutcome.CONFIRMATION_UPDATED])
    with sessions() as session:
        assert len(session.scalars(select(Delivery)).all()) == 1
    engine.dispose()


def test_parallel_sign_ups_of_one_mailbox_keep_its_pace(database_url: str) -> None:
    """Ten sign-ups of name+N@ at once (an outside run sent six confirmations within 12 ms): one goes now,
    one waits for the next turn, the rest gave theirs up."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    start = threading.Barrier(10)
    outcomes: list[SubscribeOutcome] = []

    def sign_up_in_own_session(number: int) -> None:
        with sessions() as session:
            start.wait()
            result = subscribe(session, course_slug=SLUG, email=f"name+{number}@example.com",
                               consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
            session.commit()
            outcomes.append(result.outcome)

    threads = [threading.Thread(target=sign_up_in_own_session, args=(number,)) for number in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 10
    assert outcomes.count(SubscribeOutcome.CONFIRMATION_QUEUED) == 1
    with sessions() as session:
        assert [due for due, _ in live_confirmations(session)] == [NOW, NOW + timedelta(hours=1)]
    engine.dispose()


def test_a_flood_of_requests_never_delays_the_owners_own_sign_up_beyond_the_pace(session: Session) -> None:
    """300 requests to name+N@ (an outside run delayed the owner's own sign-up by about 100 days)."""
    for number in range(300):
        sign_up(session, f"owner+{number}@example.com", at=NOW + timedelta(seconds=number))
    owner_at = NOW + timedelta(minutes=10)
    owner = sign_up(session, "owner@example.com", at=owner_at, first_name="Olive")
    assert owner.outcome is SubscribeOutcome.CONFIRMATION_PACED
    live = live_confirmations(session)
    assert live == [(NOW, "owner+0@example.com"), (NOW + timedelta(hours=1), "owner@example.com")]
    assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "claimed")) == 2
    # A whole day of requests, one a minute: at most three confirmations went, and the owner's is next.
    for minute in range(24 * 60):
        at = NOW + timedelta(minutes=minute)
        send_confirmations(session, at)
        sign_up(session, f"owner+{minute % 7}@example.com", at=at + timedelta(seconds=30))
    owner = sign_up(session, "owner@example.com", at=NOW + timedelta(days=1, seconds=-30), first_name="Olive")
    assert owner.outcome is SubscribeOutcome.CONFIRMATION_PACED
    sent = [due for due, _ in live_confirmations(session) if due < NOW + timedelta(days=1)]
    assert sent == [NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)]
    waiting = session.scalars(select(Delivery).where(Delivery.state == "claimed")).all()
    assert [(d.subscriber.email, d.due_at) for d in waiting] == [("owner@example.com", NOW + timedelta(days=1))]
