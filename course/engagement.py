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

from sqlalchemy import and_, delete, func, insert, literal, select, text
from sqlalchemy.orm import Session

from course.curriculum import Checklist, Course, ScoreBand
from course.deliveries.suppressions import suppress
from course.lifecycle import SuppressionReason
from course.models import (
    ENROLLED,
    Answer,
    Delivery,
    Event,
    EventKind,
    SignupRequest,
    Subscriber,
)

# Someone who has left (or never confirmed) may read a page, but we keep no record of it.
RECORDING_STATUSES = ENROLLED
# The same link (subscriber, time through the course, kind, step, value), opened again within this
# long of its last recorded click, is the same click.
REPEAT_CLICK_WINDOW = timedelta(seconds=60)
# And however spread out, one link keeps at most this many clicks (people and machines apart): a
# person opens a link a few times, a script holding it must not grow the table without end.
CLICKS_KEPT_PER_LINK = 50


def records_for(subscriber: Subscriber) -> bool:
    return subscriber.status in RECORDING_STATUSES


@dataclass(frozen=True)
class LinkReader:
    """Whose link was opened, which time through the course it belongs to, and whether its email is out."""

    subscriber: Subscriber
    enrolment: int
    delivered: bool  # the link's email has a delivery in that time through (a course step's link)
    sent_at: datetime | None  # when the mail server accepted it; None while it is still being handed over

    @property
    def still_sending(self) -> bool:
        """The email is not recorded as sent yet: whoever opens its link now is a machine on the way."""
        return self.delivered and self.sent_at is None


def placed_enrolment(session: Session, subscriber: Subscriber, step: int | None, enrolment: int | None) -> int:
    """The time through the course a link belongs to: the one it names; a link made before links named
    one counts in the latest time through that was sent its email (else the current one)."""
    if enrolment is not None:
        return enrolment
    if step is None:
        return subscriber.enrolment
    latest = session.scalar(
        select(func.max(Delivery.enrolment)).where(
            Delivery.subscriber_id == subscriber.id, Delivery.step == step, Delivery.sent_at.is_not(None)
        )
    )
    return int(latest) if latest is not None else subscriber.enrolment


