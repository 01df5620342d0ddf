"""Every figure true: each way the insights once miscounted, played through the real path (the sign-up
form, the confirmation link, the beat and the worker sending to a real SMTP server, the links taken from
the sent emails, feedback as the webhooks record it), then summed and read as the page reads them."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from course import wording as words
from course.feedback import Feedback, FeedbackKind, SoftBouncePolicy, record
from course.insights import measures, reading, summing
from course.insights.reading import Insights
from course.links import LinkSigner, Purpose
from course.models.deliveries import Delivery
from course.models.engagement import Answer, Event
from course.models.studio import StudioRole
from course.models.subscribers import Subscriber
from emails.store import publish

from ..conftest import TEST_SECRET
from ..support.smtp import Received
from .conftest import Site
from .test_studio_access import csrf_of
from .test_studio_editing import signed_in

SIGNER = LinkSigner(TEST_SECRET, "https://course.example.org")


def figures(site: Site) -> Insights:
    """Sum every week now and read them all, as the page's button and the page do."""
    with site.session() as session:
        course = site.runtime.writers(session, site.runtime.settings.course_slug, 0)[0].course
        summing.refresh(session, course, site.clock())
        session.commit()
        known = reading.cohorts_known(session, course)
        selection = reading.selection_of(known[0], None, None, None, site.clock().date())
        return reading.read(session, course, selection, known)


def next_email(site: Site, *emails: str) -> None:
    """Move the clock to the next send slot of these readers and run the beat's tick (which sends)."""
    due = [site.subscriber(email).next_send_at for email in emails]
    site.clock.to(max(moment for moment in due if moment is not None))
    site.tick()


def message_id(site: Site, email: str, step: int, enrolment: int = 1) -> str:
    with site.session() as session:
        found = session.scalar(
            select(Delivery.message_id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Subscriber.email == email, Delivery.step == step, Delivery.enrolment == enrolment)
        )
    assert found
    return found


def feedback(site: Site, kind: FeedbackKind, email: str, step: int, notice: str) -> None:
    """A provider's authenticated notice about the email of ``step``, as the webhooks record it."""
    item = Feedback(kind, "ses", email, "reported", message_id(site, email, step), notice)
    with site.session() as session, session.begin():
        record(session, item, signer=SIGNER, address_key=site.runtime.settings.address_key, now=site.clock(),
               policy=SoftBouncePolicy())  # fmt: skip


def scanner_opens(site: Site, recipient: str, subject: str, prefixes: tuple[str, ...]) -> Callable[[Received], None]:
    """A scanner at the receiving server: it opens the links of ``recipient``'s email whose subject starts
    so, before its server answers 250, with a browser's agent (nothing in the request gives it away)."""

    def scan(received: Received) -> None:
        if received.recipient != recipient or not received.subject.startswith(subject):
            return
        for prefix in prefixes:
            link = site.link(recipient, prefix, subject)
            assert site.client.get(link, follow_redirects=False).status_code in (200, 303)

    return scan


def test_a_scanner_that_clicks_while_the_email_is_handed_over_is_a_scanner(site: Site) -> None:
    """The chunk's sent_at is written after the server's 250: a click before it found no delivery 'sent'
    and counted as a person acting. Both recording paths: the one statement (consultation, exercise page)
    and the session (the checklist's answer page, the unsubscribe page)."""
    site.smtp.before_reply = scanner_opens(site, "alex@example.com", "Welcome", ("/consultation/", "/answer/"))
    site.sign_up_and_confirm("alex@example.com")
    site.smtp.before_reply = scanner_opens(site, "alex@example.com", "Day 1",
                                           ("/consultation/", "/exercise/", "/unsubscribe/"))  # fmt: skip
    next_email(site, "alex@example.com")
    site.smtp.before_reply = None
    with site.session() as session:
        clicks = session.execute(
            select(Event.step, Event.kind, Event.value, Event.automated, Event.seconds_since_delivery)
            .where(Event.kind.in_(["click", "consultation"]))
            .order_by(Event.id)
        ).all()
    assert len(clicks) == 5 and all(automated and seconds is None for *_, automated, seconds in clicks), clicks
    found = figures(site)
    welcome, day1 = found.days[0], found.days[1]
    assert (welcome.consultation, welcome.engaged, welcome.scanner_clicks) == (0, 0, 2)
    assert (day1.consultation, day1.engaged, day1.scanner_clicks) == (0, 0, 3)
    # The person, half an hour later: theirs.
    site.clock.advance(minutes=30)
    site.client.get(site.link("alex@example.com", "/consultation/", "Day 1"), follow_redirects=False)
    assert figures(site).days[1].consultation == 1


