"""Editing one item (an email's folder, the day template, a day's own files, a shared section): its
files, its draft, the checks, publishing, its versions, rolling back and comparing two versions."""

from __future__ import annotations

import dataclasses
import difflib
import json
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import quote

import yaml
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException

from course.catalog import COURSE_FILE, shipped_course_file
from course.curriculum import Course
from course.lifecycle import EmailKind, day_number, is_day_email
from course.studio import audit
from course.wording import dump, email_of, is_words, shipped_files, words_items
from emails import markup
from emails.compiler import EMAIL_FILES, SHARED_FOLDER, TemplateError, default_templates
from emails.mime import MessageBuilder
from emails.rendering import Recipient, email_names
from emails.sandbox import CheckFailed, render_bounded
from emails.senders import Outcome, sender_from_url
from emails.store import (
    DraftConflict,
    PublishRefused,
    bounded_check,
    checked,
    discard_draft,
    draft_of,
    files_of,
    history_of,
    is_one_file,
    items,
    live_templates,
    live_versions,
    publish,
    record_check,
    roll_back,
    save_draft,
    versions_of,
    with_item,
    with_item_live,
)
from emails.variables import variables_for
from web.context import WebContext
from web.media import MAX_IMAGE_BYTES, ImageRefused, store_image
from web.security import EDITOR_PAGE_POLICY
from web.studio.auth import CSRF, Scope, Scoped, User, Web, check_csrf, studio_page, within_limit
from web.studio.merge import Offered, carried, merge_words
from web.studio.words import (
    INNER_BLOCKS,
    NEW_BLOCKS,
    FormProblem,
    drawn_from,
    new_block,
    place_label,
    posted_fields,
    prefixed_fields,
    words_from_form,
)
from web.studio.words import sections as words_sections

# The form field an image block's upload comes in: "upload.body.3" for the fourth block.
UPLOAD_PREFIX = "upload."

router = APIRouter(prefix="/studio")
Text = Annotated[str | None, Form(max_length=60_000)]


def _known(web: WebContext, scope: Scope, item: str) -> str:
    """An item of the template set, a day of this course (whose own files may not exist yet), or one of
    the course's words files."""
    if (
        item not in items(default_templates())
        and not (is_day_email(item) and item in email_names(scope.base))
        and item not in words_items(scope.base)
    ):
        raise HTTPException(404, "No such template")
    return item


def _file_names(item: str) -> list[str]:
    return [item] if is_one_file(item) else [f"{item}/{file}" for file in EMAIL_FILES]


def _sample_email(item: str) -> str | None:
    """An email that uses this item, for its variables: ``day`` is every day's; a shared file, every email's."""
    if is_one_file(item):
        return None
    return "day-01" if item == "day" else item


