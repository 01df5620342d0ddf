"""The landing page and the sign-up form."""

from __future__ import annotations

import asyncio
import html
import re
import threading
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cli.root import Root
from course.db import make_engine, make_sessionmaker
from course.models.deliveries import Delivery
from course.models.subscribers import SignupRequest, Subscriber, SubscriberStatus
from web.pages import CLIENT_LIMIT

from ..conftest import make_settings
from ..support.asgi import DirectClient
from .conftest import BROWSER, Site, running_site


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
    # The time zone comes from the device, by our own script (no inline script, nothing remote).
    assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/landing.js">']
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in site.client.get("/static/landing.js").text
    assert "https://" not in text.split("</main>")[0].split("<main")[0]


def test_signing_up_sends_a_confirmation_and_records_consent(site: Site) -> None:
    response = site.client.post(
        "/subscribe",
        data={"email": "Alex@Example.com", "first_name": "Alex", "send_time": "07:30", "timezone": "America/Denver"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/check-your-inbox"
    (confirmation,) = site.smtp.to("alex@example.com")
    assert confirmation.subject == "Confirm your place in Building Emotional Intimacy"
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.timezone, alex.send_time.strftime("%H:%M")) == ("pending", "America/Denver", "07:30")
    signed_up_at = site.clock()
    page = site.client.get(site.link("alex@example.com", "/confirm/"))
    assert "at 07:30 your time (America/Denver), greeting you as Alex" in page.text
    site.clock.advance(minutes=3)
    site.client.post(site.link("alex@example.com", "/confirm/"))
    alex = site.subscriber("alex@example.com")
    assert alex.consent_form == "landing" and alex.consent_user_agent and alex.consent_at == signed_up_at


def sign_up(site: Site, email: str, **fields: str) -> None:
    response = site.client.post(
        "/subscribe", data={"email": email, "timezone": "UTC", **fields}, follow_redirects=False
    )
    assert response.status_code == 303


def greeting(site: Site, recipient: str) -> str:
    text = site.smtp.to(recipient)[-1].message.get_body(preferencelist=("plain",))
    assert text is not None
    lines: list[str] = text.get_content().splitlines()
    return next(line for line in lines if line.startswith("Hi "))


def test_a_stranger_cannot_put_words_in_a_subscribers_email_or_change_their_settings(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com", timezone="Europe/Paris")
    site.client.post(site.link("alex@example.com", "/unsubscribe/", "Welcome"))
    site.clock.advance(hours=2)
    sign_up(site, "alex@example.com", first_name="Account suspended", timezone="Pacific/Kiritimati",
            send_time="03:00")  # fmt: skip
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.first_name, alex.timezone, alex.send_time.strftime("%H:%M")) == (
        "unsubscribed", "Alex", "Europe/Paris", "08:00",
    )  # fmt: skip
    # The confirmation greets with what its requester typed, and its page shows what confirming would set.
    assert greeting(site, "alex@example.com") == "Hi Account suspended,"
    assert "(Pacific/Kiritimati)" in site.client.get(site.link("alex@example.com", "/confirm/")).text
    # A longer message, a link or a phone number is not a name and is refused outright.
    for text in ("Your account is suspended - call", "evil.example/login", "555 0100"):
        response = site.client.post("/subscribe", data={"email": "bob@example.com", "timezone": "UTC",
                                                        "first_name": text})  # fmt: skip
        assert response.status_code == 400 and "just your first name" in response.text


def test_list_bombing_one_mailbox_is_paced_and_still_looks_the_same(site: Site) -> None:
    for hour in range(6):
        sign_up(site, f"victim+{hour}@example.com")
        site.clock.advance(hours=1, minutes=1)
    # One an hour at most, three a day: the rest wait for tomorrow instead of flooding the inbox.
    assert sum(len(site.smtp.to(f"victim+{hour}@example.com")) for hour in range(6)) == 3


def test_a_stranger_cannot_use_up_the_owners_sign_up(site: Site) -> None:
    for _ in range(4):
        sign_up(site, "owner@example.com", first_name="Mallory", timezone="Asia/Tokyo")
    sign_up(site, "owner@example.com", first_name="Olive", timezone="Europe/Paris", send_time="06:30")
    assert [greeting(site, "owner@example.com")] == ["Hi Mallory,"]  # only one so far; the rest wait
    site.clock.advance(hours=1, minutes=1)
    site.tick()  # the beat hands out the paced confirmation when its time comes
    assert len(site.smtp.to("owner@example.com")) == 2
    assert greeting(site, "owner@example.com") == "Hi Olive,"
    confirm = site.link("owner@example.com", "/confirm/")
    assert "at 06:30 your time (Europe/Paris), greeting you as Olive" in site.client.get(confirm).text
    site.clock.advance(minutes=5)
    site.client.post(confirm)
    owner = site.subscriber("owner@example.com")
    assert (owner.status, owner.first_name, owner.timezone) == ("active", "Olive", "Europe/Paris")


def test_the_answer_goes_before_any_of_the_sign_up_work(site: Site) -> None:
    """A new address and a known one answer alike: the work that differs runs after the answer."""
    body = urlencode({"email": "new@example.com", "timezone": "UTC", "send_time": "08:00"}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
        "path": "/subscribe", "raw_path": b"/subscribe", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"course.example.org"), (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode()), (b"user-agent", b"Mozilla/5.0")],
        "client": ("203.0.113.5", 50000), "server": ("course.example.org", 443),
    }  # fmt: skip
    seen: dict[str, int] = {}
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = int(message["status"])  # type: ignore[call-overload]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            seen["subscribers when answered"] = count_subscribers(site)

    # In a thread of its own: the browser tests leave an event loop running in this one.
    caller = threading.Thread(target=lambda: asyncio.run(site.client.app(scope, receive, send)))  # type: ignore[arg-type]
    caller.start()
    caller.join(timeout=60)
    assert seen == {"status": 303, "subscribers when answered": 0}
    assert count_subscribers(site) == 1 and len(site.smtp.to("new@example.com")) == 1


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
        "Confirm your place in Building Emotional Intimacy"
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
        ({"email": "alex@example.com", "timezone": "localtime"}, "Choose a time zone from the list."),
        ({"email": "alex@example.com", "timezone": "EST5EDT"}, "Choose a time zone from the list."),
        ({"email": "alex@example.com", "timezone": "UTC", "send_time": "08:00:30"}, "whole minute"),
        ({"email": "=?utf-8?q?x=40evil.example?=@example.com", "timezone": "UTC"}, "Please check the email"),
        ({"email": "alex@example.com", "timezone": ""}, "Choose a time zone from the list."),
        ({"email": "alex@example.com", "timezone": "UTC", "first_name": "Al\r\nBcc: x@example.org"}, "letters"),
        ({"email": "alex@example.com", "timezone": "UTC", "send_time": "25:99"}, "Choose a time of day"),
    ]
    for fields, message in cases:
        response = site.client.post("/subscribe", data={"send_time": "08:00", **fields})
        assert response.status_code == 400 and message in response.text, fields
        assert 'aria-invalid="true"' in response.text or "time of day" in message
    assert count_subscribers(site) == 0 and site.smtp.received == []


