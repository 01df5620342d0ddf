"""A subscriber's lifecycle: subscribe (pending), confirm (active), unsubscribe, pause and resume.

Double opt-in, and a form anyone can fill in with anyone's address:
- a sign-up is a :class:`SignupRequest`; it changes nothing about an existing subscriber (their name,
  time, time zone, consent, status). Its values are applied only when that address confirms with the
  link made for this request;
- confirmations are paced per mailbox (the address without its +tag): at most one an hour and three a
  day. Sign-ups of one mailbox take their turn one at a time (a lock on the mailbox), so parallel
  requests cannot all find the pace unspent. A request over the pace is not dropped: its confirmation
  goes when the pace allows. A mailbox has at most one confirmation waiting for its turn, the newest
  request's: a newer one takes its place, so no stream of requests (to ``name+1@``, ``name+2@``...)
  builds a backlog, and the owner's own sign-up waits for the pace at most, never behind a stranger's;
- an active subscriber never gets a second course; a bounced or complained address is never mailed; a
  person who erased their data may come back through a new confirmation.
The caller commits; what a commit queued for the workers wakes them as it commits (course/db.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from course.catalog import course_at
from course.curriculum import Course
from course.db import serialise
from course.deliveries.claim import claim_next_step, queue_confirmation, queue_service_email, send_again
from course.deliveries.sending import give_back_place
from course.deliveries.suppressions import lift_erasure, suppression_reason
from course.deliveries.timing import Timing, schedule_for
from course.lifecycle import EmailKind, SuppressionReason, become, skip_waiting
from course.models.deliveries import Delivery, DeliveryState
from course.models.engagement import Event, EventKind
from course.models.subscribers import ENROLLED, SignupRequest, Subscriber, SubscriberStatus, mailbox_hash
from course.schedule import DEFAULT_SEND_TIME, UnknownTimezone, canonical_timezone

OutcomeT = TypeVar("OutcomeT")

# The pace of confirmations to one mailbox: enough for a person who mistyped or lost the email, too
# slow to bury anyone's inbox.
CONFIRMATION_INTERVAL = timedelta(hours=1)
CONFIRMATIONS_PER_DAY = 3
# Requests kept per subscriber (the newest); older unconfirmed ones go, and their links confirm with
# the subscriber's own values.
REQUESTS_KEPT = 10

# A first name: 1 to 40 characters, at most three words of letters (any script, with their accents),
# joined by single spaces, hyphens, apostrophes or a full stop ("Mary-Jane", "O'Neil", "J. R.", "José",
# "李小龙"). No digits, no punctuation that a link, an address or a phone number needs: the name is
# printed in an email to the address typed next to it, which need not be the typist's.
MAX_FIRST_NAME_LENGTH = 40
MAX_FIRST_NAME_WORDS = 3
_NAME_JOINERS = " -'’."


class InvalidSubscription(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True)
class Consent:
    """What we keep to show that a person asked for the course."""

    at: datetime
    ip: str | None = None
    user_agent: str | None = None
    form: str | None = None


class SubscribeOutcome(StrEnum):
    CONFIRMATION_QUEUED = "confirmation-queued"
    CONFIRMATION_PACED = "confirmation-paced"  # over the mailbox's pace: it goes later
    CONFIRMATION_UPDATED = "confirmation-updated"  # one was waiting: it now carries this request
    ALREADY_SUBSCRIBED = "already-subscribed"  # active, paused or finished: not a second course
    SUPPRESSED = "suppressed"


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already-confirmed"
    NOT_PENDING = "not-pending"  # unsubscribed or bounced since: an old link does not bring them back


@dataclass(frozen=True)
class Result(Generic[OutcomeT]):
    outcome: OutcomeT
    subscriber_id: int | None = None
    delivery_ids: list[int] = field(default_factory=list)


def normalise_email(raw: str) -> str:
    """A comparable, sendable address: syntax checked (no DNS), domain in ASCII, lower case.

    RFC 2047 encoded words (``=?utf-8?q?...?=``) are refused: they mean nothing in an address, and a
    mail parser would decode them (a CR LF included) when the address is written into a header.
    """
    if "=?" in raw:
        raise InvalidSubscription("email", "encoded words are not allowed in an address")
    try:
        checked = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise InvalidSubscription("email", str(error)) from None
    return (checked.ascii_email or checked.normalized).lower()


def clean_first_name(raw: str | None) -> str | None:
    """The first name as typed, tidied, or InvalidSubscription; see MAX_FIRST_NAME_LENGTH for the rule."""
    if raw is None:
        return None
    name = unicodedata.normalize("NFC", " ".join(raw.split()))
    if not name:
        return None
    if len(name) > MAX_FIRST_NAME_LENGTH:
        raise InvalidSubscription("first_name", f"longer than {MAX_FIRST_NAME_LENGTH} characters")
    for char in name:
        if char not in _NAME_JOINERS and unicodedata.category(char)[0] not in "LM":
            raise InvalidSubscription("first_name", f"{char!r} is not a letter")
    if not unicodedata.category(name[0]).startswith("L") or re.search(r"[-'’.]{2,}|[-'’.] [-'’]", name):
        raise InvalidSubscription("first_name", "not a name")
    if len(name.split()) > MAX_FIRST_NAME_WORDS:
        raise InvalidSubscription("first_name", f"more than {MAX_FIRST_NAME_WORDS} words")
    return name


def check_timezone(name: str) -> str:
    """The canonical IANA name for ``name`` (see course.schedule.canonical_timezone)."""
    try:
        return canonical_timezone(name)
    except UnknownTimezone as error:
        raise InvalidSubscription("timezone", str(error)) from None


_SEND_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_send_time(raw: str) -> time:
    """A local time of day in whole minutes, written HH:MM (24-hour)."""
    match = _SEND_TIME.fullmatch(raw.strip())
    if match is None:
        raise InvalidSubscription("send_time", f"not a time of day in whole minutes (HH:MM): {raw!r}")
    return time(int(match.group(1)), int(match.group(2)))


def subscribe(
    session: Session,
    *,
    course_slug: str,
    email: str,
    consent: Consent,
    timing: Timing,
    first_name: str | None = None,
    timezone: str = "UTC",
    send_time: time = DEFAULT_SEND_TIME,
) -> Result[SubscribeOutcome]:
    address = normalise_email(email)
    name = clean_first_name(first_name)
    timezone = check_timezone(timezone)
    if send_time.second or send_time.microsecond:
        raise InvalidSubscription("send_time", "a send time is in whole minutes")
    now = consent.at
    mailbox = mailbox_hash(address, timing.address_key)
    serialise(session, f"course.mailbox:{mailbox}")  # one sign-up of a mailbox at a time, until commit
    if SuppressionReason.is_permanent(suppression_reason(session, address, timing.address_key)):
        return Result(SubscribeOutcome.SUPPRESSED)
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.course_slug == course_slug, Subscriber.email == address).with_for_update()
    )
    if subscriber is None:
        # Nobody to protect yet: the new row starts from this request's values (confirming applies them again).
        subscriber = Subscriber(course_slug=course_slug, email=address, first_name=name, timezone=timezone,
                                send_time=send_time, status=SubscriberStatus.PENDING.value, created_at=now)  # fmt: skip
        try:
            with session.begin_nested():  # two sign-ups of one new address at once: the second waits its turn
                session.add(subscriber)
        except IntegrityError:
            subscriber = session.scalar(
                select(Subscriber)
                .where(Subscriber.course_slug == course_slug, Subscriber.email == address)
                .with_for_update()
            )
            assert subscriber is not None  # noqa: S101 - the other sign-up's row made the insert fail
    if subscriber.status in ENROLLED:
        return Result(SubscribeOutcome.ALREADY_SUBSCRIBED, subscriber.id)
    if subscriber.status in (SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value):
        return Result(SubscribeOutcome.SUPPRESSED, subscriber.id)

    # Pending or unsubscribed: the request is kept apart; the subscriber's row does not change.
    request = SignupRequest(
        subscriber_id=subscriber.id, mailbox_hash=mailbox, first_name=name, timezone=timezone, send_time=send_time,
        consent_ip=consent.ip, consent_user_agent=(consent.user_agent or "")[:500] or None, consent_form=consent.form,
        created_at=now,
    )  # fmt: skip
    session.add(request)
    session.flush()
    _forget_old_requests(session, subscriber.id)
    waiting = session.scalar(
        update(Delivery)
        .where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.email == EmailKind.CONFIRMATION,
            Delivery.state == DeliveryState.CLAIMED.value,
        )
        .values(signup_request_id=request.id)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    if waiting is not None:
        return Result(SubscribeOutcome.CONFIRMATION_UPDATED, subscriber.id)
    _give_up_waiting_turns(session, mailbox, now)
    due = next_confirmation_at(session, mailbox, now)
    delivery = queue_confirmation(session, subscriber, request, now, due)
    session.flush()
    if due > now:
        return Result(SubscribeOutcome.CONFIRMATION_PACED, subscriber.id)
    return Result(SubscribeOutcome.CONFIRMATION_QUEUED, subscriber.id, [delivery.id])


def _give_up_waiting_turns(session: Session, mailbox: str, now: datetime) -> None:
    """A newer request to the mailbox takes the place of a confirmation still waiting for its turn (due
    later, for another address of the mailbox): it is skipped, and leaves the pace unspent."""
    of_the_mailbox = select(SignupRequest.id).where(SignupRequest.mailbox_hash == mailbox)
    skip_waiting(
        session, "a newer sign-up of this mailbox took its turn", now,
        Delivery.signup_request_id.in_(of_the_mailbox.scalar_subquery()), Delivery.email == EmailKind.CONFIRMATION,
        Delivery.due_at > now,
    )  # fmt: skip


def next_confirmation_at(session: Session, mailbox: str, now: datetime) -> datetime:
    """The earliest a new confirmation may go to this mailbox: an hour after the last, and a day after
    the third last."""
    recent = sorted(
        session.scalars(
            select(Delivery.due_at)
            .join(SignupRequest, Delivery.signup_request_id == SignupRequest.id)
            .where(
                SignupRequest.mailbox_hash == mailbox,
                Delivery.email == EmailKind.CONFIRMATION,
                Delivery.state != DeliveryState.SKIPPED.value,
                Delivery.due_at > now - timedelta(days=1),
            )
        ).all()
    )
    due = now
    if recent:
        due = max(due, recent[-1] + CONFIRMATION_INTERVAL)
    if len(recent) >= CONFIRMATIONS_PER_DAY:
        due = max(due, recent[-CONFIRMATIONS_PER_DAY] + timedelta(days=1))
    return due


def _forget_old_requests(session: Session, subscriber_id: int) -> None:
    """Forget the subscriber's unconfirmed requests beyond the newest ``REQUESTS_KEPT``, but never one
    whose confirmation went out (or will): the pace counts those by their request's mailbox."""
    mailed = select(Delivery.signup_request_id).where(
        Delivery.subscriber_id == subscriber_id,
        Delivery.email == EmailKind.CONFIRMATION,
        Delivery.state != DeliveryState.SKIPPED.value,
        Delivery.signup_request_id.is_not(None),
    )
    kept = (
        select(SignupRequest.id)
        .where(SignupRequest.subscriber_id == subscriber_id)
        .order_by(SignupRequest.created_at.desc(), SignupRequest.id.desc())
        .limit(REQUESTS_KEPT)
    )
    session.execute(
        delete(SignupRequest)
        .where(
            SignupRequest.subscriber_id == subscriber_id,
            SignupRequest.confirmed_at.is_(None),
            SignupRequest.id.not_in(kept.scalar_subquery()),
            SignupRequest.id.not_in(mailed.scalar_subquery()),
        )
        .execution_options(synchronize_session=False)
    )