def _by_path(item: str, paths: list[str], problems: list[TemplateError]) -> dict[str, list[dict[str, Any]]]:
    """Each problem beside the file it is about, with its line where it has one (for the gutter)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for problem in problems:
        for path in paths:
            ours = problem.file == path or (not is_one_file(item) and path.endswith(f"/{problem.file}"))
            entry = {"line": problem.line, "text": problem.message}
            if ours and entry not in found.setdefault(path, []):
                found[path].append(entry)
    for entries in found.values():
        entries.sort(key=lambda entry: (entry["line"] is None, entry["line"] or 0))
    return found


def _shipped(web: WebContext, scope: Scope, item: str) -> dict[str, str]:
    """Version 0 of an item: the repository's files, or for wording, the course's own."""
    return shipped_files(scope.base, item) if is_words(item) else files_of(default_templates(), item)


def _words_form(
    web: WebContext, scope: Scope, item: str, files: dict[str, str], problems: list[TemplateError]
) -> dict[str, Any]:
    """What the editor shows for a words file: its form, and each problem beside its field."""
    try:
        data = yaml.safe_load(files.get(item, ""))
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        data = yaml.safe_load(_shipped(web, scope, item)[item])
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        if problem.file == item and problem.field:
            by_field.setdefault(problem.field, []).append(problem.message.removeprefix(f"{problem.field}: "))
    return {"sections": words_sections(scope.base, item, data), "field_problems": by_field,
            "syntax_help": markup.SYNTAX_HELP, "shape": json.dumps(data, ensure_ascii=False)}  # fmt: skip


def _editor(
    request: Request, web: Web, user: User, scope: Scope, item: str, *, files: dict[str, str] | None = None,
    revision: int | None = None, problems: list[TemplateError] | None = None, message: str | None = None,
    conflict: dict[str, str] | None = None, status_code: int = 200, saved: bool = False, focus: int | None = None,
    merge_from: tuple[Any, dict[str, Any]] | None = None,
) -> Response:  # fmt: skip
    """The editor's page. ``merge_from``: for a words file that met a colleague's change, what the page was
    drawn from and what was typed, merged here field by field with theirs (their draft, else what is live)."""
    with web.session() as session:
        today = live_templates(session, scope.slug)
        live = live_versions(session, scope.slug).get(item)
        draft = draft_of(session, scope.slug, item)
        versions = versions_of(session, scope.slug, item)
        history = history_of(session, scope.slug, item)
    live_files = files_of(today, item) or (_shipped(web, scope, item) if is_words(item) else {})
    if not live_files and is_day_email(item):
        # A day's own files start as a copy of the day template's.
        shared_day = files_of(today, "day")
        live_files = {path.replace("day/", f"{item}/", 1): text for path, text in shared_day.items()}
    shown = files if files is not None else (json.loads(draft.files) if draft else live_files)
    merging = None
    if merge_from is not None and is_words(item) and isinstance(merge_from[1], dict):
        theirs = json.loads(draft.files) if draft and draft.based_on == (live.number if live else 0) else live_files
        merging = Offered(merge_words(merge_from[0], merge_from[1], theirs.get(item, "")), *merge_from,
                          revision=draft.revision if draft else 0)  # fmt: skip
    if problems is None and files is None and draft is not None:  # the saved draft: what its check found
        problems = checked(draft)
    sample = _sample_email(item)
    grouped: dict[tuple[str, int | None, str], list[str]] = {}
    body = _body_of(shown.get(item, "")) if is_words(item) else None
    for problem in problems or []:  # one line for a problem that every day shares
        said = problem.message
        if problem.field and problem.file == item:  # named as the form names the field
            where = place_label(body, tuple(problem.field.split(".")))
            said = f"{where}: {said.removeprefix(problem.field + ': ')}"
        grouped.setdefault((problem.file, problem.line, said), []).append(problem.email)
    paths = _file_names(item)
    response = studio_page(
        web, request, "edit.html", status_code=status_code, user=user, item=item,
        files=[(path, shown.get(path, "")) for path in paths], by_path=_by_path(item, paths, problems or []),
        revision=revision if revision is not None else (draft.revision if draft else 0),
        draft=draft, live_number=live.number if live else 0, versions=versions, problems=problems, message=message,
        grouped_problems=[(emails, file, line, text) for (file, line, text), emails in grouped.items()],
        test_emails=emails_using(item, email_names(scope.base)), saved=saved,
        conflict=conflict, variables=variables_for(sample) if sample else [],
        words=_words_form(web, scope, item, shown, problems or []) if is_words(item) else None,
        label=item_label(item, scope.base), history=history, focus=focus, new_blocks=_addable(scope.base),
        merging=merging, inner_blocks=INNER_BLOCKS,
    )  # fmt: skip
    response.headers["Content-Security-Policy"] = EDITOR_PAGE_POLICY  # the preview: its frames and its fetch
    return response


def _body_of(text: str) -> Any:
    """The body of a words file as typed (none when it is not one): for naming where a problem is."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data.get("body") if isinstance(data, dict) else None


def _addable(course: Course) -> list[tuple[str, str]]:
    """The blocks an email of ``course`` can take, as the form offers them (a checklist only when it has one)."""
    return [(kind, name) for kind, name in NEW_BLOCKS.items() if new_block(kind, course) is not None or kind == "image"]


def item_label(item: str, course: Course | None = None) -> str:
    """An item as people call it: "Day 3", "Day 3 · words", "Shared words", "_base/footer.mjml"."""
    if is_words(item):
        email = email_of(item)
        return "Shared words" if email is None else f"{email_label(email, course)} · words"
    if is_day_email(item) or item in set(EmailKind) - {EmailKind.DAY}:
        return f"{email_label(item, course)} · layout"
    if item == "day":
        return "Every day · layout"
    return item


