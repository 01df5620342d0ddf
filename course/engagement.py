"""What subscribers do with the course: clicks, exercises done, checklist answers; and their data.

Every click is an event, flagged ``automated`` when a mail scanner (not a person) made it, so that
the funnel counts people. A link opened again and again counts once a minute, and at most
``CLICKS_KEPT_PER_LINK`` times, so that nobody can fill the table (or the figures) by repeating it.
A subscriber who has unsubscribed can still open a link and read it, but nothing is recorded for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from course.curriculum import Checklist, Course, ScoreBand
from course.deliveries import suppress
from course.models import (
    Answer,
    Delivery,
    DeliveryState,
    Event,
    EventKind,
    SignupRequest,
    Subscriber,
    SubscriberStatus,
)

# Someone who has left (or never confirmed) may read a page, but we keep no record of it.
RECORDING_STATUSES = {SubscriberStatus.ACTIVE.value, SubscriberStatus.PAUSED.value, SubscriberStatus.COMPLETED.value}
# The same link (subscriber, time through the course, kind, step, value), opened again within this
# long of its last recorded click, is the same click.
REPEAT_CLICK_WINDOW = timedelta(seconds=60)
# And however spread out, one link keeps at most this many clicks (people and machines apart): a
# person opens a link a few times, a script holding it must not grow the table without end.
CLICKS_KEPT_PER_LINK = 50


def records_for(subscriber: Subscriber) -> bool:
    return subscriber.status in RECORDING_STATUSES


def seconds_since_delivery(session: Session, subscriber: Subscriber, step: int | None, now: datetime) -> float | None:
    if step is None:
        return None
    sent_at = session.scalar(
        select(Delivery.sent_at).where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.enrolment == subscriber.enrolment,
            Delivery.step == step,
            Delivery.state == DeliveryState.SENT.value,
        )
    )
    return None if sent_at is None else (now - sent_at).total_seconds()


def record_click(
    session: Session,
    subscriber: Subscriber,
    *,
    kind: EventKind,
    step: int | None,
    value: str | None,
    user_agent: str | None,
    automated: bool,
    elapsed: float | None,
    now: datetime,
) -> Event | None:
    """A new click event, or None when nothing is recorded: someone who left, or a repeat (see above)."""
    if not records_for(subscriber):
        return None
    same_link = (
        Event.subscriber_id == subscriber.id,
        Event.enrolment == subscriber.enrolment,
        Event.kind == kind.value,
        Event.step.is_(None) if step is None else Event.step == step,
        Event.value.is_(None) if value is None else Event.value == value,
        # A scanner's visit a moment before must not swallow the person's own click.
        Event.automated == automated,
    )
    last, kept = session.execute(select(func.max(Event.created_at), func.count()).where(*same_link)).one()
    if (last is not None and last > now - REPEAT_CLICK_WINDOW) or kept >= CLICKS_KEPT_PER_LINK:
        return None
    event = Event(
        subscriber_id=subscriber.id,
        enrolment=subscriber.enrolment,
        kind=kind.value,
        step=step,
        value=value,
        automated=automated,
        user_agent=(user_agent or "")[:500] or None,
        seconds_since_delivery=elapsed,
        created_at=now,
    )
    session.add(event)
    return event


def exercise_done(session: Session, subscriber: Subscriber, step: int) -> bool:
    return (
        session.scalar(
            select(Event.id).where(
                Event.subscriber_id == subscriber.id,
                Event.enrolment == subscriber.enrolment,
                Event.kind == EventKind.EXERCISE_DONE.value,
                Event.step == step,
            )
        )
        is not None
    )


def record_exercise_done(session: Session, subscriber: Subscriber, step: int, now: datetime) -> bool:
    """Once per day and time through the course; True when this call recorded it."""
    if not records_for(subscriber) or exercise_done(session, subscriber, step):
        return False
    session.add(
        Event(
            subscriber_id=subscriber.id,
            enrolment=subscriber.enrolment,
            kind=EventKind.EXERCISE_DONE.value,
            step=step,
            created_at=now,
        )
    )
    return True


# --- Checklist answers ----------------------------------------------------------------------------


def score_items(checklist: Checklist, ticked: list[int]) -> tuple[int, ScoreBand]:
    """The score and band for the ticked items (1-based numbers, as the page shows them)."""
    valid = sorted({number for number in ticked if 1 <= number <= len(checklist.items)})
    return len(valid), checklist.band_for_score(len(valid))


def save_answer(
    session: Session,
    subscriber: Subscriber,
    *,
    step: int,
    checklist: Checklist,
    band: ScoreBand,
    ticked: list[int] | None,
    now: datetime,
) -> Answer | None:
    """A new row each time: a changed answer keeps its history."""
    if not records_for(subscriber):
        return None
    answer = Answer(
        subscriber_id=subscriber.id,
        enrolment=subscriber.enrolment,
        step=step,
        checklist=checklist.key,
        band=band.key,
        score=None if ticked is None else len(ticked),
        items=None if ticked is None else ",".join(str(number) for number in sorted(set(ticked))),
        created_at=now,
    )
    session.add(answer)
    session.add(
        Event(subscriber_id=subscriber.id, enrolment=subscriber.enrolment, kind=EventKind.ANSWER.value, step=step,
              value=f"{checklist.key}:{band.key}", created_at=now)
    )  # fmt: skip
    return answer


def current_answer(session: Session, subscriber: Subscriber, step: int) -> Answer | None:
    return session.scalar(
        select(Answer)
        .where(Answer.subscriber_id == subscriber.id, Answer.enrolment == subscriber.enrolment, Answer.step == step)
        .order_by(Answer.created_at.desc(), Answer.id.desc())
        .limit(1)
    )


def answers_so_far(session: Session, delivery_ids: list[int]) -> dict[int, dict[str, str]]:
    """For the subscribers of these deliveries, their latest band for each checklist in their current
    enrolment (what their next email may use): one query for a whole batch."""
    rows = session.execute(
        select(Answer.subscriber_id, Answer.checklist, Answer.band)
        .join(Subscriber, and_(Subscriber.id == Answer.subscriber_id, Subscriber.enrolment == Answer.enrolment))
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Answer.created_at, Answer.id)
    )
    found: dict[int, dict[str, str]] = {}
    for subscriber_id, checklist, band in rows:
        found.setdefault(subscriber_id, {})[checklist] = band  # the latest of each wins
    return found


@dataclass(frozen=True)
class Comparison:
    checklist: Checklist
    baseline: ScoreBand | None
    retake: ScoreBand | None

    @property
    def direction(self) -> str | None:
        """From the baseline to the retake: fewer signs ("closer"), "same" or more ("further").

        None until both answers are in.
        """
        if self.baseline is None or self.retake is None:
            return None
        order = [band.key for band in self.checklist.bands]
        before, after = order.index(self.baseline.key), order.index(self.retake.key)
        return "same" if before == after else ("closer" if after < before else "further")


def baseline_and_retake(session: Session, subscriber: Subscriber, course: Course) -> Comparison | None:
    """The welcome's checklist against the completion's, when both emails carry the same checklist."""
    first, last = course.steps[0], course.steps[-1]
    if first.checklist is None or first.checklist != last.checklist:
        return None
    checklist = course.checklists[first.checklist]
    baseline, retake = (
        current_answer(session, subscriber, first.number),
        current_answer(session, subscriber, last.number),
    )
    return Comparison(
        checklist,
        checklist.band(baseline.band) if baseline else None,
        checklist.band(retake.band) if retake else None,
    )


# --- The subscriber's own data --------------------------------------------------------------------


def export(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything we hold about one subscriber, as JSON-ready data (the "download my data" button)."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    deliveries = session.scalars(
        select(Delivery).where(Delivery.subscriber_id == subscriber.id).order_by(Delivery.id)
    ).all()
    answers = session.scalars(select(Answer).where(Answer.subscriber_id == subscriber.id).order_by(Answer.id)).all()
    events = session.scalars(select(Event).where(Event.subscriber_id == subscriber.id).order_by(Event.id)).all()
    requests = session.scalars(
        select(SignupRequest).where(SignupRequest.subscriber_id == subscriber.id).order_by(SignupRequest.id)
    ).all()
    return {
        "profile": {
            "email": subscriber.email,
            "first_name": subscriber.first_name,
            "course": subscriber.course_slug,
            "status": subscriber.status,
            "timezone": subscriber.timezone,
            "send_time": subscriber.send_time.strftime("%H:%M"),
            "times_through_the_course": subscriber.enrolment,
            "last_step_sent": subscriber.current_step,
            "signed_up_at": when(subscriber.created_at),
            "confirmed_at": when(subscriber.confirmed_at),
            "unsubscribed_at": when(subscriber.unsubscribed_at),
            "completed_at": when(subscriber.completed_at),
        },
        "consents": [
            {
                "at": when(subscriber.consent_at),
                "ip": subscriber.consent_ip,
                "user_agent": subscriber.consent_user_agent,
                "form": subscriber.consent_form,
            }
        ],
        "sign_up_requests": [
            {
                "at": when(r.created_at),
                "first_name": r.first_name,
                "timezone": r.timezone,
                "send_time": r.send_time.strftime("%H:%M"),
                "ip": r.consent_ip,
                "user_agent": r.consent_user_agent,
                "form": r.consent_form,
                "confirmed_at": when(r.confirmed_at),
            }
            for r in requests
        ],
        "deliveries": [
            {
                "email": d.email,
                "step": d.step,
                "enrolment": d.enrolment,
                "state": d.state,
                "sent_at": when(d.sent_at),
                "message_id": d.message_id,
            }
            for d in deliveries
        ],
        "answers": [
            {
                "step": a.step,
                "enrolment": a.enrolment,
                "checklist": a.checklist,
                "band": a.band,
                "score": a.score,
                "items": a.items,
                "at": when(a.created_at),
            }
            for a in answers
        ],
        "clicks": [
            {
                "kind": e.kind,
                "step": e.step,
                "value": e.value,
                "at": when(e.created_at),
                "automated": e.automated,
                "user_agent": e.user_agent,
            }
            for e in events
        ],
    }


def export_json(session: Session, subscriber: Subscriber) -> str:
    return json.dumps(export(session, subscriber), indent=2, ensure_ascii=False)


def erase(session: Session, subscriber: Subscriber, now: datetime, address_key: bytes) -> None:
    """Delete every personal record; keep only a keyed hash of the address on the suppression list, so
    that nothing is mailed to it by accident. Signing up again and confirming lifts it."""
    suppress(session, subscriber.email, address_key, "erased", None, now)
    session.execute(delete(Answer).where(Answer.subscriber_id == subscriber.id))
    session.execute(delete(SignupRequest).where(SignupRequest.subscriber_id == subscriber.id))
    session.execute(delete(Event).where(Event.subscriber_id == subscriber.id))
    session.execute(delete(Delivery).where(Delivery.subscriber_id == subscriber.id))
    session.delete(subscriber)
