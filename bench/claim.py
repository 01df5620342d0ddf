"""``python -m bench claim TABLE``: how long one tick takes to claim what is due in a large table.

A morning at 08:00 in one time zone: TABLE subscribers, of whom DUE (1% by default) are due now and the
rest tomorrow. It seeds them in a database of its own, then runs the beat's tick in this process (the
claim rounds and their commits; the queueing is left out, as it goes to the broker) and reports its
time and the claim's query plan. The tick runs twice more with nothing left due: what an idle tick
costs on that table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy

from bench.harness import claim_plan, database_now, own_database, seed
from course.curriculum import load_course
from course.db import make_engine, make_sessionmaker
from course.settings import Settings
from workers.engine import Runtime, tick
from workers.throttle import LocalTokenBucket


def measure_claim(server_url: str, table: int, due: int, course_slug: str,
                  say: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    with own_database(server_url) as database_url:
        from cli.database import upgrade

        upgrade(database_url)
        now = database_now(database_url)
        started = time.perf_counter()
        seed(database_url, due, course_slug, now)
        seed(database_url, table - due, course_slug, now + timedelta(days=1), first=due + 1)
        say(f"Seeded {table:,} subscribers, {due:,} of them due now, in {time.perf_counter() - started:.1f} s")
        # As autovacuum leaves a table that was written yesterday (hint bits set, statistics fresh),
        vacuum = sqlalchemy.create_engine(database_url, isolation_level="AUTOCOMMIT")
        with vacuum.connect() as connection:
            connection.exec_driver_sql("VACUUM ANALYZE subscribers")
            connection.exec_driver_sql("VACUUM ANALYZE progress")
            # And the seed's writes on disk: a checkpoint the seed's WAL set off is not the morning's.
            connection.exec_driver_sql("CHECKPOINT")
        vacuum.dispose()
        plan = claim_plan(database_url, course_slug, now)
        settings = Settings(database_url=database_url, course_slug=course_slug)
        engine = make_engine(database_url)
        runtime = Runtime(settings, sessions=make_sessionmaker(engine), throttle=LocalTokenBucket(1),
                          enqueue=lambda wakeups: None, clock=lambda: now + timedelta(seconds=1))  # fmt: skip
        load_course(course_slug)  # read once per process, before its first tick: not part of a tick
        # The beat's tick before this one, thirty seconds earlier, when nothing was due yet: a beat that
        # has been running has its connections open and its statements compiled (the first tick of a new
        # process also configures the ORM's mappers, 20 ms, and compiles each statement once).
        earlier = Runtime(settings, sessions=runtime.sessions, throttle=LocalTokenBucket(1),
                          enqueue=lambda wakeups: None, clock=lambda: now - timedelta(days=1))  # fmt: skip
        if tick(earlier).queued:
            raise RuntimeError("the tick before the measured one claimed readers due only now")
        started = time.perf_counter()
        outcome = tick(runtime)
        claim_ms = (time.perf_counter() - started) * 1000
        idle = []
        for _ in range(2):
            started = time.perf_counter()
            tick(runtime)
            idle.append((time.perf_counter() - started) * 1000)
        with engine.connect() as connection:
            made = connection.execute(sqlalchemy.text("SELECT count(*) FROM deliveries")).scalar_one()
            queued = connection.execute(sqlalchemy.text("SELECT coalesce(sum(size), 0) FROM send_batches")).scalar_one()
        engine.dispose()
    figures = {
        "subscribers": table, "due": due, "claimed": outcome.queued, "deliveries_made": int(made),
        "queued": int(queued),
        "tick_ms": round(claim_ms, 1), "idle_tick_ms": round(min(idle), 1),
        "claim_batch_size": settings.claim_batch_size, "claim_plan": plan,
    }  # fmt: skip
    say(f"One tick claimed {outcome.queued:,} of {due:,} due in {claim_ms:,.0f} ms "
        f"(rounds of {settings.claim_batch_size}); a tick with nothing due: {min(idle):,.1f} ms")  # fmt: skip
    say("The claim's plan:\n    " + "\n    ".join(plan))
    return figures