def email_label(email: str, course: Course | None = None) -> str:
    """An email as people call it: "Day 3" by its place in ``course`` (day-07 moved third is "Day 3")."""
    number = day_number(email)
    if number is not None:
        if course is not None and any(day.number == number for day in course.days):
            return f"Day {course.day(number).position}"
        return f"Day {number}"
    return email.replace("-", " ").capitalize()


@router.get("/edit", response_class=HTMLResponse)
def edit(
    request: Request, web: Web, user: User, scope: Scoped, item: str, saved: int | None = None,
    block: Annotated[int | None, Query(ge=0, le=999)] = None,
) -> Response:  # fmt: skip
    # Just saved, published, rolled back or discarded (the page says which): the server has the text, the
    # browser's kept copy can go.
    done = saved is not None or any(key in request.query_params for key in ("published", "rolled-back", "discarded"))
    return _editor(request, web, user, scope, _known(web, scope, item), saved=done, focus=block,
                   message=_saved_message(web, scope, item, saved))  # fmt: skip


def _saved_message(web: WebContext, scope: Scope, item: str, revision: int | None) -> str | None:
    """What the page a save redirects to says: saved, and whether every email renders with it."""
    if revision is None:
        return None
    with web.session() as session:
        draft = draft_of(session, scope.slug, item)
    if draft is None or draft.revision != revision:
        return f"Revision {revision} was saved; the draft has changed since (it is below as it is now)."
    found = checked(draft)
    if found is None:
        return ("Draft saved. It was not checked: that is a lot of saves in a few minutes. Save again in a "
                "minute or two to check that every email renders.")  # fmt: skip
    return "Draft saved." + ("" if found else " Every email renders with it.")


async def _sent(request: Request) -> frozenset[str]:
    """The names of the fields the form sent. FastAPI reads a field sent empty as one not sent (None),
    but a file emptied in the editor is an empty file, not a file left out (which would remove it)."""
    return frozenset((await request.form()).keys())


Sent = Annotated[frozenset[str], Depends(_sent)]


def posted_files(
    web: WebContext, scope: Scope, item: str, subject: str | None, mjml: str | None, text: str | None,
    shared: str | None, wording: dict[str, str], sent: frozenset[str],
) -> tuple[dict[str, str], int | None]:  # fmt: skip
    """The item's files as a form posted them (three files of an email, one shared file, or an email's
    content), and for a block button, the block to show next. FormProblem for a form that came back broken."""
    if is_words(item):
        return words_from_form(scope.base, item, wording)
    if item.startswith(f"{SHARED_FOLDER}/"):
        return {item: (shared or "").replace("\r\n", "\n")}, None
    posted = {"subject.txt": subject, "body.mjml": mjml, "body.txt": text}
    return {f"{item}/{file}": (value or "").replace("\r\n", "\n") for file, value in posted.items()
            if value is not None or file in sent}, None  # fmt: skip


@router.post("/save", response_class=HTMLResponse)
async def save(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    item: Annotated[str, Form(max_length=200)] = "", revision: Annotated[int, Form(ge=0)] = 0,
    subject: Annotated[Text, Form(alias="subject.txt")] = None, mjml: Annotated[Text, Form(alias="body.mjml")] = None,
    text: Annotated[Text, Form(alias="body.txt")] = None, shared: Annotated[Text, Form(alias="shared")] = None,
    wording: Annotated[dict[str, str], Depends(posted_fields)] = {},  # noqa: B006 - FastAPI's, never mutated
    sent: Sent = frozenset(), live: Annotated[int | None, Form(ge=0)] = None,
) -> Response:  # fmt: skip
    """Save the form as the item's draft. ``revision``: the draft the page was opened on (0: none); ``live``:
    the live version it was opened on. A save from a page that is behind on either is refused, with what was
    typed kept in the form and the colleague's text beside it."""
    check_csrf(request, csrf)
    item = _known(web, scope, item)
    posted = (subject, mjml, text, shared, wording, sent)
    try:  # the images chosen in the form: stored first, so that the draft names them
        wording = {**wording, **await run_in_threadpool(_uploaded, web, user, scope, await request.form())}
    except ImageRefused as refused:  # the text typed stays in the form
        files = await run_in_threadpool(_files_or_none, web, scope, item, posted)
        return await run_in_threadpool(_editor, request, web, user, scope, item, revision=revision, files=files,
                                       message=f"Nothing was saved: {refused}", status_code=400)  # fmt: skip
    return await run_in_threadpool(_save, request, web, user, scope, item, (revision, live),
                                   (subject, mjml, text, shared, wording, sent))  # fmt: skip


