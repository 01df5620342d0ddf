"""The studio's audience through the app: the list of a course's people, searched and filtered, for the
courses an account may edit; and hostile requests refused with a clear answer."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select, text

from course.deliveries.claim import send_again
from course.deliveries.suppressions import is_suppressed, suppress
from course.lifecycle import SuppressionReason
from course.models.deliveries import Delivery
from course.models.studio import AuditEntry, StudioRole, StudioUser
from course.models.subscribers import Subscriber

from ..support.naughty import naughty_strings, spread
from .conftest import Site
from .test_studio_access import browser, csrf_of, sign_in
from .test_studio_courses import make_course
from .test_studio_editing import signed_in


def rows(page: str) -> list[str]:
    """The addresses the list shows, in its order."""
    return re.findall(r'<th scope="row"><a href="/studio/subscribers/\d+\?course=[^"]+">([^<]+)</a></th>', page)


def test_signed_out_the_list_asks_to_sign_in(site: Site) -> None:
    response = site.client.get("/studio/subscribers", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/studio/sign-in?next=")


def test_the_list_shows_the_courses_people_searched_and_filtered(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    site.sign_up_and_confirm("sam@example.com")
    site.clock.advance(minutes=5)
    signed = site.client.post("/subscribe", data={"email": "pat@example.com", "first_name": "Pat",
                                                  "send_time": "08:00", "timezone": "Europe/Paris"})  # fmt: skip
    assert signed.status_code == 200
    with site.session() as session:  # a name the form refuses, as an older import may have left it
        session.execute(text("UPDATE subscribers SET first_name = 'Pat <b>Lee</b>' WHERE email = 'pat@example.com'"))
        session.commit()
    client = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    page = client.get("/studio/subscribers")
    assert page.status_code == 200, page.text
    assert rows(page.text) == ["pat@example.com", "sam@example.com", "alex@example.com"]  # newest first
    assert "3 people match" in page.text
    assert "Pat &lt;b&gt;Lee&lt;/b&gt;" in page.text and "<b>Lee</b>" not in page.text
    assert "Waiting for confirmation" in page.text
    assert rows(client.get("/studio/subscribers?oldest=true").text)[0] == "alex@example.com"
    assert rows(client.get("/studio/subscribers?q=SAM").text) == ["sam@example.com"]
    assert rows(client.get("/studio/subscribers?status=pending").text) == ["pat@example.com"]
    assert rows(client.get("/studio/subscribers?place=none").text) == ["pat@example.com"]
    welcomed = ["sam@example.com", "alex@example.com"]
    assert rows(client.get("/studio/subscribers?place=0").text) == welcomed  # their last email: the welcome
    by_email = client.get("/studio/subscribers?order=last-email").text
    assert rows(by_email)[-1] == "pat@example.com"  # no email yet: after everyone who had one
    assert "Nobody matches" in client.get("/studio/subscribers?q=nobody-here").text


def test_the_pages_follow_each_other_and_a_forged_page_link_is_refused(site: Site) -> None:
    with site.session() as session:
        session.execute(text(
            "WITH made AS (INSERT INTO subscribers (course_slug, email, timezone, send_time, created_at, updated_at) "
            "SELECT 'building-emotional-intimacy', 'reader' || lpad(n::text, 2, '0') || '@example.com', 'UTC', "
            "'08:00', now(), now() FROM generate_series(0, 54) AS n RETURNING id) "
            "INSERT INTO progress (subscriber_id, status) SELECT id, 'pending' FROM made"
        ))  # fmt: skip
        session.commit()
    client = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    first = client.get("/studio/subscribers?q=reader")
    assert len(rows(first.text)) == 50 and "55 people match" in first.text
    following = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert following
    second = client.get(following.group(1).replace("&amp;", "&"))
    assert len(rows(second.text)) == 5 and 'rel="next"' not in second.text and "First page" in second.text
    assert sorted(rows(first.text) + rows(second.text)) == [f"reader{n:02d}@example.com" for n in range(55)]
    for forged in ("abc", "c2lnbnVwOmU6OjE", "x" * 200):
        refused = client.get(f"/studio/subscribers?q=reader&after={forged}")
        assert refused.status_code == 400 and "from the first page" in refused.text
    assert client.get("/studio/subscribers?after=" + "x" * 201).status_code == 400


def test_unknown_choices_are_refused_plainly(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    for query, said in (("status=deleted", "no such status"), ("place=99", "no such email"),
                        ("place=-1", "no such email"), ("order=email", "sorts by sign-up or by last email"),
                        ("q=" + "a" * 321, "longer than 320")):  # fmt: skip
        refused = client.get(f"/studio/subscribers?{query}")
        assert refused.status_code in (400, 422) and said in refused.text, (query, refused.text[:300])


def test_an_address_on_the_suppression_list_says_why_and_erased_people_leave_nothing_to_list(site: Site) -> None:
    with site.session() as session:
        suppress(session, "gone@example.com", site.runtime.settings.address_key, SuppressionReason.COMPLAINT, None,
                 datetime.now(UTC))  # fmt: skip
        session.commit()
    client = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    page = client.get("/studio/subscribers?q=Gone@Example.com").text
    assert "is on the suppression list" in page and "marked an email as spam" in page
    assert "suppression list" not in client.get("/studio/subscribers?q=alex@example.com").text
    erased = client.get("/studio/subscribers?status=erased").text
    assert "leaves nothing behind" in erased and "<table>" not in erased


def test_an_editor_lists_only_the_courses_given_to_them(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert make_course(publisher, "Second course").status_code == 303
    editor = signed_in(site, "ed@example.org", StudioRole.EDITOR, client=browser(site))
    with site.session() as session:
        user = session.scalars(select(StudioUser).where(StudioUser.email == "ed@example.org")).one()
        user.courses = "building-emotional-intimacy"
        session.commit()
    assert editor.get("/studio/subscribers?course=second-course").status_code == 403
    assert editor.get("/studio/subscribers?course=building-emotional-intimacy").status_code == 200
    assert editor.get("/studio/subscribers?course=no-such-course").status_code == 404
    assert publisher.get("/studio/subscribers?course=second-course").status_code == 200


def story_lines(page: str) -> list[str]:
    """The story's lines, each as its cells' text joined (tags dropped)."""
    body = page.split('<caption class="visually-hidden">Their story</caption>', 1)[1]
    return [
        " | ".join(" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<td>(.*?)</td>", row, re.S))
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)[1:]
    ]


def test_a_persons_story_tells_every_email_click_answer_and_pause_in_their_time_and_ours(site: Site) -> None:
    alex = site.sign_up_and_confirm("alex@example.com", timezone="Asia/Tokyo")
    site.sign_up_and_confirm("sam@example.com")
    answers = [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")]
    site.clock.advance(minutes=30)
    site.submit(answers[1])  # "prioritise" (2-3 signs)
    site.clock.advance(minutes=5)
    site.submit(answers[0])  # changed their mind: "normal"
    site.to_day_one("alex@example.com")
    exercise = site.link("alex@example.com", "/exercise/", "Day 1")
    assert site.client.post(exercise).status_code == 200
    preferences = site.link("alex@example.com", "/preferences/", "Welcome")
    site.client.post(f"{preferences}/pause", data={"length": "week"})
    site.clock.advance(hours=1)
    site.client.post(f"{preferences}/resume")
    client = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    listed = client.get("/studio/subscribers?q=alex@").text  # (both are called Alex)
    link = re.search(r'href="(/studio/subscribers/\d+\?course=[^"]+)"', listed)
    assert link
    page = client.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200, page.text
    lines = story_lines(page.text)
    text = "\n".join(lines)
    for said in ("Confirmation email sent", "Confirmed their address", "Welcome email sent", "Day 1 email sent",
                 "They marked the exercise done in the Day 1 email", "Paused the course after the Day 1 email",
                 "Resumed the course", "Sent the sign-up form"):  # fmt: skip
        assert said in text, (said, lines)
    changed = [line for line in lines if "Answered" in line]
    assert len(changed) == 2 and "(was 2-3" in changed[0] and "(was" not in changed[1], changed
    # Their own time (Tokyo) beside ours (UTC, turned into the viewer's by the page's script).
    confirmed = next(line for line in lines if "Confirmed their address" in line)
    assert alex.confirmed_at is not None
    tokyo = alex.confirmed_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%d %b %Y %H:%M")
    assert confirmed.startswith(tokyo) and alex.confirmed_at.strftime("%H:%M UTC") in confirmed
    assert "release " in next(line for line in lines if "Day 1 email sent" in line)
    assert "Resumed" in lines[0] and "Sent the sign-up form" in lines[-1]  # newest first
    assert "Given" in page.text and "Asia/Tokyo" in page.text


def test_a_person_of_another_course_or_none_is_not_found(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert make_course(publisher, "Second course").status_code == 303
    alex = site.sign_up_and_confirm("alex@example.com")
    assert publisher.get(f"/studio/subscribers/{alex.id}").status_code == 200
    assert publisher.get(f"/studio/subscribers/{alex.id}?course=second-course").status_code == 404
    for wrong in ("0", "-1", "abc", str(2**63), "9" * 40, str(alex.id + 1000)):
        assert publisher.get(f"/studio/subscribers/{wrong}").status_code in (400, 404, 422), wrong


def person_page(client: TestClient, site: Site, email: str) -> tuple[str, str]:
    """The person's page (its address) and its text."""
    url = f"/studio/subscribers/{site.subscriber(email).id}?course=building-emotional-intimacy"
    page = client.get(url)
    assert page.status_code == 200, page.text
    return url, page.text


