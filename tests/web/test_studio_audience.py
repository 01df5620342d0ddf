"""The studio's audience through the app: the list of a course's people, searched and filtered, for the
courses an account may edit; and hostile requests refused with a clear answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from course.deliveries.suppressions import suppress
from course.lifecycle import SuppressionReason
from course.models.studio import StudioRole, StudioUser

from .conftest import Site
from .test_studio_access import browser
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
