"""The migrations build the schema the models describe: no drift."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from cli import database
from course.models.subscribers import email_hash
from course.settings import get_settings

from ..support.databases import empty_database

COURSE = Path(sys.executable).parent / "course"
TABLES = {
    "alembic_version", "answers", "audit_log", "clicked_links", "courses", "deliveries", "events", "feedback_notices",
    "imports", "import_refusals",
    "insight_cohorts", "insight_counts", "media_files", "progress", "send_batches", "sending_pauses", "signup_requests",
    "studio_sessions", "studio_users", "subscribers", "suppressions", "template_drafts", "template_previews",
    "template_publications", "template_versions",
}  # fmt: skip


def test_postgresql_has_no_drift_between_models_and_migrations(database_url: str) -> None:
    assert database.check(database_url) is None
    assert set(inspect(create_engine(database_url)).get_table_names()) == TABLES


def test_the_migrations_go_down_and_up_again(database_url: str) -> None:
    database.downgrade(database_url, "base")
    assert set(inspect(create_engine(database_url)).get_table_names()) == {"alembic_version"}
    database.upgrade(database_url)
    assert set(inspect(create_engine(database_url)).get_table_names()) == TABLES
    assert database.check(database_url) is None


def test_course_db_upgrade_builds_an_empty_database_and_check_finds_no_drift() -> None:
    with empty_database() as url:
        _upgrade_and_check(url)


def _upgrade_and_check(url: str) -> None:
    environment = {**os.environ, "DATABASE_URL": url}
    upgrade = subprocess.run(  # noqa: S603 - our own console script
        [str(COURSE), "db", "upgrade"], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert upgrade.returncode == 0, upgrade.stderr
    check = subprocess.run(  # noqa: S603
        [str(COURSE), "db", "check"], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert check.returncode == 0, check.stderr
    assert "agree" in check.stdout
    assert set(inspect(create_engine(environment["DATABASE_URL"])).get_table_names()) == TABLES


def test_course_db_check_reports_drift() -> None:
    with empty_database() as url:  # every table is missing
        drift = subprocess.run(  # noqa: S603
            [str(COURSE), "db", "check"], env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
    assert drift.returncode == 1


def test_suppressions_are_re_keyed_and_erasures_that_cannot_be_are_dropped(database_url: str) -> None:
    database.downgrade(database_url, "0002")
    engine = create_engine(database_url)
    plain = {email: hashlib.sha256(email.encode()).hexdigest() for email in ("gone@example.com", "erased@example.com")}
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO subscribers (course_slug, email, timezone, send_time, status, enrolment, created_at, "
                "updated_at) VALUES ('c', 'gone@example.com', 'UTC', '08:00', 'bounced', 1, now(), now())"
            )
        )
        for email, reason in (("gone@example.com", "bounce"), ("erased@example.com", "erased")):
            connection.execute(
                text("INSERT INTO suppressions (email_hash, reason, created_at) VALUES (:hash, :reason, now())"),
                {"hash": plain[email], "reason": reason},
            )
    database.upgrade(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT email_hash, reason FROM suppressions")).all()
    engine.dispose()
    # The bounce is kept under the keyed hash; the erasure's address is gone, so its plain hash goes too.
    assert rows == [(email_hash("gone@example.com", get_settings().address_key), "bounce")]


def test_clicks_made_while_their_email_was_handed_over_become_the_scanners(database_url: str) -> None:
    """0012: a click recorded as a person's with no time since delivery, before (or within seconds after) its
    delivery was recorded as sent, was a scanner at the receiving server; a later one stays a person's."""
    database.downgrade(database_url, "0011")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        subscriber = connection.execute(
            text(
                "INSERT INTO subscribers (course_slug, email, timezone, send_time, status, enrolment, created_at, "
                "updated_at) VALUES ('c', 'alex@example.com', 'UTC', '08:00', 'active', 1, now(), now()) RETURNING id"
            )
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO deliveries (subscriber_id, enrolment, step, email, state, attempts, due_at, created_at,"
                " sent_at, updated_at) VALUES (:s, 1, 1, 'day-01', 'sent', 1, :at, :at, :at, :at)"
            ),
            {"s": subscriber, "at": "2026-11-02 08:00:05+00"},
        )
        for at, seconds in (("2026-11-02 08:00:03+00", None), ("2026-11-02 08:00:09+00", None),
                            ("2026-11-02 09:00:00+00", None), ("2026-11-02 09:00:00+00", 3595.0)):  # fmt: skip
            connection.execute(
                text(
                    "INSERT INTO events (subscriber_id, enrolment, kind, step, automated, seconds_since_delivery,"
                    " created_at) VALUES (:s, 1, 'consultation', 1, false, :seconds, :at)"
                ),
                {"s": subscriber, "at": at, "seconds": seconds},
            )
    database.upgrade(database_url)
    with engine.connect() as connection:
        flags = connection.execute(text("SELECT automated FROM events ORDER BY id")).scalars().all()
    engine.dispose()
    assert flags == [True, True, False, False]