def act(client: TestClient, site: Site, email: str, action: str, **fields: str) -> Response:
    url, page = person_page(client, site, email)
    return client.post(url.replace("?", "/act?"), data={"csrf": csrf_of(page), "action": action, **fields},
                       follow_redirects=False)  # fmt: skip


def test_acting_for_a_person_changes_what_they_get_and_the_audit_log_keeps_who_and_why(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    client = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    due = site.subscriber("alex@example.com").next_send_at
    assert due is not None
    done = act(client, site, "alex@example.com", "pause", why="Called: away for two weeks")
    assert done.status_code == 303 and "done=pause" in done.headers["location"]
    alex = site.subscriber("alex@example.com")
    assert alex.status == "paused" and alex.next_send_at is None
    site.clock.to(due + timedelta(hours=1))
    site.tick()
    assert not [m for m in site.smtp.to("alex@example.com") if m.subject.startswith("Day")]  # none while paused
    assert sign_in(site) == 303  # (the studio's session ended while the day went by)
    assert "done=resume" in act(client, site, "alex@example.com", "resume", why="Back home").headers["location"]
    evening = act(client, site, "alex@example.com", "schedule", send_time="19:30", timezone="America/New_York",
                  why="Reads in the evening")  # fmt: skip
    assert "done=schedule" in evening.headers["location"]
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.timezone, alex.send_time.strftime("%H:%M")) == ("active", "America/New_York", "19:30")
    assert alex.next_send_at is not None
    assert alex.next_send_at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "19:30"
    assert "done=move" in act(client, site, "alex@example.com", "move", step="5", why="To day 5").headers["location"]
    moved = site.subscriber("alex@example.com").next_send_at
    assert moved is not None
    site.clock.to(moved)
    site.tick()
    assert site.smtp.to("alex@example.com")[-1].subject.startswith("Day 5")
    assert site.subscriber("alex@example.com").current_step == 5
    assert sign_in(site) == 303
    refused = act(client, site, "alex@example.com", "move", step="5", why="Again")
    assert refused.status_code == 400 and "have had that email" in refused.text
    assert (
        "done=unsubscribe"
        in act(client, site, "alex@example.com", "unsubscribe", why="Asked by mail").headers["location"]
    )
    assert site.subscriber("alex@example.com").status == "unsubscribed"
    _, page = person_page(client, site, "alex@example.com")
    story = "\n".join(story_lines(page))
    for said in ("kayla@example.org paused them in the studio", "Why: Called: away for two weeks",
                 "19:30 in America/New_York. Why: Reads in the evening", "next email: Day 5. Why: To day 5",
                 "kayla@example.org unsubscribed them in the studio"):  # fmt: skip
        assert said in story, (said, story)
    with site.session() as session:
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action.like("subscriber-%"))
                                 .order_by(AuditEntry.id)).all()  # fmt: skip
        assert [entry.action for entry in logged] == ["subscriber-pause", "subscriber-resume", "subscriber-schedule",
                                                      "subscriber-move", "subscriber-unsubscribe"]  # fmt: skip
        assert all(entry.user_email == "kayla@example.org" and "alex" not in (entry.detail or "") for entry in logged)


