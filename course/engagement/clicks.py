"""Clicks and exercises done: what subscribers do with the course's links.

Every click is an event, flagged ``automated`` when a mail scanner (not a person) made it, so that
the funnel counts people. A link opened again and again counts once a minute, and at most
``CLICKS_KEPT_PER_LINK`` times, so that nobody can fill the table (or the figures) by repeating it.
A subscriber who has unsubscribed can still open a link and read it, but nothing is recorded for them.
Every click is recorded by one statement (:data:`CLICK_AT_ONCE`), from the web app's event loop or from
a session.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from course.models.deliveries import Delivery
from course.models.engagement import Event, EventKind
from course.models.subscribers import ENROLLED, Subscriber

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


# The click rule, in one statement: the subscriber, the time through the course the link belongs to
# (:func:`placed_enrolment`) and its email's delivery are looked up, whether it was a machine is decided
# (the request says so: web/scanners.py; or the email is still being handed over: it has no record of
# being sent until its chunk is recorded, after the server's 250; or it was delivered seconds ago), and
# the event is inserted unless it must not be (someone who left is not recorded; a repeat within the
# window, or beyond what a link keeps, is not: the link's row in ``clicked_links`` says, and clicks on
# one link that race each other are decided one after the other on it). A link without a step (the
# welcome's page, say) has no delivery to judge by. It returns whether the subscriber exists and whether a
# click was recorded. The web app runs it on its event loop, without a thread or an ORM session, for the
# bursts mail scanners make; a page that needs a session runs it there (:func:`record_click`).
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
    SELECT s.id, g.status, s.course_slug,
           COALESCE(p.enrolment,
                    (SELECT max(x.enrolment) FROM deliveries AS x
                     WHERE x.subscriber_id = s.id AND x.step = p.step AND x.sent_at IS NOT NULL),
                    g.enrolment) AS enrolment
    FROM p
    JOIN subscribers AS s ON s.id = p.subscriber_id
    JOIN progress AS g ON g.subscriber_id = p.subscriber_id
), reader AS (
    SELECT s.id, s.enrolment, s.status, s.course_slug, d.id AS delivery_id, d.sent_at
    FROM placed AS s
    JOIN p ON true
    LEFT JOIN deliveries AS d ON d.subscriber_id = s.id AND d.enrolment = s.enrolment AND d.step = p.step
), click AS (
    SELECT r.id, r.enrolment, r.sent_at,
           p.agent_automated OR (p.step IS NOT NULL AND r.sent_at IS NULL)
               OR (r.sent_at IS NOT NULL AND p.now - r.sent_at < p.human_delay) AS automated
    FROM reader AS r, p
    WHERE r.status = ANY(p.recording)
), gate AS (
    -- The link's row moves on, or the click is a repeat. Read first in this statement's snapshot (a repeat
    -- seen there writes nothing); else the upsert decides on the row as it stands, after any click on
    -- the same link that raced this one has committed (its conditions are checked again on that row).
    INSERT INTO clicked_links AS l (subscriber_id, enrolment, kind, step, value, automated, last_at, kept)
    SELECT c.id, c.enrolment, p.kind, p.step, p.value, c.automated, p.now, 1
    FROM click AS c, p
    WHERE NOT EXISTS (SELECT 1 FROM clicked_links AS o
                      WHERE o.subscriber_id = c.id AND o.enrolment = c.enrolment AND o.kind = p.kind
                        AND o.step IS NOT DISTINCT FROM p.step AND o.value IS NOT DISTINCT FROM p.value
                        AND o.automated = c.automated AND (o.last_at > p.repeat_after OR o.kept >= p.kept))
    ON CONFLICT (subscriber_id, enrolment, kind, step, value, automated)
    DO UPDATE SET last_at = excluded.last_at, kept = l.kept + 1
    WHERE l.last_at <= CAST(:repeat_after AS timestamptz) AND l.kept < CAST(:kept AS integer)
    RETURNING 1
), inserted AS (
    INSERT INTO events (subscriber_id, enrolment, kind, step, value, automated, user_agent, seconds_since_delivery,
                        created_at)
    SELECT c.id, c.enrolment, p.kind, p.step, p.value, c.automated, p.user_agent,
           EXTRACT(EPOCH FROM p.now - c.sent_at), p.now
    FROM click AS c, p
    WHERE EXISTS (SELECT 1 FROM gate)
    RETURNING 1
)
"""

CLICK_AT_ONCE = text(
    _CLICK  # noqa: S608 - two constants joined; every value is a bound parameter
    + "SELECT (SELECT count(*) FROM reader) AS known, (SELECT count(*) FROM inserted) AS recorded,"
    " (SELECT min(course_slug) FROM reader) AS course, (SELECT coalesce(max(id), 0) FROM template_publications"
    "  WHERE course_slug = (SELECT min(course_slug) FROM reader)) AS release"
)

# The exercise page's click, with what the page shows in the same statement: whether the subscriber
# exists, whether their clicks are recorded (:func:`records_for`), whether they marked this day's
# exercise done (:func:`exercise_done`), and their course and its release (its published wording).
EXERCISE_CLICK_AT_ONCE = text(
    _CLICK  # noqa: S608 - two constants joined; every value is a bound parameter
    + """
SELECT (SELECT count(*) FROM reader) AS known, (SELECT count(*) FROM click) AS recording,
       EXISTS (SELECT 1 FROM events AS e, reader AS r
               WHERE e.subscriber_id = r.id AND e.enrolment = r.enrolment AND e.kind = CAST(:done_kind AS varchar)
                 AND e.step = CAST(:day AS integer)) AS done,
       (SELECT coalesce(max(id), 0) FROM template_publications
        WHERE course_slug = (SELECT min(course_slug) FROM reader)) AS release,
       (SELECT count(*) FROM inserted) AS recorded, (SELECT min(course_slug) FROM reader) AS course
"""
)


def click_at_once_parameters(
    *, subscriber_id: int, step: int | None, enrolment: int | None, kind: EventKind, value: str | None,
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


def record_click(session: Session, **click: Any) -> tuple[bool, bool]:
    """:data:`CLICK_AT_ONCE` in this session (``click``: :func:`click_at_once_parameters`' arguments): whether
    the subscriber exists, and whether a click was recorded. The caller commits."""
    known, recorded, _, _ = session.execute(CLICK_AT_ONCE, click_at_once_parameters(**click)).one()
    return bool(known), bool(recorded)


def exercise_click_parameters(*, day: int, **click: Any) -> dict[str, object]:
    """The parameters of :data:`EXERCISE_CLICK_AT_ONCE`: those of the click, and the day."""
    return {**click_at_once_parameters(**click), "day": day, "done_kind": EventKind.EXERCISE_DONE.value}


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