def confirm(
    session: Session,
    subscriber_id: int,
    *,
    now: datetime,
    timing: Timing,
    request_id: int | None = None,
) -> Result[ConfirmOutcome]:
    """Activate a subscriber from a confirmation link; the welcome is queued at once (it goes as the caller commits).

    The link's sign-up request (``request_id``) gives the name, time, time zone and consent. Someone who
    unsubscribed comes back only through a request made after they left: an old link does not.
    """
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    if subscriber.status in ENROLLED:
        return Result(ConfirmOutcome.ALREADY_CONFIRMED, subscriber.id)
    request = _request_for(session, subscriber, request_id)
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED.value:
        if request is None or subscriber.unsubscribed_at is None or request.created_at <= subscriber.unsubscribed_at:
            return Result(ConfirmOutcome.NOT_PENDING, subscriber.id)
    elif subscriber.status != SubscriberStatus.PENDING.value:
        return Result(ConfirmOutcome.NOT_PENDING, subscriber.id)
    suppressed = suppression_reason(session, subscriber.email, timing.address_key)
    if SuppressionReason.is_permanent(suppressed):
        return Result(ConfirmOutcome.NOT_PENDING, subscriber.id)
    if suppressed is not None:
        lift_erasure(session, subscriber.email, timing.address_key)
    if request is not None:
        subscriber.first_name = request.first_name
        subscriber.timezone = request.timezone
        subscriber.send_time = request.send_time
        subscriber.consent_at = request.created_at
        subscriber.consent_ip = request.consent_ip
        subscriber.consent_user_agent = request.consent_user_agent
        subscriber.consent_form = request.consent_form
        request.confirmed_at = now
    become(subscriber, SubscriberStatus.ACTIVE)
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    session.add(Event(subscriber_id=subscriber.id, kind=EventKind.CONFIRMED.value, created_at=now))
    # Confirmations still waiting (a paced one, say) have nothing left to do.
    skip_waiting(
        session, "confirmed already", now, Delivery.subscriber_id == subscriber.id,
        Delivery.email == EmailKind.CONFIRMATION,
    )  # fmt: skip
    if subscriber.current_step is None:
        course = course_at(session, subscriber.course_slug)
        first = course.steps[0].wait
        if first.days:  # the course's first email waits: the beat sends it
            subscriber.next_send_at = schedule_for(subscriber, timing).after_wait(first, now, now)
            session.flush()
            return Result(ConfirmOutcome.CONFIRMED, subscriber.id)
        delivery = claim_next_step(session, subscriber, course, now, timing)  # the welcome, right away
        session.flush()
        return Result(ConfirmOutcome.CONFIRMED, subscriber.id, [delivery.id] if delivery else [])
    # Back after an unsubscribe: resume where they left off, on a new local day.
    subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)
    session.flush()
    return Result(ConfirmOutcome.CONFIRMED, subscriber.id)