def test_an_action_without_a_reason_or_a_token_or_of_the_wrong_kind_changes_nothing(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    client = signed_in(site, "ed@example.org", StudioRole.EDITOR)
    url, page = person_page(client, site, "alex@example.com")
    acting = url.replace("?", "/act?")
    for fields, said in (({"action": "pause", "why": "   "}, "Say why"), ({"action": "explode", "why": "x"}, "no such"),
                         ({"action": "resume", "why": "x"}, "only a paused reader"),
                         ({"action": "schedule", "why": "x", "send_time": "25:00"}, "not a time of day"),
                         ({"action": "schedule", "why": "x", "send_time": "08:00", "timezone": "Mars/Base"},
                          "time zone"),
                         ({"action": "move", "why": "x", "step": "99"}, "no such email"),
                         ({"action": "move", "why": "x", "step": "-1"}, "choose an email"),
                         ({"action": "erase", "why": "x", "sure": "yes"}, "for publishers")):  # fmt: skip
        answer = client.post(acting, data={"csrf": csrf_of(page), **fields}, follow_redirects=False)
        assert answer.status_code in (400, 403) and said.lower() in answer.text.lower(), (fields, answer.text[:500])
    assert client.post(acting, data={"csrf": "forged", "action": "pause", "why": "x"}).status_code in (400, 403)
    assert client.post(acting, data={"csrf": csrf_of(page), "action": "pause", "why": "x" * 501}).status_code in (
        400,
        422,
    )
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.send_time.strftime("%H:%M")) == ("active", "08:00")
    with site.session() as session:
        assert not session.scalars(select(AuditEntry).where(AuditEntry.action.like("subscriber-%"))).all()