def _uploaded(web: WebContext, user: User, scope: Scope, form: FormData) -> dict[str, str]:
    """Each image uploaded with the form, stored (web/media.py), as the field of the block it is for."""
    found: dict[str, str] = {}
    for name, value in form.multi_items():
        if name.startswith(UPLOAD_PREFIX) and isinstance(value, StarletteUpload) and value.filename:
            data = value.file.read(MAX_IMAGE_BYTES + 1)
            with web.session() as session:
                stored = store_image(session, data, course_slug=scope.slug, author=user.email, now=web.clock())
                session.commit()
            found[f"{name.removeprefix(UPLOAD_PREFIX)}.file"] = stored
    return found


def _save(
    request: Request, web: WebContext, user: User, scope: Scope, item: str, opened_on: tuple[int, int | None],
    posted: tuple[str | None, str | None, str | None, str | None, dict[str, str], frozenset[str]],
) -> Response:  # fmt: skip
    try:
        files, focus = posted_files(web, scope, item, *posted)
        merge_from = (drawn_from(scope.base, item, posted[4]), yaml.safe_load(files[item])) if is_words(item) else None
    except FormProblem as problem:
        return _editor(request, web, user, scope, item, revision=opened_on[0], status_code=400,
                       message=f"Nothing was saved: {problem}")  # fmt: skip
    return _store(request, web, user, scope, item, files, opened_on, focus=focus, merge_from=merge_from)


def _store(
    request: Request, web: WebContext, user: User, scope: Scope, item: str, files: dict[str, str],
    opened_on: tuple[int, int | None], *, focus: int | None = None, merge_from: tuple[Any, Any] | None = None,
) -> Response:  # fmt: skip
    """Save ``files`` as the item's draft, check it and show the editor's page (Post/Redirect/Get); or, when a
    colleague saved or published since the page was opened, the page with what was typed and the merge."""
    revision, opened_live = opened_on
    now = web.clock()
    with web.session() as session:
        live = live_versions(session, scope.slug).get(item)
        live_number = live.number if live else 0
        if opened_live is not None and opened_live != live_number:
            # Published (or rolled back) since this page was opened: saving would put the older text back.
            by = (live.author if live else None) or "someone"
            went = "rolled back to" if live is not None and live.rolled_back else "published"
            theirs = files_of(live_templates(session, scope.slug), item) or _shipped(web, scope, item)
            return _editor(request, web, user, scope, item, files=files, revision=revision, conflict=theirs,
                           merge_from=merge_from,
                           message=f"Nothing was saved: {by} {went} version {live_number} since you opened this "
                                   "page. " + _MERGE_HINT, status_code=409)  # fmt: skip
        try:
            draft = save_draft(session, course_slug=scope.slug, item=item, files=files,
                               expected_revision=revision, based_on=live_number, author=user.email,
                               now=now)  # fmt: skip
        except DraftConflict as conflict:
            session.rollback()
            theirs = json.loads(conflict.current.files) if conflict.current else {}
            who = conflict.current.author if conflict.current else "someone"
            return _editor(request, web, user, scope, item, files=files,
                           revision=conflict.current.revision if conflict.current else 0, conflict=theirs,
                           merge_from=merge_from,
                           message=f"Nothing was saved: {who} saved this draft while you were editing. "
                                   + _MERGE_HINT, status_code=409)  # fmt: skip
        except ValueError as error:
            return _editor(request, web, user, scope, item, files=files, revision=revision, message=str(error),
                           status_code=400)  # fmt: skip
        audit(session, user, "save-draft", now=now, course_slug=scope.slug, item=item, version=draft.revision)
        session.commit()
        draft_id, saved_revision = draft.id, draft.revision
        candidate = with_item_live(session, scope.slug, item, files)
    if within_limit(web, user, "check"):  # else the draft is kept, and only its check waits
        problems = bounded_check(candidate, scope.base, web.settings)  # in the child, with no connection held
        with web.session() as session:
            record_check(session, draft_id, saved_revision, problems)
            session.commit()
    # Post/Redirect/Get: the page is the editor's own address, and a refresh saves nothing twice.
    block = f"&block={focus}" if focus is not None else ""
    return RedirectResponse(f"/studio/edit?course={scope.slug}&item={quote(item)}&saved={saved_revision}{block}",
                            status_code=303)  # fmt: skip


