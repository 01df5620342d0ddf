"""The landing page and the sign-up form."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from course.db import make_engine, make_sessionmaker
from course.models import Delivery, Subscriber, SubscriberStatus
from web.app import create_app

from ..conftest import make_settings
from .conftest import Site


def count_subscribers(site: Site) -> int:
    with site.session() as session:
        return session.scalar(select(func.count()).select_from(Subscriber)) or 0


def test_the_landing_page_says_what_the_course_is_and_offers_the_form(site: Site) -> None:
    page = site.client.get("/")
    assert page.status_code == 200
    text = page.text
    for title in ("Practice Daily Check-Ins", "Repair After Conflict", "Get Professional Support"):
        assert title in text
    assert "How long does it take to build emotional intimacy?" in text
    for field in ('for="email"', 'for="first_name"', 'for="send_time"', 'for="timezone"'):
        assert field in text  # every input has its label
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in text
    assert "<script src=" not in text and "https://" not in text.split("</main>")[0].split("<main")[0]


def test_signing_up_sends_a_confirmation_and_records_consent(site: Site) -> None:
    response = site.client.post(
        "/subscribe",
        data={"email": "Alex@Example.com", "first_name": "Alex", "send_time": "07:30", "timezone": "America/Denver"},
        headers={"X-Forwarded-For": "198.51.100.7"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/check-your-inbox"
    (confirmation,) = site.smtp.to("alex@example.com")
    assert confirmation.subject == "Please confirm your place in Building Emotional Intimacy"
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.timezone, alex.send_time.strftime("%H:%M")) == ("pending", "America/Denver", "07:30")
    assert alex.consent_form == "landing" and alex.consent_user_agent and alex.consent_at == site.clock()


def test_the_answer_never_reveals_who_is_subscribed(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    fields = {"first_name": "", "send_time": "08:00", "timezone": "UTC"}
    answers = [
        site.client.post("/subscribe", data={**fields, "email": email}, follow_redirects=False)
        for email in ("alex@example.com", "nobody-yet@example.com")
    ]
    assert [(a.status_code, a.headers["location"]) for a in answers] == [(303, "/check-your-inbox")] * 2
    # The subscriber who is already active is not sent a second course (or a second confirmation).
    assert [m.subject for m in site.smtp.to("alex@example.com")].count(
        "Please confirm your place in Building Emotional Intimacy"
    ) == 1


def test_a_filled_honeypot_is_thanked_and_ignored(site: Site) -> None:
    response = site.client.post(
        "/subscribe",
        data={"email": "bot@example.com", "timezone": "UTC", "send_time": "08:00", "website": "http://spam"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert count_subscribers(site) == 0 and site.smtp.received == []


def test_bad_input_is_explained_and_nothing_is_stored(site: Site) -> None:
    cases = [
        ({"email": "alex@", "timezone": "UTC"}, "Please check the email address."),
        ({"email": "alex@example.com", "timezone": "Mars/Olympus"}, "Choose a time zone from the list."),
        ({"email": "alex@example.com", "timezone": ""}, "Choose a time zone from the list."),
        ({"email": "alex@example.com", "timezone": "UTC", "first_name": "Al\r\nBcc: x@example.org"}, "letters"),
        ({"email": "alex@example.com", "timezone": "UTC", "send_time": "25:99"}, "Choose a time of day."),
    ]
    for fields, message in cases:
        response = site.client.post("/subscribe", data={"send_time": "08:00", **fields})
        assert response.status_code == 400 and message in response.text, fields
        assert 'aria-invalid="true"' in response.text or "time of day" in message
    assert count_subscribers(site) == 0 and site.smtp.received == []


def test_list_bombing_one_address_is_limited_and_still_looks_the_same(site: Site) -> None:
    for _hour in range(6):
        response = site.client.post(
            "/subscribe", data={"email": "victim@example.com", "timezone": "UTC"}, follow_redirects=False
        )
        assert response.status_code == 303
        site.clock.advance(hours=1, minutes=1)
    # One an hour would allow six; the per-address limit stops at three a day.
    assert len(site.smtp.to("victim@example.com")) == 3


def test_one_client_cannot_sign_up_the_world(site: Site) -> None:
    for number in range(15):
        site.client.post("/subscribe", data={"email": f"person{number}@example.com", "timezone": "UTC"})
    assert count_subscribers(site) == 10
    assert len(site.smtp.received) == 10


def test_confirming_needs_a_press_of_the_button_not_a_visit(site: Site) -> None:
    site.client.post("/subscribe", data={"email": "alex@example.com", "timezone": "UTC"})
    confirm = site.link("alex@example.com", "/confirm/")
    for method in ("GET", "HEAD"):
        response = site.client.request(method, confirm)
        assert response.status_code == 200
    assert site.subscriber("alex@example.com").status == SubscriberStatus.PENDING.value
    assert "Yes, start the course" in site.client.get(confirm).text
    done = site.client.post(confirm)
    assert done.status_code == 200 and "You are in" in done.text
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value
    assert site.smtp.to("alex@example.com")[-1].subject.startswith("Welcome to Building Emotional Intimacy")
    again = site.client.post(confirm)
    assert again.status_code == 200 and "already confirmed" in again.text
    assert len(site.smtp.to("alex@example.com")) == 2


def test_a_broker_that_is_away_loses_no_sign_up(database_url: str) -> None:
    # Redis on a port where nothing listens: queueing fails, the sign-up does not.
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/subscribe", data={"email": "alex@example.com", "timezone": "UTC"}, follow_redirects=False
        )
    assert response.status_code == 303
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        (delivery,) = session.scalars(select(Delivery))
    assert (delivery.email, delivery.state) == ("confirmation", "claimed")  # the beat hands it out later
    engine.dispose()
