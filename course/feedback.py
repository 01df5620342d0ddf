"""What the mail system tells us after SMTP said 250: bounces, complaints, and unsubscribes by mail.

Every source (the SES and Postmark webhooks, the generic JSON webhook, the bounce mailbox's DSN and
ARF reports, mail to the ``mailto:`` unsubscribe address) is read into :class:`Feedback` items by its
own parser, and :func:`record` applies each one here, the same way whatever its source:

- a notice acts only when it is *proven*: it comes from an authenticated provider's webhook, or it
  returns an email we sent to the very address it is about (that email's Message-ID, or the signed
  token of its List-Unsubscribe, and both name the same subscriber when both are there). The bounce
  mailbox is anyone's to write to: a notice from it that proves nothing is recorded (its address as a
  keyed hash, counted in /metrics) and changes nothing, ever: no suppression, no status, no event, not
  counted towards the soft-bounce limit, so it can neither stop a course nor a future sign-up;
- a proven hard bounce or complaint suppresses the address for good and stops the course at once: the
  subscriber is ``bounced`` or ``complained``, nothing claimed is sent, nothing more is claimed;
- a proven soft bounce is counted; the ``limit``-th within ``window`` (3 in 7 days by default) is taken
  as a hard bounce;
- an unsubscribe by mail is the unsubscribe of the links (it carries the signed token of the email's
  List-Unsubscribe, so it names its subscriber);
- every notice is a :class:`~course.models.FeedbackNotice` (counted in /metrics) and, when proven, an
  event of its subscriber tied to the email it answers (so the insights count it per day);
- a report (one message, one webhook call) gives at most ``NOTICES_PER_REPORT`` addresses, each once;
  an address gets at most ``UNPROVEN_PER_ADDRESS_A_DAY`` unproven notices a day: what is beyond is
  logged and left out (``capped``), so a flood of forged reports cannot fill the table.

A notice told twice (SNS retries, a mailbox read again) has the same fingerprint and changes nothing
the second time.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from course.deliveries.suppressions import suppress
from course.lifecycle import SuppressionReason, stop
from course.links import InvalidLink, LinkSigner, Purpose
from course.models.deliveries import Delivery
from course.models.engagement import Event, EventKind
from course.models.feedback import Bounce, FeedbackKind, FeedbackNotice
from course.models.subscribers import Subscriber, SubscriberStatus, email_hash
from course.settings import Settings
from course.subscriptions import unsubscribe

log = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

__all__ = ["Feedback", "FeedbackKind", "Outcome", "Recorded", "SoftBouncePolicy", "record", "record_all"]


class Outcome(StrEnum):
    SUPPRESSED = "suppressed"  # a hard bounce, a complaint, or the soft bounce that reached the limit
    COUNTED = "counted"  # a soft bounce below the limit
    UNSUBSCRIBED = "unsubscribed"
    DUPLICATE = "duplicate"  # this very notice was recorded before
    UNKNOWN = "unknown"  # nobody we mail, and nothing to suppress (an unsubscribe without a valid token)
    UNPROVEN = "unproven"  # from anyone, returning no email we sent to that address: recorded, never acted on
    CAPPED = "capped"  # beyond the notices taken per report or per address: left out


# An email of ours has one recipient, so a genuine report names one address; a few allow for a report
# that names the original recipient and its forwarding address.
NOTICES_PER_REPORT = 5
# Unproven notices kept per address a day (proven ones are bounded by what we send it: one a day).
UNPROVEN_PER_ADDRESS_A_DAY = 10


@dataclass(frozen=True)
class Feedback:
    """One report about one address (or one subscriber, named by a signed token)."""

    kind: FeedbackKind
    source: str  # ses, postmark, webhook, mailbox
    address: str | None  # as the report gives it; compared in lower case
    detail: str = ""  # the status and diagnostic, or the provider's words
    message_id: str | None = None  # our Message-ID of the email it answers, when the report carries it
    notice_id: str | None = None  # the provider's or report's own id: the same notice twice counts once
    unsubscribe_token: str | None = None  # the signed token of the email's List-Unsubscribe
    # From an authenticated webhook. Mail to the bounce mailbox is anyone's to write: it suppresses an
    # address only when it returns an email we sent to it (its Message-ID, or its signed token).
    authenticated: bool = True

    def fingerprint(self) -> str:
        parts = [self.source, self.kind.value, (self.address or "").strip().lower(), self.unsubscribe_token or ""]
        # Without an id of its own, the notice is told apart by its words (a mailbox read twice still
        # finds the same report).
        parts.append(self.notice_id if self.notice_id else f"{self.message_id or ''}\n{self.detail}")
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SoftBouncePolicy:
    limit: int = 3
    window: timedelta = timedelta(days=7)

    @classmethod
    def of(cls, settings: Settings) -> SoftBouncePolicy:
        """SOFT_BOUNCE_LIMIT soft bounces within SOFT_BOUNCE_DAYS stop an address."""
        return cls(settings.soft_bounce_limit, timedelta(days=settings.soft_bounce_days))


@dataclass(frozen=True)
class Recorded:
    feedback: Feedback
    outcome: Outcome
    subscribers: tuple[int, ...] = field(default=())


def record(
    session: Session,
    feedback: Feedback,
    *,
    signer: LinkSigner,
    address_key: bytes,
    now: datetime,
    policy: SoftBouncePolicy = SoftBouncePolicy(),
) -> Recorded:
    """Apply one notice in the caller's transaction (the caller commits)."""
    feedback = _cleaned(feedback)
    address = (feedback.address or "").strip().lower() or None
    delivery = _delivery(session, feedback.message_id)
    if delivery is not None and address is not None and delivery.subscriber.email != address:
        delivery = None  # a report about someone else than the email it returns: it does not return ours
    by_token = _token_subscriber(session, signer, feedback.unsubscribe_token)
    returned = _returned(delivery, by_token, address)
    # Only a signed token names who asks to unsubscribe: an address in a From line is anyone's to write.
    if feedback.kind is FeedbackKind.UNSUBSCRIBE and (by_token is None or returned is None):
        log.info("feedback: an unsubscribe by mail without a valid token was ignored (%s)", feedback.source)
        return Recorded(feedback, Outcome.UNKNOWN)
    proven = feedback.authenticated or returned is not None
    if address is None and returned is not None:
        address = returned.email
    if address is None:
        log.info("feedback: a %s from %s names no address we know; ignored", feedback.kind, feedback.source)
        return Recorded(feedback, Outcome.UNKNOWN)

    hashed = email_hash(address, address_key)
    detail = _without_address(feedback.detail, address)
    if not proven:
        return _unproven(session, feedback, hashed, detail, now)
    subscribers = _subscribers(session, address, returned)
    subscriber = returned or (subscribers[0] if subscribers else None)
    answered = delivery if delivery is not None and returned is not None and delivery.subscriber_id == returned.id \
        else (delivery if feedback.authenticated else None)  # fmt: skip
    notice = FeedbackNotice(
        fingerprint=feedback.fingerprint(), source=feedback.source, kind=feedback.kind.value, email_hash=hashed,
        subscriber_id=subscriber.id if subscriber is not None else None,
        delivery_id=answered.id if answered is not None else None, proven=True,
        detail=detail[:2000] or None, created_at=now,
    )  # fmt: skip
    if not _stored(session, notice):
        return Recorded(feedback, Outcome.DUPLICATE)

    ids = tuple(s.id for s in subscribers)
    if feedback.kind is FeedbackKind.UNSUBSCRIBE:
        assert by_token is not None  # noqa: S101 - refused above
        unsubscribe(session, by_token.id, now=now)
        return Recorded(feedback, Outcome.UNSUBSCRIBED, (by_token.id,))

    if feedback.kind is FeedbackKind.SOFT_BOUNCE:
        session.flush()
        count = session.scalar(
            select(func.count()).where(
                FeedbackNotice.email_hash == hashed,
                FeedbackNotice.kind == FeedbackKind.SOFT_BOUNCE.value,
                FeedbackNotice.proven.is_(True),
                FeedbackNotice.created_at > now - policy.window,
            )
        )
        stops = (count or 0) >= policy.limit
        for reader in subscribers:  # the bounce that reaches the limit says so: the insights count who left
            soft = Bounce.SOFT_LIMIT if stops else Bounce.SOFT
            _event(session, EventKind.BOUNCE, soft.value, reader, answered, detail, now)
        if not stops:
            return Recorded(feedback, Outcome.COUNTED, ids)
        days = policy.window.total_seconds() / 86400
        detail = f"{count} soft bounces in {days:g} days; the last: {detail}"
        _stop_all(session, subscribers, SubscriberStatus.BOUNCED, now)
        suppress(session, address, address_key, SuppressionReason.BOUNCE, detail[:2000], now)
        return Recorded(feedback, Outcome.SUPPRESSED, ids)

    complaint = feedback.kind is FeedbackKind.COMPLAINT
    for reader in subscribers:
        kind, value = (EventKind.COMPLAINT, "complaint") if complaint else (EventKind.BOUNCE, Bounce.HARD.value)
        _event(session, kind, value, reader, answered, detail, now)
    _stop_all(session, subscribers, SubscriberStatus.COMPLAINED if complaint else SubscriberStatus.BOUNCED, now)
    reason = SuppressionReason.COMPLAINT if complaint else SuppressionReason.BOUNCE
    suppress(session, address, address_key, reason, detail[:2000] or None, now)
    return Recorded(feedback, Outcome.SUPPRESSED, ids)