merge_choices = prefixed_fields("choice.")  # "choice.3": "mine", "theirs" or "both" for the third clash
_MERGE_HINT = (
    "Your text is kept below; choose, for each field you both changed, yours, theirs or both, and save the merge."
)


@router.post("/merge", response_class=HTMLResponse)
async def merge_draft(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    item: Annotated[str, Form(max_length=200)] = "", revision: Annotated[int, Form(ge=0)] = 0,
    live: Annotated[int, Form(ge=0)] = 0, base: Annotated[str, Form(max_length=1_000_000)] = "",
    mine: Annotated[str, Form(max_length=1_000_000)] = "",
    choices: Annotated[dict[str, str], Depends(merge_choices)] = {},  # noqa: B006 - FastAPI's, never mutated
) -> Response:  # fmt: skip
    """Save the merge the editor offered: what was typed and a colleague's change, each clash as chosen.
    ``revision`` and ``live``: their draft and the live version the merge was drawn against; if either moved
    since, the merge is offered again against the newer text."""
    check_csrf(request, csrf)
    item = _known(web, scope, item)
    if not is_words(item):
        raise HTTPException(400, "Only an email's words are merged field by field.")
    try:
        merge_from = (carried(base, "what the page was drawn from"), carried(mine, "your text"))
    except ValueError as error:
        return await run_in_threadpool(_editor, request, web, user, scope, item, status_code=400,
                                       message=f"Nothing was saved: {error}")  # fmt: skip
    return await run_in_threadpool(_merge, request, web, user, scope, item, (revision, live), merge_from, choices)


def _merge(
    request: Request, web: WebContext, user: User, scope: Scope, item: str, drawn_against: tuple[int, int],
    merge_from: tuple[Any, dict[str, Any]], choices: dict[str, str],
) -> Response:  # fmt: skip
    mine_files = {item: dump(merge_from[1])}
    with web.session() as session:
        draft = draft_of(session, scope.slug, item)
        live = live_versions(session, scope.slug).get(item)
        live_number = live.number if live else 0
        theirs_files = (json.loads(draft.files) if draft and draft.based_on == live_number else
                        files_of(live_templates(session, scope.slug), item) or _shipped(web, scope, item))  # fmt: skip
    if drawn_against != (draft.revision if draft else 0, live_number):
        return _editor(request, web, user, scope, item, files=mine_files, status_code=409, merge_from=merge_from,
                       conflict=theirs_files, message="Nothing was saved: it changed again while you were "
                       "choosing. The merge below is with the newest text.")  # fmt: skip
    merging = merge_words(merge_from[0], merge_from[1], theirs_files.get(item, ""))
    if merging is None:
        return _editor(request, web, user, scope, item, files=mine_files, status_code=409, conflict=theirs_files,
                       message="Nothing was saved: their text is not one the form can merge. Copy what you want "
                               "to keep from beside the form, then save.")  # fmt: skip
    try:
        merged = merging.resolved({int(number): side for number, side in choices.items() if number.isdigit()})
    except ValueError as error:
        return _editor(request, web, user, scope, item, files=mine_files, status_code=400, merge_from=merge_from,
                       conflict=theirs_files, message=f"Nothing was saved: {error}.")  # fmt: skip
    return _store(request, web, user, scope, item, {item: dump(merged)}, drawn_against)


def _publisher(user: User) -> None:
    if not user.may_publish:
        raise HTTPException(403, "Publishing and rolling back are for publishers. Ask one to publish your draft.")


