"""Making deliveries: the service emails a person asks for, and the beat's claim of what is due.

Claiming due subscribers takes row locks with ``FOR UPDATE SKIP LOCKED`` and clears ``next_send_at``
in the same statement, so that a subscriber is claimed once per step (two beats at once claim apart), and
UNIQUE(subscriber, enrolment, step) stops a second delivery row even if that were to fail. A claimed
delivery carries a lease: one that nobody took by then (queued but lost) is handed out again
(:func:`release_abandoned`); nothing is ever lost.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from course.curriculum import Course, load_course
from course.deliveries.timing import Timing
from course.lifecycle import EmailKind, complete, move
from course.models.deliveries import Delivery, DeliveryState
from course.models.subscribers import SignupRequest, Subscriber
from course.senders import sender_gone

log = logging.getLogger(__name__)


def _claimed(session: Session, subscriber: Subscriber, step: int | None, email: str, now: datetime,
             timing: Timing) -> Delivery:  # fmt: skip
    """A new delivery, claimed and due now; its lease covers the time until a worker takes it."""
    delivery = Delivery(
        subscriber=subscriber,
        enrolment=subscriber.enrolment,
        step=step,
        email=email,
        state=DeliveryState.CLAIMED.value,
        due_at=now,
        lease_until=now + timing.lease,
        created_at=now,
    )
    session.add(delivery)
    return delivery


def queue_service_email(
    session: Session, subscriber: Subscriber, email: str, now: datetime, due: datetime, timing: Timing
) -> Delivery:
    """A confirmation or a preferences link. Due now, it is handed to a worker at once (the caller enqueues
    it); due later (confirmations are paced per mailbox), the beat hands it out when its time comes."""
    delivery = _claimed(session, subscriber, None, email, now, timing)
    if due > now:
        delivery.due_at = due
        delivery.lease_until = None
    return delivery


def queue_confirmation(
    session: Session, subscriber: Subscriber, request: SignupRequest, now: datetime, due: datetime, timing: Timing
) -> Delivery:
    delivery = queue_service_email(session, subscriber, EmailKind.CONFIRMATION, now, due, timing)
    delivery.signup_request_id = request.id
    return delivery


def claim_next_step(session: Session, subscriber: Subscriber, now: datetime, timing: Timing) -> Delivery | None:
    """Create the delivery of the subscriber's next course email (the caller holds the row lock)."""
    course = load_course(subscriber.course_slug)
    step_number = 0 if subscriber.current_step is None else subscriber.current_step + 1
    subscriber.next_send_at = None
    if step_number >= len(course.steps):
        complete(subscriber, now)
        return None
    existing = session.scalar(
        select(Delivery).where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.enrolment == subscriber.enrolment,
            Delivery.step == step_number,
        )
    )
    if existing is None:
        return _claimed(session, subscriber, step_number, course.step(step_number).email, now, timing)
    if existing.state != DeliveryState.SKIPPED.value:
        return None  # claimed or sent already: never a second delivery of one step
    # Skipped when they paused or unsubscribed before it went out: it goes now instead.
    move(existing, DeliveryState.CLAIMED)
    existing.due_at = now
    existing.lease_until = now + timing.lease
    existing.last_reply = None
    return existing


# One statement claims a round on PostgreSQL: it locks due subscribers nobody else holds (SKIP LOCKED),
# clears their next_send_at (completing those past the last step), and creates each one's delivery of
# its next step, or hands a skipped one out again; a step already claimed or sent gets nothing (the
# unique (subscriber, enrolment, step) makes "never two" the database's rule, not ours).
_CLAIM = text("""
WITH due AS (
    SELECT id, enrolment, COALESCE(current_step + 1, 0) AS step
    FROM subscribers
    WHERE status = 'active' AND next_send_at <= :now AND course_slug = :slug
    ORDER BY next_send_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), cleared AS (
    UPDATE subscribers AS s
    SET next_send_at = NULL, updated_at = :now,
        status = CASE WHEN due.step >= :steps THEN 'completed' ELSE s.status END,
        completed_at = CASE WHEN due.step >= :steps THEN :now ELSE s.completed_at END
    FROM due
    WHERE s.id = due.id
    RETURNING s.id
)
INSERT INTO deliveries AS d (subscriber_id, enrolment, step, email, template_version, state, attempts, due_at,
                             lease_until, created_at, updated_at)
SELECT due.id, due.enrolment, due.step, (CAST(:emails AS text[]))[due.step + 1], :release, 'claimed', 0, :now,
       :lease_until, :now, :now
FROM due JOIN cleared ON cleared.id = due.id
WHERE due.step < :steps
ON CONFLICT (subscriber_id, enrolment, step) DO UPDATE
    SET state = 'claimed', due_at = :now, lease_until = :lease_until, last_reply = NULL,
        template_version = :release, updated_at = :now
    WHERE d.state = 'skipped'
RETURNING d.id
""")


def claim_due_ids(
    session: Session, course: Course, now: datetime, limit: int, timing: Timing, release: str | None
) -> list[int]:
    """One round of the beat for one course, set-based: the ids of the deliveries it made due.

    The same rules as :func:`claim_next_step` for one subscriber, in one statement for a round of them;
    the deliveries carry ``release``, the templates they are sent with.
    """
    rows = session.execute(_CLAIM, {
        "now": now, "slug": course.slug, "limit": limit, "steps": len(course.steps), "release": release,
        "emails": [step.email for step in course.steps], "lease_until": now + timing.lease,
    })  # fmt: skip
    return [row[0] for row in rows]


def in_flight(session: Session, now: datetime) -> int:
    """Deliveries due and claimed, or being sent: the work the workers have not finished (a retry
    waiting for its time is not)."""
    waiting = and_(Delivery.state == DeliveryState.CLAIMED.value, Delivery.due_at <= now)
    sending = Delivery.state == DeliveryState.SENDING.value
    return int(session.scalar(select(func.count()).select_from(Delivery).where(or_(waiting, sending))) or 0)


def release_abandoned(session: Session, now: datetime, limit: int, timing: Timing) -> list[int]:
    """Deliveries whose lease ran out (a lost task, a worker that died or stalled while sending), and
    those whose worker holds its lock no more (it died: course/senders.py). Hand them out again."""
    sending = Delivery.state == DeliveryState.SENDING.value
    abandoned = or_(Delivery.lease_until < now, sender_gone())
    stale = session.scalars(
        select(Delivery)
        .where(
            or_(
                and_(
                    Delivery.state == DeliveryState.CLAIMED.value,
                    Delivery.due_at <= now,
                    or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
                ),
                and_(sending, abandoned),
            )
        )
        .order_by(Delivery.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for delivery in stale:
        if delivery.state == DeliveryState.SENDING.value:
            # It may or may not have reached the server: sending again risks this one duplicate.
            log.warning("delivery %s was left in sending by a worker gone or stalled; sending it again", delivery.id)
            move(delivery, DeliveryState.CLAIMED)
            delivery.sender_key = None
        delivery.lease_until = now + timing.lease
    session.flush()
    return [delivery.id for delivery in stale]
