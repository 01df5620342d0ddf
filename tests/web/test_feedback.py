"""Bounces, complaints and unsubscribes reported after SMTP accepted the message, applied on a real
database to subscribers who signed up and confirmed through the web (so they have real deliveries
with real Message-IDs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course.curriculum import load_course
from course.deliveries.claim import claim_next_step
from course.deliveries.suppressions import suppression_reason
from course.feedback import (
    NOTICES_PER_REPORT,
    UNPROVEN_PER_ADDRESS_A_DAY,
    Feedback,
    FeedbackKind,
    Outcome,
    Recorded,
    SoftBouncePolicy,
    record,
    record_all,
)
from course.links import LinkSigner, Purpose
from course.models.deliveries import Delivery, DeliveryState
from course.models.engagement import Event, EventKind
from course.models.feedback import FeedbackNotice
from course.models.subscribers import Subscriber

from ..conftest import TEST_SECRET
from .conftest import Site

SIGNER = LinkSigner(TEST_SECRET, "https://course.example.org")


def _record(site: Site, feedback: Feedback, policy: SoftBouncePolicy | None = None) -> Recorded:
    with site.session() as session, session.begin():
        return record(session, feedback, signer=SIGNER, address_key=site.runtime.settings.address_key,
                      now=site.clock(), policy=policy or SoftBouncePolicy())  # fmt: skip


def _welcome_id(site: Site, subscriber: Subscriber) -> str:
    with site.session() as session:
        found = session.scalar(
            select(Delivery.message_id).where(Delivery.subscriber_id == subscriber.id, Delivery.step == 0)
        )
    assert found
    return found


def _state(site: Site, email: str) -> tuple[str, str | None, int]:
    """The subscriber's status, the address's suppression, and the notices recorded."""
    with site.session() as session:
        status = session.scalar(select(Subscriber.status).where(Subscriber.email == email))
        reason = suppression_reason(session, email, site.runtime.settings.address_key)
        notices = session.scalar(select(func.count()).select_from(FeedbackNotice)) or 0
    return str(status), reason, notices


def test_a_hard_bounce_suppresses_the_address_and_stops_the_course_at_once(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    site.clock.advance(days=1)
    with Session(site.runtime.engine) as session:  # day 1 is on its way; no worker has sent it yet
        subscriber = session.get(Subscriber, alex.id, with_for_update=True)
        assert subscriber is not None
        claimed = claim_next_step(session, subscriber, load_course(), site.clock(), site.runtime.timing)
        assert claimed is not None and claimed.step == 1
        session.commit()
        day_1 = claimed.id
    bounce = Feedback(FeedbackKind.HARD_BOUNCE, "ses", "Alex@Example.com", "5.1.1 smtp; 550 5.1.1 <alex@example.com>",
                      _welcome_id(site, alex), "sns-1")  # fmt: skip
    recorded = _record(site, bounce)
    assert recorded.outcome is Outcome.SUPPRESSED and recorded.subscribers == (alex.id,)
    assert _state(site, "alex@example.com") == ("bounced", "bounce", 1)
    site.deliver()  # the worker gets the task after all: it sends nothing
    site.clock.advance(days=2)
    site.tick()
    assert len(site.smtp.to("alex@example.com")) == 2  # the confirmation and the welcome, nothing after
    with site.session() as session:
        subscriber = session.get(Subscriber, alex.id)
        assert subscriber is not None and subscriber.next_send_at is None
        assert session.get(Delivery, day_1).state == DeliveryState.SKIPPED.value  # type: ignore[union-attr]
        event = session.scalars(select(Event).where(Event.kind == EventKind.BOUNCE.value)).one()
        notice = session.scalars(select(FeedbackNotice)).one()
    # Tied to the email it answers (the insights count it for the welcome), without the address itself.
    assert (event.value, event.step, event.delivery_id is not None) == ("hard", 0, True)
    assert notice.detail == "5.1.1 smtp; 550 5.1.1 <(the address)>" and "alex" not in (event.detail or "")


def test_a_notice_told_twice_counts_once(site: Site) -> None:
    site.sign_up_and_confirm()
    soft = Feedback(FeedbackKind.SOFT_BOUNCE, "postmark", "alex@example.com", "mailbox full", None, "Bounce/7")
    assert _record(site, soft).outcome is Outcome.COUNTED
    assert _record(site, soft).outcome is Outcome.DUPLICATE
    assert _record(site, soft).outcome is Outcome.DUPLICATE
    assert _state(site, "alex@example.com") == ("active", None, 1)


def test_soft_bounces_suppress_at_the_limit_within_the_window_only(site: Site) -> None:
    site.sign_up_and_confirm()
    policy = SoftBouncePolicy(limit=3, window=timedelta(days=7))

    def soft(number: int) -> Outcome:
        item = Feedback(FeedbackKind.SOFT_BOUNCE, "ses", "alex@example.com", "4.2.2 full", None, f"n{number}")
        return _record(site, item, policy).outcome

    assert soft(1) is Outcome.COUNTED
    site.clock.advance(days=8)  # the first one is out of the window
    assert soft(2) is Outcome.COUNTED
    site.clock.advance(days=3)
    assert soft(3) is Outcome.COUNTED
    assert _state(site, "alex@example.com")[:2] == ("active", None)
    site.clock.advance(days=3)
    assert soft(4) is Outcome.SUPPRESSED  # 3 within 7 days
    status, reason, _ = _state(site, "alex@example.com")
    assert (status, reason) == ("bounced", "bounce")
    with site.session() as session:
        events = session.scalars(select(Event.value).where(Event.kind == EventKind.BOUNCE.value)).all()
    assert events == ["soft"] * 3 + ["soft-limit"]  # the one that reached the limit says so


def test_a_complaint_suppresses_every_course_of_the_address_and_wins_over_a_bounce(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    _record(site, Feedback(FeedbackKind.HARD_BOUNCE, "webhook", "alex@example.com", "", None, "b1"))
    recorded = _record(site, Feedback(FeedbackKind.COMPLAINT, "ses", "alex@example.com", "abuse", None, "c1"))
    assert recorded.outcome is Outcome.SUPPRESSED and recorded.subscribers == (alex.id,)
    assert _state(site, "alex@example.com") == ("complained", "complaint", 2)
    # Suppressed for good: signing up again sends nothing.
    before = len(site.smtp.to("alex@example.com"))
    site.client.post("/subscribe", data={"email": "alex@example.com", "send_time": "08:00", "timezone": "UTC"})
    assert len(site.smtp.to("alex@example.com")) == before


def test_an_address_we_never_mailed_is_still_suppressed_by_an_authenticated_provider(site: Site) -> None:
    recorded = _record(site, Feedback(FeedbackKind.HARD_BOUNCE, "postmark", "nobody@example.com", "", None, "x"))
    assert recorded.outcome is Outcome.SUPPRESSED and recorded.subscribers == ()
    with site.session() as session:
        assert suppression_reason(session, "nobody@example.com", site.runtime.settings.address_key) == "bounce"


def test_the_bounce_mailbox_proves_a_hard_bounce_by_the_email_it_returns(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    site.sign_up_and_confirm("sam@example.com")
    # Anyone can mail the bounce mailbox: without an email of ours, a hard bounce is only recorded...
    forged = Feedback(FeedbackKind.HARD_BOUNCE, "mailbox", "sam@example.com", "5.1.1", None, "f1", authenticated=False)
    assert _record(site, forged).outcome is Outcome.UNPROVEN
    # ...and so is one that returns an email we sent to someone else (Alex's Message-ID for Sam).
    mixed = Feedback(FeedbackKind.HARD_BOUNCE, "mailbox", "sam@example.com", "5.1.1", _welcome_id(site, alex), "f2",
                     authenticated=False)  # fmt: skip
    assert _record(site, mixed).outcome is Outcome.UNPROVEN
    assert _state(site, "sam@example.com") == ("active", None, 2)
    assert _state(site, "alex@example.com")[:2] == ("active", None)
    # A complaint that returns no email of ours changes nothing at all either.
    complaint = Feedback(FeedbackKind.COMPLAINT, "mailbox", "sam@example.com", "abuse", None, "f3", authenticated=False)
    assert _record(site, complaint).outcome is Outcome.UNPROVEN
    with site.session() as session:
        assert session.scalar(select(func.count()).select_from(Event).where(Event.kind != "confirmed")) == 0
        assert set(session.scalars(select(FeedbackNotice.proven))) == {False}
    # With Alex's own Message-ID, the report is Alex's: suppressed at once.
    proven = Feedback(FeedbackKind.HARD_BOUNCE, "mailbox", "alex@example.com", "5.1.1", _welcome_id(site, alex), "f4",
                      authenticated=False)  # fmt: skip
    assert _record(site, proven).outcome is Outcome.SUPPRESSED
    assert _state(site, "alex@example.com")[:2] == ("bounced", "bounce")


def test_a_redacted_complaint_finds_its_reader_by_message_id_or_token(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    sam = site.sign_up_and_confirm("sam@example.com")
    by_id = Feedback(FeedbackKind.COMPLAINT, "mailbox", None, "abuse", _welcome_id(site, alex), "r1",
                     authenticated=False)  # fmt: skip
    assert _record(site, by_id).subscribers == (alex.id,)
    token = SIGNER.token(Purpose.UNSUBSCRIBE, sam.id, 0)
    by_token = Feedback(FeedbackKind.COMPLAINT, "mailbox", None, "abuse", "<unknown@x>", "r2", token, False)
    assert _record(site, by_token).subscribers == (sam.id,)
    assert _state(site, "alex@example.com")[0] == _state(site, "sam@example.com")[0] == "complained"


def test_an_unsubscribe_by_mail_needs_our_signed_token(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    forged = SIGNER.token(Purpose.ANSWER, alex.id, 0)  # genuine, but made for another link
    for token in (None, "not-a-token-at-all", forged):
        item = Feedback(FeedbackKind.UNSUBSCRIBE, "mailbox", "alex@example.com", "", None, f"u{token}",
                        token, authenticated=False)  # fmt: skip
        assert _record(site, item).outcome is Outcome.UNKNOWN
    assert _state(site, "alex@example.com") == ("active", None, 0)
    genuine = Feedback(FeedbackKind.UNSUBSCRIBE, "mailbox", None, "", None, "u1",
                       SIGNER.token(Purpose.UNSUBSCRIBE, alex.id, 0), authenticated=False)  # fmt: skip
    assert _record(site, genuine).outcome is Outcome.UNSUBSCRIBED
    # An unsubscribe is the person's choice, not a fault of the address: nothing is suppressed.
    assert _state(site, "alex@example.com") == ("unsubscribed", None, 1)


@pytest.mark.parametrize("address", ["", "   ", None])
def test_a_notice_that_names_nobody_changes_nothing(site: Site, address: str | None) -> None:
    site.sign_up_and_confirm()
    recorded = _record(site, Feedback(FeedbackKind.HARD_BOUNCE, "webhook", address, "", "<nobody@x>", "n"))
    assert recorded.outcome is Outcome.UNKNOWN
    assert _state(site, "alex@example.com") == ("active", None, 0)


# --- Attacks through the bounce mailbox: reports that prove nothing change nothing ------------------


def _unauthenticated(kind: FeedbackKind, address: str | None, notice: str, *, message_id: str | None = None,
                     token: str | None = None, detail: str = "5.1.1 user unknown") -> Feedback:  # fmt: skip
    return Feedback(kind, "mailbox", address, detail, message_id, notice, token, authenticated=False)


def _attacker_token(site: Site) -> str:
    """The unsubscribe token of a sign-up the attacker made with an address of their own, never confirmed."""
    site.client.post("/subscribe", data={"email": "mallory@attacker.example", "timezone": "UTC"})
    mallory = site.subscriber("mallory@attacker.example")
    return SIGNER.token(Purpose.UNSUBSCRIBE, mallory.id, 0)


@pytest.mark.parametrize("kind", [FeedbackKind.COMPLAINT, FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE])
def test_the_attackers_own_token_vouches_for_no_victim(site: Site, kind: FeedbackKind) -> None:
    victims = [site.sign_up_and_confirm(f"victim{number}@example.com") for number in range(3)]
    token = _attacker_token(site)
    # One ARF report, one Original-Rcpt-To per victim, the attacker's own token in the returned headers.
    items = [_unauthenticated(kind, victim.email, "arf-1", token=token) for victim in victims]
    with site.session() as session, session.begin():
        recorded = record_all(session, items, signer=SIGNER, address_key=site.runtime.settings.address_key,
                              now=site.clock())  # fmt: skip
    assert [item.outcome for item in recorded] == [Outcome.UNPROVEN] * 3
    for victim in victims:
        assert _state(site, victim.email)[:2] == ("active", None)
    # Nor does a victim's own Message-ID beside the attacker's token: two people named, nobody proven.
    mixed = _unauthenticated(kind, victims[0].email, "arf-2", message_id=_welcome_id(site, victims[0]), token=token)
    assert _record(site, mixed).outcome is Outcome.UNPROVEN
    assert _state(site, victims[0].email)[:2] == ("active", None)
    # And the attacker's token with no address at all is about the attacker alone.
    own = _unauthenticated(kind, None, "arf-3", token=token)
    assert _record(site, own).subscribers in ((), (site.subscriber("mallory@attacker.example").id,))
    for victim in victims:
        assert _state(site, victim.email)[:2] == ("active", None)


def test_unproven_bounces_never_add_up_to_a_suppression_nor_stop_a_sign_up(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    policy = SoftBouncePolicy(limit=3, window=timedelta(days=7))
    for number in range(6):  # three DSNs, and three blocks of one DSN with no Message-ID of its own
        for kind in (FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE):
            item = _unauthenticated(kind, "alex@example.com", f"dsn-{number}", detail=f"5.1.1 block {number}")
            assert _record(site, item, policy).outcome in (Outcome.UNPROVEN, Outcome.CAPPED)
    assert _state(site, "alex@example.com")[:2] == ("active", None)
    # A proven soft bounce after them is the first that counts.
    proven = _unauthenticated(FeedbackKind.SOFT_BOUNCE, "alex@example.com", "real-1",
                              message_id=_welcome_id(site, alex), detail="4.2.2 mailbox full")  # fmt: skip
    assert _record(site, proven, policy).outcome is Outcome.COUNTED
    # An address that never signed up, "bounced" many times, still signs up and gets its confirmation.
    for number in range(5):
        item = _unauthenticated(FeedbackKind.HARD_BOUNCE, "newcomer@example.com", f"pre-{number}")
        assert _record(site, item, policy).outcome is Outcome.UNPROVEN
    site.client.post("/subscribe", data={"email": "newcomer@example.com", "timezone": "UTC"})
    assert [m.subject for m in site.smtp.to("newcomer@example.com")] == [
        "Confirm your place in Building Emotional Intimacy"
    ]


def test_notices_are_capped_per_report_and_unproven_ones_per_address(site: Site) -> None:
    site.sign_up_and_confirm()
    items = [_unauthenticated(FeedbackKind.HARD_BOUNCE, f"n{number}@example.com", "big") for number in range(50)]
    items += [_unauthenticated(FeedbackKind.HARD_BOUNCE, "N0@example.com", "big", detail="again")]
    with site.session() as session, session.begin():
        recorded = record_all(session, items, signer=SIGNER, address_key=site.runtime.settings.address_key,
                              now=site.clock())  # fmt: skip
    outcomes = [item.outcome for item in recorded]
    assert outcomes[:NOTICES_PER_REPORT] == [Outcome.UNPROVEN] * NOTICES_PER_REPORT
    assert set(outcomes[NOTICES_PER_REPORT:50]) == {Outcome.CAPPED} and outcomes[50] is Outcome.DUPLICATE
    assert _state(site, "alex@example.com")[2] == NOTICES_PER_REPORT
    # One address, many reports in a day: only so many are kept, and the next day some more.
    flood = [
        _record(site, _unauthenticated(FeedbackKind.COMPLAINT, "alex@example.com", f"flood-{number}")).outcome
        for number in range(UNPROVEN_PER_ADDRESS_A_DAY + 5)
    ]
    assert flood.count(Outcome.UNPROVEN) == UNPROVEN_PER_ADDRESS_A_DAY and flood.count(Outcome.CAPPED) == 5
    site.clock.advance(days=1, seconds=1)
    assert _record(site, _unauthenticated(FeedbackKind.COMPLAINT, "alex@example.com", "next")).outcome is (
        Outcome.UNPROVEN)  # fmt: skip
    assert _state(site, "alex@example.com")[:2] == ("active", None)