def _returned(delivery: Delivery | None, by_token: Subscriber | None, address: str | None) -> Subscriber | None:
    """The subscriber whose email the notice returns (its Message-ID, its List-Unsubscribe token), when it
    is one subscriber and the notice's address, if it names one, is that subscriber's: else nobody."""
    named = {s.id: s for s in (by_token, delivery.subscriber if delivery is not None else None) if s is not None}
    if len(named) != 1:
        return None  # none, or two different people: the report proves nothing
    (subscriber,) = named.values()
    return subscriber if address is None or subscriber.email == address else None


def _unproven(session: Session, feedback: Feedback, hashed: str, detail: str, now: datetime) -> Recorded:
    """Record a notice that proves nothing (the bounce mailbox is anyone's to write to), and act on nothing."""
    kept = session.scalar(
        select(func.count()).where(
            FeedbackNotice.email_hash == hashed,
            FeedbackNotice.proven.is_(False),
            FeedbackNotice.created_at > now - timedelta(days=1),
        )
    )
    if (kept or 0) >= UNPROVEN_PER_ADDRESS_A_DAY:
        log.warning("feedback: more than %s unproven notices a day for one address from %s: left out",
                    UNPROVEN_PER_ADDRESS_A_DAY, feedback.source)  # fmt: skip
        return Recorded(feedback, Outcome.CAPPED)
    notice = FeedbackNotice(
        fingerprint=feedback.fingerprint(), source=feedback.source, kind=feedback.kind.value, email_hash=hashed,
        proven=False, detail=f"unproven: {detail}"[:2000], created_at=now,
    )  # fmt: skip
    if not _stored(session, notice):
        return Recorded(feedback, Outcome.DUPLICATE)
    log.warning("feedback: a %s from %s returns no email we sent to its address: recorded, nothing changed",
                feedback.kind.value, feedback.source)  # fmt: skip
    return Recorded(feedback, Outcome.UNPROVEN)


