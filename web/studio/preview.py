"""The studio's live preview: unsaved text rendered (in the bounded child, through the same renderer
that sends) for a sample subscriber, shown as an inbox row, at phone and desktop width, light and
dark, with its plain-text part and its size against Gmail's clipping limit."""

from __future__ import annotations

import json
import math
import re
import secrets
from datetime import timedelta
from typing import Annotated, Literal

import yaml
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import delete, select
from starlette.exceptions import HTTPException

from course.engagement.answers import reader_answers
from course.models.subscribers import Subscriber
from course.models.templates import TemplatePreview
from course.subscriptions import normalise_email
from course.wording import is_words
from emails.checks import words_link_problems
from emails.compiler import TemplateError
from emails.rendering import Recipient, email_names
from emails.sandbox import CheckFailed, Superseded, render_bounded
from emails.store import draft_of, live_templates, with_item
from web.context import WebContext
from web.security import EMAIL_HEADERS
from web.studio.auth import CSRF, Scoped, SignInRequired, User, Web, check_csrf, current_user, within_limit
from web.studio.editor import Sent, Text, _known, emails_using, posted_files
from web.studio.words import FormProblem, field_id, place_label, posted_fields, prefixed_fields

router = APIRouter(prefix="/studio")
# Gmail clips a message whose HTML is larger than about 102 KB: the rest hides behind a link.
GMAIL_CLIP_BYTES = 102 * 1024
KEPT_FOR = timedelta(hours=1)
# A preview that takes longer than this is a template that asks too much (a check allows more: 30 s).
PREVIEW_SECONDS = 10
# A page's name for itself (the editor makes one at random when it loads), by which its previews are ordered.
_PAGE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_DARK_QUERY = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)")


# The sample reader's answers so far, as the preview's controls chose them ("answer.warning-signs"); an
# empty one (no answer yet) or one the course does not have renders as no answer.
posted_answers = prefixed_fields("answer.")


@router.post("/preview", response_class=HTMLResponse)
def preview(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    item: Annotated[str, Form(max_length=200)] = "", email: Annotated[str, Form(max_length=40)] = "",
    first_name: Annotated[str, Form(max_length=40)] = "", reader: Annotated[str, Form(max_length=320)] = "",
    page: Annotated[str, Form(max_length=64)] = "", asked: Annotated[float | None, Form()] = None,
    subject: Annotated[Text, Form(alias="subject.txt")] = None, mjml: Annotated[Text, Form(alias="body.mjml")] = None,
    text: Annotated[Text, Form(alias="body.txt")] = None, shared: Annotated[Text, Form(alias="shared")] = None,
    wording: Annotated[dict[str, str], Depends(posted_fields)] = {},  # noqa: B006 - FastAPI's, never mutated
    answers: Annotated[dict[str, str], Depends(posted_answers)] = {},  # noqa: B006
    sent: Sent = frozenset(),
) -> Response:  # fmt: skip
    """The preview panel (an HTML fragment the editor's script puts in place) for the text as typed."""
    check_csrf(request, csrf)
    item = _known(web, scope, item)
    choices = emails_using(item, email_names(scope.base))
    if email not in choices:
        email = choices[0] if choices else ""
    if not email:
        raise HTTPException(400, "This template is in no email")
    now = web.clock()
    with web.session() as session:
        templates = live_templates(session, scope.slug)
        if not sent & {"subject.txt", "body.mjml", "body.txt", "shared"} and not wording:  # no text: the draft
            draft = draft_of(session, scope.slug, item)
            files = None if draft is None else json.loads(draft.files)
        else:
            try:
                files = posted_files(web, scope, item, subject, mjml, text, shared, wording, sent)[0]
            except FormProblem as problem:
                broken = {"item": item, "email": email, "choices": choices, "problem": str(problem)}
                return web.templates.TemplateResponse(request, "studio/_preview.html", broken)
    if files is not None:
        templates = with_item(templates, item, files)
    # Links typed in the words, checked as typed with the save's rule: said here, beside the preview.
    links = words_link_problems(files, str(web.settings.base_url)) if files is not None and is_words(item) else []
    body = yaml.safe_load(files[item]).get("body") if links and files is not None else None
    recipient = Recipient(subscriber_id=0, email="sam@example.com", first_name=first_name.strip() or None,
                          signup_request_id=0, answers=answers)  # fmt: skip
    typed_links = [(place_label(body, tuple(problem.field.split("."))), field_id(problem.field),
                problem.message.removeprefix(f"{problem.field}: ")) for problem in links if problem.field]  # fmt: skip
    values: dict[str, object] = {"item": item, "email": email, "choices": choices, "first_name": first_name,
                                 "link_problems": typed_links}  # fmt: skip
    if reader.strip():
        recipient, refused = _as_reader(web, scope.slug, reader, recipient)
        values.update(reader_problem=refused, as_reader=not refused)
    values["recipient"] = recipient
    values["bands"] = {key: {band.key: band.label for band in checklist.bands}
                       for key, checklist in scope.base.checklists.items()}  # fmt: skip
    if not within_limit(web, user, "preview"):
        values["busy"] = "That is a lot of previews in a few minutes: the next one can come in a minute or two."
        return web.templates.TemplateResponse(request, "studio/_preview.html", values, status_code=429)
    # One preview per person at a time: the one they asked for last. The editor's page names itself and
    # numbers its previews in the order it asks for them (no clock: a browser's may be anything, and is
    # never compared with ours); a request that does not, or says nonsense, is as of its arrival, as is one
    # from another page. An older one still rendering stops now, and one that reaches us after a newer one
    # of its page (a starved thread) stops at once.
    token, newest = secrets.token_urlsafe(24), f"studio-preview:{user.id}"
    if not _PAGE.fullmatch(page) or asked is None or not math.isfinite(asked):
        page, asked = token, 0.0  # a page of its own: ordered by arrival
    if not web.limiter.mark_newest(newest, token, page, asked, PREVIEW_SECONDS + 5):
        values["busy"] = "A newer preview replaced this one."
        return web.templates.TemplateResponse(request, "studio/_preview.html", values, status_code=409)
    try:
        rendered = render_bounded(
            templates.files, scope.slug, email, recipient, settings=web.settings, timeout=PREVIEW_SECONDS,
            still_wanted=lambda: web.limiter.is_newest(newest, token),
        )  # fmt: skip
    except Superseded:
        values["busy"] = "A newer preview replaced this one."
        return web.templates.TemplateResponse(request, "studio/_preview.html", values, status_code=409)
    except (TemplateError, CheckFailed) as error:
        values["problem"] = str(error)
        return web.templates.TemplateResponse(request, "studio/_preview.html", values)
    with web.session() as session:
        session.execute(delete(TemplatePreview).where(TemplatePreview.created_at < now - KEPT_FOR))
        session.add(TemplatePreview(token=token, user_id=user.id, email=email, subject=rendered.subject,
                                    preview=rendered.preview, html=rendered.html, text=rendered.text,
                                    created_at=now))  # fmt: skip
        session.commit()
    size = len(rendered.html.encode())
    values.update(token=token, rendered=rendered, size_kb=size / 1024, clipped=size > GMAIL_CLIP_BYTES,
                  sender=scope.base.sender_name)  # fmt: skip
    return web.templates.TemplateResponse(request, "studio/_preview.html", values)


