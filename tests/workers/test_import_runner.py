"""The beat's import runner (workers/beat.py ``run_imports``): an import the studio starts is taken and run to
its end in the background, and the thread stops when the beat does."""

from __future__ import annotations

import threading
from datetime import time

from sqlalchemy import func, select

from course.imports import guess_columns, shape
from course.models.imports import ImportState, ListImport
from course.models.subscribers import Subscriber
from workers.beat import run_imports

from ..support.waiting import wait_until
from .conftest import Harness


def test_an_import_started_in_the_studio_is_run_by_the_beat(harness: Harness) -> None:
    source = "email,first name\n" + "".join(f"reader{n}@example.org,Reader\n" for n in range(2_500))
    found = shape(source.encode())
    columns = guess_columns(found.columns)
    now = harness.clock()
    with harness.runtime.sessions() as session:
        imported = ListImport(
            course_slug="building-emotional-intimacy", user_email="kayla@example.org", file_name="list.csv",
            source=source.encode(), delimiter=found.delimiter, header=found.header, email_column=columns["email"],
            name_column=columns["name"], default_timezone="UTC", default_send_time=time(8),
            state=ImportState.QUEUED.value, rows_total=found.rows, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(imported)
        session.commit()
        import_id = imported.id
    stop = threading.Event()
    runner = threading.Thread(target=run_imports, args=(harness.runtime, stop), daemon=True)
    runner.start()

    def done() -> bool:
        with harness.runtime.sessions() as session:
            return session.scalar(select(ListImport.state).where(ListImport.id == import_id)) == "done"

    wait_until(done, timeout=120, what="the import to be done")
    stop.set()
    runner.join(timeout=30)
    assert not runner.is_alive()
    with harness.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 2_500