def test_one_client_cannot_sign_up_the_world(site: Site) -> None:
    for number in range(15):
        site.client.post("/subscribe", data={"email": f"person{number}@example.com", "timezone": "UTC"})
    assert count_subscribers(site) == 10
    assert len(site.smtp.received) == 10
    # The limit's window follows the app's clock: an hour later the same client may sign up again.
    site.clock.advance(hours=1)
    site.client.post("/subscribe", data={"email": "person15@example.com", "timezone": "UTC"})
    assert count_subscribers(site) == 11


def test_a_forged_forwarded_for_neither_escapes_the_limit_nor_is_stored(site: Site) -> None:
    for number in range(12):
        site.client.post(
            "/subscribe",
            data={"email": f"person{number}@example.com", "timezone": "UTC"},
            headers={"X-Forwarded-For": f"198.51.100.{number}, {'x' * 100}"},
        )
    assert count_subscribers(site) == 10  # the header changed nothing: no proxy is trusted here
    with site.session() as session:
        assert session.scalars(select(SignupRequest.consent_ip).distinct()).all() == [None]  # "testclient"


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
    assert site.smtp.to("alex@example.com")[-1].subject.startswith("Welcome: where do you two stand today?")
    again = site.client.post(confirm)
    assert again.status_code == 200 and "already confirmed" in again.text
    assert len(site.smtp.to("alex@example.com")) == 2


def test_a_broker_that_is_away_loses_no_sign_up(database_url: str) -> None:
    # Redis on a port where nothing listens: queueing fails, the sign-up does not. The app as `course web`
    # serves it (the composition root's, queueing to its Celery app).
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0")
    with Root(settings) as root, TestClient(root.web()) as client:
        response = client.post(
            "/subscribe", data={"email": "alex@example.com", "timezone": "UTC"}, follow_redirects=False
        )
    assert response.status_code == 303
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        (delivery,) = session.scalars(select(Delivery))
    assert (delivery.email, delivery.state) == ("confirmation", "claimed")  # the beat hands it out later
    engine.dispose()


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},  # a browser too old to say Sec-Fetch-Site
    {"Origin": "https://course.example.org.evil.example"},
    {"Origin": "http://course.example.org:8080"},
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},  # a sandboxed frame, or a no-referrer page
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://www.course.example.org", "Sec-Fetch-Site": "same-site"},
])  # fmt: skip
def test_a_sign_up_sent_from_another_sites_page_is_refused_and_stores_nothing(
    site: Site, headers: dict[str, str]
) -> None:
    response = site.client.post("/subscribe", data={"email": "victim@example.com", "timezone": "UTC"},
                                headers=headers, follow_redirects=False)  # fmt: skip
    assert response.status_code == 403 and "sign up on the course" in response.text
    assert count_subscribers(site) == 0 and site.smtp.to("victim@example.com") == []