@router.post("/publish", response_class=HTMLResponse)
async def publish_draft(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    item: Annotated[str, Form(max_length=200)] = "", revision: Annotated[int, Form(ge=0)] = 0,
    note: Annotated[str, Form(max_length=500)] = "",
    subject: Annotated[Text, Form(alias="subject.txt")] = None, mjml: Annotated[Text, Form(alias="body.mjml")] = None,
    text: Annotated[Text, Form(alias="body.txt")] = None, shared: Annotated[Text, Form(alias="shared")] = None,
    wording: Annotated[dict[str, str], Depends(posted_fields)] = {},  # noqa: B006 - FastAPI's, never mutated
    sent: Sent = frozenset(), live: Annotated[int | None, Form(ge=0)] = None,
) -> Response:  # fmt: skip
    """Publish the item. From the editor's form, what it holds as typed: saved first as the draft's next
    revision when it differs from the draft (with a save's checks), so that nothing typed is left behind."""
    check_csrf(request, csrf)
    _publisher(user)
    item = _known(web, scope, item)
    typed = bool(sent & {"subject.txt", "body.mjml", "body.txt", "shared"} or wording)
    if typed:
        try:
            wording = {**wording, **await run_in_threadpool(_uploaded, web, user, scope, await request.form())}
        except ImageRefused as refused:  # the text typed stays in the form
            files = await run_in_threadpool(_files_or_none, web, scope, item, (subject, mjml, text, shared, wording,
                                                                               sent))  # fmt: skip
            return await run_in_threadpool(_editor, request, web, user, scope, item, revision=revision, files=files,
                                           message=f"Nothing was published: {refused}", status_code=400)  # fmt: skip
    return await run_in_threadpool(_publish, request, web, user, scope, item, (revision, live), note,
                                   (subject, mjml, text, shared, wording, sent) if typed else None)  # fmt: skip


def _publish(
    request: Request, web: WebContext, user: User, scope: Scope, item: str, opened_on: tuple[int, int | None],
    note: str, posted: tuple[str | None, str | None, str | None, str | None, dict[str, str], frozenset[str]] | None,
) -> Response:  # fmt: skip
    revision = opened_on[0]
    now = web.clock()
    if not within_limit(web, user, "check"):
        files = None if posted is None else _files_or_none(web, scope, item, posted)
        return _editor(request, web, user, scope, item, status_code=429, files=files, revision=revision,
                       message="Nothing was published: that is a lot of checks in a few minutes. Publish again in "
                               "a minute or two.")  # fmt: skip
    if posted is not None:  # the form as typed: the draft's next revision first, if it is not the draft already
        saved = _save_typed(request, web, user, scope, item, opened_on, posted)
        if isinstance(saved, Response):
            return saved
        revision = saved
    with web.session() as session:
        draft = draft_of(session, scope.slug, item)
        if draft is None or draft.revision != revision:
            return _editor(request, web, user, scope, item, status_code=409,
                           message="The draft changed (or was published) since this page was loaded: nothing "
                                   "was published. Look it over, then publish again.")  # fmt: skip
        live = live_versions(session, scope.slug).get(item)
        if draft.based_on != (live.number if live else 0):
            mine = json.loads(draft.files)
            merge_from = None
            if is_words(item):  # merged with what is live, from the version the draft was started on
                started = {version.number: version for version in versions_of(session, scope.slug, item)}
                base = (json.loads(started[draft.based_on].files) if draft.based_on in started
                        else _shipped(web, scope, item))  # fmt: skip
                merge_from = (yaml.safe_load(base.get(item, "")), yaml.safe_load(mine.get(item, "")))
            return _editor(request, web, user, scope, item, status_code=409, conflict=files_of(
                live_templates(session, scope.slug), item) or _shipped(web, scope, item), merge_from=merge_from,
                message=f"Nothing was published: the live version changed since this draft was started (it was "
                        f"version {draft.based_on}, it is version {live.number if live else 0}). "
                        + _MERGE_HINT)  # fmt: skip
        try:
            published = publish(session, course=scope.base, settings=web.settings, item=item,
                                files=json.loads(draft.files), note=note.strip() or "no note", author=user.email,
                                now=now)  # fmt: skip
        except PublishRefused as refused:
            session.rollback()
            return _editor(request, web, user, scope, item, problems=refused.problems, status_code=400,
                           message="Not published: every email must render first. The text is saved as the "
                                   "draft.")  # fmt: skip
        discard_draft(session, scope.slug, item)
        audit(session, user, "publish", now=now, course_slug=scope.slug, item=item,
              version=published.version.number, detail=note.strip() or None)  # fmt: skip
        session.commit()
    return RedirectResponse(
        f"/studio/edit?course={scope.slug}&item={quote(item)}&published={published.version.number}", status_code=303
    )


def _files_or_none(
    web: WebContext, scope: Scope, item: str,
    posted: tuple[str | None, str | None, str | None, str | None, dict[str, str], frozenset[str]],
) -> dict[str, str] | None:  # fmt: skip
    try:
        return posted_files(web, scope, item, *posted)[0]
    except FormProblem:
        return None


