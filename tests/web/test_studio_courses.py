"""Several courses in one deployment: the studio's list, a new course (blank or a copy), and each course's
own pages, studio scope and access."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select

from course.catalog import COURSE_FILE, course_at
from course.models.courses import CourseEntry
from course.models.studio import AuditEntry, StudioRole, StudioUser
from course.models.subscribers import Subscriber
from emails.store import draft_of

from .conftest import BROWSER, Site
from .test_email_blocks import PIXEL
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


# --- The course page: settings, look, and the emails in order ------------------------------------------


def course_form(client, slug: str = "building-emotional-intimacy") -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the course page's form would post as it stands (every field, in the page's order)."""
    page = client.get(f"/studio/course?course={slug}")
    assert page.status_code == 200, page.text
    text = page.text
    form: dict[str, object] = {"csrf": csrf_of(text)}
    form["revision"] = re.search(r'name="revision" value="(\d+)"', text).group(1)  # type: ignore[union-attr]
    for name, value in re.findall(
        r'<input id="[^"]*" name="([^"]+)" type="(?:text|email|url|number|color)"[^>]*value="([^"]*)"', text
    ):
        form[name] = html.unescape(value)
    for name in re.findall(r'<input type="checkbox" name="([^"]+)" checked', text):
        form[name] = "on"
    for name, value in re.findall(
        r'<select id="[^"]*" name="([^"]+)"[^>]*>.*?<option value="([^"]*)"[^>]*selected', text, re.S
    ):
        form[name] = value
    form["order"] = re.findall(r'<input type="hidden" name="order" value="([^"]+)">', text)
    return form


def save_course(client, form: dict[str, object], action: str = "", slug: str = "building-emotional-intimacy"):  # type: ignore[no-untyped-def]
    return client.post(f"/studio/course?course={slug}", data={**form, "action": action}, follow_redirects=False)


