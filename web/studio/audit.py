"""The audit log, for publishers: who did what in the studio, when, and to which course.

Newest first, paged by keyset (the id of the last row shown), so a long log opens as fast as a short one;
filtered by course (the courses the viewer may edit, and the entries of no course: sign-ins, accounts) and
by person.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import or_, select

from course.catalog import slugs
from course.models.studio import AuditEntry
from web.studio.audience import ACTS
from web.studio.auth import User, Web, studio_page

router = APIRouter(prefix="/studio")

PAGE_SIZE = 50
# What each action is, in the log's words.
ACTIONS = {
    "sign-in": "signed in", "sign-out": "signed out", "set-password": "set their password",
    "password-change": "changed their password", "add-user": "added an account", "reset-password": "reset a password",
    "disable-user": "disabled an account", "enable-user": "enabled an account", "save-draft": "saved a draft",
    "publish": "published", "roll-back": "rolled back", "discard-draft": "threw a draft away",
    "test-send": "sent a test email", "insights-refresh": "summed the figures again",
    "insights-people": "downloaded the people behind a figure", "create-course": "made a course",
    "save-course": "saved the course's draft",
    **{f"subscriber-{action}": done for action, done in ACTS.items()},
    "subscribers-export": "downloaded a list of people", "import-start": "started an import",
}  # fmt: skip


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    web: Web,
    user: User,
    course: Annotated[str | None, Query(max_length=100)] = None,
    who: Annotated[str | None, Query(max_length=320)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    if not user.may_publish:
        raise HTTPException(403, "The audit log is for publishers.")
    with web.session() as session:
        allowed = [slug for slug in slugs(session) if user.may_edit(slug)]
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE_SIZE + 1)
        if course:
            if course not in allowed:
                raise HTTPException(404, "There is no such course.")
            query = query.where(AuditEntry.course_slug == course)
        else:
            query = query.where(or_(AuditEntry.course_slug.is_(None), AuditEntry.course_slug.in_(allowed)))
        if who:
            query = query.where(AuditEntry.user_email == who.strip().lower())
        if before is not None:
            query = query.where(AuditEntry.id < before)
        entries = list(session.scalars(query))
        people = sorted(set(session.scalars(select(AuditEntry.user_email).distinct())))
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return studio_page(
        web, request, "audit.html", user=user, entries=entries, actions=ACTIONS, courses=allowed, chosen=course or "",
        who=who or "", people=people, older=entries[-1].id if more and entries else None,
    )  # fmt: skip
