"""What an old email's unsubscribe link may still do: leave, pause, come back through a new
confirmation, or have a fresh settings link sent to the address. Never open the data itself."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

from sqlalchemy import select

from course.links import LinkSigner, Purpose
from course.models.deliveries import Delivery
from course.models.subscribers import SubscriberStatus

from ..conftest import TEST_SECRET
from .conftest import Site


def test_an_unsubscribe_link_years_old_opens_no_data_but_can_have_a_fresh_link_sent(site: Site) -> None:
    site.sign_up_and_confirm()
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Welcome")
    site.client.post(unsubscribe)
    site.clock.advance(days=2 * 365)  # the email was forwarded, and found two years later
    for page in (site.client.get(unsubscribe), site.client.post(unsubscribe)):
        assert page.status_code == 200
        assert "/preferences/" not in page.text and "alex@example.com" not in page.text
    sent = site.client.post(f"{unsubscribe}/preferences-link")
    assert sent.status_code == 200 and "on its way to your address" in sent.text
    link_email = site.smtp.to("alex@example.com")[-1]
    assert link_email.subject == "Your link to your data"
    fresh = site.link("alex@example.com", "/preferences/", "Your link")
    settings = site.client.get(fresh)
    assert settings.status_code == 200 and "alex@example.com" in settings.text
    # Asking again within the hour sends nothing more.
    site.client.post(f"{unsubscribe}/preferences-link")
    assert [m.subject for m in site.smtp.to("alex@example.com")].count(link_email.subject) == 1


def test_pause_instead_of_leaving(site: Site) -> None:
    site.sign_up_and_confirm()
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Welcome")
    paused = site.client.post(f"{unsubscribe}/pause")
    assert paused.status_code == 200 and "Paused for a week" in paused.text
    alex = site.subscriber("alex@example.com")
    assert alex.status == SubscriberStatus.PAUSED.value and alex.paused_until == site.clock() + timedelta(days=7)


def test_resubscribing_from_the_unsubscribe_page_takes_a_new_confirmation(site: Site) -> None:
    site.sign_up_and_confirm()
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Welcome")
    old_confirm = site.link("alex@example.com", "/confirm/", "Confirm your place")
    site.client.post(unsubscribe)
    site.clock.advance(hours=2)
    # The old confirmation link is no way back.
    assert site.client.post(old_confirm).status_code == 400
    back = site.client.post(f"{unsubscribe}/resubscribe")
    assert back.status_code == 200 and "Check your inbox" in back.text
    assert site.subscriber("alex@example.com").status == SubscriberStatus.UNSUBSCRIBED.value
    new_confirm = site.link("alex@example.com", "/confirm/", "Confirm your place")
    assert new_confirm != old_confirm
    site.clock.advance(minutes=5)
    assert site.client.post(new_confirm).status_code == 200
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value


def test_a_person_who_deleted_their_data_can_sign_up_again(site: Site) -> None:
    site.sign_up_and_confirm()
    site.client.post(f"{site.data_link()}/erase", data={"sure": "yes"})
    site.clock.advance(days=3)
    site.client.post("/subscribe", data={"email": "alex@example.com", "timezone": "UTC"})
    confirm = site.link("alex@example.com", "/confirm/", "Confirm your place")
    site.clock.advance(minutes=5)
    assert site.client.post(confirm).status_code == 200
    assert site.subscriber("alex@example.com").status == SubscriberStatus.ACTIVE.value
    assert site.smtp.to("alex@example.com")[-1].subject.startswith("Welcome")
    with site.session() as session:
        assert session.scalars(select(Delivery.email).order_by(Delivery.id)).all() == ["confirmation", "welcome"]


def test_an_expired_settings_link_opens_nothing_but_can_have_a_fresh_one_sent(site: Site) -> None:
    alex = site.sign_up_and_confirm()
    signer = LinkSigner(TEST_SECRET, "https://course.example.org")
    half_a_year_ago = time.time() - timedelta(days=200).total_seconds()
    with mock.patch("itsdangerous.timed.time.time", return_value=half_a_year_ago):
        old = signer.url(Purpose.PREFERENCES, alex.id).removeprefix("https://course.example.org")
    page = site.client.get(old)
    assert "This link has expired" in page.text and "alex@example.com" not in page.text
    sent = site.client.post(f"{old}/renew")
    assert sent.status_code == 200 and "on its way to your address" in sent.text
    fresh = site.link("alex@example.com", "/preferences/", "Your link")
    assert "alex@example.com" in site.client.get(fresh).text
    # A forged token gets nothing sent.
    assert site.client.post("/preferences/forged.token.value/renew").status_code == 400
