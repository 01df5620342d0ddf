"""``python -m bench import ROWS``: a list of ROWS people imported into a course, as the beat's runner does it
(course/imports.py), in a database of its own: once as a new list, asking each to confirm, and once more,
the same file with consent recorded, when every row is already on the course. Prints the time and the
process's peak memory of each run."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, database_now, own_database


def measure_import(server_url: str, rows: int, course_slug: str, say: Callable[[str], None] = print,
                   results: Path = RESULTS) -> dict[str, Any]:  # fmt: skip
    from cli.database import upgrade
    from course.db import make_engine, make_sessionmaker
    from course.deliveries.timing import Timing
    from course.imports import guess_columns, run_import, shape
    from course.models.imports import ImportState, ListImport

    zones = ("Europe/Paris", "America/New_York", "Asia/Tokyo")
    source = ("email,first name,time zone\n" + "".join(
        f"reader{n}@example.org,Reader,{zones[n % 3]}\n" for n in range(rows))).encode()  # fmt: skip
    figures: dict[str, Any] = {"rows": rows, "megabytes": round(len(source) / 1024 / 1024, 1), "runs": []}
    with own_database(server_url) as database_url:
        upgrade(database_url)
        now = database_now(database_url)
        engine = make_engine(database_url)
        sessions = make_sessionmaker(engine)
        for consent in (None, "the practice's newsletter form"):
            found = shape(source)
            columns = guess_columns(found.columns)
            with sessions() as session:
                imported = ListImport(
                    course_slug=course_slug, user_email="bench@example.org", file_name="bench.csv", source=source,
                    delimiter=found.delimiter, header=found.header, email_column=columns["email"],
                    name_column=columns["name"], timezone_column=columns["timezone"], send_time_column=None,
                    default_timezone="UTC", default_send_time=time_of_day(8), consent_source=consent,
                    consent_at=now if consent else None, state=ImportState.QUEUED.value, rows_total=found.rows,
                    created_at=now, updated_at=now,
                )  # fmt: skip
                session.add(imported)
                session.commit()
                import_id = imported.id
            started = time.perf_counter()
            run_import(sessions, import_id, lambda: now, Timing(address_key=b"bench-address-key"))
            seconds = time.perf_counter() - started
            with sessions() as session:
                done = session.get(ListImport, import_id)
                assert done is not None  # noqa: S101 - made above
                peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                run = {"consent": bool(consent), "seconds": round(seconds, 1), "added": done.added,
                       "refused": done.refused, "peak_rss_mb": peak}  # fmt: skip
            figures["runs"].append(run)
            say(f"  {'the same file again, consent recorded' if consent else 'a new list, each asked to confirm'}: "
                f"{rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} a second), {run['added']:,} added, "
                f"{run['refused']:,} refused; peak memory of this process {run['peak_rss_mb']} MB")  # fmt: skip
        engine.dispose()
    figures["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results.mkdir(parents=True, exist_ok=True)
    written = results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-import-{rows}.json"
    written.write_text(json.dumps(figures, indent=2) + "\n")
    say(f"Written to {written}")
    return figures
