"""Several courses in one deployment: the studio's list, a new course (blank or a copy), and each course's
own pages, studio scope and access."""

from __future__ import annotations

from sqlalchemy import select

from course.catalog import course_at
from course.models.courses import CourseEntry
from course.models.studio import AuditEntry, StudioRole, StudioUser

from .conftest import Site
from .test_studio_access import browser, csrf_of
from .test_studio_editing import signed_in


def make_course(client, title: str, start: str = "blank", slug: str = "", sender: str = "Anna Berg"):  # type: ignore[no-untyped-def]
    page = client.get("/studio/courses/new")
    assert page.status_code == 200, page.text
    return client.post("/studio/courses/new", data={"csrf": csrf_of(page.text), "title": title, "slug": slug,
                                                    "sender_name": sender, "start": start},
                       follow_redirects=False)  # fmt: skip


def test_a_publisher_makes_a_blank_course_and_it_is_closed_until_opened(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    made = make_course(client, "Calm Mornings!")
    assert made.status_code == 303 and made.headers["location"] == "/studio?course=calm-mornings&made=1"
    listed = client.get("/studio/courses").text
    assert "Calm Mornings!" in listed and "Building Emotional Intimacy" in listed
    emails = client.get("/studio?course=calm-mornings")
    assert emails.status_code == 200 and "Calm Mornings!" in emails.text
    with site.session() as session:
        course = course_at(session, "calm-mornings")
        assert [step.email for step in course.steps] == ["welcome", "day-01", "completion"]
        assert not course.open and course.sender_name == "Anna Berg"
        entry = session.get(CourseEntry, "calm-mornings")
        assert entry is not None and entry.created_by == "kayla@example.org"
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "create-course")).one()
        assert (logged.course_slug, logged.detail) == ("calm-mornings", "blank")
    # Its page says what it is; a closed course takes no sign-up, and the home page lists only open ones.
    page = site.client.get("/c/calm-mornings")
    assert page.status_code == 200 and "Calm Mornings!" in page.text
    assert 'name="course" value="calm-mornings"' in page.text
    refused = site.client.post("/subscribe", data={"course": "calm-mornings", "email": "sam@example.com",
                                                   "timezone": "Europe/Paris", "send_time": "08:00"})  # fmt: skip
    assert refused.status_code == 403 and "closed to sign-ups" in refused.text
    assert "Calm Mornings!" not in site.client.get("/").text


def test_a_copy_has_the_emails_and_words_of_its_source_under_its_own_name(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert make_course(client, "Intimacy for clinic two", start="building-emotional-intimacy",
                       slug="intimacy-two").status_code == 303  # fmt: skip
    with site.session() as session:
        source, copy = course_at(session, "building-emotional-intimacy"), course_at(session, "intimacy-two")
    assert [step.email for step in copy.steps] == [step.email for step in source.steps]
    assert copy.day(3).title == source.day(3).title and copy.title == "Intimacy for clinic two"
    assert (copy.slug, copy.open) == ("intimacy-two", False)
    assert site.client.get("/c/intimacy-two/theme.css").text.count("--accent") == 2


def test_a_taken_or_malformed_address_and_an_unknown_source_are_refused_beside_their_fields(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    taken = make_course(client, "Again", slug="building-emotional-intimacy")
    assert taken.status_code == 400 and "There is a course at /c/building-emotional-intimacy already" in taken.text
    malformed = make_course(client, "Bad", slug="../etc")
    assert malformed.status_code == 400 and 'id="slug-error"' in malformed.text
    unknown = make_course(client, "Copy", start="no-such-course")
    assert unknown.status_code == 400 and 'id="start-error"' in unknown.text
    nameless = make_course(client, "   ", sender="")
    assert (
        nameless.status_code == 400
        and 'id="title-error"' in nameless.text
        and 'id="sender_name-error"' in nameless.text
    )
    with site.session() as session:
        assert session.scalars(select(CourseEntry)).all() == []


def test_an_editor_cannot_make_a_course_nor_open_one_they_were_not_given(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert make_course(publisher, "Second course").status_code == 303
    editor = signed_in(site, "ed@example.org", StudioRole.EDITOR, client=browser(site))
    assert editor.get("/studio/courses/new").status_code == 403
    with site.session() as session:
        user = session.scalars(select(StudioUser).where(StudioUser.email == "ed@example.org")).one()
        user.courses = "building-emotional-intimacy"
        session.commit()
    assert editor.get("/studio?course=second-course").status_code == 403
    assert "Second course" not in editor.get("/studio/courses").text
    assert editor.get("/studio?course=no-such-course").status_code == 404
