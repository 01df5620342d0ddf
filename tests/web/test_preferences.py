"""The preferences page: pause, resume, change the hour, restart; download and delete one's data from a
link emailed on request, for an hour, once."""

from __future__ import annotations

import hashlib
import json
import threading
import time as time_module
from datetime import time
from unittest import mock

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course.curriculum import load_course
from course.deliveries.claim import claim_due
from course.links import LinkSigner, Purpose
from course.models.base import Base
from course.models.deliveries import Delivery, Suppression
from course.models.engagement import Answer, Event
from course.models.subscribers import Subscriber, SubscriberStatus, email_hash

from ..conftest import TEST_SECRET
from .conftest import Site


def preferences(site: Site) -> str:
    return site.link("alex@example.com", "/preferences/", "Welcome")


def test_pause_for_a_week_then_resume(site: Site) -> None:
    site.sign_up_and_confirm()
    page = preferences(site)
    assert "Pause for a week" in site.client.get(page).text
    paused = site.client.post(f"{page}/pause", data={"length": "week"})
    assert "Paused for a week" in paused.text
    alex = site.subscriber("alex@example.com")
    assert alex.status == SubscriberStatus.PAUSED.value and alex.paused_until is not None
    resumed = site.client.post(f"{page}/resume")
    assert "Resumed." in resumed.text
    alex = site.subscriber("alex@example.com")
    assert alex.status == SubscriberStatus.ACTIVE.value and alex.next_send_at is not None


def test_changing_the_time_and_zone_moves_the_next_email(site: Site) -> None:
    site.sign_up_and_confirm()
    page = preferences(site)
    site.client.post(f"{page}/schedule", data={"send_time": "21:30", "timezone": "Asia/Tokyo"})
    alex = site.subscriber("alex@example.com")
    assert (alex.send_time, alex.timezone) == (time(21, 30), "Asia/Tokyo")
    assert alex.next_send_at is not None
    local = alex.next_send_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert local.time() == time(21, 30)
    bad = site.client.post(f"{page}/schedule", data={"send_time": "21:30", "timezone": "Nowhere/Atlantis"})
    assert bad.status_code == 400 and "time zone" in bad.text


def test_restart_the_course(site: Site) -> None:
    site.sign_up_and_confirm()
    site.client.post(f"{preferences(site)}/restart")
    alex = site.subscriber("alex@example.com")
    assert (alex.enrolment, alex.current_step, alex.status) == (2, None, SubscriberStatus.ACTIVE.value)


def test_download_my_data_has_profile_consent_deliveries_answers_and_clicks(site: Site) -> None:
    site.sign_up_and_confirm()
    site.clock.advance(minutes=30)
    site.submit(next(h for h in site.links("alex@example.com", "Welcome") if h.startswith("/answer/")))
    response = site.client.post(f"{site.data_link()}/download")
    assert response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    data = json.loads(response.text)
    assert data["profile"]["email"] == "alex@example.com" and data["profile"]["timezone"] == "Europe/Paris"
    assert data["consents"][0]["form"] == "landing"
    assert [d["email"] for d in data["deliveries"]] == ["confirmation", "welcome", "preferences-link"]
    assert [(a["step"], a["band"]) for a in data["answers"]] == [(0, "normal")]
    assert any(click["kind"] == "answer" for click in data["clicks"])