def link_reader(session: Session, subscriber_id: int, step: int | None, enrolment: int | None) -> LinkReader | None:
    """For a click: the subscriber a link belongs to (None: gone), and its email's delivery."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    placed = placed_enrolment(session, subscriber, step, enrolment)
    if step is None:
        return LinkReader(subscriber, placed, False, None)
    delivery = session.execute(
        select(Delivery.id, Delivery.sent_at).where(
            Delivery.subscriber_id == subscriber.id, Delivery.enrolment == placed, Delivery.step == step
        )
    ).first()
    return LinkReader(subscriber, placed, delivery is not None, delivery[1] if delivery is not None else None)


def record_click(
    session: Session,
    subscriber: Subscriber,
    *,
    enrolment: int,
    kind: EventKind,
    step: int | None,
    value: str | None,
    user_agent: str | None,
    automated: bool,
    elapsed: float | None,
    now: datetime,
) -> bool:
    """Record a click; False when nothing is recorded: someone who left, or a repeat (see above).

    One statement: the event is inserted only if the same link has no click within the window and
    fewer than it may keep."""
    if not records_for(subscriber):
        return False
    same_link = and_(
        Event.subscriber_id == subscriber.id,
        Event.enrolment == enrolment,
        Event.kind == kind.value,
        Event.step.is_(None) if step is None else Event.step == step,
        Event.value.is_(None) if value is None else Event.value == value,
        # A scanner's visit a moment before must not swallow the person's own click.
        Event.automated == automated,
    )
    recent = select(Event.id).where(same_link, Event.created_at > now - REPEAT_CLICK_WINDOW).exists()
    kept = select(func.count()).select_from(Event).where(same_link).scalar_subquery()
    values = {
        "subscriber_id": subscriber.id, "enrolment": enrolment, "kind": kind.value, "step": step,
        "value": value, "automated": automated, "user_agent": (user_agent or "")[:500] or None,
        "seconds_since_delivery": elapsed, "created_at": now,
    }  # fmt: skip
    row = select(*(literal(value, Event.__table__.c[name].type).label(name) for name, value in values.items()))
    inserted = session.execute(insert(Event).from_select(list(values), row.where(~recent, kept < CLICKS_KEPT_PER_LINK)))
    return bool(inserted.rowcount)  # type: ignore[attr-defined]


# A click on a link that only redirects (consultation, resource), recorded in one statement on
# PostgreSQL: the subscriber, the time through the course the link belongs to (:func:`placed_enrolment`)
# and its email's delivery are looked up, whether it was a machine is decided (:func:`LinkReader` and
# web/scanners.py: a request that says so, an email still being handed over, or one delivered seconds
# ago), and the event is inserted under the same rules as :func:`record_click` (someone who left is not
# recorded; a repeat within the window, or beyond what a link keeps, is not).
# It returns whether the subscriber exists and whether a click was recorded. The web app runs it
# without a thread or an ORM session, for the bursts mail scanners make.
_CLICK = """
WITH p AS (
    SELECT CAST(:subscriber_id AS bigint) AS subscriber_id, CAST(:step AS integer) AS step,
           CAST(:kind AS varchar) AS kind, CAST(:value AS varchar) AS value,
           CAST(:user_agent AS varchar) AS user_agent, CAST(:agent_automated AS boolean) AS agent_automated,
           CAST(:now AS timestamptz) AS now, CAST(:repeat_after AS timestamptz) AS repeat_after,
           make_interval(secs => CAST(:human_delay AS double precision)) AS human_delay,
           CAST(:kept AS integer) AS kept, CAST(:recording AS text[]) AS recording,
           CAST(:enrolment AS integer) AS enrolment
), placed AS (
    SELECT s.id, s.status,
           COALESCE(p.enrolment,
                    (SELECT max(x.enrolment) FROM deliveries AS x
                     WHERE x.subscriber_id = s.id AND x.step = p.step AND x.sent_at IS NOT NULL),
                    s.enrolment) AS enrolment
    FROM p
    JOIN subscribers AS s ON s.id = p.subscriber_id
), reader AS (
    SELECT s.id, s.enrolment, s.status, d.id AS delivery_id, d.sent_at
    FROM placed AS s
    JOIN p ON true
    LEFT JOIN deliveries AS d ON d.subscriber_id = s.id AND d.enrolment = s.enrolment AND d.step = p.step
), click AS (
    SELECT r.id, r.enrolment, r.sent_at,
           p.agent_automated OR (r.delivery_id IS NOT NULL AND r.sent_at IS NULL)
               OR (r.sent_at IS NOT NULL AND p.now - r.sent_at < p.human_delay) AS automated
    FROM reader AS r, p
    WHERE r.status = ANY(p.recording)
), same_link AS (
    SELECT e.created_at
    FROM events AS e, click AS c, p
    WHERE e.subscriber_id = c.id AND e.enrolment = c.enrolment AND e.kind = p.kind AND e.step = p.step
      AND e.value IS NOT DISTINCT FROM p.value AND e.automated = c.automated
), inserted AS (
    INSERT INTO events (subscriber_id, enrolment, kind, step, value, automated, user_agent, seconds_since_delivery,
                        created_at)
    SELECT c.id, c.enrolment, p.kind, p.step, p.value, c.automated, p.user_agent,
           EXTRACT(EPOCH FROM p.now - c.sent_at), p.now
    FROM click AS c, p
    WHERE NOT EXISTS (SELECT 1 FROM same_link WHERE created_at > p.repeat_after)
      AND (SELECT count(*) FROM same_link) < p.kept
    RETURNING 1
)
"""
CLICK_AT_ONCE = text(
    _CLICK  # noqa: S608 - two constants joined; every value is a bound parameter
    + "SELECT (SELECT count(*) FROM reader) AS known, (SELECT count(*) FROM inserted) AS recorded"
)
# The exercise page's click, with what the page shows in the same statement: whether the subscriber
# exists, whether their clicks are recorded (:func:`records_for`), whether they marked this day's
# exercise done (:func:`exercise_done`), and the course's release (its published wording).
EXERCISE_CLICK_AT_ONCE = text(
    _CLICK  # noqa: S608 - two constants joined; every value is a bound parameter
    + """
SELECT (SELECT count(*) FROM reader) AS known, (SELECT count(*) FROM click) AS recording,
       EXISTS (SELECT 1 FROM events AS e, reader AS r
               WHERE e.subscriber_id = r.id AND e.enrolment = r.enrolment AND e.kind = CAST(:done_kind AS varchar)
                 AND e.step = CAST(:day AS integer)) AS done,
       (SELECT coalesce(max(id), 0) FROM template_publications WHERE course_slug = :course_slug) AS release,
       (SELECT count(*) FROM inserted) AS recorded
