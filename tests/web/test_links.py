"""The daily links, with real emails: exercise done, checklist answers, consultation, resources,
unsubscribe; and the hostile cases: forged, wrong-purpose and replayed tokens, scanners."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from course.curriculum import load_course
from course.deliveries.claim import claim_due
from course.links import LinkSigner, Purpose
from course.models.deliveries import Delivery, DeliveryState
from course.models.engagement import Answer, Event
from course.models.subscribers import SubscriberStatus

from ..conftest import TEST_SECRET
from .conftest import Site


def events(site: Site, kind: str | None = None) -> list[Event]:
    with site.session() as session:
        query = select(Event).order_by(Event.id)
        if kind:
            query = query.where(Event.kind == kind)
        return list(session.scalars(query))


def test_marking_the_exercise_done_is_recorded_once_and_shows_tomorrow(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    exercise = site.link("alex@example.com", "/exercise/", "Day 1")
    page = site.client.get(exercise)
    assert page.status_code == 200
    assert "The 5-Minute Daily Check-In" in page.text and "I did it" in page.text
    assert "Tomorrow" in page.text
    assert events(site, "exercise-done") == []  # looking is not doing
    for _ in range(2):
        done = site.client.post(exercise)
        assert done.status_code == 200 and "Done." in done.text
    assert [(e.step, e.enrolment) for e in events(site, "exercise-done")] == [(1, 1)]
    (click,) = [e for e in events(site, "click") if e.value == "exercise"]
    assert click.automated is False and click.seconds_since_delivery == pytest.approx(1800)


def test_each_readers_exercise_page_holds_their_own_link_and_state(site: Site) -> None:
    """The page is made once for every reader of a day: each still gets their own form and their own "done"."""
    for email in ("alex@example.com", "bea@example.com"):
        site.sign_up_and_confirm(email)
    site.to_day_one()
    links = {email: site.link(email, "/exercise/", "Day 1") for email in ("alex@example.com", "bea@example.com")}
    assert links["alex@example.com"] != links["bea@example.com"]
    site.client.post(links["alex@example.com"])  # Alex marks it done; Bea does not
    for _ in range(2):  # the second time from what the process kept
        for email, link in links.items():
            page = site.client.get(link)
            assert page.status_code == 200 and "The 5-Minute Daily Check-In" in page.text
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert ("Done." in page.text) is (email == "alex@example.com")
            forms = re.findall(r'<form method="post" action="([^"]+)"', page.text)
            assert forms == ([] if email == "alex@example.com" else [link]), forms
            assert "token-" not in page.text
    assert site.client.post(links["bea@example.com"]).status_code == 200  # her form posts to her own link
    assert len(events(site, "exercise-done")) == 2


def test_a_checklist_band_link_shows_its_meaning_and_saves_only_on_request(site: Site) -> None:
    site.sign_up_and_confirm()
    site.clock.advance(minutes=30)
    band_links = [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")]
    _normal, prioritise, significant, interactive = band_links
    page = site.client.get(significant)
    assert "4+ checked: Emotional distance is significant" in page.text
    assert "If you recognize several of these signs, do not panic." in page.text
    assert "Save my answer" in page.text
    with site.session() as session:
        assert session.scalars(select(Answer)).all() == []
    site.submit(significant)
    site.clock.advance(minutes=5)
    changed = site.submit(prioritise)  # a change of mind keeps the history
    assert "Saved." in changed.text
    with site.session() as session:
        history = [(a.step, a.band) for a in session.scalars(select(Answer).order_by(Answer.id))]
    assert history == [(0, "significant"), (0, "prioritise")]
    shown = site.client.get(interactive)
    assert "Your saved answer: <strong>2-3 checked: Time to prioritize connection</strong>" in shown.text


def test_the_interactive_checklist_scores_the_ticked_items(site: Site) -> None:
    site.sign_up_and_confirm()
    interactive = [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")][-1]
    page = site.client.get(interactive)
    assert page.text.count('type="checkbox" name="items"') == 8
    saved = site.submit(interactive, items=["1", "3", "5", "7", "99", "-1"])
    assert "4+ checked: Emotional distance is significant" in saved.text  # 99 and -1 are not items
    with site.session() as session:
        (answer,) = session.scalars(select(Answer))
    assert (answer.score, answer.items, answer.band) == (4, "1,3,5,7", "significant")


def test_the_completion_page_compares_the_retake_with_the_baseline(site: Site) -> None:
    site.sign_up_and_confirm()
    site.submit([h for h in site.links("alex@example.com", "Welcome") if h.startswith("/answer/")][2])
    for _ in range(20):  # days 1-18 and the completion
        alex = site.subscriber("alex@example.com")
        if alex.next_send_at is None:
            break
        site.clock.to(alex.next_send_at)
        site.tick()
    assert site.subscriber("alex@example.com").status == SubscriberStatus.COMPLETED.value
    retake = next(h for h in site.links("alex@example.com", "You did it") if h.startswith("/answer/"))
    result = site.submit(retake)
    assert "Compared with where you started" in result.text
    assert "Fewer signs than when you started" in result.text


def test_the_consultation_link_redirects_to_the_configured_page_with_utm(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    consultation = site.link("alex@example.com", "/consultation/", "Day 1")
    response = site.client.get(consultation + "?next=https://evil.example.org", follow_redirects=False)
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "booking.example.org", "/free-consultation")
    assert parse_qs(target.query) == {
        "from": ["course"], "utm_source": ["email-course"], "utm_medium": ["email"],
        "utm_campaign": ["building-emotional-intimacy"], "utm_content": ["day-01"],
    }  # fmt: skip
    assert [(e.step, e.automated) for e in events(site, "consultation")] == [(1, False)]


def test_resource_links_go_to_the_configured_address(site: Site) -> None:
    site.sign_up_and_confirm()
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    alex = site.subscriber("alex@example.com")
    quiz = signer.url(Purpose.RESOURCE, alex.id, 16, "stonewalling-quiz").removeprefix("https://course.example.org")
    response = site.client.get(quiz, follow_redirects=False)
    assert response.headers["location"].startswith("https://quiz.example.org/stonewalling?utm_source=email-course")
    unknown = signer.url(Purpose.RESOURCE, alex.id, 16, "no-such-guide").removeprefix("https://course.example.org")
    assert site.client.get(unknown, follow_redirects=False).status_code == 404


@pytest.mark.parametrize(
    ("method", "agent", "wait_minutes"),
    [
        ("HEAD", "Mozilla/5.0 (iPhone)", 30),
        ("GET", "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))", 30),
        ("GET", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) HeadlessChrome/120.0 Safari/537.36", 30),
        ("GET", "", 30),
        ("GET", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Mobile/15E148 Safari/604.1", 0),  # seconds after delivery
    ],
)
def test_scanners_are_flagged_and_change_nothing(site: Site, method: str, agent: str, wait_minutes: int) -> None:
    site.sign_up_and_confirm()
    alex = site.subscriber("alex@example.com")
    site.clock.to(alex.next_send_at)  # type: ignore[arg-type]
    site.tick()
    site.clock.advance(seconds=2 if wait_minutes == 0 else wait_minutes * 60)
    links = site.links("alex@example.com", "Day 1")
    for href in links:
        site.client.request(method, href, headers={"User-Agent": agent}, follow_redirects=False)
    clicks = [e for e in events(site) if e.kind in ("click", "consultation", "resource")]
    assert clicks and all(event.automated for event in clicks)
    assert events(site, "exercise-done") == [] and events(site, "answer") == []
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value  # the unsubscribe link too


@pytest.mark.parametrize("path", ["/exercise/", "/answer/", "/consultation/", "/unsubscribe/", "/preferences/"])
def test_forged_and_wrong_purpose_tokens_get_a_friendly_400(site: Site, path: str) -> None:
    site.sign_up_and_confirm()
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    alex = site.subscriber("alex@example.com")
    wrong_purpose = signer.token(Purpose.CONFIRM, alex.id, 1)
    forged = LinkSigner("someone-else-s-secret-key-0123456789abcd", "x").token(Purpose.UNSUBSCRIBE, alex.id, 1)
    for token in (wrong_purpose, forged, "garbage", "a" * 300, wrong_purpose[:-3]):
        for method in ("GET", "POST"):
            response = site.client.request(method, path + token, follow_redirects=False)
            assert response.status_code in (400, 404, 405), (path, token, response.status_code)
            if response.status_code != 405:
                assert "<h1>" in response.text and "Traceback" not in response.text
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value


def test_a_link_of_someone_who_left_shows_its_content_but_records_nothing(site: Site) -> None:
    site.sign_up_and_confirm()
    site.to_day_one()
    exercise = site.link("alex@example.com", "/exercise/", "Day 1")
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Day 1")
    site.client.post(unsubscribe)
    before = len(events(site))
    page = site.client.get(exercise)
    assert page.status_code == 200 and "The 5-Minute Daily Check-In" in page.text
    site.client.post(exercise)
    assert len(events(site)) == before


def test_one_click_unsubscribe_is_immediate_idempotent_and_stops_a_claimed_email(site: Site) -> None:
    site.sign_up_and_confirm()
    alex = site.subscriber("alex@example.com")
    site.clock.to(alex.next_send_at)  # type: ignore[arg-type]
    with Session(site.runtime.engine) as session:  # day 1 claimed by the beat, not yet sent
        assert claim_due(session, load_course(), site.clock(), 10, site.runtime.timing, None, 50).emails == 1
        session.commit()
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Welcome")
    site.client.cookies.clear()
    for _ in range(2):  # RFC 8058: a POST with this body, no cookie, no login; twice is the same as once
        response = site.client.post(
            unsubscribe, content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert response.status_code == 200 and "You are unsubscribed" in response.text
    assert site.subscriber("alex@example.com").status == SubscriberStatus.UNSUBSCRIBED.value
    site.deliver()  # the worker takes the batch after all
    with site.session() as session:
        (day_one,) = session.scalars(select(Delivery).where(Delivery.step == 1))
    assert day_one.state == DeliveryState.SKIPPED.value
    assert not any(m.subject.startswith("Day 1") for m in site.smtp.received)


def test_the_unsubscribe_page_offers_the_button_a_pause_and_no_way_into_the_data(site: Site) -> None:
    site.sign_up_and_confirm()
    page = site.client.get(site.link("alex@example.com", "/unsubscribe/", "Welcome"))
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "Pause for a week instead" in page.text and "Email me a link to my settings" in page.text
    # The unsubscribe link never expires: it must not hand out a (fresh) preferences link itself.
    assert "/preferences/" not in page.text
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value
