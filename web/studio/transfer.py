"""A course as one file, out of the studio and into another (or this) deployment.

The file is YAML: ``course`` is the course as it is live (its shape, settings, theme and every email's
words: what ``course/curricula/*.yaml`` in the repository holds, from which version 0 is made), ``layouts``
the templates the course changed from the shipped ones (each item's files), and ``images`` every image it
names (its logo and the emails' images, base64). A bare course file (the repository's YAML) reads too.

Importing makes a new course (web/studio/courses.py): the images are stored again and must be what their
names say (a name is the hash of its bytes), the course and each layout are published through the same
checks as any publish, and what readers of the exported course had comes with nothing.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import yaml
from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from course.catalog import COURSE_FILE, course_data
from course.curriculum import Course
from course.models.media import MediaFile
from course.studio import audit
from course.wording import is_words
from emails.compiler import TemplateSet, default_templates
from emails.store import files_of, items, live_templates
from web.studio.auth import Scoped, User, Web

router = APIRouter(prefix="/studio")
# What an imported file may hold at most: a course is about 100 KB, its images 2 MB each.
MAX_FILE_BYTES = 24 * 1024 * 1024
FORMAT = "course-export/1"


def layout_overrides(templates: TemplateSet) -> dict[str, dict[str, str]]:
    """The course's layouts that differ from the shipped ones: each item's files."""
    shipped = default_templates()
    found = {}
    for item in items(templates):
        if is_words(item) or item == COURSE_FILE:
            continue
        files = files_of(templates, item)
        if files != files_of(shipped, item):
            found[item] = files
    return found


def images_named(value: Any) -> set[str]:
    """Every image a course's data names: its logo and its emails' image blocks."""
    found: set[str] = set()
    if isinstance(value, dict):
        if value.get("kind") == "image" and isinstance(value.get("file"), str):
            found.add(value["file"])
        if isinstance(value.get("logo"), str):
            found.add(value["logo"])
        for inner in value.values():
            found |= images_named(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= images_named(inner)
    return found


@dataclass
class Bundle:
    """What a course file holds, read and checked for its form (the course itself is checked on import)."""

    course: dict[str, Any]
    layouts: dict[str, dict[str, str]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)


def dump_bundle(course: Course, layouts: dict[str, dict[str, str]], images: dict[str, bytes]) -> str:
    data = course_data(course)
    data.pop("retired", None)  # where readers of this deployment keep their place: nothing to another
    data.pop("moved", None)
    return yaml.safe_dump(
        {"format": FORMAT, "course": data, "layouts": layouts,
         "images": {name: base64.b64encode(content).decode() for name, content in sorted(images.items())}},
        sort_keys=False, allow_unicode=True, width=100,
    )  # fmt: skip


def read_bundle(text: str) -> Bundle:
    """A course file as :func:`dump_bundle` writes it, or a bare course file; ValueError in plain words."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"the file is not YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict):
        raise ValueError("the file holds no course")
    if "course" not in data:  # a bare course file, as the repository's
        return Bundle(course=data)
    if data.get("format") != FORMAT:
        raise ValueError(f"the file is of another kind ({data.get('format')!r}); this studio reads {FORMAT}")
    course, layouts, images = data.get("course"), data.get("layouts") or {}, data.get("images") or {}
    if not isinstance(course, dict) or not isinstance(layouts, dict) or not isinstance(images, dict):
        raise ValueError("the file's course, layouts or images are not what an export writes")
    for item, files in layouts.items():
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise ValueError(f"the layout {item!r} in the file is not a set of files")
        if not all(path.startswith(f"{item}/") or path == item for path in files):
            raise ValueError(f"the layout {item!r} holds files of another layout")
    decoded = {}
    for name, content in images.items():
        try:
            decoded[str(name)] = base64.b64decode(str(content), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the image {name!r} in the file is damaged") from None
    return Bundle(course=course, layouts={str(k): v for k, v in layouts.items()}, images=decoded)


@router.get("/course/export")
def export_course(web: Web, user: User, scope: Scoped) -> Response:
    """The course as it is live, as one file (see the module's text)."""
    with web.session() as session:
        course = web.live_course(session, scope.slug)
        layouts = layout_overrides(live_templates(session, scope.slug))
        named = images_named(course_data(course))
        images = {row.name: row.data for row in session.scalars(select(MediaFile).where(MediaFile.name.in_(named)))}
        audit(session, user, "export-course", now=web.clock(), course_slug=scope.slug)
        session.commit()
    text = dump_bundle(course, layouts, images)
    filename = f"{scope.slug}.course.yaml"
    return Response(text, media_type="application/yaml; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff",
    })  # fmt: skip
