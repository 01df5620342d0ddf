"""A course as one file: exported from the studio (its course, the layouts it changed, the images it names)
and imported as a new course, here or elsewhere; the repository's own course file reads too; a file that
is damaged, lies about its images or does not render makes nothing."""

from __future__ import annotations

import base64
import html
import re

import yaml
from fastapi.testclient import TestClient

from course.catalog import COURSE_FILE, course_at
from course.curriculum import CURRICULA_DIR
from course.models.courses import CourseEntry
from course.models.studio import AuditEntry, StudioRole
from emails.store import files_of, live_templates

from .conftest import Site
from .test_email_blocks import PIXEL
from .test_studio_access import csrf_of
from .test_studio_courses import course_form
from .test_studio_editing import publish, save, signed_in
from .test_studio_words import DAY_3, save_words

SLUG = "building-emotional-intimacy"


def exported(client: TestClient, slug: str = SLUG) -> str:
    answer = client.get(f"/studio/course/export?course={slug}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith(f'attachment; filename="{slug}.course.yaml"')
    return answer.text


def make_from(client: TestClient, text: str | bytes, title: str = "Intimacy, imported", slug: str = ""):  # type: ignore[no-untyped-def]
    page = client.get("/studio/courses/new")
    form = {"csrf": csrf_of(page.text), "title": title, "slug": slug, "sender_name": "Anna Berg", "start": "file"}
    upload = {"course_file": ("course.yaml", text, "application/yaml")}
    return client.post("/studio/courses/new", data=form, files=upload, follow_redirects=False)


def test_a_course_exports_with_its_words_layouts_and_images_and_imports_as_a_new_course(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert save_words(client, DAY_3, {"w.title": "Rituals of your own"})[0] == 200
    assert publish(client, DAY_3, "a title") == 303
    assert save(client, "day", "Today, {{ day.title }}")[0] == 200  # a layout of its own
    assert publish(client, "day", "a subject") == 303
    upload = {"theme.logo_upload": ("logo.png", PIXEL, "image/png")}
    form = {**course_form(client), "theme.logo_alt": "Logo"}
    logo = client.post(f"/studio/course?course={SLUG}", data=form, files=upload, follow_redirects=False)
    assert logo.status_code == 303
    page = client.get(f"/studio/course?course={SLUG}").text
    client.post(f"/studio/course/publish?course={SLUG}", data={"csrf": csrf_of(page), "note": "logo",
                "revision": re.search(r'name="revision" value="(\d+)"', page).group(1)})  # type: ignore[union-attr]  # fmt: skip

    text = exported(client)
    data = yaml.safe_load(text)
    assert data["format"] == "course-export/1" and data["course"]["title"] == "Building Emotional Intimacy"
    assert list(data["layouts"]) == ["day"] and "retired" not in data["course"]
    assert [base64.b64decode(image) for image in data["images"].values()] == [PIXEL]
    with site.session() as session:
        assert session.query(AuditEntry).filter_by(action="export-course").count() == 1

    made = make_from(client, text, slug="intimacy-imported")
    assert made.status_code == 303, html.unescape(made.text)
    with site.session() as session:
        course = course_at(session, "intimacy-imported")
        assert not course.open and course.title == "Intimacy, imported" and course.theme.logo_alt == "Logo"
        assert [day.title for day in course.days][2] == "Rituals of your own"
        assert len(course.days) == 18 and course.theme.logo is not None
        templates = live_templates(session, "intimacy-imported")
        assert files_of(templates, "day")["day/subject.txt"] == "Today, {{ day.title }}"
        assert session.get(CourseEntry, "intimacy-imported") is not None
    emails = client.get("/studio?course=intimacy-imported").text
    assert "Today, Rituals of your own" in html.unescape(emails)  # the emails render, its own layout with them


def test_the_repositorys_own_course_file_imports(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    text = (CURRICULA_DIR / f"{SLUG}.yaml").read_bytes()
    assert make_from(client, text, slug="from-the-repository").status_code == 303
    with site.session() as session:
        assert len(course_at(session, "from-the-repository").days) == 18


def test_a_damaged_or_lying_course_file_makes_nothing(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    good = yaml.safe_load(exported(client))

    def changed(**parts: object) -> str:
        return yaml.safe_dump({**good, **parts})

    def with_logo(name: str) -> dict[str, object]:
        return {**good["course"], "theme": {**good["course"]["theme"], "logo": name, "logo_alt": "x"}}

    forged, lacking = "0" * 32 + ".png", "1" * 32 + ".png"
    tracker = ('<mjml><mj-body><mj-section><mj-column><mj-image src="https://tracker.example/p.gif" />'
               "</mj-column></mj-section></mj-body></mjml>")  # fmt: skip
    cases: dict[str, tuple[str | bytes, str]] = {
        "no file": (b"", "Choose the course file"),
        "not YAML": (b"course: [unclosed", "the file is not YAML"),
        "not a course": (b"- a list\n- of things\n", "the file holds no course"),
        "another format": (changed(format="mailchimp/9"), "the file is of another kind"),
        "no days": (
            changed(course={**good["course"], "days": "none"}),
            "That file is not a course this studio can make (days)",
        ),
        "an image not what its name says": (
            changed(images={forged: base64.b64encode(PIXEL + b"\0").decode()}, course=with_logo(forged)),
            "is not what its name says",
        ),
        "an image it names but lacks": (changed(course=with_logo(lacking)), "names images it does not hold"),
        "a damaged image": (changed(images={"x.png": "%%%"}), "is damaged"),
        "a layout that loads a tracker": (
            changed(layouts={"day": {"day/subject.txt": "Day", "day/body.txt": "x", "day/body.mjml": tracker}}),
            "does not render",
        ),
        "a layout of another's files": (
            changed(layouts={"day": {"welcome/body.txt": "x"}}),
            "holds files of another layout",
        ),
        "the course file as a layout": (
            changed(layouts={"_course.yaml": {"_course.yaml": "open: true"}}),
            "holds layouts a course does not have: _course.yaml",
        ),
        "words as a layout": (
            changed(layouts={"_words/day-03.yaml": {"_words/day-03.yaml": "title: x"}}),
            "holds layouts a course does not have: _words/day-03.yaml",
        ),
    }
    for number, (name, (text, said)) in enumerate(cases.items()):
        made = make_from(client, text, slug=f"bad-{number}")
        assert made.status_code == 400, name
        assert 'id="course_file-error"' in made.text and said in html.unescape(made.text), (name, made.text[-3000:])
        with site.session() as session:
            assert session.get(CourseEntry, f"bad-{number}") is None, name
            assert files_of(live_templates(session, f"bad-{number}"), COURSE_FILE) == {}, name
    too_large = make_from(client, b"#" * (24 * 1024 * 1024 + 1), slug="too-large")
    assert too_large.status_code in (400, 413)


def test_export_is_for_the_courses_own_studio_users_only(site: Site) -> None:
    assert site.client.get(f"/studio/course/export?course={SLUG}", follow_redirects=False).status_code in (303, 401)
