from __future__ import annotations

import json
import re
import smtplib
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from bench.__main__ import main
from bench.harness import Options, report, run
from bench.sink import Sink

from ..support.databases import ADMIN_URL


def test_bench_prints_a_row_of_figures_per_email(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["micro", "--count", "3", "day-01", "welcome"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    figures = {row[0]: row[1:] for row in rows if row and row[0] in {"day-01", "welcome"}}
    assert set(figures) == {"day-01", "welcome"}
    for values in figures.values():
        prepared_ms, prepared_per_second, render_ms, mime_ms, per_second, naive_ms, dkim_ms, html_kb, message_kb = (
            float(value) for value in values
        )
        assert prepared_ms > 0 and prepared_per_second > 0 and dkim_ms > 0  # DKIM priced even when not set up
        assert render_ms > 0 and mime_ms > 0 and per_second > 0 and naive_ms > 0
        assert 0 < html_kb < 100 < message_kb * 10  # HTML under Gmail's clip; a message is KBs, not bytes
    assert re.search(r"\(3 messages each", "\n".join(" ".join(row) for row in rows))


def test_the_harness_sends_a_small_course_morning_end_to_end_and_writes_its_figures(tmp_path: Path) -> None:
    """A small N: that the harness works (processes, sink, limit, figures); no speed is asserted."""
    admin = create_engine(ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"))

    def bench_databases() -> set[str]:
        with admin.connect() as connection:
            names = connection.exec_driver_sql("SELECT datname FROM pg_database").scalars()
            return {name for name in names if name.startswith("course_bench_")}

    lines: list[str] = []
    figures = run(
        Options(subscribers=300, concurrency=2, server_url=admin.url.render_as_string(hide_password=False),
                limit_messages=300, results=tmp_path, tick_seconds=1, click_seconds=1, clicks_during_send=True),
        say=lines.append, progress=lines.append,
    )  # fmt: skip
    assert figures["delivered"] == figures["marked_sent"] == 300
    assert figures["duplicates"] == figures["without_message_id"] == 0
    assert figures["emails_per_second"] > 0 and figures["limit_emails_per_second"] > 0 and figures["ratio"] > 0
    assert {process["process"] for process in figures["processes"]} >= {"beat", "worker"}
    elsewhere = {process["process"].split(" (")[0]: process["cpu_seconds"] for process in figures["elsewhere"]}
    assert set(elsewhere) == {"postgres", "SMTP sink", "redis-server"}  # where the rest of the machine went
    assert elsewhere["postgres"] > 0 and elsewhere["SMTP sink"] > 0 and 0 < figures["machine_busy"] <= 1
    # Our CPU per email counts the beat, the workers, their PostgreSQL backends and the broker; the sink apart.
    counted = sum(process["cpu_seconds"] for process in figures["processes"]) + elsewhere["postgres"]
    assert figures["cpu_ms_per_email"] >= counted * 1000 / 300 * 0.99 and figures["sink_cpu_ms_per_email"] > 0
    clicks = figures["clicks"]  # wrk is installed with the test tools (.ci/run)
    for endpoint in ("consultation", "exercise page", "landing page", "healthz"):
        assert clicks[endpoint]["requests_per_second"] > 0 and clicks[endpoint]["errors"] == 0, endpoint
    # A link is one click, its repeats none; the first seconds after delivery count as a scanner's and
    # the rest as a person's, which are kept apart: at most two per subscriber.
    assert 0 < clicks["consultation_clicks_recorded"] <= 2 * 300
    during = figures["clicks_during_send"]  # the scanners while the workers send
    assert during["connections"] == 32
    for endpoint in ("consultation", "exercise page"):
        assert during[endpoint]["requests_per_second"] > 0 and during[endpoint]["errors"] == 0, endpoint
    # 300 emails may go before a window ends: the report says so of that window, and only of it.
    table = report(figures)
    told = table[table.index(next(line for line in table if "clicks during the send" in line)) + 1 :]
    for endpoint, line in zip(("consultation", "exercise page"), told, strict=True):
        assert line.strip().startswith(endpoint), line
        assert ("the send ended first" in line) is (not during[endpoint]["within_send"]), line
    written = json.loads(next(tmp_path.glob("*-300.json")).read_text())
    assert written == figures
    assert any("ratio ours/limit" in line for line in lines)
    # The plan is in the figures (at 300 readers, PostgreSQL rightly reads a table of three pages whole: the
    # claim's benchmark below checks the index is used once the table is larger).
    assert any("progress" in line for line in figures["claim_plan"])
    assert figures["database"].startswith("course_bench_")
    assert figures["database"] not in bench_databases()  # its own database is dropped (others may run beside)
    admin.dispose()


def test_the_claim_benchmark_claims_exactly_the_due_among_many_with_the_index() -> None:
    from bench.claim import measure_claim

    lines: list[str] = []
    figures = measure_claim(ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), 3000, 250,
                            "building-emotional-intimacy", say=lines.append)  # fmt: skip
    # The due ones, none of the others, in the send queue: no delivery row until a worker sends them.
    assert figures["claimed"] == figures["queued"] == 250 and figures["deliveries_made"] == 0
    assert figures["tick_ms"] > 0 and figures["idle_tick_ms"] > 0
    plan = "\n".join(figures["claim_plan"])
    assert "ix_progress_due" in plan and "Seq Scan on progress" not in plan  # here, a bitmap scan of the index
    assert any(line.startswith("One tick claimed 250 of 250 due") for line in lines)


def test_the_insights_benchmark_sums_a_year_and_times_the_page(tmp_path: Path) -> None:
    """A small N: that the insights' benchmark works (seeding, sums, the page through the app); no speed asserted."""
    from bench.insights import measure_insights

    lines: list[str] = []
    figures = measure_insights(ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), 1500,
                               "building-emotional-intimacy", say=lines.append, results=tmp_path)  # fmt: skip
    assert figures["subscribers"] == 1500 and figures["deliveries"] > 1500 and figures["events"] > 1500 * 15
    assert figures["insight_rows"] > 0
    for name in ("sum_every_week_s", "sum_active_weeks_s", "page_every_week_ms", "page_one_week_ms", "csv_days_ms"):
        assert figures[name] > 0, name
    assert json.loads(next(tmp_path.glob("*-insights-1500.json")).read_text()) == figures
    summed = next(line for line in lines if line.startswith("  sum every week: "))
    assert int(summed.split()[3]) in (53, 54)  # a year of sign-ups touches 53 or 54 Monday-weeks


def test_the_sinks_latency_holds_each_reply_back_and_loses_none() -> None:
    """``bench send --smtp-latency``: each of the sink's writes comes that late (a mail server that far
    away), its last reply (to QUIT) included, and it takes the messages as it does on loopback."""
    sink = Sink(latency=0.2)
    try:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:  # its greeting comes late too
            started = time.monotonic()
            client.ehlo()
            client.sendmail("course@bench.example", ["alex@bench.example"],
                            b"Message-ID: <latency-1@bench.example>\r\n\r\nHello\r\n")  # fmt: skip
            assert time.monotonic() - started >= 5 * 0.2  # EHLO, then MAIL, RCPT, DATA and the message's end
            assert client.noop()[0] == 250
        taken = sink.taken()
        assert (taken.count, taken.duplicates, taken.without_id) == (1, 0, 0)
    finally:
        sink.stop()
