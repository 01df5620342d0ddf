"""Importing a list in the studio: a file read, its columns mapped, its first rows previewed, run in the
background (the beat's runner, here called as the beat calls it), and its refused rows reported; the hostile
files and forms refused with a clear answer and nothing half-imported."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from course.deliveries.suppressions import suppress
from course.imports import run_import, take_next
from course.lifecycle import SuppressionReason
from course.models.imports import ListImport
from course.models.studio import AuditEntry, StudioRole
from course.models.subscribers import Subscriber

from .conftest import Site
from .test_studio_access import browser, csrf_of
from .test_studio_editing import signed_in

LIST = (
    "Email;First name;Time zone\n"
    "kayla@example.org;Kayla;America/Denver\n"
    "not an address;Sam;\n"
    "=cmd|'/C calc'!A0;Evil;\n"
    "KAYLA@example.org;Kayla;\n"
    "bounced@example.org;;\n"
    "lee@example.org;Lee;Asia/Tokyo\n"
)


def upload(client: TestClient, text_or_bytes: str | bytes, name: str = "list.csv") -> tuple[int, str, str]:
    """Upload a file: the answer's status, where it led, and its page."""
    page = client.get("/studio/import")
    assert page.status_code == 200, page.text
    data = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    answer = client.post("/studio/import", data={"csrf": csrf_of(page.text)}, files={"file": (name, data, "text/csv")},
                         follow_redirects=False)  # fmt: skip
    where = answer.headers.get("location", "")
    return answer.status_code, where, client.get(where).text if where else answer.text


def run_the_beats_runner(site: Site) -> None:
    while True:
        with site.runtime.sessions() as session:
            import_id = take_next(session, site.runtime.now())
            session.commit()
        if import_id is None:
            return
        run_import(site.runtime.sessions, import_id, site.runtime.now, site.runtime.timing)


def test_a_publisher_imports_a_list_and_each_refused_row_is_reported_with_why(site: Site) -> None:
    with site.session() as session:
        suppress(session, "bounced@example.org", site.runtime.settings.address_key, SuppressionReason.BOUNCE, None,
                 site.clock())  # fmt: skip
        session.commit()
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    status, where, page = upload(client, LIST)
    assert status == 303 and re.fullmatch(r"/studio/import/\d+\?course=building-emotional-intimacy", where)
    assert "6 rows" in page
    # The preview: what will happen to each of the first rows, as the columns were guessed.
    assert page.count(">will be added<") == 2 and page.count(">not valid<") == 2
    assert "earlier in the file" in page and "on the suppression list" in page
    assert "&#39;/C calc&#39;!A0" in page or "'/C calc'!A0" in page  # shown as text
    mapped = {"csrf": csrf_of(page), "action": "start", "email_column": "0", "name_column": "1", "timezone_column": "2",
              "default_timezone": "Europe/Paris", "default_send_time": "08:00", "consent": "confirm"}  # fmt: skip
    started = client.post(where, data=mapped, follow_redirects=False)
    assert started.status_code == 303
    assert "Importing: 0 of 6 rows" in client.get(where).text
    run_the_beats_runner(site)
    done = client.get(where).text
    assert "2 added, 4 refused" in done and "each asked to confirm" in done
    report = list(csv.reader(io.StringIO(client.get(where.replace("?", "/refused.csv?")).text)))
    assert report[0] == ["line", "address", "reason", "detail"]
    reasons = [("3", "not valid"), ("4", "not valid"), ("5", "earlier in the file"), ("6", "on the suppression list")]
    assert [(row[0], row[2]) for row in report[1:]] == reasons
    assert report[2][1] == "'=cmd|'/C calc'!A0"  # formula-safe
    with site.session() as session:
        kayla = session.scalars(select(Subscriber).where(Subscriber.email == "kayla@example.org")).one()
        assert (kayla.status, kayla.timezone, kayla.first_name) == ("pending", "America/Denver", "Kayla")
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "import-start")).one()
        assert "6 rows; each asked to confirm" in (logged.detail or "")
    site.tick()  # the beat puts the due confirmations in the send queue
    assert site.smtp.to("kayla@example.org")[0].subject.startswith("Confirm")


def test_consent_recorded_starts_them_on_the_course_and_is_asked_for_in_full(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    _, where, page = upload(client, "email\nana@example.org\n")
    form = {"csrf": csrf_of(page), "action": "start", "email_column": "0", "consent": "recorded",
            "default_timezone": "UTC", "default_send_time": "08:00"}  # fmt: skip
    for missing, says in (({"consent_source": "", "consent_date": "2026-01-02"}, "what the list"),
                          ({"consent_source": "The shop", "consent_date": ""}, "YYYY-MM-DD"),
                          ({"consent_source": "The shop", "consent_date": "2999-01-01"}, "after today")):  # fmt: skip
        refused = client.post(where, data={**form, **missing}, follow_redirects=False)
        assert refused.status_code == 400 and says in refused.text, refused.text[:400]
    with site.session() as session:
        assert session.scalar(select(ListImport.state)) == "mapping"
    client.post(where, data={**form, "consent_source": "The shop's sign-up sheet", "consent_date": "2026-01-02"})
    run_the_beats_runner(site)
    with site.session() as session:
        ana = session.scalars(select(Subscriber).where(Subscriber.email == "ana@example.org")).one()
        assert ana.status == "active" and ana.consent_form == "import: The shop's sign-up sheet"
        assert ana.next_send_at is not None
    story = client.get(f"/studio/subscribers/{ana.id}").text
    assert "with the consent recorded for the list" in story and "confirmed by the link" not in story


def test_a_file_that_is_not_a_list_is_refused_and_nothing_is_made(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    for data, says in (("email\ncaf\u00e9@example.org\n".encode("latin-1"), "not UTF-8"),
                       (b"email,name\nkayla@example.org," + b"x" * 3_000_000 + b"\n", "longer than 2,000"),
                       (b"", "no rows")):  # fmt: skip
        status, _, page = upload(client, data)
        assert status == 400 and says in page and "Nothing was imported" in page
    with site.session() as session:
        assert session.scalar(select(func.count()).select_from(ListImport)) == 0


def test_an_import_is_for_publishers_and_of_its_own_course(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    _, where, page = upload(publisher, "email\nana@example.org\n")
    editor = signed_in(site, "ed@example.org", StudioRole.EDITOR, client=browser(site))
    assert editor.get("/studio/import").status_code == 403
    assert editor.get(where).status_code == 403
    assert publisher.get(where.replace("building-emotional-intimacy", "no-such-course")).status_code == 404
    assert publisher.get(re.sub(r"/import/\d+", "/import/999999", where)).status_code == 404
    # Started twice (a double click): it runs once.
    form = {"csrf": csrf_of(page), "action": "start", "email_column": "0", "default_timezone": "UTC",
            "default_send_time": "08:00"}  # fmt: skip
    for _ in range(2):
        assert publisher.post(where, data=form, follow_redirects=False).status_code == 303
    run_the_beats_runner(site)
    with site.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 1
        assert (
            session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "import-start")) == 1
        )
