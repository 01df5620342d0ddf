"""Workers are woken for a batch once the transaction that queued it commits, never before and never when it
rolls back: a property of the session (course/db.py), not something each caller remembers."""

from __future__ import annotations

from sqlalchemy import func, select

from course.db import hand_over_after_commit, hand_over_with, make_engine, make_sessionmaker
from course.deliveries.claim import batch_due_deliveries
from course.models.deliveries import Delivery, SendBatch
from course.subscriptions import Consent, confirm, subscribe

from .test_subscriptions import NOW, TIMING


def test_a_transaction_wakes_the_workers_when_it_commits_and_not_when_it_rolls_back(database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    woken: list[int] = []
    seen_committed: list[int] = []

    def wake(batches: int) -> None:
        woken.append(batches)
        with sessions() as other:  # what a worker would find: the batches are already committed
            seen_committed.append(other.scalar(select(func.count()).select_from(SendBatch)) or 0)

    hand_over_with(sessions, wake)
    with sessions() as session:
        signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                              consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
        assert woken == []  # not before the commit
        session.commit()
        assert woken == [1] and seen_committed == [1]
        assert signed_up.subscriber_id is not None
        session.execute(select(1))  # a transaction that queues a batch, then rolls back
        hand_over_after_commit(session, 5)
        session.rollback()
        confirm(session, signed_up.subscriber_id, now=NOW, timing=TIMING)
        session.commit()  # this transaction's welcome only: the rolled-back one's wake-ups are gone
        assert woken == [1, 1] and seen_committed == [1, 2]
    engine.dispose()


def test_a_session_without_a_broker_commits_and_leaves_its_batch_in_the_queue(database_url: str) -> None:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        signed_up = subscribe(session, course_slug="building-emotional-intimacy", email="alex@example.com",
                              consent=Consent(at=NOW), timing=TIMING)  # fmt: skip
        session.commit()  # nobody to wake: the confirmation waits in its batch for a worker
        (batch,) = session.scalars(select(SendBatch))
        assert batch.delivery_ids == signed_up.delivery_ids and batch.taken_at is None and batch.lane == 0
        # It is carried: the beat does not put it in a second batch.
        assert batch_due_deliveries(session, NOW, 10, 50) == 0
        (delivery,) = session.scalars(select(Delivery))
        assert delivery.batch_id == batch.id
    engine.dispose()
