"""A subscriber's life with the course, each rule of it defined once: the kinds of email, why an address
is on the suppression list, which status of a subscriber may follow which, and which state of a delivery
may follow which (the statuses and states themselves and their named sets are the models':
course/models/).

Every module that names an email kind or a suppression reason takes it from here, so that a new kind
(a course's own email, say) or a new reason is added in one place and every rule that reads it sees it;
and no module assigns a subscriber's status but through :func:`become`, nor a delivery's state but through
:func:`move`.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from course.models.deliveries import Delivery, DeliveryState
from course.models.subscribers import Subscriber, SubscriberStatus

_DAY_EMAIL = re.compile(r"^day-(\d+)$")


class EmailKind(StrEnum):
    """The kinds of email; each kind gets the same variables (``step.kind`` in a template)."""

    CONFIRMATION = "confirmation"  # double opt-in: before the course, to confirm the address
    WELCOME = "welcome"  # the course's first step, right after confirming
    DAY = "day"  # a course day: its emails are named day-01, day-02, ...
    COMPLETION = "completion"  # the course's last step
    PREFERENCES_LINK = "preferences-link"  # asked for: a fresh link to one's preferences and data

    @property
    def asked_for(self) -> bool:
        """Sent because the person asked just now (signing up, asking for their link), outside the
        course's steps: it goes to whoever asked, whatever their place in the course."""
        return self in (EmailKind.CONFIRMATION, EmailKind.PREFERENCES_LINK)


# Emails a person asks for, outside the course's steps.
SERVICE_EMAILS = tuple(kind.value for kind in EmailKind if kind.asked_for)


def is_course_email(email: str) -> bool:
    """One of the course's emails (a day, the welcome, the completion, a course's own), not a service email:
    also when the studio sends it again outside its step (a delivery of no step)."""
    return email not in SERVICE_EMAILS


def day_email(number: int) -> str:
    """The email of course day ``number``: ``day-07``."""
    return f"day-{number:02d}"


def is_day_email(name: str) -> bool:
    """``day-07``: a course day's email (or its folder of own files)."""
    return _DAY_EMAIL.fullmatch(name) is not None


def day_number(name: str) -> int | None:
    """7 for ``day-07``; None for an email that is not a day's."""
    found = _DAY_EMAIL.fullmatch(name)
    return int(found.group(1)) if found else None


def kind_of(email: str) -> EmailKind:
    """``day-07`` is a day; every other email is its own kind (ValueError for a name that is none)."""
    return EmailKind.DAY if is_day_email(email) else EmailKind(email)


class SuppressionReason(StrEnum):
    """Why an address is on the suppression list (``Suppression.reason``)."""

    ERASED = "erased"  # the person erased their data: no mail until they sign up again and confirm
    BOUNCE = "bounce"  # the address does not take mail: for good
    COMPLAINT = "complaint"  # the person marked an email as spam: for good

    @property
    def permanent(self) -> bool:
        """For good: even an email the person asks for does not go (only an erasure is lifted, by them)."""
        return self is not SuppressionReason.ERASED

    @property
    def weight(self) -> int:
        """A later, weightier reason replaces the one on file: a bounce after an erasure is for good; a
        complaint after a bounce is what the person said."""
        return list(SuppressionReason).index(self)

    @classmethod
    def is_permanent(cls, reason: str | None) -> bool:
        return reason is not None and cls(reason).permanent


# --- A subscriber's status ----------------------------------------------------------------------------
#
# Every change of a subscriber's status goes through :func:`become` (in course/subscriptions.py,
# course/deliveries/, course/feedback.py). The send path's statement for many rows (the claim's
# ``_ADVANCE`` in course/deliveries/claim.py) changes one status only, as :data:`MOVES` allows: an active
# subscriber given the last step, or past it, is completed. A move the table does not hold is a bug, raised, never a
# status quietly overwritten.

_S = SubscriberStatus
_STOPPED = frozenset({_S.UNSUBSCRIBED, _S.BOUNCED, _S.COMPLAINED})  # anyone may leave or be stopped
MOVES: dict[SubscriberStatus, frozenset[SubscriberStatus]] = {
    _S.PENDING: frozenset({_S.ACTIVE}) | _STOPPED,  # confirmed
    _S.ACTIVE: frozenset({_S.ACTIVE, _S.PAUSED, _S.COMPLETED}) | _STOPPED,  # ACTIVE again: a restart
    _S.PAUSED: frozenset({_S.ACTIVE, _S.COMPLETED}) | _STOPPED,  # resumed (past the last step: completed)
    _S.COMPLETED: frozenset({_S.ACTIVE}) | _STOPPED,  # started again
    _S.UNSUBSCRIBED: frozenset({_S.ACTIVE, _S.BOUNCED, _S.COMPLAINED}),  # confirmed again
    _S.BOUNCED: frozenset({_S.BOUNCED, _S.UNSUBSCRIBED, _S.COMPLAINED}),
    _S.COMPLAINED: frozenset({_S.UNSUBSCRIBED}),  # a complaint is the last word on mail, not on leaving
}


