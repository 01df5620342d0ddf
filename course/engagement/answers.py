"""Checklist answers: a reader's answers to the course's checklists, their bands, and how an answer
changed between the start of the course and its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from course.curriculum import Checklist, Course, ScoreBand
from course.engagement.clicks import records_for
from course.models.engagement import Answer, Event, EventKind
from course.models.subscribers import Subscriber


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


def answers_so_far(session: Session, subscriber_ids: list[int]) -> dict[int, dict[str, str]]:
    """For these subscribers, their latest band for each checklist in their current enrolment (what their
    next email may use): one query for a whole batch."""
    rows = session.execute(
        select(Answer.subscriber_id, Answer.checklist, Answer.band)
        .join(Subscriber, and_(Subscriber.id == Answer.subscriber_id, Subscriber.enrolment == Answer.enrolment))
        .where(Subscriber.id.in_(set(subscriber_ids)))
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


def reader_answers(session: Session, subscriber_id: int) -> dict[str, str]:
    """One subscriber's latest band for each checklist in their current enrolment (as their next email
    reads them; the studio's preview as that reader)."""
    rows = session.execute(
        select(Answer.checklist, Answer.band)
        .join(Subscriber, and_(Subscriber.id == Answer.subscriber_id, Subscriber.enrolment == Answer.enrolment))
        .where(Subscriber.id == subscriber_id)
        .order_by(Answer.created_at, Answer.id)
    )
    return {checklist: band for checklist, band in rows}  # the latest of each wins