def _request_for(session: Session, subscriber: Subscriber, request_id: int | None) -> SignupRequest | None:
    """The link's request; when it was forgotten (or the link predates requests), none: the subscriber's
    own values stand."""
    if request_id is None:
        return None
    request = session.get(SignupRequest, request_id)
    if request is None or request.subscriber_id != subscriber.id:
        return None
    return request


def send_preferences_link(session: Session, subscriber_id: int, *, now: datetime, timing: Timing) -> list[int]:
    """Email a fresh preferences link (data download and erase) to the address on file, at most one an hour.

    The way to one's data from an old email: an unsubscribe link never expires, so it must not open the
    data itself; the address's owner gets a new link instead. Returns the delivery queued, if any.
    """
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status in (SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value):
        return []
    recent = session.scalar(
        select(Delivery.id).where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.email == EmailKind.PREFERENCES_LINK,
            Delivery.created_at > now - CONFIRMATION_INTERVAL,
        )
    )
    if recent is not None:
        return []
    delivery = queue_service_email(session, subscriber, EmailKind.PREFERENCES_LINK, now, now)
    session.flush()
    return [delivery.id]


def unsubscribe(session: Session, subscriber_id: int, *, now: datetime) -> bool:
    """Stop everything at once, including deliveries claimed but not yet handed to SMTP. Idempotent."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED.value:
        skip_waiting_deliveries(session, subscriber, "unsubscribed", now)
        return False
    become(subscriber, SubscriberStatus.UNSUBSCRIBED)
    subscriber.unsubscribed_at = now
    subscriber.next_send_at = None
    # Left first, then what waits is skipped: a last email that waits gives the completion its claim made back.
    skip_waiting_deliveries(session, subscriber, "unsubscribed", now)
    # With the last email they had: the insights count who left after which email.
    session.add(Event(subscriber_id=subscriber.id, kind=EventKind.UNSUBSCRIBED.value, enrolment=subscriber.enrolment,
                      step=subscriber.current_step, created_at=now))  # fmt: skip
    return True


def pause(session: Session, subscriber_id: int, *, now: datetime, until: datetime | None = None) -> None:
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status != SubscriberStatus.ACTIVE.value:
        return
    become(subscriber, SubscriberStatus.PAUSED)
    subscriber.paused_until = until
    subscriber.next_send_at = None
    skip_waiting_deliveries(session, subscriber, "paused", now)
    session.add(Event(subscriber_id=subscriber.id, kind=EventKind.PAUSED.value, enrolment=subscriber.enrolment,
                      step=subscriber.current_step, created_at=now))  # fmt: skip


def resume(session: Session, subscriber_id: int, *, now: datetime, timing: Timing) -> None:
    """Carry on where they left off, one a day from a new local day: no burst of missed days."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status != SubscriberStatus.PAUSED.value:
        return
    become(subscriber, SubscriberStatus.ACTIVE)
    subscriber.paused_until = None
    subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)
    session.add(Event(subscriber_id=subscriber.id, kind=EventKind.RESUMED.value, enrolment=subscriber.enrolment,
                      step=subscriber.current_step, created_at=now))  # fmt: skip