class LifecycleError(RuntimeError):
    """A status change the lifecycle does not allow: a bug in the caller."""


def become(subscriber: Subscriber, status: SubscriberStatus) -> None:
    """Move ``subscriber`` to ``status``, as :data:`MOVES` allows (LifecycleError otherwise)."""
    current = SubscriberStatus(subscriber.status)
    if status not in MOVES[current]:
        raise LifecycleError(f"subscriber {subscriber.id}: {current.value} cannot become {status.value}")
    subscriber.status = status.value


def complete(subscriber: Subscriber, now: datetime) -> None:
    """The course is over for this subscriber: nothing more is due."""
    become(subscriber, SubscriberStatus.COMPLETED)
    subscriber.completed_at = now
    subscriber.next_send_at = None


# --- A delivery's state -------------------------------------------------------------------------------
#
# A delivery with a row of its own waits claimed (made due, or put off), then a worker takes its batch
# (sending) and it ends sent, failed or skipped; or, before it reaches a mail server, it goes back to
# claimed (a retry later, a sending pause, a worker gone) or is skipped (its reader paused, left or
# confirmed already). A course step the beat claimed has no row while it waits in its batch: the worker
# writes it as it ends (sent; or sending, and on to failed, claimed or skipped, through :func:`move`). A
# skipped step is claimed again when its reader comes back. Sent and failed are final: a step is never
# sent twice. The statements that move many rows at once say in their WHERE which state they move from,
# each a move this table holds: taking a batch (claimed -> sending), recording a chunk sent (skipped ->
# sent for a step skipped before, both course/deliveries/sending.py), handing a dead worker's batch out
# again (sending -> claimed, course/deliveries/claim.py) and skipping what waits (claimed -> skipped,
# :data:`SKIPPABLE`).

_D = DeliveryState
DELIVERY_MOVES: dict[DeliveryState, frozenset[DeliveryState]] = {
    _D.CLAIMED: frozenset({_D.SENDING, _D.SKIPPED, _D.CLAIMED}),  # CLAIMED again: handed out once more
    _D.SENDING: frozenset({_D.SENT, _D.FAILED, _D.SKIPPED, _D.CLAIMED}),  # CLAIMED: back to wait its turn
    _D.SKIPPED: frozenset({_D.CLAIMED, _D.SENDING, _D.SENT}),  # its reader came back: the step goes after all
    _D.SENT: frozenset(),
    _D.FAILED: frozenset(),
}
# What may still be skipped without risk of a duplicate: claimed, not yet taken by a worker.
SKIPPABLE = _D.CLAIMED


def move(delivery: Delivery, state: DeliveryState) -> None:
    """Move ``delivery`` to ``state``, as :data:`DELIVERY_MOVES` allows (LifecycleError otherwise)."""
    current = DeliveryState(delivery.state)
    if state not in DELIVERY_MOVES[current]:
        raise LifecycleError(f"delivery {delivery.id}: {current.value} cannot become {state.value}")
    delivery.state = state.value


class Skipped(NamedTuple):
    """A course step :func:`skip_waiting` skipped: which, in which time through the course, of which release."""

    step: int
    enrolment: int
    template_version: str | None


def skip_waiting(session: Session, reason: str, now: datetime, *where: ColumnElement[bool]) -> list[Skipped]:
    """Skip the deliveries ``where`` selects that wait to be sent: :data:`SKIPPABLE`, not yet taken by a
    worker (what a worker has taken may be at the mail server already; the worker reads its reader's
    status just before). A skipped course step is claimed again when its reader comes back. One statement
    for them all: the move claimed -> skipped. The course steps skipped."""
    return [
        Skipped(step, enrolment, version) for step, enrolment, version in session.execute(
            update(Delivery)
            .where(Delivery.state == SKIPPABLE.value, *where)
            .values(state=DeliveryState.SKIPPED.value, last_reply=reason, updated_at=now)
            .returning(Delivery.step, Delivery.enrolment, Delivery.template_version)
            .execution_options(synchronize_session=False)
        ) if step is not None
    ]  # fmt: skip


def stop(session: Session, subscriber: Subscriber, status: SubscriberStatus, reason: str, now: datetime) -> None:
    """Nothing more goes to ``subscriber``: their address bounced or they complained (``status``). What
    waits for them is skipped, no next email is due, and their status says why; a complaint stays the
    last word (a bounce after it does not replace it)."""
    skip_waiting(session, reason, now, Delivery.subscriber_id == subscriber.id)
    if subscriber.status != SubscriberStatus.COMPLAINED.value:
        become(subscriber, status)
    subscriber.next_send_at = None
