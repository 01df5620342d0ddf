"""Template sets and their compilation: MJML to HTML once per template version, Jinja parsed once.

An email is a folder (``subject.txt``, ``body.mjml``, ``body.txt``); shared pieces live in ``_base/``.
The course days share one folder, ``day/``: a change to the daily layout is made once. A day may
override any of its files in a folder of its own (``day-07/subject.txt``); the rest comes from ``day/``.
``body.mjml`` pulls shared sections in with ``<mj-include>``, resolved from the same template set, so a
published version is self-contained. MJML runs once per version; the Jinja placeholders it leaves
alone are filled per subscriber by :mod:`emails.rendering`.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from mjml import mjml2html

from emails.markup import inline_html, inline_text, markup_html, markup_text, plain, punctuated

TEMPLATES_DIR = Path(__file__).parent / "templates"
EMAIL_FILES = ("subject.txt", "body.mjml", "body.txt")
SHARED_FOLDER = "_base"
# The folder every course day's email falls back to, file by file.
DAY_FOLDER = "day"
_DAY_EMAIL = re.compile(r"^day-\d+$")


def is_day_email(name: str) -> bool:
    """``day-07``: a course day's email (or its folder of own files)."""
    return _DAY_EMAIL.fullmatch(name) is not None


class TemplateError(ValueError):
    """A template that cannot be compiled or rendered. Names the email and file, for the studio."""

    def __init__(self, email: str, file: str, message: str, line: int | None = None, field: str | None = None) -> None:
        # ``field``: for a words file, the field the problem is about ("teaching.0.paragraphs").
        self.email, self.file, self.message, self.line, self.field = email, file, message, line, field
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{email}: {where}: {message}")


class TemplateSet:
    """An immutable snapshot of every template file, keyed by its path ("day-03/body.mjml").

    ``version`` is a hash of the contents: equal sets share one compiled cache entry.
    """

    def __init__(self, files: Mapping[str, str]) -> None:
        self._files = dict(files)
        digest = hashlib.sha256()
        for path in sorted(self._files):
            digest.update(path.encode() + b"\0" + self._files[path].encode() + b"\0")
        self.version = digest.hexdigest()[:16]

    @classmethod
    def from_directory(cls, root: Path = TEMPLATES_DIR) -> TemplateSet:
        files = {
            path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }
        return cls(files)

    def __hash__(self) -> int:
        return hash(self.version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TemplateSet) and other.version == self.version

    @property
    def files(self) -> Mapping[str, str]:
        return dict(self._files)

    def emails(self) -> list[str]:
        """The email folders (not the shared ``_base``), sorted: ``day`` and any day's own overrides among them."""
        return sorted({path.split("/")[0] for path in self._files if "/" in path and not path.startswith("_")})

    def email_path(self, email: str, file: str) -> str:
        """Where ``email``'s ``file`` comes from: its own folder, or for a course day without its own
        copy, the shared ``day/`` folder. KeyError when neither has it."""
        own = f"{email}/{file}"
        if own in self._files:
            return own
        if is_day_email(email) and f"{DAY_FOLDER}/{file}" in self._files:
            return f"{DAY_FOLDER}/{file}"
        raise KeyError(own)

    def source(self, path: str) -> str:
        normalised = posixpath.normpath(path)
        if normalised.startswith(("../", "/")) or normalised == "..":
            raise KeyError(path)
        return self._files[normalised]

    def with_file(self, path: str, text: str) -> TemplateSet:
        """A copy with one file replaced: how a draft differs from its published version."""
        return TemplateSet({**self._files, path: text})


@functools.cache
def default_templates() -> TemplateSet:
    return TemplateSet.from_directory()


# --- Jinja environments ---------------------------------------------------------------------------


def fill(text: str, width: int = 72, initial: str = "", subsequent: str = "") -> str:
    """Wrap prose for the plain-text part; never break a word or a URL in two."""
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=initial,
        subsequent_indent=subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class CourseEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with one change: on a dict, a key wins over a method of the same name.

    The course data reaches templates as plain dicts, and ``checklist.items`` must mean the checklist's
    items, not ``dict.items``.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _environment(templates: TemplateSet, *, html: bool) -> CourseEnvironment:
    def load(name: str) -> str:
        try:
            return templates.source(name)
        except KeyError:
            raise jinja2.TemplateNotFound(name) from None

    # Sandboxed: templates are edited in the browser by people who are not developers, and must not
    # reach Python internals. Strict: an undefined variable is an error, never a blank in a sent email.
    environment = CourseEnvironment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        autoescape=html,
        trim_blocks=not html,
        lstrip_blocks=not html,
        keep_trailing_newline=False,
    )
    environment.filters["fill"] = fill
    # The course's words carry a small markup (emails/markup.py): each part renders it its own way.
    environment.filters["markup"] = markup_html if html else markup_text
    environment.filters["inline"] = inline_html if html else inline_text
    environment.filters["plain"] = plain
    environment.filters["punctuated"] = punctuated
    return environment


