"""Checking marketers' templates in a separate process with hard limits on time and memory.

The Jinja sandbox stops templates from reaching Python's internals, but not from asking for a lot:
``{{ "A" * 10**9 }}`` or a loop of a million turns would hold a web worker (and its memory) for as long
as it runs. So the checks a save or a publish runs (render every email of the course, see
emails/store.py ``check``) happen in a child process with an address-space limit, a CPU-time limit and
a wall-clock timeout. The child gets the templates as JSON on stdin and answers JSON on stdout:
template text never reaches a command line, a shell, SQL or Python source.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Mapping

from emails.compiler import TemplateError

MEMORY_BYTES = 1024 * 1024 * 1024  # 1 GB of address space: MJML and the course need about 200 MB
CPU_SECONDS = 20
WALL_SECONDS = 30.0
MAX_INPUT_BYTES = 2 * 1024 * 1024  # every template of a course is about 100 KB


class CheckFailed(RuntimeError):
    """The check itself could not finish: too slow, too big, or the child died."""


def _limits() -> None:  # pragma: no cover - runs in the child, between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def check_bounded(files: Mapping[str, str], course_slug: str, *, timeout: float = WALL_SECONDS) -> list[TemplateError]:
    """Every problem of these templates for the course, found in a limited child process.

    The child reads the same settings (the environment) as this process. CheckFailed when it runs
    out of time or memory: the templates ask too much, and are refused for it.
    """
    payload = json.dumps({"files": dict(files), "course": course_slug}).encode()
    if len(payload) > MAX_INPUT_BYTES:
        raise CheckFailed(f"the templates are {len(payload) // 1024} KB; at most {MAX_INPUT_BYTES // 1024} KB")
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "emails.sandbox"],
            input=payload,
            capture_output=True,
            timeout=timeout,
            preexec_fn=_limits,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"checking took longer than {timeout:.0f} s (a loop, or text too large?)") from None
    if finished.returncode != 0:
        if finished.returncode < 0 or b"MemoryError" in finished.stderr:
            reason = "they asked for more memory or time than a template may use"
        else:
            reason = (finished.stderr.decode(errors="replace").strip().splitlines() or ["it stopped"])[-1]
        raise CheckFailed(f"checking the templates failed: {reason}")
    answer = json.loads(finished.stdout)
    return [TemplateError(p["email"], p["file"], p["message"], p["line"]) for p in answer["problems"]]


def main() -> int:
    """The child: read the templates, check them, write the problems."""
    from course.curriculum import load_course
    from course.settings import get_settings
    from emails.compiler import TemplateSet
    from emails.store import check

    request = json.loads(sys.stdin.buffer.read(MAX_INPUT_BYTES + 1))
    problems = check(TemplateSet(request["files"]), load_course(request["course"]), get_settings())
    json.dump(
        {"problems": [{"email": p.email, "file": p.file, "message": p.message, "line": p.line} for p in problems]},
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