def _stored(session: Session, notice: FeedbackNotice) -> bool:
    """False when this very notice was recorded before (its fingerprint)."""
    try:
        with session.begin_nested():
            session.add(notice)
    except IntegrityError:
        return False
    return True


def record_all(
    session: Session,
    items: list[Feedback],
    *,
    signer: LinkSigner,
    address_key: bytes,
    now: datetime,
    policy: SoftBouncePolicy = SoftBouncePolicy(),
) -> list[Recorded]:
    """Apply the notices of one report: each address once, and at most ``NOTICES_PER_REPORT`` of them."""
    recorded: list[Recorded] = []
    seen: set[str] = set()
    for item in items:
        address = (item.address or "").strip().lower()
        if address in seen:
            recorded.append(Recorded(item, Outcome.DUPLICATE))
        elif len(seen) >= NOTICES_PER_REPORT:
            recorded.append(Recorded(item, Outcome.CAPPED))
        else:
            seen.add(address)
            recorded.append(record(session, item, signer=signer, address_key=address_key, now=now, policy=policy))
    if len(seen) >= NOTICES_PER_REPORT and len(recorded) > len(seen):
        log.warning("feedback: a report from %s names %s notices; the first %s addresses were taken",
                    items[0].source, len(items), NOTICES_PER_REPORT)  # fmt: skip
    return recorded