"""
)


def click_at_once_parameters(
    *, subscriber_id: int, step: int, enrolment: int | None, kind: EventKind, value: str | None,
    user_agent: str | None, agent_automated: bool, human_delay: float, now: datetime,
) -> dict[str, object]:  # fmt: skip
    """The parameters of :data:`CLICK_AT_ONCE`. ``agent_automated``: the request alone says it is a
    machine (a HEAD, a scanner's agent); the delivery is judged by the statement. ``enrolment``: the
    time through the course the link names (None: an older link, placed by the statement)."""
    return {
        "subscriber_id": subscriber_id, "step": step, "enrolment": enrolment, "kind": kind.value, "value": value,
        "user_agent": (user_agent or "")[:500] or None, "agent_automated": agent_automated,
        "human_delay": human_delay, "now": now, "repeat_after": now - REPEAT_CLICK_WINDOW,
        "kept": CLICKS_KEPT_PER_LINK, "recording": sorted(RECORDING_STATUSES),
    }  # fmt: skip


def exercise_click_parameters(*, day: int, course_slug: str, **click: Any) -> dict[str, object]:
    """The parameters of :data:`EXERCISE_CLICK_AT_ONCE`: those of the click, and the day and course."""
    return {**click_at_once_parameters(**click), "day": day, "done_kind": EventKind.EXERCISE_DONE.value,
            "course_slug": course_slug}  # fmt: skip


def exercise_done(session: Session, subscriber: Subscriber, step: int, enrolment: int) -> bool:
    return (
        session.scalar(
            select(Event.id).where(
                Event.subscriber_id == subscriber.id,
                Event.enrolment == enrolment,
                Event.kind == EventKind.EXERCISE_DONE.value,
                Event.step == step,
            )
        )
        is not None
    )


def record_exercise_done(session: Session, subscriber: Subscriber, step: int, enrolment: int, now: datetime) -> bool:
    """Once per day and time through the course (the one the link was sent in); True when this call
    recorded it."""
    if not records_for(subscriber) or exercise_done(session, subscriber, step, enrolment):
        return False
    session.add(
        Event(
            subscriber_id=subscriber.id,
            enrolment=enrolment,
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
    enrolment: int,
    checklist: Checklist,
    band: ScoreBand,
    ticked: list[int] | None,
    now: datetime,
) -> Answer | None:
    """A new row each time: a changed answer keeps its history. ``enrolment``: the time through the
    course the answer's email was sent in."""
    if not records_for(subscriber):
        return None
    answer = Answer(
        subscriber_id=subscriber.id,
        enrolment=enrolment,
        step=step,
        checklist=checklist.key,
        band=band.key,
        score=None if ticked is None else len(ticked),
        items=None if ticked is None else ",".join(str(number) for number in sorted(set(ticked))),
        created_at=now,
    )
    session.add(answer)
    session.add(
        Event(subscriber_id=subscriber.id, enrolment=enrolment, kind=EventKind.ANSWER.value, step=step,
              value=f"{checklist.key}:{band.key}", created_at=now)
    )  # fmt: skip
    return answer


def current_answer(session: Session, subscriber: Subscriber, step: int, enrolment: int) -> Answer | None:
    return session.scalar(
        select(Answer)
        .where(Answer.subscriber_id == subscriber.id, Answer.enrolment == enrolment, Answer.step == step)
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


def baseline_and_retake(session: Session, subscriber: Subscriber, course: Course, enrolment: int) -> Comparison | None:
    """The welcome's checklist against the completion's (of one time through the course), when both
    emails carry the same checklist."""
    first, last = course.steps[0], course.steps[-1]
    if first.checklist is None or first.checklist != last.checklist:
        return None
    checklist = course.checklists[first.checklist]
    baseline, retake = (
        current_answer(session, subscriber, first.number, enrolment),
        current_answer(session, subscriber, last.number, enrolment),
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
    suppress(session, subscriber.email, address_key, SuppressionReason.ERASED, None, now)
    session.execute(delete(Answer).where(Answer.subscriber_id == subscriber.id))
    session.execute(delete(SignupRequest).where(SignupRequest.subscriber_id == subscriber.id))
    session.execute(delete(Event).where(Event.subscriber_id == subscriber.id))
    session.execute(delete(Delivery).where(Delivery.subscriber_id == subscriber.id))
    session.delete(subscriber)