def _as_reader(web: WebContext, slug: str, address: str, sample: Recipient) -> tuple[Recipient, str]:
    """The preview's reader as one real reader of the course: their first name and their answers so far;
    not their links (a click in a preview counts for nobody). Else the sample, and why."""
    try:
        wanted = normalise_email(address)
    except ValueError:
        return sample, f"“{address.strip()}” is not an email address: the preview is for the sample reader."
    with web.session() as session:
        found = session.scalars(
            select(Subscriber).where(Subscriber.course_slug == slug, Subscriber.email == wanted)
        ).first()
        if found is None:
            return sample, f"No reader of this course has the address {wanted}: the preview is for the sample reader."
        answers = reader_answers(session, found.id)
    reader = Recipient(subscriber_id=0, email=wanted, first_name=found.first_name, signup_request_id=0,
                       answers=answers)  # fmt: skip
    return reader, ""


# What a frame shows when its session has ended: the sign-in page cannot be shown in a frame (it refuses to
# be framed, against clickjacking), so the frame says so itself and the editor's page keeps the text.
_SIGNED_OUT = (
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>Signed out</title>'
    '<p style="font-family:sans-serif">Your session has ended: sign in again (in another tab) to see the '
    "preview; the text you typed is still in the form.</p></html>"
)


@router.get("/preview/{token}/html", response_class=HTMLResponse)
def preview_html(request: Request, web: Web, token: str, scheme: Literal["light", "dark"] = "light") -> Response:
    """The previewed email's HTML, for the panel's frames: only for who made it, sandboxed like the inbox."""
    try:
        user = current_user(request, web)
    except SignInRequired:
        return HTMLResponse(_SIGNED_OUT, status_code=401, headers=EMAIL_HEADERS)
    with web.session() as session:
        found = session.get(TemplatePreview, token)
        if found is None or found.user_id != user.id:
            raise HTTPException(404, "No such preview (they last an hour)")
        html = found.html
    if scheme == "dark":
        # A frame follows the reader's own setting; to show dark mode whatever it is, its rules apply always.
        html = _DARK_QUERY.sub("@media all", html)
    return HTMLResponse(html, headers=EMAIL_HEADERS)
