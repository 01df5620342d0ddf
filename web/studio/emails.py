"""The studio's list of the course's emails and shared sections, with what is live and who made it so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from course.models.templates import TemplateDraft
from course.wording import words_item, words_items
from emails.compiler import SHARED_FOLDER, TemplateError
from emails.rendering import SAMPLE, Renderer
from emails.store import LiveVersion, current_release, items, live_versions, templates_at
from web.studio.auth import Scoped, User, Web, studio_page
from web.studio.editor import email_label, item_label

router = APIRouter(prefix="/studio")
REPOSITORY = LiveVersion(0, None, None, "as shipped")


@dataclass(frozen=True)
class State:
    """Where one item stands: its live version and its draft."""

    live: LiveVersion
    draft: TemplateDraft | None = None

    @property
    def changed(self) -> datetime | None:
        return self.live.at


@dataclass(frozen=True)
class Row:
    name: str  # the email ("day-03") or the shared file ("_base/footer.mjml")
    label: str  # for people: "Day 3", "Footer"
    subject: str | None  # as the sample subscriber gets it; None for a shared section
    item: str  # what is edited as one: "day" for a day without its own files
    live: LiveVersion
    draft: TemplateDraft | None = None
    problem: str | None = None
    words: str | None = None  # the email's words file, when it has wording of its own
    words_state: State | None = None  # that file's own live version and draft (not the shared layout's)

    @property
    def changed(self) -> datetime | None:
        return self.live.at

    @property
    def layout_state(self) -> State:
        return State(self.live, self.draft)


@router.get("", response_class=HTMLResponse)
def email_list(request: Request, web: Web, user: User, scope: Scoped) -> Response:
    with web.session() as session:
        release = current_release(session, scope.slug)
        templates = templates_at(session, scope.slug, release)
        live = live_versions(session, scope.slug)
        drafts = {
            draft.item: draft
            for draft in session.scalars(select(TemplateDraft).where(TemplateDraft.course_slug == scope.slug))
        }
    broken: str | None = None
    try:
        renderer = Renderer(scope.base, web.settings, templates)
    except TemplateError as error:  # the live wording does not read: shown, and nothing renders
        renderer, broken = Renderer(scope.base, web.settings), str(error)
    own_words = set(words_items(scope.base))
    emails = []
    for email in renderer.email_names():
        item = templates.email_path(email, "body.mjml").split("/")[0]
        try:
            subject, problem = renderer.render(email, SAMPLE).subject, None
        except TemplateError as error:
            subject, problem = None, str(error)
        words = words_item(email) if words_item(email) in own_words else None
        state = State(live.get(words, REPOSITORY), drafts.get(words)) if words else None
        emails.append(Row(email, email_label(email, scope.base), subject, item, live.get(item, REPOSITORY),
                          drafts.get(item), broken or problem, words, state))  # fmt: skip
    wording = [
        Row(item, item_label(item, scope.base), None, item, live.get(item, REPOSITORY), drafts.get(item))
        for item in own_words
    ]
    wording.sort(key=lambda row: words_items(scope.base).index(row.item))
    layouts = [
        Row(item, item, None, item, live.get(item, REPOSITORY), drafts.get(item))
        for item in dict.fromkeys(row.item for row in emails)
    ]
    shared = [
        Row(item, item.removeprefix(f"{SHARED_FOLDER}/"), None, item, live.get(item, REPOSITORY), drafts.get(item))
        for item in items(templates)
        if item.startswith(f"{SHARED_FOLDER}/")
    ]
    return studio_page(web, request, "list.html", user=user, emails=emails, shared=shared, wording=wording,
                       layouts=layouts, release=release)  # fmt: skip