def test_a_publisher_erases_a_person_as_they_would_themselves(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    alex_id = site.subscriber("alex@example.com").id
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    unsure = act(client, site, "alex@example.com", "erase", why="Asked by phone")
    assert unsure.status_code == 400 and "Tick the box" in unsure.text
    erased = act(client, site, "alex@example.com", "erase", why="Asked by phone", sure="yes")
    assert erased.status_code == 303 and erased.headers["location"].startswith("/studio/subscribers?")
    with site.session() as session:
        assert session.get(Subscriber, alex_id) is None
        assert is_suppressed(session, "alex@example.com", site.runtime.settings.address_key)
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "subscriber-erase")).all()
        assert entry.item == f"subscriber:{alex_id}" and "alex" not in (entry.detail or "") + (entry.item or "")
    assert client.get(f"/studio/subscribers/{alex_id}").status_code == 404
    listed = client.get("/studio/subscribers?q=alex@example.com").text
    assert "erased their data" in listed and rows(listed) == []


def test_an_editor_cannot_act_for_a_person_of_a_course_not_given_to_them(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert make_course(publisher, "Second course").status_code == 303
    site.sign_up_and_confirm("alex@example.com")
    alex_id = site.subscriber("alex@example.com").id
    editor = signed_in(site, "ed@example.org", StudioRole.EDITOR, client=browser(site))
    page = editor.get(f"/studio/subscribers/{alex_id}").text
    with site.session() as session:
        user = session.scalars(select(StudioUser).where(StudioUser.email == "ed@example.org")).one()
        user.courses = "second-course"
        session.commit()
    answer = editor.post(f"/studio/subscribers/{alex_id}/act?course=building-emotional-intimacy",
                         data={"csrf": csrf_of(page), "action": "pause", "why": "x"})  # fmt: skip
    assert answer.status_code == 403
    # Naming a course they may edit does not reach a person of another.
    answer = editor.post(f"/studio/subscribers/{alex_id}/act?course=second-course",
                         data={"csrf": csrf_of(page), "action": "pause", "why": "x"})  # fmt: skip
    assert answer.status_code == 404
    assert site.subscriber("alex@example.com").status == "active"


def test_a_publisher_downloads_everyone_the_choices_find_formula_safe_and_logged(site: Site) -> None:
    with site.session() as session:
        session.execute(text(
            "WITH made AS (INSERT INTO subscribers (course_slug, email, first_name, timezone, send_time, created_at, "
            "updated_at) SELECT 'building-emotional-intimacy', 'reader' || n || '@example.com', "
            "CASE WHEN n = 7 THEN '=HYPERLINK(\"http://evil.example\")' ELSE 'Sam' END, 'UTC', '08:00', "
            "now() - n * interval '1 minute', now() FROM generate_series(1, 1205) AS n RETURNING id, email) "
            "INSERT INTO progress (subscriber_id, status) SELECT id, CASE WHEN email LIKE 'reader1%' THEN 'paused' "
            "ELSE 'active' END FROM made"
        ))  # fmt: skip
        session.commit()
    editor = signed_in(site, "ed@example.org", StudioRole.EDITOR, client=browser(site))
    assert editor.get("/studio/subscribers.csv").status_code == 403
    assert "Download them" not in editor.get("/studio/subscribers").text
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert "Download them (CSV)" in publisher.get("/studio/subscribers").text
    everyone = publisher.get("/studio/subscribers.csv")
    assert everyone.status_code == 200 and everyone.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(everyone.text)))
    assert table[0][:3] == ["id", "email", "first_name"] and len(table) == 1 + 1205
    assert len({row[1] for row in table[1:]}) == 1205  # every one, once, across the pages of a thousand
    assert next(row for row in table if row[1] == "reader7@example.com")[2] == '\'=HYPERLINK("http://evil.example")'
    paused = list(csv.reader(io.StringIO(publisher.get("/studio/subscribers.csv?status=paused&q=reader1").text)))
    assert {row[3] for row in paused[1:]} == {"paused"}
    assert len(paused) - 1 == 1 + 10 + 100 + 206  # reader1, 1x, 1xx, 1000-1205
    with site.session() as session:
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "subscribers-export")
                                 .order_by(AuditEntry.id)).all()  # fmt: skip
        assert [entry.user_email for entry in logged] == ["kayla@example.org"] * 2
        assert ": 1205 people" in (logged[0].detail or "") and "status=paused" in (logged[1].detail or "")
    assert publisher.get("/studio/subscribers.csv?status=erased").status_code == 400