def restart(session: Session, subscriber_id: int, *, now: datetime, timing: Timing) -> bool:
    """Go through the course again from the welcome: a new enrolment, one email a day from a new local day."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None or subscriber.status not in ENROLLED:
        return False
    skip_waiting_deliveries(session, subscriber, "restarted", now)
    subscriber.enrolment += 1
    subscriber.current_step = None
    become(subscriber, SubscriberStatus.ACTIVE)
    subscriber.completed_at = None
    subscriber.paused_until = None
    subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)
    session.add(Event(subscriber_id=subscriber.id, kind=EventKind.RESTARTED.value, enrolment=subscriber.enrolment,
                      created_at=now))  # fmt: skip
    return True


def change_schedule(
    session: Session, subscriber_id: int, *, send_time: time, timezone: str, now: datetime, timing: Timing
) -> None:
    """A new hour or time zone, from the next email on; never two emails on one local day."""
    timezone = check_timezone(timezone)
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    subscriber.send_time = send_time
    subscriber.timezone = timezone
    if subscriber.status == SubscriberStatus.ACTIVE.value and subscriber.next_send_at is not None:
        subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)


def emails_had(session: Session, subscriber: Subscriber) -> set[int]:
    """The emails ``subscriber`` has had (or are on their way) in this time through the course."""
    return set(session.scalars(
        select(Delivery.step).where(
            Delivery.subscriber_id == subscriber.id, Delivery.enrolment == subscriber.enrolment,
            Delivery.step.is_not(None), Delivery.state.in_([DeliveryState.SENT.value, DeliveryState.SENDING.value]),
        )
    ))  # fmt: skip


class CannotMove(ValueError):
    """The email a reader was to be moved to cannot be their next one (said why)."""


def move_to(session: Session, subscriber_id: int, step: int, *, course: Course, now: datetime, timing: Timing) -> None:
    """Their next email is ``step``, from their next local day at their hour (a paused reader's, when they
    resume); what waits for them is skipped. Only an email they have not had in this time through the course
    (to have one again, they start the course again): CannotMove, saying why."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    if subscriber.status not in (SubscriberStatus.ACTIVE.value, SubscriberStatus.PAUSED.value):
        raise CannotMove(f"only an active or paused reader moves to another email; this one is {subscriber.status}")
    if not course.has_step(step):
        raise CannotMove("the course has no such email")
    if step in emails_had(session, subscriber):
        raise CannotMove("they have had that email in this time through the course")
    skip_waiting_deliveries(session, subscriber, "moved to another email in the studio", now)
    subscriber.current_step = course.place_before(step)
    if subscriber.status == SubscriberStatus.ACTIVE.value:
        subscriber.next_send_at = schedule_for(subscriber, timing).resume_at(now, subscriber.last_sent_at)


