"""The studio's courses: every course of the deployment the user may edit, and a new one, blank or a copy.

A new course is published as it is made (the first version of its ``_course.yaml``, checked like any
publish: every email must render), closed to sign-ups until a publisher opens it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from course.catalog import COURSE_FILE, blank_course, copied_course, dump_course, exists, slugs
from course.curriculum import Course
from course.models.courses import CourseEntry
from course.models.subscribers import ENROLLED, Subscriber
from course.studio import audit
from emails.store import PublishRefused, publish
from web.studio.auth import CSRF, User, Web, check_csrf, studio_page

router = APIRouter(prefix="/studio/courses")

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
BLANK = "blank"


@dataclass(frozen=True)
class CourseRow:
    course: Course
    readers: int  # on the course now (confirmed, not left)


@router.get("", response_class=HTMLResponse)
def course_list(request: Request, web: Web, user: User) -> Response:
    with web.session() as session:
        readers = dict(
            session.execute(
                select(Subscriber.course_slug, func.count())
                .where(Subscriber.status.in_(ENROLLED))
                .group_by(Subscriber.course_slug)
            ).all()
        )
        rows = [
            CourseRow(web.live_course(session, slug), int(readers.get(slug, 0)))
            for slug in slugs(session)
            if user.may_edit(slug)
        ]
    return studio_page(web, request, "courses.html", user=user, rows=rows)


def slug_for(title: str) -> str:
    """An address for a course from its title: "Calm Mornings!" -> "calm-mornings"."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")


def _form(request: Request, web: Web, user: User, *, status_code: int = 200, errors: dict[str, str] | None = None,
          values: dict[str, str] | None = None) -> Response:  # fmt: skip
    with web.session() as session:
        sources = [(slug, web.live_course(session, slug).title) for slug in slugs(session) if user.may_edit(slug)]
    return studio_page(web, request, "new-course.html", status_code=status_code, user=user, sources=sources,
                       errors=errors or {}, values={"start": BLANK, **(values or {})})  # fmt: skip


@router.get("/new", response_class=HTMLResponse)
def new_course_form(request: Request, web: Web, user: User) -> Response:
    if not user.may_publish:
        raise HTTPException(403, "Making a course publishes it: ask a publisher.")
    return _form(request, web, user)


@router.post("/new", response_class=HTMLResponse)
def new_course(
    request: Request,
    web: Web,
    user: User,
    csrf: CSRF,
    title: Annotated[str, Form(max_length=200)] = "",
    slug: Annotated[str, Form(max_length=100)] = "",
    sender_name: Annotated[str, Form(max_length=100)] = "",
    start: Annotated[str, Form(max_length=100)] = BLANK,
) -> Response:
    check_csrf(request, csrf)
    if not user.may_publish:
        raise HTTPException(403, "Making a course publishes it: ask a publisher.")
    title, sender_name = " ".join(title.split()), " ".join(sender_name.split())
    slug = slug.strip().lower() or slug_for(title)
    values = {"title": title, "slug": slug, "sender_name": sender_name, "start": start}
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "Give the course a title: readers see it in every email."
    if not sender_name:
        errors["sender_name"] = "Say who the emails come from: the name beside the address in the inbox."
    if not _SLUG.fullmatch(slug):
        errors["slug"] = "Use lower-case letters, digits and hyphens (the course's page is /c/ and this)."
    now = web.clock()
    with web.session() as session:
        if not errors and exists(session, slug):
            errors["slug"] = f"There is a course at /c/{slug} already: choose another address."
        if start != BLANK and (not exists(session, start) or not user.may_edit(start)):
            errors["start"] = "Choose a course to copy from the list, or start blank."
        if errors:
            return _form(request, web, user, status_code=400, errors=errors, values=values)
        if start == BLANK:
            course = blank_course(slug, title, sender_name)
        else:
            course = copied_course(web.live_course(session, start), slug, title, sender_name)
        session.add(CourseEntry(slug=slug, created_at=now, created_by=user.email,
                                copied_from=None if start == BLANK else start))  # fmt: skip
        try:
            publish(session, course=course, settings=web.settings, item=COURSE_FILE,
                    files={COURSE_FILE: dump_course(course)}, note="made" if start == BLANK else f"copied from {start}",
                    author=user.email, now=now)  # fmt: skip
        except PublishRefused as refused:
            session.rollback()
            errors["start"] = f"This course does not render: {refused}"
            return _form(request, web, user, status_code=400, errors=errors, values=values)
        audit(session, user, "create-course", now=now, course_slug=slug,
              detail="blank" if start == BLANK else f"a copy of {start}")  # fmt: skip
        session.commit()
    return RedirectResponse(f"/studio?course={slug}&made=1", status_code=303)
