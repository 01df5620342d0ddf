"""The lifecycle's words: each email kind and suppression reason, and the rules that read them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from course.curriculum import load_course
from course.deliveries.suppressions import lift_erasure, suppress, suppression_reason
from course.lifecycle import (
    DELIVERY_MOVES,
    MOVES,
    SERVICE_EMAILS,
    SKIPPABLE,
    EmailKind,
    LifecycleError,
    SuppressionReason,
    become,
    complete,
    day_email,
    day_number,
    kind_of,
    move,
    skip_waiting,
    stop,
)
from course.models.deliveries import Delivery, DeliveryState, Suppression
from course.models.subscribers import Subscriber, SubscriberStatus
from course.subscriptions import Consent, subscribe

from .test_subscriptions import NOW, TIMING


def test_every_email_of_the_course_has_a_kind_and_the_days_name_their_number() -> None:
    course = load_course()
    kinds = [kind_of(step.email) for step in course.steps]
    assert kinds == [EmailKind.WELCOME, *[EmailKind.DAY] * len(course.days), EmailKind.COMPLETION]
    assert [day_number(step.email) for step in course.steps[1:-1]] == list(range(1, len(course.days) + 1))
    assert day_email(7) == "day-07" and day_number("day-07") == 7 and day_number("welcome") is None
    assert SERVICE_EMAILS == ("confirmation", "preferences-link")
    with pytest.raises(ValueError):
        kind_of("day-seven")


def test_a_weightier_reason_replaces_the_one_on_file_and_never_the_other_way(session: Session) -> None:
    address = "alex@example.com"
    for reason in (SuppressionReason.ERASED, SuppressionReason.COMPLAINT, SuppressionReason.BOUNCE):
        suppress(session, address, TIMING.address_key, reason, None, NOW)
        session.flush()
    assert suppression_reason(session, address, TIMING.address_key) == SuppressionReason.COMPLAINT
    assert session.scalar(select(Suppression.reason)) == "complaint"  # one row, the weightiest reason
    lift_erasure(session, address, TIMING.address_key)  # the person's sign-up lifts only an erasure
    assert SuppressionReason.is_permanent(suppression_reason(session, address, TIMING.address_key))
    assert not SuppressionReason.is_permanent("erased") and not SuppressionReason.is_permanent(None)


def test_a_status_changes_only_as_the_lifecycle_allows(session: Session) -> None:
    signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                          consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
    assert signed_up.subscriber_id is not None
    alex = session.get(Subscriber, signed_up.subscriber_id)
    assert alex is not None and alex.status == SubscriberStatus.PENDING.value
    with pytest.raises(LifecycleError, match="pending cannot become completed"):
        complete(alex, NOW)  # a course nobody confirmed is not complete
    assert alex.status == SubscriberStatus.PENDING.value and alex.completed_at is None
    become(alex, SubscriberStatus.COMPLAINED)
    with pytest.raises(LifecycleError):
        become(alex, SubscriberStatus.ACTIVE)  # after a complaint, no confirmation brings the mail back
    # Every status has its moves, and anyone may leave.
    assert set(MOVES) == set(SubscriberStatus)
    assert all(SubscriberStatus.UNSUBSCRIBED in MOVES[status] for status in SubscriberStatus
               if status is not SubscriberStatus.UNSUBSCRIBED)  # fmt: skip


def test_a_delivery_moves_only_as_the_lifecycle_allows(session: Session) -> None:
    signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                          consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
    session.flush()
    (confirmation,) = session.scalars(select(Delivery).where(Delivery.subscriber_id == signed_up.subscriber_id))
    assert confirmation.state == DeliveryState.CLAIMED.value
    move(confirmation, DeliveryState.SENDING)
    move(confirmation, DeliveryState.SENT)
    for later in DeliveryState:  # sent is final: nothing makes it go out again
        with pytest.raises(LifecycleError, match="sent cannot become"):
            move(confirmation, later)
    assert confirmation.state == DeliveryState.SENT.value
    # Every state has its moves; the ends have none, and what may be skipped is what no worker took.
    assert set(DELIVERY_MOVES) == set(DeliveryState)
    assert DELIVERY_MOVES[DeliveryState.SENT] == DELIVERY_MOVES[DeliveryState.FAILED] == frozenset()
    assert DeliveryState.SKIPPED in DELIVERY_MOVES[SKIPPABLE] and SKIPPABLE is not DeliveryState.SENDING


def test_skipping_what_waits_leaves_what_a_worker_took(session: Session) -> None:
    """The one rule behind pausing, leaving, confirming again and a newer sign-up's turn: claimed deliveries
    are skipped, one a worker holds (it may be at the mail server) is not."""
    ids = []
    for email in ("alex@example.com", "sam@example.com"):
        signed_up = subscribe(session, course_slug="building-emotional-intimacy", email=email,
                              consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
        ids.append(signed_up.subscriber_id)
    session.flush()
    alex, sam = (session.scalars(select(Delivery).where(Delivery.subscriber_id == one)).one() for one in ids)
    move(sam, DeliveryState.SENDING)
    session.flush()
    skip_waiting(session, "test", NOW, Delivery.id.in_([alex.id, sam.id]))
    session.expire_all()
    assert (alex.state, alex.last_reply) == (DeliveryState.SKIPPED.value, "test")
    assert sam.state == DeliveryState.SENDING.value


def test_stopping_skips_what_waits_and_a_complaint_stays_the_last_word(session: Session) -> None:
    """One rule behind a 5.1.1 in the send path and a bounce or complaint reported later (it was two): a
    5.1.1 for someone who complained meanwhile raised LifecycleError, a complaint cannot become a bounce."""
    signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                          consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
    session.flush()
    alex = session.get(Subscriber, signed_up.subscriber_id)
    assert alex is not None
    become(alex, SubscriberStatus.COMPLAINED)
    stop(session, alex, SubscriberStatus.BOUNCED, "the address bounced", NOW)
    session.flush()
    assert alex.status == SubscriberStatus.COMPLAINED.value and alex.next_send_at is None
    (confirmation,) = session.scalars(select(Delivery).where(Delivery.subscriber_id == alex.id))
    session.refresh(confirmation)
    assert (confirmation.state, confirmation.last_reply) == (DeliveryState.SKIPPED.value, "the address bounced")