def _save_typed(
    request: Request, web: WebContext, user: User, scope: Scope, item: str, opened_on: tuple[int, int | None],
    posted: tuple[str | None, str | None, str | None, str | None, dict[str, str], frozenset[str]],
) -> int | Response:  # fmt: skip
    """The form as typed, as the draft (its revision: the one it already was, or the next); or the page that
    says why it could not be (the text kept in it)."""
    revision = opened_on[0]
    try:
        files, _ = posted_files(web, scope, item, *posted)
    except FormProblem as problem:
        return _editor(request, web, user, scope, item, revision=revision, status_code=400,
                       message=f"Nothing was published: {problem}")  # fmt: skip
    with web.session() as session:
        draft = draft_of(session, scope.slug, item)
        if draft is not None and draft.revision == revision and json.loads(draft.files) == files:
            return revision  # the draft is what was typed
    response = _save(request, web, user, scope, item, opened_on, posted)
    if response.status_code != 303:
        return response  # refused (a colleague's save or publish, a broken form): the text is in the page
    with web.session() as session:
        draft = draft_of(session, scope.slug, item)
        return draft.revision if draft is not None else 0


@router.post("/roll-back", response_class=HTMLResponse)
def roll_back_item(
    # The version to make live again: required, since a form without one must not roll the item back
    # to the text as shipped (0), which is what a default of 0 did.
    request: Request, web: Web, user: User, scope: Scoped, number: Annotated[int, Form(ge=0)], csrf: CSRF = "",
    item: Annotated[str, Form(max_length=200)] = "", note: Annotated[str, Form(max_length=500)] = "",
) -> Response:  # fmt: skip
    check_csrf(request, csrf)
    _publisher(user)
    item = _known(web, scope, item)
    now = web.clock()
    with web.session() as session:
        try:
            roll_back(session, course=scope.base, settings=web.settings, item=item, number=number,
                      author=user.email, now=now, note=note)  # fmt: skip
        except LookupError:
            raise HTTPException(404, f"{item} has no version {number}") from None
        except PublishRefused as refused:
            session.rollback()
            return _editor(request, web, user, scope, item, problems=refused.problems, status_code=400,
                           message=f"Version {number} no longer renders with the rest of the templates.")  # fmt: skip
        audit(session, user, "roll-back", now=now, course_slug=scope.slug, item=item, version=number,
              detail=note.strip() or None)  # fmt: skip
        session.commit()
    return RedirectResponse(
        f"/studio/edit?course={scope.slug}&item={quote(item)}&rolled-back={number}", status_code=303
    )


@router.post("/discard", response_class=HTMLResponse)
def discard(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    item: Annotated[str, Form(max_length=200)] = "", revision: Annotated[int, Form(ge=0)] = 0,
) -> Response:  # fmt: skip
    """Throw the saved draft away: what is live stays, and the form shows it again. Only the draft this
    page showed: one a colleague saved since is kept, and the page says so."""
    check_csrf(request, csrf)
    item = _known(web, scope, item)
    now = web.clock()
    with web.session() as session:
        draft = draft_of(session, scope.slug, item)
        if draft is None or draft.revision != revision:
            who = f"{draft.author or 'someone'} saved" if draft is not None else "someone published or discarded"
            return _editor(request, web, user, scope, item, status_code=409,
                           message=f"Nothing was discarded: {who} the draft since this page was loaded. Look it "
                                   "over first.")  # fmt: skip
        discard_draft(session, scope.slug, item)
        audit(session, user, "discard-draft", now=now, course_slug=scope.slug, item=item, version=revision)
        session.commit()
    return RedirectResponse(
        f"/studio/edit?course={scope.slug}&item={quote(item)}&discarded={revision}", status_code=303
    )


# At most this many test emails a studio user may send an hour.
TEST_SEND_LIMIT = (10, 3600)


def emails_using(item: str, course_emails: list[str]) -> list[str]:
    """The emails a test of this item can be: the days for ``day``, any email for a shared section or
    the shared wording, the email itself for an email's own files or wording."""
    if is_words(item):
        email = email_of(item)
        return course_emails if email is None else [email]
    if item.startswith(f"{SHARED_FOLDER}/"):
        return course_emails
    if item == "day":
        return [email for email in course_emails if is_day_email(email)]
    return [item] if item in course_emails else []


