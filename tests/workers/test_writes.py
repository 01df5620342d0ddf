"""What a course email costs the database: two row writes (the claim's update of its reader and the insert of
its record once sent), and a batch's own three (queued, taken, done) shared by its emails. Counted row by
row with triggers on the send path's tables, in this test's database only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text

from workers.engine import tick

from .conftest import Harness
from .test_engine import enrol, subscriber

TABLES = ("subscribers", "progress", "deliveries", "send_batches", "events", "answers", "suppressions")

COUNT_WRITES = """
CREATE TABLE row_writes (relation text, operation text);
CREATE FUNCTION count_row_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO row_writes VALUES (TG_TABLE_NAME, TG_OP);
    RETURN NULL;
END $$;
"""


def count_writes(harness: Harness) -> None:
    with harness.runtime.engine.begin() as connection:
        connection.exec_driver_sql(COUNT_WRITES)
        for table in TABLES:
            connection.exec_driver_sql(
                f"CREATE TRIGGER count_{table} AFTER INSERT OR UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION count_row_write()"
            )


def writes(harness: Harness) -> Counter[tuple[str, str]]:
    with harness.runtime.engine.connect() as connection:
        rows = connection.execute(text("SELECT relation, operation FROM row_writes")).all()
    return Counter((relation, operation) for relation, operation in rows)


def test_a_course_email_costs_two_row_writes_and_its_batch_three(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(send_batch_size=10, claim_batch_size=1000)
    readers = 40
    for number in range(readers):
        enrol(harness, f"reader{number}@example.com")
    harness.clock.advance(days=1)
    count_writes(harness)
    outcome = tick(harness.runtime)
    harness.drain()
    assert outcome.queued == readers and len(harness.smtp.received) == readers * 3  # confirmation, welcome, day 1
    found = writes(harness)
    batches = found[("send_batches", "INSERT")]
    assert readers / 10 <= batches <= readers / 10 + 1  # the claimers side by side may split a batch
    assert found == Counter({
        ("progress", "UPDATE"): readers,  # the claim moves each reader on (their details are not rewritten)
        ("deliveries", "INSERT"): readers,  # each email's record, a chunk's in one statement
        ("send_batches", "INSERT"): batches, ("send_batches", "UPDATE"): batches,  # queued, taken
        ("send_batches", "DELETE"): batches,  # done
    })  # fmt: skip


def test_an_email_sent_on_a_later_day_than_it_was_claimed_costs_one_write_more(
    harness_factory: Callable[..., Harness],
) -> None:
    """Its reader's next email counts from when it went (never two on one local date): that one write is the
    price of being late, and an email sent on its day does without it."""
    harness = harness_factory()
    alex = enrol(harness, "alex@example.com")  # 27 November, 15:00 UTC
    harness.clock.advance(days=1)
    tick(harness.runtime)  # day 1 claimed on the 28th
    count_writes(harness)
    harness.clock.advance(days=1)  # the batch waits a whole day (a long pause of the workers)
    harness.drain()
    assert writes(harness) == Counter({
        ("progress", "UPDATE"): 1, ("deliveries", "INSERT"): 1,  # the record, and the next time again
        ("send_batches", "UPDATE"): 1, ("send_batches", "DELETE"): 1,
    })  # fmt: skip
    assert harness.smtp.to("alex@example.com")[-1].subject.startswith("Day 1")
    # Day 2 the next Paris morning after day 1 went (the claim had set this morning's, already past).
    assert subscriber(harness, alex).next_send_at == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
