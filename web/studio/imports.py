"""The studio's import of a list (course/imports.py): a CSV file or pasted text, its columns mapped, its first
rows previewed with what will happen to each, then run by the beat in the background with its progress, and
a report of every row it refused. Publishers only: consent is recorded here, and the law asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from course.imports import MAX_FILE_BYTES as MAX_FILE_BYTES
from course.imports import ImportProblem, foresee, guess_columns, shape
from course.models.imports import ImportRefusalRow, ImportState, ListImport
from course.models.studio import StudioUser
from course.studio import audit
from course.subscriptions import InvalidSubscription, check_timezone, parse_send_time
from web.context import WebContext
from web.pages import SEND_TIMES, TIMEZONES
from web.spreadsheet import SafeWriter
from web.studio.auth import CSRF, Scope, Scoped, User, Web, check_csrf, studio_page

router = APIRouter(prefix="/studio")

# What each reason in the report means, in the studio's words.
REASONS = {
    "new": "will be added", "invalid": "not valid", "duplicate": "earlier in the file",
    "already": "on the course already", "suppressed": "on the suppression list",
}  # fmt: skip
# How many imports the page lists.
RECENT = 20


def _publisher(user: StudioUser) -> None:
    if not user.may_publish:
        raise HTTPException(403, "Importing a list is for publishers: they record the consent it was gathered with.")


def _of_course(web: WebContext, scope: Scope, import_id: int) -> ListImport:
    with web.session() as session:
        found = session.get(ListImport, import_id)
        if found is None or found.course_slug != scope.slug:
            raise HTTPException(404, "This course has no such import.")
        session.expunge(found)
        return found


@router.get("/import", response_class=HTMLResponse)
def import_page(request: Request, web: Web, user: User, scope: Scoped) -> Response:
    _publisher(user)
    with web.session() as session:
        recent = list(session.scalars(
            select(ListImport).where(ListImport.course_slug == scope.slug).order_by(ListImport.id.desc()).limit(RECENT)
        ))  # fmt: skip
    return studio_page(web, request, "import.html", user=user, recent=recent, error=None,
                       max_mb=MAX_FILE_BYTES // 1024 // 1024)  # fmt: skip


@router.post("/import")
async def upload(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF,
    file: Annotated[UploadFile | None, File()] = None,
    pasted: Annotated[str, Form(max_length=MAX_FILE_BYTES)] = "",
) -> Response:  # fmt: skip
    check_csrf(request, csrf)
    _publisher(user)
    if file is not None and file.filename:
        source = await file.read(MAX_FILE_BYTES + 1)
        name = (file.filename or "list.csv")[:200]
    else:
        source, name = pasted.encode(), "pasted list"
    try:
        found = shape(source)
    except ImportProblem as error:
        with web.session() as session:
            recent = list(session.scalars(select(ListImport).where(ListImport.course_slug == scope.slug)
                                          .order_by(ListImport.id.desc()).limit(RECENT)))  # fmt: skip
        return studio_page(web, request, "import.html", status_code=400, user=user, recent=recent,
                           error=f"Nothing was imported: {error}.", max_mb=MAX_FILE_BYTES // 1024 // 1024)  # fmt: skip
    columns = guess_columns(found.columns)
    now = web.clock()
    with web.session() as session:
        made = ListImport(
            course_slug=scope.slug, user_id=user.id, user_email=user.email, file_name=name, source=source,
            delimiter=found.delimiter, header=found.header, email_column=columns["email"] or 0,
            name_column=columns["name"], timezone_column=columns["timezone"],
            send_time_column=columns["send_time"], default_timezone="UTC", default_send_time=time(8),
            state=ImportState.MAPPING.value, rows_total=found.rows, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(made)
        session.commit()
        import_id = made.id
    return RedirectResponse(f"/studio/import/{import_id}?{urlencode({'course': scope.slug})}", 303)


@router.get("/import/{import_id}", response_class=HTMLResponse)
def import_one(
    request: Request, web: Web, user: User, scope: Scoped, import_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> Response:  # fmt: skip
    _publisher(user)
    found = _of_course(web, scope, import_id)
    preview, columns = None, None
    if found.state == ImportState.MAPPING.value:
        with web.session() as session:
            source = session.scalar(select(ListImport.source).where(ListImport.id == import_id)) or b""
            preview = foresee(session, found, source, web.timing)
        columns = shape(source).columns
    return studio_page(
        web, request, "import-one.html", user=user, found=found, preview=preview, columns=columns,
        reasons=REASONS, timezones=TIMEZONES, send_times=SEND_TIMES, running=found.state in
        (ImportState.QUEUED.value, ImportState.RUNNING.value), today=web.clock().date().isoformat(),
    )  # fmt: skip


def _column(value: str, width: int) -> int | None:
    if value == "":
        return None
    if not re.fullmatch(r"\d{1,4}", value) or int(value) >= width:
        raise HTTPException(400, "There is no such column in the file.")
    return int(value)


@router.post("/import/{import_id}")
def map_or_start(
    request: Request, web: Web, user: User, scope: Scoped, csrf: CSRF,
    import_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    action: Annotated[str, Form(max_length=10)] = "map",
    email_column: Annotated[str, Form(max_length=5)] = "",
    name_column: Annotated[str, Form(max_length=5)] = "",
    timezone_column: Annotated[str, Form(max_length=5)] = "",
    send_time_column: Annotated[str, Form(max_length=5)] = "",
    default_timezone: Annotated[str, Form(max_length=64)] = "UTC",
    default_send_time: Annotated[str, Form(max_length=5)] = "08:00",
    consent: Annotated[str, Form(max_length=10)] = "confirm",
    consent_source: Annotated[str, Form(max_length=200)] = "",
    consent_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:  # fmt: skip
    """Save the mapping (``map``: the preview follows it), or start the import as mapped (``start``)."""
    check_csrf(request, csrf)
    _publisher(user)
    found = _of_course(web, scope, import_id)
    back = f"/studio/import/{import_id}?{urlencode({'course': scope.slug})}"
    if found.state != ImportState.MAPPING.value:
        return RedirectResponse(back, 303)  # started already (a second tab, a double click): nothing changes
    with web.session() as session:
        source = session.scalar(select(ListImport.source).where(ListImport.id == import_id)) or b""
    width = len(shape(source).columns)
    email = _column(email_column, width)
    if email is None:
        raise HTTPException(400, "Choose the column that holds the addresses.")
    try:
        zone, hour = check_timezone(default_timezone), parse_send_time(default_send_time)
    except InvalidSubscription as error:
        raise HTTPException(400, f"Nothing was changed: {error}.") from None
    source_text, given = " ".join(consent_source.split()), None
    if consent == "recorded":
        try:
            given = datetime.combine(date.fromisoformat(consent_date), time(), UTC)
        except ValueError:
            raise HTTPException(400, "Give the date the list's people gave their consent (YYYY-MM-DD).") from None
        if not source_text:
            raise HTTPException(400, "Say what the list's people signed up on (the form, the event, the shop).")
        if given.date() > web.clock().date():
            raise HTTPException(400, "Consent cannot have been given after today.")
    now = web.clock()
    with web.session() as session:
        imported = session.get(ListImport, import_id, with_for_update=True)
        assert imported is not None  # noqa: S101 - read above, never deleted
        if imported.state != ImportState.MAPPING.value:
            return RedirectResponse(back, 303)
        imported.email_column, imported.name_column = email, _column(name_column, width)
        imported.timezone_column, imported.send_time_column = (
            _column(timezone_column, width),
            _column(send_time_column, width),
        )
        imported.default_timezone, imported.default_send_time = zone, hour
        imported.consent_source = source_text if given else None
        imported.consent_at = given
        imported.updated_at = now
        if action == "start":
            imported.state, imported.started_at = ImportState.QUEUED.value, now
            how = f"consent recorded: {source_text}, {given.date()}" if given else "each asked to confirm"
            audit(session, user, "import-start", now=now, course_slug=scope.slug, item=f"import:{import_id}",
                  detail=f"{imported.file_name}: {imported.rows_total} rows; {how}")  # fmt: skip
        session.commit()
    return RedirectResponse(back, 303)


@router.get("/import/{import_id}/refused.csv")
def refused_csv(web: Web, user: User, scope: Scoped, import_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    """Every row the import refused, with its line and why (cells formula-safe: web/spreadsheet.py)."""
    _publisher(user)
    found = _of_course(web, scope, import_id)

    def rows() -> Iterator[str]:
        writer = SafeWriter()
        writer.row(["line", "address", "reason", "detail"])
        with web.session() as session:
            listed = select(ImportRefusalRow).where(ImportRefusalRow.import_id == found.id)
            for refusal in session.scalars(listed.order_by(ImportRefusalRow.line).execution_options(yield_per=2000)):
                writer.row([refusal.line, refusal.address or "", REASONS.get(refusal.reason, refusal.reason),
                            refusal.detail or ""])  # fmt: skip
                if writer.size() > 64_000:
                    yield writer.take()
        yield writer.take()

    name = f"import-{found.id}-refused.csv"
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