def test_delete_my_data_keeps_only_a_hash_so_the_address_is_never_mailed_again(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    site.client.get(site.link("alex@example.com", "/consultation/", "Day 1"), follow_redirects=False)  # a click
    page = site.data_link()
    refused = site.client.post(f"{page}/erase")  # without ticking the box
    assert refused.status_code == 400 and "Nothing was deleted" in refused.text
    erased = site.client.post(f"{page}/erase", data={"sure": "yes"})
    assert erased.status_code == 200 and "Your data is deleted" in erased.text
    with site.session() as session:
        for table in (Subscriber, Delivery, Event, Answer):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table
        # And every other table that keeps something of a subscriber (their clicked links, say).
        theirs = [kept for kept in Base.metadata.tables.values() if "subscriber_id" in kept.c]
        assert {"clicked_links", "progress", "events"} <= {kept.name for kept in theirs}
        for kept in theirs:
            assert session.scalar(select(func.count()).where(kept.c.subscriber_id.is_not(None))) == 0, kept.name
        (suppression,) = session.scalars(select(Suppression))
    # A keyed hash: the list cannot be tested against an address without the deployment's key.
    assert suppression.email_hash == email_hash("alex@example.com", site.runtime.settings.address_key)
    assert suppression.email_hash != hashlib.sha256(b"alex@example.com").hexdigest()
    assert suppression.reason == "erased"
    assert site.client.get(page).status_code == 404  # its subscriber is gone


def test_metrics_count_people_and_machines_apart(site: Site) -> None:
    site.sign_up_and_confirm()
    site.clock.advance(minutes=30)
    answer = next(h for h in site.links("alex@example.com", "Welcome") if h.startswith("/answer/"))
    site.client.get(answer)
    site.client.head(answer)
    text = site.client.get("/metrics").text
    assert 'course_subscribers{status="active"} 1.0' in text
    assert "course_confirmations 1.0" in text
    assert 'course_deliveries{email="welcome",state="sent"} 1.0' in text
    assert 'course_clicks{kind="click",who="human"} 1.0' in text
    assert 'course_clicks{kind="click",who="automated"} 1.0' in text
    assert "course_sending_paused 0.0" in text
    assert 'course_send_queue{state="waiting"} 0.0' in text and "course_send_queue_oldest_seconds 0.0" in text
    site.clock.to(site.subscriber("alex@example.com").next_send_at)  # type: ignore[arg-type]
    with Session(site.runtime.engine) as session:  # day 1 claimed, nobody woken yet
        claim_due(session, load_course(), site.clock(), 10, site.runtime.timing, "r0", 50)
        session.commit()
    site.clock.advance(seconds=90)
    text = site.client.get("/metrics").text
    assert 'course_send_queue{state="waiting"} 1.0' in text and "course_send_queue_oldest_seconds 90.0" in text


def test_the_footer_link_never_opens_the_readers_data(site: Site) -> None:
    """Every email carries the preferences link, and emails get forwarded: it opens settings, not data."""
    site.sign_up_and_confirm()
    page = preferences(site)
    text = site.client.get(page).text
    assert "Email me a link to my data" in text and "/my-data/" not in text
    for method, path in (("GET", f"{page}/data"), ("POST", f"{page}/data"), ("POST", f"{page}/erase")):
        assert site.client.request(method, path).status_code in (404, 405), path
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value
    # No course email carries a link to the data: only the email that answers a request for it.
    for message in site.smtp.to("alex@example.com"):
        assert "/my-data/" not in message.data.decode("latin-1").replace("=\r\n", ""), message.subject


def test_a_data_link_works_once_and_uses_up_every_older_one(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    with mock.patch("itsdangerous.timed.time.time", return_value=time_module.time() - 600):
        older = signer.url(Purpose.DATA, alex.id).removeprefix("https://course.example.org")  # asked for before
    link = site.data_link()
    assert site.client.head(link).status_code == 200 and site.client.get(link).status_code == 200  # scanners
    assert "alex@example.com" in site.client.get(link).text
    assert site.client.post(f"{link}/download").status_code == 200
    for token in (link, older):
        for method, path in (("GET", token), ("POST", f"{token}/download"), ("POST", f"{token}/erase")):
            used = site.client.request(method, path, data={"sure": "yes"} if path.endswith("erase") else None)
            assert used.status_code == 410 and "used already" in used.text, path
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value  # nothing erased


def test_two_uses_of_one_data_link_at_once_use_it_once(site: Site) -> None:
    site.sign_up_and_confirm()
    link = site.data_link()
    start = threading.Barrier(2)
    codes: list[int] = []

    def download() -> None:
        client = TestClient(site.client.app, base_url="https://course.example.org")
        start.wait()
        codes.append(client.post(f"{link}/download").status_code)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(codes) == [200, 410]


def test_a_data_link_runs_out_after_an_hour(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    with mock.patch("itsdangerous.timed.time.time", return_value=time_module.time() - 3601):
        old = signer.url(Purpose.DATA, alex.id).removeprefix("https://course.example.org")
    for method, path in (("GET", old), ("POST", f"{old}/download"), ("POST", f"{old}/erase")):
        response = site.client.request(method, path, data={"sure": "yes"} if path.endswith("erase") else None)
        assert response.status_code == 400 and "run out" in response.text, path
    forged = signer.url(Purpose.PREFERENCES, alex.id).removeprefix("https://course.example.org/preferences")
    assert site.client.post(f"/my-data{forged}/download").status_code == 400  # a settings token is no data token
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value