def _cleaned(feedback: Feedback) -> Feedback:
    """What a report says, fit to store: no NUL (PostgreSQL's text cannot hold one) in its words or
    ids; an address with a control character in it is no address (none of ours has one)."""
    address = feedback.address
    if address is not None and _CONTROL.search(address):
        address = None
    return replace(
        feedback, address=address, detail=feedback.detail.replace("\x00", ""),
        message_id=_no_nul(feedback.message_id), notice_id=_no_nul(feedback.notice_id),
        unsubscribe_token=_no_nul(feedback.unsubscribe_token),
    )  # fmt: skip


def _no_nul(value: str | None) -> str | None:
    return value.replace("\x00", "") if value is not None else None


def _delivery(session: Session, message_id: str | None) -> Delivery | None:
    if not message_id:
        return None
    wanted = message_id.strip()
    if not wanted.startswith("<"):
        wanted = f"<{wanted}>"
    return session.scalar(select(Delivery).where(Delivery.message_id == wanted[:255]).limit(1))


def _token_subscriber(session: Session, signer: LinkSigner, token: str | None) -> Subscriber | None:
    if not token:
        return None
    try:
        claim = signer.verify(Purpose.UNSUBSCRIBE, token)
    except InvalidLink:
        log.info("feedback: an unsubscribe token that is not ours was ignored")
        return None
    return session.get(Subscriber, claim.subscriber_id)


def _subscribers(session: Session, address: str, returned: Subscriber | None) -> list[Subscriber]:
    """Everyone a proven notice is about: the address is suppressed everywhere, so every course's reader of it."""
    found: dict[int, Subscriber] = {returned.id: returned} if returned is not None else {}
    for reader in session.scalars(select(Subscriber).where(Subscriber.email == address).order_by(Subscriber.id)):
        found.setdefault(reader.id, reader)
    return list(found.values())


def _stop_all(session: Session, subscribers: list[Subscriber], status: SubscriberStatus, now: datetime) -> None:
    for reader in subscribers:
        session.refresh(reader, with_for_update=True)  # a change under way to their row finishes first
        stop(session, reader, status, f"the address {status.value}", now)


def _event(
    session: Session,
    kind: EventKind,
    value: str,
    reader: Subscriber,
    delivery: Delivery | None,
    detail: str,
    now: datetime,
) -> None:
    answered = delivery if delivery is not None and delivery.subscriber_id == reader.id else None
    event = Event(subscriber_id=reader.id, delivery_id=answered.id if answered else None, kind=kind.value,
                  enrolment=answered.enrolment if answered else reader.enrolment,
                  step=answered.step if answered else reader.current_step, value=value,
                  detail=detail[:2000] or None, created_at=now)  # fmt: skip
    session.add(event)


def _without_address(detail: str, address: str) -> str:
    """The report's words without the address itself: the notice keeps only its hash."""
    if not detail:
        return ""
    lowered = detail.lower()
    if address not in lowered:
        return detail
    out, start = [], 0
    while (found := lowered.find(address, start)) >= 0:
        out.append(detail[start:found] + "(the address)")
        start = found + len(address)
    out.append(detail[start:])
    return "".join(out)