def resend_last(session: Session, subscriber_id: int, *, now: datetime) -> str:
    """Their last course email, sent to them again now, as it was first made (the release it went with); the
    email's name. CannotMove, saying why, when they have none or are not on the course."""
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        raise LookupError(f"no subscriber {subscriber_id}")
    if subscriber.status not in ENROLLED:
        raise CannotMove(f"only a reader on the course gets an email again; this one is {subscriber.status}")
    last = session.scalars(
        select(Delivery).where(
            Delivery.subscriber_id == subscriber.id, Delivery.enrolment == subscriber.enrolment,
            Delivery.step.is_not(None), Delivery.state == DeliveryState.SENT.value,
        ).order_by(Delivery.sent_at.desc(), Delivery.id.desc()).limit(1)
    ).first()  # fmt: skip
    if last is None:
        raise CannotMove("they have had no course email yet in this time through the course")
    send_again(session, subscriber, last.email, last.template_version, now)
    return last.email


def resume_ended_pauses(session: Session, *, now: datetime, timing: Timing, limit: int) -> int:
    """Subscribers who paused "for a week" come back by themselves when the week is over."""
    ended = session.scalars(
        select(Subscriber.id)
        .where(Subscriber.status == SubscriberStatus.PAUSED.value, Subscriber.paused_until <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for subscriber_id in ended:
        resume(session, subscriber_id, now=now, timing=timing)
    return len(ended)


def skip_waiting_deliveries(session: Session, subscriber: Subscriber, reason: str, now: datetime) -> None:
    """The subscriber's deliveries not yet handed to SMTP are skipped, and a skipped step gives them their
    place back (:func:`give_back_place`, the worker's rule too): it is the one they get on resuming. (A
    course step waiting in the send queue is skipped by the worker, which reads their status just before
    sending.)"""
    for skipped in skip_waiting(session, reason, now, Delivery.subscriber_id == subscriber.id):
        give_back_place(session, subscriber, *skipped)


RESCHEDULE_BATCH = 1000


def reschedule_after_change(session: Session, before: Course, after: Course, *, now: datetime, timing: Timing) -> int:
    """After a publish that changed the course's emails or their waits: every active reader whose next email,
    or its wait, is not what it was gets the time the new course gives it (a time already past: due now).
    The number of readers rescheduled. The caller commits."""
    places = {step.number for step in (*before.steps, *after.steps)} | set(before.retired) | set(after.retired)

    def next_of(course: Course, place: int) -> tuple[int, object] | None:
        step = course.next_step(place)
        return None if step is None else (step.number, step.wait)

    changed = sorted(place for place in places if next_of(before, place) != next_of(after, place))
    if not changed:
        return 0
    moved = 0
    last_id = 0
    while True:
        readers = session.scalars(
            select(Subscriber)
            .where(Subscriber.course_slug == after.slug, Subscriber.status == SubscriberStatus.ACTIVE.value,
                   Subscriber.current_step.in_(changed), Subscriber.next_send_at.is_not(None),
                   Subscriber.id > last_id)
            .order_by(Subscriber.id)
            .limit(RESCHEDULE_BATCH)
            .with_for_update(skip_locked=True)
        ).all()  # fmt: skip
        if not readers:
            return moved
        for reader in readers:
            upcoming = after.next_step(reader.current_step)
            if upcoming is None:  # nothing left for them: the beat's next claim completes them
                reader.next_send_at = now
            else:
                sent_at = reader.last_sent_at or reader.confirmed_at or now
                slot = schedule_for(reader, timing).after_wait(upcoming.wait, sent_at, reader.confirmed_at)
                reader.next_send_at = max(slot, now)
            reader.updated_at = now
            moved += 1
        last_id = readers[-1].id
        session.flush()
