"""The claim of the course's last email completes it: the email goes to a reader who is still on it, and a
reader who unsubscribes before it goes keeps what they chose (the worker skips it, and their place and
completion are given back); one who unsubscribes while it is at the server got the whole course."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from course.curriculum import load_course
from course.deliveries.claim import claim_due
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
    assert (alex.status, alex.next_send_at) == ("unsubscribed", None) and alex.completed_at is not None
    assert site.smtp.to("alex@example.com")[-1].subject.startswith("You")  # the completion went: it was sent


def test_unsubscribing_while_the_last_email_waits_in_the_queue_skips_it_and_gives_the_place_back(
    site: Site,
) -> None:
    last = to_the_last_step(site, "alex@example.com")
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Day 18")
    due = site.subscriber("alex@example.com").next_send_at
    assert due is not None
    site.clock.to(due)
    with Session(site.runtime.engine) as session:  # claimed by the beat, waiting for a worker
        assert claim_due(session, load_course(), site.clock(), 10, site.runtime.timing, "r0", 50).emails == 1
        session.commit()
    assert site.subscriber("alex@example.com").status == "completed"
    assert site.client.post(unsubscribe).status_code == 200
    site.deliver()
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.completed_at, alex.current_step) == ("unsubscribed", None, last - 1)
    assert not site.smtp.to("alex@example.com")[-1].subject.startswith("You")


def test_pausing_once_the_last_email_is_on_its_way_leaves_nothing_to_hold(site: Site) -> None:
    to_the_last_step(site, "alex@example.com")
    preferences = site.link("alex@example.com", "/preferences/", "Day 18")

    def pause(received: Received) -> None:
        if received.recipient == "alex@example.com":
            assert site.client.post(f"{preferences}/pause", data={"length": "until-resumed"}).status_code == 200

    site.smtp.before_reply = pause
    send_the_last(site, "alex@example.com")
    site.smtp.before_reply = None
    alex = site.subscriber("alex@example.com")  # the course was complete as its last email was claimed
    assert (alex.status, alex.next_send_at) == ("completed", None)
    assert site.smtp.to("alex@example.com")[-1].subject.startswith("You")


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


def test_leaving_while_the_last_email_waits_for_a_retry_gives_the_place_and_the_completion_back(site: Site) -> None:
    """The same rule whether the worker skips it or leaving skips it while it waits to be tried again."""
    last = to_the_last_step(site, "alex@example.com")
    site.smtp.plan("alex@example.com", "rcpt", "451 4.2.1 mailbox busy, try later")
    send_the_last(site, "alex@example.com")
    with site.session() as session:
        waiting = session.scalars(select(Delivery).where(Delivery.step == last)).one()
        assert (waiting.state, waiting.attempts) == ("claimed", 1)  # put off, to be tried again
    assert site.subscriber("alex@example.com").status == "completed"  # as its claim made it
    assert site.client.post(site.link("alex@example.com", "/unsubscribe/", "Day 18")).status_code == 200
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.completed_at, alex.current_step, alex.next_send_at) == ("unsubscribed", None, last - 1,
                                                                                      None)  # fmt: skip
    with site.session() as session:
        assert session.scalars(select(Delivery.state).where(Delivery.step == last)).one() == "skipped"
    site.deliver()
    assert len([m for m in site.smtp.to("alex@example.com") if m.subject.startswith("You")]) == 0
