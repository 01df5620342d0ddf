"""The last email of the course completes it only for someone still on it: a reader who unsubscribes or
pauses while it is being handed over keeps what they chose (both ways a step is recorded: a chunk's
statement when accepted, the session when refused for good)."""

from __future__ import annotations

from sqlalchemy import select

from course.deliveries.sending import mark_failed
from course.models.deliveries import Delivery
from course.models.subscribers import Subscriber

from ..support.smtp import Received
from .conftest import Site


def to_the_last_step(site: Site, email: str) -> int:
    """Send every email but the last; returns the last step's number."""
    site.sign_up_and_confirm(email)
    steps = len(site.runtime.writers(site.session(), site.runtime.settings.course_slug, 0)[0].course.steps)
    for _ in range(steps - 2):
        due = site.subscriber(email).next_send_at
        assert due is not None
        site.clock.to(due)
        site.tick()
    return steps - 1


def send_the_last(site: Site, email: str) -> None:
    due = site.subscriber(email).next_send_at
    assert due is not None
    site.clock.to(due)
    site.tick()


def test_the_last_email_accepted_completes_the_course(site: Site) -> None:
    to_the_last_step(site, "alex@example.com")
    send_the_last(site, "alex@example.com")
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.next_send_at) == ("completed", None) and alex.completed_at is not None


def test_unsubscribing_while_the_last_email_is_handed_over_stays_unsubscribed(site: Site) -> None:
    to_the_last_step(site, "alex@example.com")
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Day 18")

    def leave(received: Received) -> None:  # after the check before the chunk, before the 250
        if received.recipient == "alex@example.com":
            assert site.client.post(unsubscribe).status_code == 200

    site.smtp.before_reply = leave
    send_the_last(site, "alex@example.com")
    site.smtp.before_reply = None
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.completed_at, alex.next_send_at) == ("unsubscribed", None, None)
    assert site.smtp.to("alex@example.com")[-1].subject.startswith("You")  # the completion went: it was sent


def test_pausing_while_the_last_email_is_handed_over_completes_on_resuming(site: Site) -> None:
    to_the_last_step(site, "alex@example.com")
    preferences = site.link("alex@example.com", "/preferences/", "Day 18")

    def pause(received: Received) -> None:
        if received.recipient == "alex@example.com":
            assert site.client.post(f"{preferences}/pause", data={"length": "until-resumed"}).status_code == 200

    site.smtp.before_reply = pause
    send_the_last(site, "alex@example.com")
    site.smtp.before_reply = None
    assert site.subscriber("alex@example.com").status == "paused"
    assert site.client.post(f"{preferences}/resume").status_code == 200
    send_the_last(site, "alex@example.com")  # nothing left to send: the claim completes the course
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.next_send_at) == ("completed", None)


def test_a_last_email_refused_for_good_after_leaving_does_not_complete(site: Site) -> None:
    last = to_the_last_step(site, "alex@example.com")
    assert site.client.post(site.link("alex@example.com", "/unsubscribe/", "Day 18")).status_code == 200
    with site.session() as session:
        alex = session.scalar(select(Subscriber).where(Subscriber.email == "alex@example.com"))
        assert alex is not None
        delivery = Delivery(subscriber=alex, enrolment=1, step=last, email="completion", state="sending",
                            attempts=1, due_at=site.clock(), created_at=site.clock())  # fmt: skip
        session.add(delivery)
        session.flush()
        mark_failed(session, delivery, "550 5.7.1 refused", site.clock(), site.runtime.timing)
        session.commit()
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.completed_at) == ("unsubscribed", None)
