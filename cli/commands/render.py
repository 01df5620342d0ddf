"""`course render`: every course email as the .eml a sample subscriber would get, to read before sending."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course.curriculum import load_course
from course.settings import get_settings
from emails.compiler import TemplateError
from emails.preview import write_previews
from emails.rendering import Renderer


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = commands.add_parser(
        "render",
        help="write every course email as a complete .eml file for a sample subscriber",
        description="Write every course email (confirmation, welcome, each day, completion) as the .eml "
        "file that would be sent to a sample subscriber, with its HTML and text parts and an index.html.",
    )
    render.add_argument("--out", type=Path, required=True, help="folder to write into (created if missing)")
    render.add_argument("--day", type=int, help="only this course day (1..18)")
    render.set_defaults(handler=_render)


def _render(arguments: argparse.Namespace) -> int:
    settings = get_settings()
    course = load_course(settings.course_slug)
    names = Renderer(course, settings).email_names()
    only = None
    if arguments.day is not None:
        if not 1 <= arguments.day <= len(course.days):
            print(f"course render: --day takes 1..{len(course.days)}, not {arguments.day}", file=sys.stderr)
            return 2
        only = [course.step(arguments.day).email]
    try:
        written = write_previews(course, settings, arguments.out, only=only)
    except TemplateError as error:
        print(f"course render: {error}", file=sys.stderr)
        return 1
    for email in written:
        print(f"{email.eml}")
        print(f"  subject ({len(email.subject)} characters): {email.subject}")
        print(f"  preview ({len(email.preview)} characters): {email.preview}")
    print(f"{len(written)} of {len(names)} emails written; open {arguments.out / 'index.html'} in a browser.")
    return 0
