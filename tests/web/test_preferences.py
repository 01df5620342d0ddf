"""The preferences page: pause, resume, change the hour, restart, download and delete one's data."""

from __future__ import annotations

import hashlib
import json
from datetime import time

from sqlalchemy import func, select

from course.models import Answer, Delivery, Event, Subscriber, SubscriberStatus, Suppression, email_hash

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
    response = site.client.get(f"{preferences(site)}/data")
    assert response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    data = json.loads(response.text)
    assert data["profile"]["email"] == "alex@example.com" and data["profile"]["timezone"] == "Europe/Paris"
    assert data["consents"][0]["form"] == "landing"
    assert [d["email"] for d in data["deliveries"]] == ["confirmation", "welcome"]
    assert [(a["step"], a["band"]) for a in data["answers"]] == [(0, "normal")]
    assert any(click["kind"] == "answer" for click in data["clicks"])


def test_delete_my_data_keeps_only_a_hash_so_the_address_is_never_mailed_again(site: Site) -> None:
    site.sign_up_and_confirm()
    page = preferences(site)
    refused = site.client.post(f"{page}/erase")  # without ticking the box
    assert refused.status_code == 400 and "Nothing was deleted" in refused.text
    erased = site.client.post(f"{page}/erase", data={"sure": "yes"})
    assert erased.status_code == 200 and "Your data is deleted" in erased.text
    with site.session() as session:
        for table in (Subscriber, Delivery, Event, Answer):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table
        (suppression,) = session.scalars(select(Suppression))
    # A keyed hash: the list cannot be tested against an address without the deployment's key.
    assert suppression.email_hash == email_hash("alex@example.com", site.runtime.settings.address_key)
    assert suppression.email_hash != hashlib.sha256(b"alex@example.com").hexdigest()
    assert suppression.reason == "erased"
    assert site.client.get(page).status_code == 404  # the link's subscriber is gone


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
