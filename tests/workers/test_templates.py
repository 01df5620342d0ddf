"""Publishing reaches the workers: a running worker sends the new words with its next batch, an email
already claimed keeps the release it was claimed under, and a roll-back brings the old words back."""

from __future__ import annotations

from sqlalchemy import select

from course.curriculum import Course
from course.models.deliveries import Delivery
from course.models.subscribers import Subscriber
from emails.compiler import default_templates
from emails.store import files_of, publish, roll_back

from .conftest import Harness
from .test_engine import enrol

DAY = "day"


def publish_day_subject(harness: Harness, course: Course, subject: str) -> int:
    files = files_of(default_templates(), DAY)
    files["day/subject.txt"] = subject
    with harness.runtime.sessions() as session:
        published = publish(session, course=course, settings=harness.runtime.settings, item=DAY, files=files,
                            note="a warmer subject", author="kayla@example.org", now=harness.clock())  # fmt: skip
        session.commit()
        return published.publication.id


def next_day(harness: Harness, alex: int) -> None:
    with harness.runtime.sessions() as session:
        subscriber = session.get(Subscriber, alex)
        assert subscriber is not None and subscriber.next_send_at is not None
        harness.clock.to(subscriber.next_send_at)


def test_a_publish_reaches_the_running_worker_and_a_roll_back_undoes_it(harness: Harness, course: Course) -> None:
    alex = enrol(harness, "alex@example.com")
    next_day(harness, alex)
    harness.tick_and_send()
    assert harness.smtp.received[-1].subject == "Day 1: A 5-minute check-in that keeps you close"

    release = publish_day_subject(harness, course, "Today: {{ day.title }}")
    next_day(harness, alex)
    harness.tick_and_send()  # the same Runtime: no restart
    assert harness.smtp.received[-1].subject == "Today: Turn Toward Bids for Connection"

    with harness.runtime.sessions() as session:
        roll_back(session, course=course, settings=harness.runtime.settings, item=DAY, number=0,
                  author="kayla@example.org", now=harness.clock())  # fmt: skip
        session.commit()
    next_day(harness, alex)
    harness.tick_and_send()
    assert harness.smtp.received[-1].subject == "Day 3: Pick a ritual that is just yours"
    with harness.runtime.sessions() as session:
        versions = session.scalars(select(Delivery.template_version).where(Delivery.step.in_([1, 2, 3]))
                                   .order_by(Delivery.step)).all()  # fmt: skip
    assert versions == ["r0", f"r{release}", f"r{release + 1}"]


def test_an_email_claimed_before_a_publish_keeps_its_release(harness: Harness, course: Course) -> None:
    alex = enrol(harness, "alex@example.com")
    next_day(harness, alex)
    from workers.engine import tick

    tick(harness.runtime)  # day 1 is claimed under release 0 and waits in the queue
    publish_day_subject(harness, course, "Changed: {{ day.title }}")
    harness.drain()
    assert harness.smtp.received[-1].subject == "Day 1: A 5-minute check-in that keeps you close"
    next_day(harness, alex)
    harness.tick_and_send()
    assert harness.smtp.received[-1].subject == "Changed: Turn Toward Bids for Connection"
