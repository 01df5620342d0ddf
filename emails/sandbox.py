"""Checking marketers' templates in a separate process with hard limits on time and memory.

The Jinja sandbox stops templates from reaching Python's internals, but not from asking for a lot:
``{{ "A" * 10**9 }}`` or a loop of a million turns would hold a web worker (and its memory) for as long
as it runs. Every render runs on a budget (emails/compiler.py) that stops such a template with a named
problem, here and wherever published templates render (the workers, the studio's list); and the checks a
save or a publish runs (render every email of the course, see emails/store.py ``check``) happen in a
child process with an address-space limit, a CPU-time limit and a wall-clock timeout besides: the outer
wall, around what the budget does not meter (MJML, Jinja's own compiler) and any mistake in it. The
child gets the templates as JSON on stdin and answers JSON on stdout: template text never reaches a
command line, a shell, SQL or Python source.

The child gets what rendering needs and nothing secret: the few settings an email reads
(``RENDERING_SETTINGS``), in the request, and an environment with only what starts Python (no
SECRET_KEY, no DATABASE_URL, no webhook token or mailbox password). It signs with a key of its own,
made up for the one request, and a preview's or test send's signed links (the reader's own values,
emails/rendering.py ``reader_values``) are signed here, by the caller, and handed in: the templates
place them, the child never holds the key that makes them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from course.catalog import base_course
from course.settings import Settings
from emails.compiler import TemplateError, TemplateSet
from emails.rendering import Recipient, RenderedEmail, Renderer
from emails.validation import check, contents

MEMORY_BYTES = 1024 * 1024 * 1024  # 1 GB of address space: MJML and the course need about 200 MB
CPU_SECONDS = 20
WALL_SECONDS = 30.0
MAX_INPUT_BYTES = 2 * 1024 * 1024  # every template of a course is about 100 KB


class CheckFailed(RuntimeError):
    """The check itself could not finish: too slow, too big, or the child died."""


def _limits() -> None:  # pragma: no cover - runs in the child, between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


# What an email reads of the settings (emails/rendering.py, emails/store.py ``check``): nothing secret.
RENDERING_SETTINGS = ("base_url", "practice_postal_address", "course_slug")
# What starts Python and lets it find its packages; nothing of the deployment's own.
_STARTS_PYTHON = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")


def _environment() -> dict[str, str]:
    """The child's environment: what starts Python, and nothing else of this process's (its secrets)."""
    return {**{name: os.environ[name] for name in _STARTS_PYTHON if name in os.environ}, "PYTHONHASHSEED": "0"}


def _rendering_settings(settings: Settings) -> dict[str, str]:
    return {name: str(getattr(settings, name)) for name in RENDERING_SETTINGS}


def _spawn() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "emails.sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limits,
        env=_environment(),
    )


# One child started ahead, its imports done while it waits for a request on its standard input (about
# 0.6 s of a preview's wait otherwise): each request takes it and starts the next. Each child still serves
# one request only, with its limits, and a child that died waiting is replaced.
_spare: subprocess.Popen[bytes] | None = None
_spare_lock = threading.Lock()


def _ready_child() -> subprocess.Popen[bytes]:
    global _spare
    with _spare_lock:
        child, _spare = _spare, None
        if child is None or child.poll() is not None:
            child = _spawn()
        _spare = _spawn()
    return child


class Superseded(CheckFailed):
    """The work was stopped because newer work of the same person replaced it (a newer preview)."""


# How often a running child is asked whether it is still wanted.
_POLL_SECONDS = 0.05


def _run_child(
    request: dict[str, object], timeout: float, settings: Settings, still_wanted: Callable[[], bool] | None = None
) -> dict[str, object]:
    """Run one request in the limited child; its JSON answer, or CheckFailed. ``still_wanted``: asked while
    the child runs; when it says no, the child is killed (Superseded), its CPU given back at once."""
    payload = json.dumps({**request, "settings": _rendering_settings(settings)}).encode()
    if len(payload) > MAX_INPUT_BYTES:
        raise CheckFailed(f"the templates are {len(payload) // 1024} KB; at most {MAX_INPUT_BYTES // 1024} KB")
    child = _ready_child()
    deadline = time.monotonic() + timeout
    given: bytes | None = payload
    try:
        while True:
            step = _POLL_SECONDS if still_wanted is not None else timeout
            try:
                stdout, stderr = child.communicate(given, timeout=max(0.001, min(step, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                given = None  # given once; asking again only waits
                if time.monotonic() >= deadline:
                    raise CheckFailed(
                        f"the templates took longer than {timeout:.0f} s (a loop, or text too large?)"
                    ) from None
                if still_wanted is not None and not still_wanted():
                    raise Superseded("a newer request replaced this one") from None
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    if child.returncode != 0:
        if child.returncode < 0 or b"MemoryError" in stderr:
            reason = "they asked for more memory or time than a template may use"
        else:
            reason = (stderr.decode(errors="replace").strip().splitlines() or ["it stopped"])[-1]
        raise CheckFailed(f"checking the templates failed: {reason}")
    answer: dict[str, object] = json.loads(stdout)
    return answer


def _answer(problem: TemplateError) -> dict[str, object]:
    return {"email": problem.email, "file": problem.file, "message": problem.message, "line": problem.line,
            "field": problem.field}  # fmt: skip


def _problem(answer: Any) -> TemplateError:
    return TemplateError(answer["email"], answer["file"], answer["message"], answer["line"], answer.get("field"))


def check_bounded(
    files: Mapping[str, str], course_slug: str, *, settings: Settings, timeout: float = WALL_SECONDS
) -> list[TemplateError]:
    """Every problem of these templates for the course, found in a limited child process.

    The child renders with ``settings`` (without them: the environment's). CheckFailed when it runs
    out of time or memory: the templates ask too much, and are refused for it.
    """
    return checked_bounded(files, course_slug, settings=settings, timeout=timeout, contents=False)[0]


def checked_bounded(
    files: Mapping[str, str],
    course_slug: str,
    *,
    settings: Settings,
    timeout: float = WALL_SECONDS,
    contents: bool = True,
) -> tuple[list[TemplateError], dict[str, str]]:
    """:func:`check_bounded`, and when nothing is wrong (and ``contents``) what each email says
    (emails/store.py ``contents``: what a publication keeps)."""
    request: dict[str, object] = {"action": "check", "files": dict(files), "course": course_slug, "contents": contents}
    answer = _run_child(request, timeout, settings)
    problems, described = answer["problems"], answer.get("contents") or {}
    assert isinstance(problems, list) and isinstance(described, dict)  # noqa: S101 - our own child's answer
    return [_problem(p) for p in problems], {str(email): str(digest) for email, digest in described.items()}


def render_bounded(
    files: Mapping[str, str],
    course_slug: str,
    email: str,
    recipient: Recipient,
    *,
    settings: Settings,
    timeout: float = WALL_SECONDS,
    still_wanted: Callable[[], bool] | None = None,
) -> RenderedEmail:
    """One email rendered for ``recipient`` in the limited child (previews and test sends of drafts).

    Its signed links are made here, with the real key (a words file cannot change which links an email
    has: course/wording.py). TemplateError when it does not render; CheckFailed when it asks too much;
    Superseded when ``still_wanted`` says no while it runs.
    """
    values = Renderer(base_course(files, course_slug), settings, TemplateSet(files)).reader_values(email, recipient)
    answer = _run_child(
        {"action": "render", "files": dict(files), "course": course_slug, "email": email,
         "recipient": dataclasses.asdict(recipient), "values": values},
        timeout,
        settings,
        still_wanted,
    )  # fmt: skip
    if "problem" in answer:
        problem = answer["problem"]
        assert isinstance(problem, dict)  # noqa: S101
        raise _problem(problem)
    rendered = answer["rendered"]
    assert isinstance(rendered, dict)  # noqa: S101
    return RenderedEmail(**rendered)


def main() -> int:
    """The child: read a request, check the templates or render one email, write the answer."""

    request = json.loads(sys.stdin.buffer.read(MAX_INPUT_BYTES + 1))
    # A key of its own for this one request: the links of a check are never used, those of a render
    # come signed in the request.
    settings = Settings(environment="test", secret_key=secrets.token_urlsafe(32), **request["settings"])
    templates = TemplateSet(request["files"])
    course = base_course(templates.files, request["course"])
    if request["action"] == "render":
        try:
            renderer = Renderer(course, settings, templates)
            recipient = Recipient(**request["recipient"])
            rendered = renderer.render_with(request["email"], renderer.context(request["email"], recipient,
                                                                                request["values"]))  # fmt: skip
        except TemplateError as p:
            json.dump({"problem": _answer(p)}, sys.stdout)
            return 0
        json.dump({"rendered": dataclasses.asdict(rendered)}, sys.stdout)
        return 0
    problems = check(templates, course, settings)
    described = contents(templates, course, settings) if request.get("contents") and not problems else {}
    json.dump({"problems": [_answer(p) for p in problems], "contents": described}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