def test_the_emails_are_reordered_added_and_taken_out_as_a_draft_then_published(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    form = course_form(client)
    assert form["order"][:3] == ["1", "2", "3"]  # type: ignore[index]
    # Day 3 before day 2, a new email after day 1, day 5 taken out: three buttons, each a saved draft.
    order = list(form["order"])  # type: ignore[call-overload]
    order[1], order[2] = order[2], order[1]
    saved = save_course(client, {**form, "order": order})
    assert saved.status_code == 303 and saved.headers["location"].endswith("&saved=1")
    assert save_course(client, course_form(client), "add:1").status_code == 303
    assert save_course(client, course_form(client), "remove:5").status_code == 303
    form = course_form(client)
    assert form["order"][:4] == ["1", "20", "3", "2"] and "5" not in form["order"]  # type: ignore[index,operator]
    with site.session() as session:  # nothing changed for readers yet
        assert [step.number for step in course_at(session, "building-emotional-intimacy").steps][:3] == [0, 1, 2]
    page = client.get("/studio/course?course=building-emotional-intimacy").text
    published = client.post("/studio/course/publish?course=building-emotional-intimacy", data={
        "csrf": csrf_of(page), "revision": re.search(r'name="revision" value="(\d+)"', page).group(1),  # type: ignore[union-attr]
        "note": "day 3 first"}, follow_redirects=False)  # fmt: skip
    assert published.status_code == 303, published.text
    with site.session() as session:
        live = course_at(session, "building-emotional-intimacy")
    assert [step.number for step in live.steps][:5] == [0, 1, 20, 3, 2]
    assert live.retired == {5: 4} and live.moved == [2]  # day 2 now comes after day 3, which was after it
    assert live.completion.step == 19 and live.next_number() == 21
    # The emails' page calls each day by its place: day-02 is now the fourth day.
    listed = client.get("/studio?course=building-emotional-intimacy").text
    assert re.search(r'item=_words/day-02\.yaml">Day 4</a>', listed), "day-02 is not called Day 4"


def test_a_theme_too_light_to_read_and_a_bad_wait_are_refused_beside_their_fields(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    form = course_form(client)
    refused = save_course(client, {**form, "theme.accent": "#f0e0d0", "days.3": "-1", "hour.4": "25"})
    assert refused.status_code == 400
    assert 'id="theme-accent-error"' in refused.text and "Too light for white button text" in refused.text
    assert 'id="days-3-error"' in refused.text and 'id="hour-4-error"' in refused.text
    with site.session() as session:
        assert draft_of(session, "building-emotional-intimacy", COURSE_FILE) is None


def test_a_second_save_from_a_page_opened_before_the_first_is_refused(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    stale = course_form(client)
    assert save_course(client, {**course_form(client), "title": "First"}).status_code == 303
    conflict = save_course(client, {**stale, "title": "Second"})
    assert conflict.status_code == 409 and "Someone saved this course since you opened it" in conflict.text
    with site.session() as session:
        draft = draft_of(session, "building-emotional-intimacy", COURSE_FILE)
        assert draft is not None and "title: First" in draft.files


def test_a_new_wait_reschedules_the_readers_whose_next_email_it_is(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    alex = site.sign_up_and_confirm()
    with site.session() as session:
        reader = session.get(Subscriber, alex.id)
        assert reader is not None
        reader.current_step, reader.last_sent_at = 2, site.clock()
        reader.next_send_at = site.clock() + timedelta(days=1)
        session.commit()
    assert save_course(client, {**course_form(client), "days.3": "7", "weekdays.3": "on"}).status_code == 303
    page = client.get("/studio/course?course=building-emotional-intimacy").text
    client.post("/studio/course/publish?course=building-emotional-intimacy", data={
        "csrf": csrf_of(page), "revision": re.search(r'name="revision" value="(\d+)"', page).group(1),  # type: ignore[union-attr]
    })  # fmt: skip
    with site.session() as session:
        reader = session.get(Subscriber, alex.id)
        assert reader is not None and reader.next_send_at is not None and reader.last_sent_at is not None
        assert reader.next_send_at.date() >= (reader.last_sent_at + timedelta(days=7)).date()
        assert reader.next_send_at.astimezone(ZoneInfo(reader.timezone)).weekday() < 5
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "publish")).one()
        assert logged.detail is not None and "(1 readers rescheduled)" in logged.detail


def test_the_audit_log_page_shows_publishers_who_did_what_to_which_course_newest_first(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert make_course(publisher, "Second course").status_code == 303
    assert save_course(publisher, {**course_form(publisher), "title": "Renamed"}).status_code == 303
    page = publisher.get("/studio/audit")
    assert page.status_code == 200
    rows = re.findall(r"<tr>\s*<td><time.*?</tr>", page.text, re.S)
    assert "saved the course" in rows[0] and "made a course" in rows[1] and "signed in" in rows[2]
    assert "second-course" in rows[1] and "a copy of" not in rows[1] and "blank" in rows[1]
    only = publisher.get("/studio/audit?course=building-emotional-intimacy").text
    assert "made a course" not in only and "saved the course" in only
    assert publisher.get("/studio/audit?course=no-such-course").status_code == 404
    editor = signed_in(site, "ed@example.org", StudioRole.EDITOR, client=browser(site))
    assert editor.get("/studio/audit").status_code == 403
    assert "Audit log" not in editor.get("/studio/courses").text
    # An editor given one course does not see another's entries, even as a publisher.
    with site.session() as session:
        user = session.scalars(select(StudioUser).where(StudioUser.email == "kayla@example.org")).one()
        user.courses = "second-course"
        session.commit()
    assert "saved the course" not in publisher.get("/studio/audit").text


def test_a_logo_is_uploaded_described_and_shown_in_the_emails_and_pages(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    slug = "building-emotional-intimacy"

    def save_with(form: dict[str, object], logo: bytes | None = None):  # type: ignore[no-untyped-def]
        files = {"theme.logo_upload": ("logo.png", logo, "image/png")} if logo is not None else None
        return client.post(f"/studio/course?course={slug}", data=form, files=files, follow_redirects=False)

    # Refused, each beside its field, nothing saved: not an image; no words for it; a name forged in the form.
    not_image = save_with(course_form(client), b"<svg onload=alert(1)>")
    assert not_image.status_code == 400 and 'id="theme-logo-error"' in not_image.text
    undescribed = save_with({**course_form(client), "theme.logo_alt": " "}, PIXEL)
    assert undescribed.status_code == 400 and 'id="theme-logo_alt-error"' in undescribed.text
    forged = save_with({**course_form(client), "theme.logo": "0" * 32 + ".png", "theme.logo_alt": "Logo"})
    assert forged.status_code == 303
    with site.session() as session:
        draft = draft_of(session, slug, COURSE_FILE)
        assert draft is not None and "0" * 32 not in draft.files  # the form cannot name an image
    saved = save_with({**course_form(client), "theme.logo_alt": "South Denver Therapy"}, PIXEL)
    assert saved.status_code == 303
    page = client.get(f"/studio/course?course={slug}").text
    name = re.search(r'<img class="logo-preview" src="/media/([0-9a-f]{32}\.png)"', page)
    assert name, "the page does not show the logo"
    published = client.post(f"/studio/course/publish?course={slug}", data={
        "csrf": csrf_of(page), "revision": re.search(r'name="revision" value="(\d+)"', page).group(1),  # type: ignore[union-attr]
        "note": "a logo"}, follow_redirects=False)  # fmt: skip
    assert published.status_code == 303, published.text
    assert site.client.get(f"/media/{name.group(1)}").content == PIXEL
    assert f'src="/media/{name.group(1)}" alt="South Denver Therapy"' in site.client.get(f"/c/{slug}").text
    site.sign_up_and_confirm()
    part = site.smtp.to("alex@example.com")[-1].message.get_body(preferencelist=("html",))
    welcome = part.get_content() if part is not None else ""
    assert f"/media/{name.group(1)}" in welcome and 'alt="South Denver Therapy"' in welcome
    # Taken out: the page and the next email are without it.
    removed = save_with({**course_form(client), "theme.logo_remove": "on"})
    assert removed.status_code == 303
    assert '<img class="logo-preview"' not in client.get(f"/studio/course?course={slug}").text


def test_a_checklist_is_defined_on_the_course_page_and_a_live_one_changes_only_as_a_new_version(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    slug = "building-emotional-intimacy"
    assert save_course(client, course_form(client), "checklist-add").status_code == 303
    form = course_form(client)
    page = client.get(f"/studio/course?course={slug}").text
    assert 'name="checklist.a-new-checklist.items"' in page and "(new, not live yet)" in page
    ours = {
        "checklist.a-new-checklist.title": "Our week together",
        "checklist.a-new-checklist.prompt": "Tick what happened this week:",
        "checklist.a-new-checklist.items": "We ate together\n\nWe laughed\nWe planned something\n",
        "checklist.a-new-checklist.band.0.label": "0-1 ticked", "checklist.a-new-checklist.band.0.max": "1",
        "checklist.a-new-checklist.band.0.title": "A quiet week",
        "checklist.a-new-checklist.band.1.label": "2+ ticked", "checklist.a-new-checklist.band.1.max": "",
        "checklist.a-new-checklist.band.1.title": "A close week",
        "checklist.a-new-checklist.band.1.consultation": "on",
        "checklist.a-new-checklist.band.2.label": "", "checklist.a-new-checklist.band.3.label": "",
    }  # fmt: skip
    # Refused beside the checklist, nothing saved: no items; one band; a band's end that is no number.
    for broken in ({"checklist.a-new-checklist.items": " \n "}, {"checklist.a-new-checklist.band.1.label": ""},
                   {"checklist.a-new-checklist.band.0.max": "one"}):  # fmt: skip
        refused = save_course(client, {**form, **ours, **broken})
        assert refused.status_code == 400 and 'id="checklist-a-new-checklist-error"' in refused.text, broken
    # A live checklist's items cannot be changed by a forged field.
    forged = {"checklist.warning-signs.title": "x", "checklist.warning-signs.items": "only one"}
    assert save_course(client, {**form, **ours, **forged}).status_code == 303
    page = client.get(f"/studio/course?course={slug}").text
    client.post(f"/studio/course/publish?course={slug}", data={"csrf": csrf_of(page), "note": "a checklist",
                "revision": re.search(r'name="revision" value="(\d+)"', page).group(1)})  # type: ignore[union-attr]  # fmt: skip
    with site.session() as session:
        live = course_at(session, slug)
    ours_live = live.checklists["a-new-checklist"]
    assert ours_live.title == "Our week together" and [item.text for item in ours_live.items] == [
        "We ate together", "We laughed", "We planned something"]  # fmt: skip
    bands = [(band.min, band.max, band.suggests_consultation) for band in ours_live.bands]
    assert bands == [(0, 1, False), (2, None, True)]
    assert len(live.checklists["warning-signs"].items) == 8
    # Live now: shown, not edited; a new version is a copy under its own key.
    page = client.get(f"/studio/course?course={slug}").text
    assert 'name="checklist.a-new-checklist.items"' not in page and "Start a new version of it" in page
    assert save_course(client, course_form(client), "checklist-version:a-new-checklist").status_code == 303
    page = client.get(f"/studio/course?course={slug}").text
    assert 'name="checklist.a-new-checklist-v2.items"' in page and "Our week together (new version)" in page

    # Day 3 asks it: the email form offers it once it is live, and the email carries its answer links.
    from .test_email_blocks import body_of, form_of
    from .test_studio_editing import publish as publish_item

    day3 = "_words/day-03.yaml"
    words, page = form_of(client, day3)
    assert client.post("/studio/save", data={**words, "w.@add": "checklist", "w.@block": "add"}).status_code == 200
    words, page = form_of(client, day3)
    assert '<option value="a-new-checklist">Our week together</option>' in page
    assert client.post("/studio/save", data={**words, "w.body.4.checklist": "a-new-checklist"}).status_code == 200
    assert body_of(site, day3)[-1] == {"kind": "checklist", "checklist": "a-new-checklist"}
    assert publish_item(client, day3, "day 3 asks about the week") == 303
    with site.session() as session:
        assert course_at(session, slug).day(3).checklist == "a-new-checklist"


def test_a_roll_back_of_the_course_is_its_next_version_and_keeps_readers_places(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    slug = "building-emotional-intimacy"

    def publish_course(note: str) -> None:
        page = client.get(f"/studio/course?course={slug}").text
        published = client.post(f"/studio/course/publish?course={slug}", data={"csrf": csrf_of(page), "note": note,
                                "revision": re.search(r'name="revision" value="(\d+)"', page).group(1)},  # type: ignore[union-attr]
                                follow_redirects=False)  # fmt: skip
        assert published.status_code == 303, published.text

    assert save_course(client, course_form(client), "add:1").status_code == 303  # an email after day 1: number 20
    publish_course("an email after day 1")
    with site.session() as session:
        assert [step.number for step in course_at(session, slug).steps][:3] == [0, 1, 20]
    page = client.get(f"/studio/course?course={slug}").text
    assert "1 (live)" in page and "Roll back to the course as shipped (version 0)" in page
    diff = client.get(f"/studio/diff?course={slug}&item=_course.yaml&before=0&after=1")
    shown = html.unescape(diff.text).replace("\xa0", " ")
    assert diff.status_code == 200 and "A new email" in shown  # what version 1 added, beside version 0

    # Refused: no note is no roll-back by a form; a version the course does not have; an editor.
    assert client.post(f"/studio/course/roll-back?course={slug}", data={"csrf": csrf_of(page), "number": "7",
                       "note": "x"}).status_code == 404  # fmt: skip
    back = client.post(f"/studio/course/roll-back?course={slug}", data={"csrf": csrf_of(page), "number": "0",
                       "note": "the new email was a mistake"}, follow_redirects=False)  # fmt: skip
    assert back.status_code == 303 and back.headers["location"].endswith("published=2")
    with site.session() as session:
        live = course_at(session, slug)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "roll-back")).one()
    assert 20 not in [step.number for step in live.steps]
    assert live.retired.get(20) == 1  # whoever had email 20 last goes on after day 1: their place is kept
    assert "the new email was a mistake" in (entry.detail or "")
    editor = signed_in(site, "sam@example.org", StudioRole.EDITOR, TestClient(site.client.app,
                       base_url="https://course.example.org", headers={"User-Agent": BROWSER}))  # fmt: skip
    page = editor.get(f"/studio/course?course={slug}").text
    assert "Roll back to version" not in page
    assert editor.post(f"/studio/course/roll-back?course={slug}", data={"csrf": csrf_of(page), "number": "1",
                       "note": "x"}).status_code == 403  # fmt: skip
