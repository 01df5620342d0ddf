"""The studio's courses: every course of the deployment the user may edit, and a new one, blank or a copy.

A new course is published as it is made (the first version of its ``_course.yaml``, checked like any
publish: every email must render), closed to sign-ups until a publisher opens it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course.catalog import (
    COURSE_FILE,
    CourseFileError,
    blank_course,
    copied_course,
    course_data,
    dump_course,
    exists,
    imported_course,
    slugs,
)
from course.curriculum import Course
from course.lifecycle import is_day_email
from course.models.courses import CourseEntry
from course.models.media import MediaFile
from course.models.subscribers import ENROLLED, Subscriber
from course.studio import audit
from course.wording import is_words
from emails.compiler import default_templates
from emails.rendering import email_names
from emails.store import PublishRefused, items, live_templates, publish
from web.media import ImageRefused, store_image
from web.studio.auth import CSRF, User, Web, check_csrf, studio_page
from web.studio.transfer import MAX_FILE_BYTES, Bundle, images_named, layout_overrides, read_bundle

router = APIRouter(prefix="/studio/courses")

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
BLANK = "blank"
FROM_FILE = "file"  # the new course's start: a course file (web/studio/transfer.py)


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
async def new_course(
    request: Request,
    web: Web,
    user: User,
    csrf: CSRF,
    title: Annotated[str, Form(max_length=200)] = "",
    slug: Annotated[str, Form(max_length=100)] = "",
    sender_name: Annotated[str, Form(max_length=100)] = "",
    start: Annotated[str, Form(max_length=100)] = BLANK,
    course_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    check_csrf(request, csrf)
    if not user.may_publish:
        raise HTTPException(403, "Making a course publishes it: ask a publisher.")
    text: str | None = ""  # the course file's text; None: too large to be one
    if start == FROM_FILE and course_file is not None:
        data = await course_file.read(MAX_FILE_BYTES + 1)
        text = None if len(data) > MAX_FILE_BYTES else data.decode("utf-8", errors="replace")
    return await run_in_threadpool(_new_course, request, web, user, (title, slug, sender_name, start), text)


def _new_course(request: Request, web: Web, user: User, named: tuple[str, str, str, str], text: str | None) -> Response:
    title, slug, sender_name, start = named
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
    bundle: Bundle | None = None
    if start == FROM_FILE:
        if text is None:
            errors["course_file"] = (
                f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: is it a course file?"
            )
        elif not text:
            errors["course_file"] = "Choose the course file to start from (a .course.yaml the studio exported)."
        else:
            try:
                bundle = read_bundle(text)
            except ValueError as error:
                errors["course_file"] = f"That file cannot be read: {error}."
    now = web.clock()
    with web.session() as session:
        if not errors and exists(session, slug):
            errors["slug"] = f"There is a course at /c/{slug} already: choose another address."
        if start not in (BLANK, FROM_FILE) and (not exists(session, start) or not user.may_edit(start)):
            errors["start"] = "Choose a course to copy from the list, or start blank."
        if errors:
            return _form(request, web, user, status_code=400, errors=errors, values=values)
        layouts: dict[str, dict[str, str]] = {}
        images: dict[str, bytes] = {}
        try:
            if start == BLANK:
                course = blank_course(slug, title, sender_name)
            elif bundle is not None:
                course = imported_course(bundle.course, slug, title, sender_name)
                layouts, images = bundle.layouts, bundle.images
            else:
                course = copied_course(web.live_course(session, start), slug, title, sender_name)
                layouts = layout_overrides(live_templates(session, start))
        except CourseFileError as error:
            where = f" ({error.field})" if error.field else (f" (line {error.line})" if error.line else "")
            errors["course_file"] = f"That file is not a course this studio can make{where}: {error.message}."
            return _form(request, web, user, status_code=400, errors=errors, values=values)
        foreign = sorted(set(layouts) - _layout_items(course))
        if foreign:  # the course file, the words and anything else are not layouts
            errors["course_file"] = f"The file holds layouts a course does not have: {', '.join(foreign)}."
            return _form(request, web, user, status_code=400, errors=errors, values=values)
        missing = images_named(course_data(course)) - set(images)
        for name, content in images.items():
            try:
                stored = store_image(session, content, course_slug=slug, author=user.email, now=now)
            except ImageRefused as refused:
                errors["course_file"] = f"The image {name} in the file is refused: {refused}."
                break
            if stored != name:
                errors["course_file"] = f"The image {name} in the file is not what its name says (it is damaged)."
                break
        else:
            if bundle is not None and missing - _stored(session, missing):
                errors["course_file"] = ("The file names images it does not hold: "
                                         + ", ".join(sorted(missing - _stored(session, missing))) + ".")  # fmt: skip
        if errors:
            session.rollback()
            return _form(request, web, user, status_code=400, errors=errors, values=values)
        session.add(CourseEntry(slug=slug, created_at=now, created_by=user.email,
                                copied_from=start if start not in (BLANK, FROM_FILE) else None))  # fmt: skip
        how = {BLANK: "made", FROM_FILE: "made from a course file"}.get(start, f"copied from {start}")
        try:
            publish(session, course=course, settings=web.settings, item=COURSE_FILE,
                    files={COURSE_FILE: dump_course(course)}, note=how, author=user.email, now=now)  # fmt: skip
            for item, files in sorted(layouts.items()):
                publish(session, course=course, settings=web.settings, item=item, files=files, note=how,
                        author=user.email, now=now)  # fmt: skip
        except PublishRefused as refused:
            session.rollback()
            errors["course_file" if start == FROM_FILE else "start"] = f"This course does not render: {refused}"
            return _form(request, web, user, status_code=400, errors=errors, values=values)
        audit(session, user, "create-course", now=now, course_slug=slug,
              detail={BLANK: "blank", FROM_FILE: "from a course file"}.get(start, f"a copy of {start}"))  # fmt: skip
        session.commit()
    return RedirectResponse(f"/studio?course={slug}&made=1", status_code=303)


def _layout_items(course: Course) -> set[str]:
    """What a course's layouts are: the shipped template set's items (but the course file and its words) and
    a day's own folder."""
    shipped = {item for item in items(default_templates()) if item != COURSE_FILE and not is_words(item)}
    return shipped | {email for email in email_names(course) if is_day_email(email)}


def _stored(session: Session, names: set[str]) -> set[str]:
    return set(session.scalars(select(MediaFile.name).where(MediaFile.name.in_(names))))