@router.post("/test-send", response_class=HTMLResponse)
def test_send(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF = "",
    item: Annotated[str, Form(max_length=200)] = "", email: Annotated[str, Form(max_length=40)] = "",
) -> Response:  # fmt: skip
    """The draft (or, without one, the live text) as one email, to the signed-in user's own address only."""
    check_csrf(request, csrf)
    item = _known(web, scope, item)
    if email not in emails_using(item, email_names(scope.base)):
        raise HTTPException(400, f"{email!r} does not use {item}")
    now = web.clock()
    if not web.limiter.allow(f"studio-test-send:{user.id}", *TEST_SEND_LIMIT, now):
        return _editor(request, web, user, scope, item, status_code=429,
                       message="That is ten test emails this hour: the next one can go in a while.")  # fmt: skip
    with web.session() as session:
        templates = live_templates(session, scope.slug)
        draft = draft_of(session, scope.slug, item)
        if draft is not None:
            templates = with_item(templates, item, json.loads(draft.files))
    recipient = Recipient(subscriber_id=0, email=user.email, first_name="Sam", signup_request_id=0)
    try:
        rendered = render_bounded(templates.files, scope.slug, email, recipient, settings=web.settings)
    except (TemplateError, CheckFailed) as error:
        return _editor(request, web, user, scope, item, status_code=400, message=f"Not sent: {error}")
    rendered = dataclasses.replace(rendered, subject=f"[Test] {rendered.subject}")
    builder = MessageBuilder(
        web.settings,
        scope.slug,
        scope.course.title,
        scope.course.practice.signer,
        sender_name=scope.course.sender_name,
        reply_to=scope.course.reply_to,
    )
    envelope = builder.build(rendered, to_address=user.email, to_name=None,
                             message_id=builder.message_id(0, f"test-{secrets.token_hex(8)}"), date=now)  # fmt: skip
    sender = sender_from_url(web.settings.smtp_url, web.settings.smtp_timeout_seconds)
    with sender.connect() as connection:
        result = connection.send(envelope)
    with web.session() as session:
        audit(session, user, "test-send", now=now, course_slug=scope.slug, item=item,
              detail=f"{email} ({'draft' if draft else 'live'}) to {user.email}: {result.describe()}")  # fmt: skip
        session.commit()
    sent = result.outcome is Outcome.ACCEPTED
    message = (f"A test of {email} ({'the draft' if draft else 'the live text'}) is on its way to {user.email}."
               if sent else f"The mail server did not take the test: {result.describe()}")  # fmt: skip
    return _editor(request, web, user, scope, item, message=message, status_code=200 if sent else 502)


@router.get("/diff", response_class=HTMLResponse)
def diff(
    request: Request, web: Web, user: User, scope: Scoped, item: str, before: int = 0,
    after: Annotated[int | Literal["draft"] | None, Query()] = None,
) -> Response:  # fmt: skip
    """Two versions side by side (0: as shipped; none or "draft": the draft). The course's own file too."""
    item = COURSE_FILE if item == COURSE_FILE else _known(web, scope, item)
    if after == "draft":
        after = None
    with web.session() as session:
        versions = {version.number: json.loads(version.files) for version in versions_of(session, scope.slug, item)}
        draft = draft_of(session, scope.slug, item)

    def files_at(number: int | None) -> dict[str, str]:
        if number is None:
            if draft is None:
                raise HTTPException(404, "There is no draft")
            return dict(json.loads(draft.files))
        if number == 0:
            if item == COURSE_FILE:
                return shipped_course_file(scope.slug) or {}
            return _shipped(web, scope, item)
        if number not in versions:
            raise HTTPException(404, f"{item} has no version {number}")
        return dict(versions[number])

    old, new = files_at(before), files_at(after)
    tables: list[tuple[str, Any]] = []
    for path in _file_names(item):
        table = difflib.HtmlDiff(wrapcolumn=70).make_table(
            old.get(path, "").splitlines(), new.get(path, "").splitlines(),
            fromdesc=f"version {before}", todesc="draft" if after is None else f"version {after}",
            context=True, numlines=3,
        )  # fmt: skip
        tables.append((path, table if old.get(path) != new.get(path) else None))
    return studio_page(web, request, "diff.html", user=user, item=item, tables=tables, before=before, after=after)