@dataclass(frozen=True)
class Environments:
    html: CourseEnvironment
    text: CourseEnvironment


@functools.lru_cache(maxsize=32)
def environments(templates: TemplateSet) -> Environments:
    return Environments(html=_environment(templates, html=True), text=_environment(templates, html=False))


# --- Compilation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledEmail:
    name: str
    version: str
    html_source: str  # MJML's output, still holding the Jinja placeholders
    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template


_POSITION = re.compile(r"at position (\d+):")
_INCLUDE = re.compile(r"<mj-include\b([^>]*?)/?>(?:\s*</mj-include>)?")
_INCLUDE_PATH = re.compile(r'^\s*path\s*=\s*"([^"]+)"\s*$')
MAX_INCLUDE_DEPTH = 8


def resolve_includes(source: str, load: Callable[[str], str], depth: int = 0) -> str:
    """Inline every ``<mj-include path="...">`` before MJML sees the document.

    MRML resolves includes itself, but sections that come from an included file lose the body's
    width (no ``max-width: 600px``: they stretch across a desktop window), and an included file
    cannot include another. Inlining the text first avoids both and keeps the layout in one place.
    """
    if depth > MAX_INCLUDE_DEPTH:
        raise ValueError(f"<mj-include> nests deeper than {MAX_INCLUDE_DEPTH} levels (a loop?)")

    def replace(match: re.Match[str]) -> str:
        attributes = _INCLUDE_PATH.match(match.group(1))
        if attributes is None:
            raise ValueError(f'<mj-include> takes exactly one attribute, path="...": {match.group(0)}')
        return resolve_includes(load(attributes.group(1)), load, depth + 1)

    return _INCLUDE.sub(replace, source)


def _line_in(source: str, document: str, offset: int) -> int | None:
    """The line of ``source`` (a body.mjml as written) holding what MJML reports at ``offset`` of the
    document made from it (includes inlined): found when the text just before it occurs once in the file."""
    for width in (60, 30, 15):
        snippet = document[max(0, offset - width) : offset]
        if snippet.strip() and source.count(snippet) == 1:
            return source.count("\n", 0, source.index(snippet) + len(snippet)) + 1
    return None


def _jinja_line(environment: jinja2.Environment, source: str) -> int | None:
    try:
        environment.parse(source)
    except jinja2.TemplateSyntaxError as error:
        return error.lineno
    return None


@functools.lru_cache(maxsize=256)
def compile_email(templates: TemplateSet, name: str) -> CompiledEmail:
    """Compile one email of a template set; cached per (version, email)."""
    files = {}
    for file in EMAIL_FILES:
        try:
            files[file] = templates.source(templates.email_path(name, file))
        except KeyError:
            raise TemplateError(name, file, "file is missing") from None

    def include(path: str) -> str:
        try:
            return templates.source(path)
        except KeyError:
            raise FileNotFoundError(f"<mj-include> names {path!r}, which does not exist") from None

    try:
        document = resolve_includes(files["body.mjml"], include)
    except (ValueError, FileNotFoundError) as error:
        raise TemplateError(name, "body.mjml", f"MJML: {error}") from None
    try:
        # fonts={}: MJML otherwise links Google Fonts for any family it knows (Roboto): no remote fonts.
        html_source = str(mjml2html(document, fonts={}))
    except ValueError as error:
        # MRML counts in the document with its includes inlined: quote the text there, which a
        # person can find in whichever file it came from.
        message = str(error)
        position = _POSITION.search(message)
        line = None
        if position:
            offset = int(position.group(1))
            message += f", near: {document[max(0, offset - 40) : offset + 40]!r}"
            line = _line_in(files["body.mjml"], document, offset)
        raise TemplateError(name, "body.mjml", f"MJML: {message}", line) from None

    envs = environments(templates)
    parsed = {}
    for file, environment, source in (
        ("subject.txt", envs.text, files["subject.txt"]),
        ("body.txt", envs.text, files["body.txt"]),
        ("body.mjml", envs.html, html_source),
    ):
        try:
            parsed[file] = environment.from_string(source)
        except jinja2.TemplateSyntaxError as error:
            # For body.mjml the line is of MJML's output: the file as written says where, when the
            # mistake is in it (and not in a section it includes).
            line = error.lineno if file != "body.mjml" else _jinja_line(environment, files["body.mjml"])
            raise TemplateError(name, error.name or file, f"Jinja: {error.message}", line) from None
    return CompiledEmail(
        name=name,
        version=templates.version,
        html_source=html_source,
        subject=parsed["subject.txt"],
        text=parsed["body.txt"],
        html=parsed["body.mjml"],
    )