def test_where_each_subscriber_is_moves_to_progress_and_back_unchanged(database_url: str) -> None:
    """0016: status, enrolment, place, times and pause move to ``progress``, one row per subscriber, values
    unchanged (NULLs too); going down puts them back on the subscribers' rows."""
    database.downgrade(database_url, "0015")
    engine = create_engine(database_url)
    moved = ("status", "enrolment", "current_step", "next_send_at", "last_sent_at", "paused_until", "completed_at")
    rows = [
        ("alex@example.com", "active", 1, 3, "2026-12-08 07:00:00+00", "2026-12-07 07:00:01+00", None, None),
        ("sam@example.com", "paused", 2, 0, None, "2026-12-01 07:00:00+00", "2026-12-20 00:00:00+00", None),
        ("kim@example.com", "completed", 1, 19, None, "2026-11-30 07:00:00+00", None, "2026-11-30 07:00:00+00"),
        ("lee@example.com", "pending", 1, None, None, None, None, None),
    ]
    read_before = text(
        "SELECT email, status, enrolment, current_step, next_send_at, last_sent_at, paused_until, completed_at"
        " FROM subscribers ORDER BY id"
    )
    with engine.begin() as connection:
        for row in rows:
            connection.execute(
                text(
                    "INSERT INTO subscribers (course_slug, email, timezone, send_time, status, enrolment, current_step,"
                    " next_send_at, last_sent_at, paused_until, completed_at, created_at, updated_at)"
                    " VALUES ('c', :email, 'Europe/Paris', '08:00', :status, :enrolment, :current_step,"
                    " :next_send_at, :last_sent_at, :paused_until, :completed_at, now(), now())"
                ),
                dict(zip(("email", *moved), row, strict=True)),
            )
        before = connection.execute(read_before).all()
    database.upgrade(database_url)
    with engine.connect() as connection:
        after = connection.execute(
            text(
                "SELECT s.email, p.status, p.enrolment, p.current_step, p.next_send_at, p.last_sent_at,"
                " p.paused_until, p.completed_at FROM subscribers AS s JOIN progress AS p ON p.subscriber_id = s.id"
                " ORDER BY s.id"
            )
        ).all()
        columns = {column["name"] for column in inspect(connection).get_columns("subscribers")}
    assert after == before and len(after) == len(rows)
    assert not columns & set(moved)
    database.downgrade(database_url, "0015")
    with engine.connect() as connection:
        again = connection.execute(read_before).all()
    engine.dispose()
    assert again == before
    database.upgrade(database_url)


def test_each_clicked_link_is_made_from_the_clicks_recorded_so_far(database_url: str) -> None:
    """0017: one row per link (people and machines apart; a link with no step or value is one link), with
    its last click and how many there are; other events make none. Going down drops the table."""
    database.downgrade(database_url, "0016")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        subscriber = connection.execute(
            text(
                "INSERT INTO subscribers (course_slug, email, timezone, send_time, created_at, updated_at)"
                " VALUES ('c', 'alex@example.com', 'UTC', '08:00', now(), now()) RETURNING id"
            )
        ).scalar_one()
        connection.execute(
            text("INSERT INTO progress (subscriber_id, status, enrolment) VALUES (:s, 'active', 1)"), {"s": subscriber}
        )
        for kind, step, value, automated, at in (
            ("consultation", 1, None, False, "2026-11-02 09:00:00+00"),
            ("consultation", 1, None, False, "2026-11-02 09:05:00+00"),
            ("consultation", 1, None, True, "2026-11-02 08:00:03+00"),
            ("click", None, "unsubscribe", False, "2026-11-02 10:00:00+00"),
            ("click", None, "unsubscribe", False, "2026-11-02 10:02:00+00"),
            ("answer", 0, "normal", False, "2026-11-02 10:03:00+00"),
        ):
            connection.execute(
                text(
                    "INSERT INTO events (subscriber_id, enrolment, kind, step, value, automated, created_at)"
                    " VALUES (:s, 1, :kind, :step, :value, :automated, :at)"
                ),
                {"s": subscriber, "kind": kind, "step": step, "value": value, "automated": automated, "at": at},
            )
    database.upgrade(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT kind, step, value, automated, to_char(last_at AT TIME ZONE 'UTC', 'HH24:MI:SS'), kept"
                " FROM clicked_links ORDER BY kind, automated"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("click", None, "unsubscribe", False, "10:02:00", 2),
        ("consultation", 1, None, False, "09:05:00", 2),
        ("consultation", 1, None, True, "08:00:03", 1),
    ]
    database.downgrade(database_url, "0016")
    assert "clicked_links" not in inspect(engine).get_table_names()
    engine.dispose()
    database.upgrade(database_url)
