"""Clicks and exercises done: what subscribers do with the course's links.

Every click is an event, flagged ``automated`` when a mail scanner (not a person) made it, so that
the funnel counts people. A link opened again and again counts once a minute, and at most
``CLICKS_KEPT_PER_LINK`` times, so that nobody can fill the table (or the figures) by repeating it.
A subscriber who has unsubscribed can still open a link and read it, but nothing is recorded for them.
Every click is recorded by one statement (:data:`CLICKS_AT_ONCE`), from the web app's event loop (the
clicks that arrive together, at once) or from a session.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

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


@dataclass(frozen=True, slots=True)
class Click:
    """One request of a link, as the click rule takes it. ``agent_automated``: the request alone says it is
    a machine (a HEAD, a scanner's agent); the delivery is judged by the statement. ``enrolment``: the time
    through the course the link names (None: an older link, placed by the statement). ``day``: the
    exercise page's day, whose "done" is read with the click (None: not asked)."""

    subscriber_id: int
    step: int | None
    enrolment: int | None
    kind: EventKind
    value: str | None
    user_agent: str | None
    agent_automated: bool
    now: datetime
    day: int | None = None


class Clicked(NamedTuple):
    """What the click rule found for one click."""

    known: bool  # the subscriber exists
    recording: bool  # their clicks are recorded (:func:`records_for`)
    recorded: bool  # this one was (not a repeat, nor beyond what a link keeps)
    course: str | None  # their course
    release: int  # its live release (the wording published in the studio): 0 for the shipped words
    done: bool  # they marked the click's ``day`` done (False when no day was asked)


# The click rule, in one statement, for any number of clicks at once (the web app records the clicks
# that arrive together in one round trip and one commit: web/context.py). For each click: the subscriber,
# the time through the course the link belongs to (:func:`placed_enrolment`) and its email's delivery are
# looked up, whether it was a machine is decided (the request says so: web/scanners.py; or the email is
# still being handed over: it has no record of being sent until its chunk is recorded, after the server's
# 250; or it was delivered seconds ago), and the event is inserted unless it must not be (someone who
# left is not recorded; a repeat within the window, or beyond what a link keeps, is not: the link's row in
# ``clicked_links`` says, and clicks on one link that race each other are decided one after the other on
# it). A link twice among the clicks at once is one click (the first; the others are its repeats), and the
# links' rows are written in one order, so that two statements that share links never wait for each other
# in a circle. A link without a step (the welcome's page, say) has no delivery to judge by. One row per
# click, in their order: :class:`Clicked`.
CLICKS_AT_ONCE = text("""
WITH p AS (
    SELECT *
    FROM unnest(CAST(:subscriber_ids AS bigint[]), CAST(:steps AS integer[]), CAST(:kinds AS varchar[]),
                CAST(:values AS varchar[]), CAST(:user_agents AS varchar[]), CAST(:agents_automated AS boolean[]),
                CAST(:nows AS timestamptz[]), CAST(:enrolments AS integer[]), CAST(:days AS integer[]))
         WITH ORDINALITY AS p(subscriber_id, step, kind, value, user_agent, agent_automated, now, enrolment, day, n)
), placed AS (
    -- Each click's rows are looked up by their keys, one click after the other (OFFSET 0 keeps the lookup
    -- apart, a subquery in the select list is run for each row): the web holds this statement's plan for
    -- as long as its connection lives, made on the tables as they were then, and a plan that hashed a
    -- table whole because it was small would read all of it for every click once it has grown.
    SELECT p.n, s.id, s.status, s.course_slug,
           COALESCE(p.enrolment,
                    (SELECT max(x.enrolment) FROM deliveries AS x
                     WHERE x.subscriber_id = s.id AND x.step = p.step AND x.sent_at IS NOT NULL),
                    s.enrolment) AS enrolment
    FROM p
    JOIN LATERAL (SELECT r.id, r.course_slug, g.status, g.enrolment
                  FROM subscribers AS r
                  JOIN progress AS g ON g.subscriber_id = r.id
                  WHERE r.id = p.subscriber_id
                  OFFSET 0) AS s ON true
), reader AS (
    SELECT s.n, s.id, s.enrolment, s.status, s.course_slug,
           (SELECT d.sent_at FROM deliveries AS d
            WHERE d.subscriber_id = s.id AND d.enrolment = s.enrolment AND d.step = p.step) AS sent_at
    FROM placed AS s
    JOIN p ON p.n = s.n
), click AS (
    SELECT r.n, r.id, r.enrolment, p.kind, p.step, p.value, p.user_agent, p.now, r.sent_at,
           p.agent_automated OR (p.step IS NOT NULL AND r.sent_at IS NULL)
               OR (r.sent_at IS NOT NULL
                   AND p.now - r.sent_at < make_interval(secs => CAST(:human_delay AS double precision))) AS automated
    FROM reader AS r
    JOIN p ON p.n = r.n
    WHERE r.status = ANY(CAST(:recording AS text[]))
), chosen AS (
    SELECT DISTINCT ON (id, enrolment, kind, step, value, automated) *
    FROM click
    ORDER BY id, enrolment, kind, step, value, automated, n
), gate AS (
    -- The link's row moves on, or the click is a repeat. Read first in this statement's snapshot (a repeat
    -- seen there writes nothing); else the upsert decides on the row as it stands, after any click on
    -- the same link that raced this one has committed (its conditions are checked again on that row).
    INSERT INTO clicked_links AS l (subscriber_id, enrolment, kind, step, value, automated, last_at, kept)
    SELECT c.id, c.enrolment, c.kind, c.step, c.value, c.automated, c.now, 1
    FROM chosen AS c
    WHERE NOT EXISTS (SELECT 1 FROM clicked_links AS o
                      WHERE o.subscriber_id = c.id AND o.enrolment = c.enrolment AND o.kind = c.kind
                        AND o.step IS NOT DISTINCT FROM c.step AND o.value IS NOT DISTINCT FROM c.value
                        AND o.automated = c.automated
                        AND (o.last_at > c.now - CAST(:repeat_window AS interval)
                             OR o.kept >= CAST(:kept AS integer))
                      OFFSET 0)  -- looked for by its key, click by click (not joined with the whole table)
    ORDER BY c.id, c.enrolment, c.kind, c.step, c.value, c.automated
    ON CONFLICT (subscriber_id, enrolment, kind, step, value, automated)
    DO UPDATE SET last_at = excluded.last_at, kept = l.kept + 1
    WHERE l.last_at <= excluded.last_at - CAST(:repeat_window AS interval) AND l.kept < CAST(:kept AS integer)
    RETURNING l.subscriber_id, l.enrolment, l.kind, l.step, l.value, l.automated
), passed AS (
    SELECT c.*
    FROM chosen AS c
    JOIN gate AS g ON g.subscriber_id = c.id AND g.enrolment = c.enrolment AND g.kind = c.kind
                  AND g.step IS NOT DISTINCT FROM c.step AND g.value IS NOT DISTINCT FROM c.value
                  AND g.automated = c.automated
), inserted AS (
    INSERT INTO events (subscriber_id, enrolment, kind, step, value, automated, user_agent, seconds_since_delivery,
                        created_at)
    SELECT c.id, c.enrolment, c.kind, c.step, c.value, c.automated, c.user_agent,
           EXTRACT(EPOCH FROM c.now - c.sent_at), c.now
    FROM passed AS c
    ORDER BY c.n
)
SELECT r.id IS NOT NULL AS known, c.id IS NOT NULL AS recording,
       EXISTS (SELECT 1 FROM passed AS k WHERE k.n = p.n) AS recorded, r.course_slug AS course,
       (SELECT coalesce(max(t.id), 0) FROM template_publications AS t WHERE t.course_slug = r.course_slug) AS release,
       p.day IS NOT NULL AND EXISTS (SELECT 1 FROM events AS e
                                     WHERE e.subscriber_id = r.id AND e.enrolment = r.enrolment
                                       AND e.kind = CAST(:done_kind AS varchar) AND e.step = p.day
                                     OFFSET 0) AS done  -- the reader's own, not every "done" hashed
FROM p
LEFT JOIN reader AS r ON r.n = p.n
LEFT JOIN click AS c ON c.n = p.n
ORDER BY p.n
""")


def clicks_parameters(clicks: Sequence[Click], *, human_delay: float) -> dict[str, object]:
    """The parameters of :data:`CLICKS_AT_ONCE`: each field of the clicks as an array, and the rule's own.
    ``human_delay``: seconds after its delivery within which a click is a machine's (web/scanners.py)."""
    return {
        "subscriber_ids": [click.subscriber_id for click in clicks],
        "steps": [click.step for click in clicks],
        "kinds": [click.kind.value for click in clicks],
        "values": [click.value for click in clicks],
        "user_agents": [(click.user_agent or "")[:500] or None for click in clicks],
        "agents_automated": [click.agent_automated for click in clicks],
        "nows": [click.now for click in clicks],
        "enrolments": [click.enrolment for click in clicks],
        "days": [click.day for click in clicks],
        "human_delay": human_delay, "repeat_window": REPEAT_CLICK_WINDOW, "kept": CLICKS_KEPT_PER_LINK,
        "recording": sorted(RECORDING_STATUSES), "done_kind": EventKind.EXERCISE_DONE.value,
    }  # fmt: skip


def clicked(rows: Iterable[Sequence[Any]]) -> list[Clicked]:
    """:data:`CLICKS_AT_ONCE`'s rows."""
    return [Clicked(bool(known), bool(recording), bool(recorded), course, int(release), bool(done))
            for known, recording, recorded, course, release, done in rows]  # fmt: skip


def record_clicks(session: Session, clicks: Sequence[Click], *, human_delay: float) -> list[Clicked]:
    """:data:`CLICKS_AT_ONCE` in this session. The caller commits."""
    return clicked(session.execute(CLICKS_AT_ONCE, clicks_parameters(clicks, human_delay=human_delay)).all())


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
