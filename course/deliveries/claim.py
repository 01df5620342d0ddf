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

from course.curriculum import Course
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


def claim_next_step(
    session: Session, subscriber: Subscriber, course: Course, now: datetime, timing: Timing
) -> Delivery | None:
    """Create the delivery of the subscriber's next course email (the caller holds the row lock).

    Their place is the last email they got, by who it is, not by its number in the course: an email put in
    after that place comes in its turn, one taken out is skipped, one they had already and that was moved
    later is not sent again (see :func:`claim_due_ids` for the same rule for a round of subscribers)."""
    subscriber.next_send_at = None
    had: set[int] = set()
    if course.moved:  # an email moved later may have reached them before the move
        had = set(
            session.scalars(
                select(Delivery.step).where(
                    Delivery.subscriber_id == subscriber.id,
                    Delivery.enrolment == subscriber.enrolment,
                    Delivery.step.in_(course.moved),
                    Delivery.state != DeliveryState.SKIPPED.value,
                )
            )
        )
    step = course.next_step(subscriber.current_step, had)
    if step is None:
        complete(subscriber, now)
        return None
    existing = session.scalar(
        select(Delivery).where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.enrolment == subscriber.enrolment,
            Delivery.step == step.number,
        )
    )
    if existing is None:
        return _claimed(session, subscriber, step.number, step.email, now, timing)
    if existing.state != DeliveryState.SKIPPED.value:
        return None  # claimed or sent already: never a second delivery of one email
    # Skipped when they paused or unsubscribed before it went out: it goes now instead.
    move(existing, DeliveryState.CLAIMED)
    existing.due_at = now
    existing.lease_until = now + timing.lease
    existing.last_reply = None
    return existing


# One statement claims a round on PostgreSQL: it locks due subscribers nobody else holds (SKIP LOCKED),
# clears their next_send_at (completing those with nothing left to get), and creates each one's delivery
# of their next email, or hands a skipped one out again; an email already claimed or sent gets nothing (the
# unique (subscriber, enrolment, step) makes "never two" the database's rule, not ours).
#
# The next email: the course's emails are the arrays :numbers and :emails, in order (1-based); a reader
# whose last email was N (-1: none yet) goes on from index :starts[N + 2] (past the end: nothing left),
# which the course works out for emails taken out too (Course.place_after). An email that was ever moved
# later (:checks) may have reached them before: for it alone the claim looks at their deliveries, and
# passes over it when they had it.
_CLAIM = text("""
WITH due AS (
    SELECT id, enrolment, COALESCE(current_step, -1) AS place
    FROM subscribers
    WHERE status = 'active' AND next_send_at <= :now AND course_slug = :slug
    ORDER BY next_send_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), placed AS (
    SELECT id, enrolment, COALESCE((CAST(:starts AS int[]))[place + 2], :past) AS start
    FROM due
), next AS (
    SELECT id, enrolment,
           CASE WHEN start > :steps THEN NULL
                WHEN NOT (CAST(:checks AS boolean[]))[start] THEN start
                ELSE (SELECT i FROM generate_series(start, :steps) AS i
                      WHERE NOT (CAST(:checks AS boolean[]))[i] OR NOT EXISTS (
                          SELECT 1 FROM deliveries AS x
                          WHERE x.subscriber_id = placed.id AND x.enrolment = placed.enrolment
                            AND x.step = (CAST(:numbers AS int[]))[i] AND x.state <> 'skipped')
                      ORDER BY i LIMIT 1)
           END AS i
    FROM placed
), cleared AS (
    UPDATE subscribers AS s
    SET next_send_at = NULL, updated_at = :now,
        status = CASE WHEN next.i IS NULL THEN 'completed' ELSE s.status END,
        completed_at = CASE WHEN next.i IS NULL THEN :now ELSE s.completed_at END
    FROM next
    WHERE s.id = next.id
    RETURNING s.id
)
INSERT INTO deliveries AS d (subscriber_id, enrolment, step, email, template_version, state, attempts, due_at,
                             lease_until, created_at, updated_at)
SELECT next.id, next.enrolment, (CAST(:numbers AS int[]))[next.i], (CAST(:emails AS text[]))[next.i], :release,
       'claimed', 0, :now, :lease_until, :now, :now
FROM next JOIN cleared ON cleared.id = next.id
WHERE next.i IS NOT NULL
ON CONFLICT (subscriber_id, enrolment, step) DO UPDATE
    SET state = 'claimed', due_at = :now, lease_until = :lease_until, last_reply = NULL,
        template_version = :release, updated_at = :now
    WHERE d.state = 'skipped'
RETURNING d.id
""")


def sequence_parameters(course: Course) -> dict[str, object]:
    """The course's order as the claim reads it (see ``_CLAIM``)."""
    steps = course.steps
    known = [-1, *(step.number for step in steps), *course.retired]
    starts = [len(steps) + 1] * (max(known) + 2)
    for number in known:
        starts[number + 1] = course.place_after(None if number == -1 else number) + 1
    moved = set(course.moved)
    return {
        "numbers": [step.number for step in steps],
        "emails": [step.email for step in steps],
        "checks": [step.number in moved for step in steps],
        "starts": starts,
        "steps": len(steps),
        "past": len(steps) + 1,
    }


def claim_due_ids(
    session: Session, course: Course, now: datetime, limit: int, timing: Timing, release: str | None
) -> list[int]:
    """One round of the beat for one course, set-based: the ids of the deliveries it made due.

    The same rules as :func:`claim_next_step` for one subscriber, in one statement for a round of them;
    the deliveries carry ``release``, the templates they are sent with.
    """
    rows = session.execute(_CLAIM, {
        "now": now, "slug": course.slug, "limit": limit, "release": release, "lease_until": now + timing.lease,
        **sequence_parameters(course),
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