def test_each_message_is_sent_at_its_own_moment(site: Site) -> None:
    """sent_at is the moment of each message's 250, not the chunk's end: a click is measured from it."""
    moments: dict[str, datetime] = {}

    def tick_per_message(received: Received) -> None:
        site.clock.advance(seconds=20)
        moments[received.recipient] = site.clock()

    site.sign_up_and_confirm("alex@example.com")
    site.sign_up_and_confirm("sam@example.com")
    site.smtp.before_reply = tick_per_message
    next_email(site, "alex@example.com", "sam@example.com")
    site.smtp.before_reply = None
    with site.session() as session:
        sent = dict(session.execute(
            select(Subscriber.email, Delivery.sent_at).join(Subscriber).where(Delivery.step == 1)
        ).all())  # fmt: skip
    assert sent == moments and len(set(sent.values())) == 2


def test_a_complaint_keeps_the_email_reached_and_counts_apart(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    site.sign_up_and_confirm("sam@example.com")
    next_email(site, "alex@example.com", "sam@example.com")
    site.clock.advance(hours=2)
    feedback(site, FeedbackKind.COMPLAINT, "alex@example.com", 1, "c1")
    day1 = figures(site).days[1]
    assert (day1.delivered, day1.failed, day1.complained, day1.left, day1.unsubscribed) == (2, 0, 1, 1, 0)
    assert day1.rate(day1.complained).percent == "50%"


def test_a_soft_bounce_keeps_the_email_reached_a_hard_one_does_not(site: Site) -> None:
    for name in ("alex", "sam", "kim"):
        site.sign_up_and_confirm(f"{name}@example.com")
    next_email(site, "alex@example.com", "sam@example.com", "kim@example.com")
    site.clock.advance(hours=1)
    feedback(site, FeedbackKind.SOFT_BOUNCE, "alex@example.com", 1, "s1")  # the provider may still deliver it
    feedback(site, FeedbackKind.HARD_BOUNCE, "sam@example.com", 1, "h1")
    day1 = figures(site).days[1]
    assert (day1.sent, day1.delivered, day1.soft_bounced, day1.failed, day1.left) == (3, 2, 1, 1, 1)
    assert day1.rate(day1.failed, "sent").percent == "33%"


def test_completed_counts_each_time_through_and_survives_a_restart(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    steps = len(site.runtime.writers(site.session(), site.runtime.settings.course_slug, 0)[0].course.steps)
    for _ in range(steps - 1):
        next_email(site, "alex@example.com")
    assert site.subscriber("alex@example.com").status == "completed"
    preferences = site.link("alex@example.com", "/preferences/", "")
    assert site.client.post(f"{preferences}/restart").status_code == 200
    next_email(site, "alex@example.com")  # the welcome again
    found = figures(site)
    stages = {stage.label: stage.count for stage in found.funnel}
    assert found.people == 1
    assert stages["Began the course"] == 2 and stages["Confirmed"] == 2 and stages["Got the welcome"] == 2
    assert stages["Completed: the last email reached them"] == 1
    assert stages["Reached day 18"] == 1
    assert [stage.rate.percent for stage in found.funnel][:3] == ["100%", "100%", "100%"]


def test_a_link_counts_in_the_time_through_it_was_sent_in(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    next_email(site, "alex@example.com")
    first = site.link("alex@example.com", "/exercise/", "Day 1")
    preferences = site.link("alex@example.com", "/preferences/", "Day 1")
    site.clock.advance(minutes=30)
    assert site.client.post(f"{preferences}/restart").status_code == 200
    next_email(site, "alex@example.com")  # the welcome of the second time through
    next_email(site, "alex@example.com")  # its day 1
    second = site.link("alex@example.com", "/exercise/", "Day 1")
    assert second != first
    site.clock.advance(minutes=30)
    assert "<strong>Done.</strong>" in site.client.post(first).text  # "I did it" from the first time's email
    assert "<strong>Done.</strong>" in site.client.get(first).text
    assert "<strong>Done.</strong>" not in site.client.get(second).text  # the second time's day 1 is not done
    # An answer from the first time's welcome counts there too (hidden fields: submit() sends the page's own).
    first_welcome = next(m for m in site.smtp.to("alex@example.com") if m.subject.startswith("Welcome"))
    first_band = next(link for link in _links_of(first_welcome) if link.startswith("/answer/"))
    assert site.submit(first_band, **_band_fields(site, first_band)).status_code == 200
    with site.session() as session:
        assert session.scalars(select(Answer.enrolment)).all() == [1]
    with site.session() as session:
        done_rows = session.execute(select(Event.enrolment, Event.step).where(Event.kind == "exercise-done")).all()
    assert done_rows == [(1, 1)]
    day1 = figures(site).days[1]
    assert (day1.delivered, day1.exercise) == (2, 1)


def test_an_old_link_without_its_time_through_counts_where_its_email_was_sent(site: Site) -> None:
    """Links sent before they named their time through keep working, and count in the latest time through
    that was sent their email."""
    alex = site.sign_up_and_confirm("alex@example.com")
    next_email(site, "alex@example.com")
    old_style = f"/exercise/{SIGNER.token(Purpose.EXERCISE_DONE, alex.id, 1)}"
    preferences = site.link("alex@example.com", "/preferences/", "Day 1")
    site.clock.advance(minutes=30)
    assert site.client.post(f"{preferences}/restart").status_code == 200
    next_email(site, "alex@example.com")  # the second welcome: day 1 not yet sent again
    site.clock.advance(minutes=30)
    assert site.client.post(old_style).status_code == 200
    with site.session() as session:
        assert session.execute(select(Event.enrolment).where(Event.kind == "exercise-done")).scalars().all() == [1]


def test_a_consultation_click_without_an_answer_is_no_phantom_version(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    site.sign_up_and_confirm("sam@example.com")
    site.clock.advance(minutes=30)
    site.client.get(site.link("alex@example.com", "/consultation/", "Welcome"), follow_redirects=False)
    sam_band = next(link for link in site.links("sam@example.com", "Welcome") if "/answer/" in link)
    site.submit(sam_band, **_band_fields(site, sam_band))
    found = figures(site)
    assert [row.label for row in found.versions[0]] == ["As shipped"]
    assert found.versions[0][0].verdict.startswith("The first version")
    answers = found.answers
    assert answers is not None
    booked = {band.key: (band.count, band.share.of) for band in answers.booked}
    assert booked["(none)"] == (1, 1)  # alex, who did not answer; of the one the welcome reached unanswered
    assert sum(band.count for band in answers.baseline) == 1


def _band_fields(site: Site, link: str) -> dict[str, str]:
    """What a band link's page sends (its band is already in its hidden field), or the checklist's: nothing
    ticked."""
    return {} if 'name="band"' in site.client.get(link).text else {"checklist": "warning-signs"}


def _links_of(received: Received) -> list[str]:
    html = received.message.get_body(preferencelist=("html",))
    assert html is not None
    return [
        href.removeprefix("https://course.example.org") for href in re.findall(r'href="([^"]+)"', html.get_content())
    ]


def test_opening_the_unsubscribe_page_is_not_acting_on_the_email(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    next_email(site, "alex@example.com")
    site.clock.advance(minutes=30)
    assert site.client.get(site.link("alex@example.com", "/unsubscribe/", "Day 1")).status_code == 200
    found = figures(site)
    assert found.days[1].engaged == 0
    assert [(link.key, link.people) for link in found.links[1]] == [("click:unsubscribe", 1)]


def test_a_version_of_an_email_is_a_change_that_touched_it(site: Site) -> None:
    """A day-2 subject published between two groups: day 2 has two versions, the welcome one."""
    course = site.runtime.writers(site.session(), site.runtime.settings.course_slug, 0)[0].course
    site.sign_up_and_confirm("alex@example.com")
    for _ in range(2):
        next_email(site, "alex@example.com")
    item = words.words_item("day-02")
    data = words.shipped(course, item)
    data["subject"] = "A new subject for day two"
    with site.session() as session:
        publish(session, course=course, settings=site.runtime.settings, item=item, files={item: words.dump(data)},
                note="a clearer subject", author="kayla@example.org", now=site.clock())  # fmt: skip
        session.commit()
    site.sign_up_and_confirm("sam@example.com")
    for _ in range(2):
        next_email(site, "sam@example.com")
    found = figures(site)
    assert [row.label for row in found.versions[0]] == ["As shipped"]
    assert [row.day.delivered for row in found.versions[0]] == [2]
    labels = [row.label for row in found.versions[2]]
    assert labels[0] == "As shipped" and labels[1].endswith("UTC: a clearer subject"), labels
    assert [row.day.delivered for row in found.versions[2]] == [1, 1]


def test_every_number_lists_the_people_behind_it(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    site.sign_up_and_confirm("sam@example.com")
    next_email(site, "alex@example.com", "sam@example.com")
    site.clock.advance(minutes=30)
    site.client.get(site.link("sam@example.com", "/consultation/", "Day 1"), follow_redirects=False)
    figures(site)
    editor = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    page = editor.get("/studio/insights?day=1")
    assert page.status_code == 200
    listed = editor.get("/studio/insights/people.csv?measure=consultation&step=1&key=")
    rows = list(csv.reader(io.StringIO(listed.text)))
    assert rows[0] == ["subscriber_id", "time_through", "counted"]  # an editor gets no addresses
    assert rows[1:] == [[str(site.subscriber("sam@example.com").id), "1", "1"]]
    # Each number opens the list of the people behind it: the very ones the CSV holds.
    link = re.search(r'href="(/studio/subscribers\?course=building-emotional-intimacy&amp;figure=consultation'
                     r'&amp;figure_step=1[^"]*)"', page.text)  # fmt: skip
    assert link, "no link from the consultation figure to its people"
    behind = editor.get(html.unescape(link.group(1)))
    assert behind.status_code == 200 and "The people behind" in behind.text
    assert re.findall(r'<th scope="row"><a href="/studio/subscribers/\d+[^"]*">([^<]+)</a>', behind.text) == [
        "sam@example.com"
    ]
    reached = list(csv.reader(io.StringIO(editor.get("/studio/insights/people.csv?measure=delivered&step=1").text)))
    assert len(reached) - 1 == 2
    # The scanners' clicks of an email, on any of its links: whose emails they opened, and how often.
    scanned = [row for row in csv.reader(io.StringIO(editor.get(
        "/studio/insights/people.csv?measure=link-scanner&step=1").text))][1:]  # fmt: skip
    assert scanned == [] and "figure=link-scanner" not in page.text  # nobody's link was opened by a scanner
    assert editor.get("/studio/subscribers?figure=nonsense&figure_step=1").status_code == 404
    assert editor.get("/studio/subscribers?figure=delivered&figure_step=999").status_code == 404
    everyone_reached = editor.get("/studio/subscribers?figure=delivered&figure_step=1").text
    assert "2 people match" in everyone_reached
    assert editor.get("/studio/insights/people.csv?measure=nonsense&step=1").status_code == 404
    assert editor.get("/studio/insights/people.csv?measure=delivered&step=999").status_code == 404


def test_summing_one_week_again_keeps_the_period_chosen(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    figures(site)
    editor = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    week = measures.monday(site.clock().date()).isoformat()
    since = "2026-01-05"
    page = editor.get(f"/studio/insights?since={since}&until={week}&cohort={week}")
    response = editor.post("/studio/insights/refresh", data={"csrf": csrf_of(page.text), "since": since,
                                                             "until": week, "cohort": week},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303
    back = f"/studio/insights?course=building-emotional-intimacy&since={since}&until={week}&cohort={week}"
    assert response.headers["location"] == back
    assert 'name="since" value="' + since in editor.get(response.headers["location"]).text
