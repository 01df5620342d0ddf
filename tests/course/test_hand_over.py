"""Deliveries go to the workers once the transaction that made them commits, never before and never when
it rolls back: a property of the session (course/db.py), not something each caller remembers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from course.db import hand_over_after_commit, hand_over_with, make_engine, make_sessionmaker
from course.deliveries.claim import release_abandoned
from course.models.deliveries import Delivery
from course.subscriptions import Consent, confirm, subscribe

from .test_subscriptions import NOW, TIMING


def test_what_a_transaction_hands_over_is_queued_when_it_commits_and_forgotten_when_it_rolls_back(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    queued: list[list[int]] = []
    seen_committed: list[int] = []

    def enqueue(ids: list[int]) -> None:
        queued.append(ids)
        with sessions() as other:  # what a worker would find: the deliveries are already committed
            seen_committed.append(other.scalar(select(func.count()).where(Delivery.id.in_(ids))) or 0)

    hand_over_with(sessions, enqueue)
    with sessions() as session:
        signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                              consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
        assert queued == []  # not before the commit
        session.commit()
        assert queued == [signed_up.delivery_ids] and seen_committed == [1]
        assert signed_up.subscriber_id is not None
        session.execute(select(1))  # a transaction that hands over a delivery, then rolls back
        hand_over_after_commit(session, [123456])
        session.rollback()
        confirmed = confirm(session, signed_up.subscriber_id, now=NOW, timing=TIMING)
        session.commit()  # this transaction's welcome only: the rolled-back one's ids are gone
        assert queued == [signed_up.delivery_ids, confirmed.delivery_ids] and seen_committed == [1, 1]
    engine.dispose()


def test_a_session_without_a_queue_commits_and_leaves_the_deliveries_to_the_beat(database_url: str) -> None:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                              consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
        session.commit()  # nowhere to queue it: the confirmation stays claimed under its lease
        assert release_abandoned(session, NOW + TIMING.lease - timedelta(seconds=1), 10, TIMING) == []
        assert release_abandoned(session, NOW + TIMING.lease + timedelta(seconds=1), 10, TIMING) == (
            signed_up.delivery_ids
        )  # the beat hands it out once the lease runs out, as when the broker was away
    engine.dispose()