def test_their_last_email_goes_again_as_it_was_made_once_and_only_while_they_are_on_the_course(site: Site) -> None:
    site.sign_up_and_confirm("alex@example.com")
    site.to_day_one("alex@example.com")
    first = [m for m in site.smtp.to("alex@example.com") if m.subject.startswith("Day 1")]
    assert len(first) == 1
    client = signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    again = act(client, site, "alex@example.com", "resend", why="It went to spam")
    assert again.status_code == 303 and "done=resend" in again.headers["location"], again.text[:300]
    site.deliver()
    both = [m for m in site.smtp.to("alex@example.com") if m.subject.startswith("Day 1")]
    assert len(both) == 2 and both[0].message["Message-ID"] != both[1].message["Message-ID"]
    assert both[0].subject == both[1].subject
    with site.session() as session:  # the day's figures count it once: the second is a delivery of no step
        assert session.scalar(select(func.count()).where(Delivery.step == 1)) == 1
    _, page = person_page(client, site, "alex@example.com")
    story = "\n".join(story_lines(page))
    assert "Day 1 email sent again" in story and "sent again: Day 1. Why: It went to spam" in story
    # Gone from the course by the time a worker has it (the worker reads their status just before SMTP):
    # it does not go.
    with site.session() as session:
        alex = session.get(Subscriber, site.subscriber("alex@example.com").id)
        assert alex is not None
        send_again(session, alex, "day-01", None, site.clock())
        session.execute(text("UPDATE progress SET status = 'unsubscribed' WHERE subscriber_id = :id"), {"id": alex.id})
        session.commit()
    site.deliver()
    assert len([m for m in site.smtp.to("alex@example.com") if m.subject.startswith("Day 1")]) == 2
    with site.session() as session:
        skipped = session.scalars(select(Delivery).where(Delivery.step.is_(None), Delivery.email == "day-01")
                                  .order_by(Delivery.id.desc())).first()  # fmt: skip
        assert skipped is not None and skipped.state == "skipped" and "unsubscribed" in (skipped.last_reply or "")
    refused = act(client, site, "alex@example.com", "resend", why="And again")
    assert refused.status_code == 400 and "only a reader on the course" in refused.text.lower()


def test_naughty_strings_through_the_lists_choices_and_the_actions_fields_break_nothing(site: Site) -> None:
    """64 strings of the Big List of Naughty Strings (tests/support/naughty.py) through every choice of the
    list, its download and each field of the actions: a page, or a plain refusal; never a server error, and
    no change but one asked for in order."""
    site.sign_up_and_confirm("alex@example.com")
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    url, page = person_page(client, site, "alex@example.com")
    acting, csrf = url.replace("?", "/act?"), csrf_of(page)
    choices = ("q", "status", "place", "order", "after", "oldest", "figure", "figure_step", "key", "version", "since",
               "until", "cohort")  # fmt: skip
    for value in spread(naughty_strings(), 64):
        for name in choices:
            listed = client.get("/studio/subscribers?" + urlencode({name: value}))
            assert listed.status_code in (200, 400, 404, 422), (name, value, listed.status_code)
        download = client.get("/studio/subscribers.csv?" + urlencode({"q": value, "status": value[:20]}))
        assert download.status_code in (200, 400, 422), (value, download.status_code)
        for fields in ({"action": value, "why": "x"}, {"action": "move", "why": value, "step": value},
                       {"action": "schedule", "why": "x", "send_time": value, "timezone": value}):  # fmt: skip
            acted = client.post(acting, data={"csrf": csrf, **fields}, follow_redirects=False)
            assert acted.status_code in (303, 400, 403, 422), (fields, acted.status_code)
    alex = site.subscriber("alex@example.com")
    assert (alex.status, alex.send_time.strftime("%H:%M"), alex.timezone) == ("active", "08:00", "Europe/Paris")