def test_our_own_page_and_an_allowed_embed_may_send_the_form(database_url: str, smtp: Any) -> None:
    with running_site(database_url, smtp, signup_embed_origins="https://www.practice.example") as site:
        for number, headers in enumerate([
            {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # what Chromium sends from our own page
            {"Origin": "https://course.example.org", "Sec-Fetch-Site": "same-origin"},
            {"Origin": "https://www.practice.example", "Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},  # our page in a browser too old to say Sec-Fetch-Site
            {},  # no browser: a script, limited per client and per mailbox
        ]):  # fmt: skip
            response = site.client.post("/subscribe", data={"email": f"p{number}@example.com", "timezone": "UTC"},
                                        headers=headers, follow_redirects=False)  # fmt: skip
            assert response.status_code == 303, headers
        assert count_subscribers(site) == 5
        refused = site.client.post("/subscribe", data={"email": "x@example.com", "timezone": "UTC"},
                                   headers={"Origin": "https://www.other.example"}, follow_redirects=False)  # fmt: skip
        assert refused.status_code == 403


def test_an_embed_origin_that_is_not_an_origin_is_a_configuration_error() -> None:
    with pytest.raises(SystemExit, match="SIGNUP_EMBED_ORIGINS"):
        make_settings(signup_embed_origins="https://www.practice.example/signup")


def test_ipv6_clients_are_limited_per_64_network(site: Site) -> None:
    """A client of one /64 holds 2**64 addresses: the per-client limit counts the network."""
    app = site.client.app
    sent = 0
    for number in range(CLIENT_LIMIT[0] + 5):
        client = DirectClient(app, base_url="https://course.example.org", headers={"User-Agent": BROWSER},  # type: ignore[arg-type]
                              client=f"2001:db8:1:2::{number + 1:x}")  # fmt: skip
        try:
            client.post("/subscribe", data={"email": f"person{number}@example.com", "timezone": "UTC"})
        finally:
            client.close()
        sent = count_subscribers(site)
    assert sent == CLIENT_LIMIT[0]
    # Another /64 is another client.
    other = DirectClient(app, base_url="https://course.example.org", headers={"User-Agent": BROWSER},  # type: ignore[arg-type]
                         client="2001:db8:1:3::1")  # fmt: skip
    try:
        other.post("/subscribe", data={"email": "neighbour@example.com", "timezone": "UTC"})
    finally:
        other.close()
    assert count_subscribers(site) == CLIENT_LIMIT[0] + 1


def test_the_studios_embed_snippet_signs_up_from_an_allowed_site_and_says_who_may_hold_it(
    database_url: str, smtp: Any
) -> None:
    with running_site(database_url, smtp, signup_embed_origins="https://www.practice.example") as site:
        from course.models.studio import StudioRole

        from .test_studio_editing import signed_in

        client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
        page = html.unescape(client.get("/studio/course?course=building-emotional-intimacy").text)
        assert "Allowed from https://www.practice.example" in page
        snippet = re.search(r'<textarea id="embed-snippet"[^>]*>(.*?)</textarea>', page, re.S)
        assert snippet, "the course page has no snippet"
        form = snippet.group(1)
        action = re.search(r'<form method="post" action="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        assert action == "https://course.example.org/subscribe"
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
        assert fields == {"course": "building-emotional-intimacy", "timezone": ""}
        names = set(re.findall(r'name="([^"]+)"', form))
        assert names == {"course", "email", "first_name", "send_time", "timezone", "website"}
        sent = {**fields, "email": "reader@example.com", "first_name": "Robin", "send_time": "07:30",
                "timezone": "Europe/Paris", "website": ""}  # fmt: skip
        practice = {"Origin": "https://www.practice.example", "Sec-Fetch-Site": "cross-site"}
        answer = site.client.post("/subscribe", data=sent, follow_redirects=False, headers=practice)
        assert answer.status_code == 303 and answer.headers["location"] == "/check-your-inbox"
        with site.session() as session:
            reader = session.scalars(select(Subscriber).where(Subscriber.email == "reader@example.com")).one()
            request = session.scalars(select(SignupRequest).where(SignupRequest.subscriber_id == reader.id)).one()
        assert reader.course_slug == "building-emotional-intimacy" and reader.timezone == "Europe/Paris"
        assert request.consent_form == "embedded"
        other = {"Origin": "https://www.other.example", "Sec-Fetch-Site": "cross-site"}
        elsewhere = site.client.post("/subscribe", data={**sent, "email": "other@example.com"},
                                     follow_redirects=False, headers=other)  # fmt: skip
        assert elsewhere.status_code == 403
