"""The images of the emails' image blocks: checked and stored when a marketer uploads one in the studio,
served to mail programs and the studio's preview under ``/media/<name>``.

An upload is taken only when its first bytes say it is a PNG, JPEG, GIF or WebP image (never SVG, which can
carry script), and only up to :data:`MAX_IMAGE_BYTES`. Its name is its content's hash: the same image is
stored once, and a name always means the same bytes, so it is served to be kept by caches for good, with its
own type and ``nosniff`` (a browser never reads it as anything else).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from course.curriculum import IMAGE_FILE
from course.models.media import MediaFile
from course.studio import audit
from web.context import WebContext, context
from web.routing import get_and_head

router = APIRouter()

# Large enough for a photograph saved for the web, small enough for an inbox (Gmail clips at ~102 KB of
# HTML, but images load apart; a phone on a slow line still waits for every byte).
MAX_IMAGE_BYTES = 2 * 1024 * 1024
_KINDS = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
)
_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


class ImageRefused(ValueError):
    """An upload that is not an image the emails can carry; the message says why, in plain words."""


def image_kind(data: bytes) -> str:
    """The image's type by its first bytes ("png", "jpg", "gif", "webp"); ImageRefused for anything else."""
    for magic, extension, _ in _KINDS:
        if data.startswith(magic):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise ImageRefused("that file is not a PNG, JPEG, GIF or WebP image")


def store_image(session: Session, data: bytes, *, course_slug: str, author: str | None, now: datetime) -> str:
    """Store an uploaded image (once, whoever uploads it again) and return its name."""
    if not data:
        raise ImageRefused("the file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB: save it smaller")
    extension = image_kind(data)
    name = f"{hashlib.sha256(data).hexdigest()[:32]}.{extension}"
    if session.get(MediaFile, name) is None:
        session.add(MediaFile(name=name, content_type=_TYPES[extension], data=data, size=len(data),
                              course_slug=course_slug, created_at=now, created_by=author))  # fmt: skip
        audit(session, None, "upload-image", now=now, course_slug=course_slug, detail=name, actor_email=author)
    return name


_NAME = re.compile(IMAGE_FILE)


@get_and_head(router, "/media/{name}")
def media(name: str, web: Annotated[WebContext, Depends(context)]) -> Response:
    if not _NAME.match(name):
        raise HTTPException(404, "No such image")
    with web.session() as session:
        found = session.get(MediaFile, name)
        if found is None:
            raise HTTPException(404, "No such image")
        data, content_type = found.data, found.content_type
    return Response(data, media_type=content_type, headers={
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })  # fmt: skip
