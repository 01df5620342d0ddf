"""Template sets and their compilation: MJML to HTML once per template version, Jinja parsed once.

An email is a folder (``subject.txt``, ``body.mjml``, ``body.txt``); shared pieces live in ``_base/``.
The course days share one folder, ``day/``: a change to the daily layout is made once. A day may
override any of its files in a folder of its own (``day-07/subject.txt``); the rest comes from ``day/``.
``body.mjml`` pulls shared sections in with ``<mj-include>``, resolved from the same template set, so a
published version is self-contained. MJML runs once per version; the Jinja placeholders it leaves
alone are filled per subscriber by :mod:`emails.rendering`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import pickle  # only to name the error of a damaged entry Jinja reads
import posixpath
import re
import secrets
import tempfile
import textwrap
import types
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import TemplateModule
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from mjml import mjml2html

from course.lifecycle import is_day_email
from course.wording import TemplateError as TemplateError  # the emails' error, defined with the content's
from emails.markup import inline_html, inline_text, markup_html, markup_text, plain, punctuated
from emails.mjml_names import misspellings

TEMPLATES_DIR = Path(__file__).parent / "templates"
EMAIL_FILES = ("subject.txt", "body.mjml", "body.txt")
SHARED_FOLDER = "_base"
# The folder every course day's email falls back to, file by file.
DAY_FOLDER = "day"


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


# --- The render budget ----------------------------------------------------------------------------
#
# The sandbox keeps templates from Python's internals, not from asking for a lot: a loop in a loop, a
# macro that calls itself twice, ``"A" * 10**9``. Drafts are checked in a child process with hard limits
# (emails/sandbox.py), but a published template is rendered here, in the workers and the web app, for
# readers the check never rendered for (another name, other answers, another branch of an ``{% if %}``).
# So every render is metered as it runs, and stops with a TemplateRuntimeError (the email is not sent; the
# studio names the problem) past a budget that no real email comes near:
#
# - steps: each turn of a loop, each call (macros, methods, filters, tests), each attribute or item
#   looked up, each arithmetic operation, each template included or imported, each piece of output;
# - text: the characters each step reads and makes (containers counted item by item);
# - any one value: an operation whose result would be too long is refused before it runs (``"A" * n``,
#   ``"{:>99999999}".format(x)``, ``s.replace("", t)``), and so is a number of more digits than Python
#   prints.
#
# Every loop turn and every piece of output passes a meter, so what a template does between two meters is
# bounded by the size of its source: the work of a render is bounded by the budget, whatever the reader's
# values, and so is its memory. The meters are put in at compile time (a code generator that rewrites
# the template's tree before Python code is made of it: Environment.code_generator_class) and in the
# sandbox's own hooks (call, getattr, getitem, call_binop).

MAX_STEPS = 100_000
MAX_TEXT = 5_000_000  # characters read and made in one render
MAX_VALUE = 1_000_000  # characters (or items) of any one value
MAX_DIGITS = 4300  # Python's own limit for printing an integer
_MAX_BITS = MAX_DIGITS * 10 // 3


class RenderBudgetExceeded(jinja2.TemplateRuntimeError):
    """A render asked for more than any email needs (a runaway loop, text grown out of all proportion)."""


class _Budget:
    __slots__ = ("steps", "text")

    def __init__(self) -> None:
        self.steps = 0
        self.text = 0

    def spend(self, steps: int, text: int = 0) -> None:
        self.steps += steps
        self.text += text
        if self.steps > MAX_STEPS:
            raise RenderBudgetExceeded(
                f"this template takes more than {MAX_STEPS:,} steps to render (a loop that runs too often?)"
            )
        if self.text > MAX_TEXT:
            raise RenderBudgetExceeded(
                f"this template works through more than {MAX_TEXT:,} characters to render (text repeated too often?)"
            )


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("render_budget", default=None)


@contextlib.contextmanager
def _budgeted() -> Iterator[None]:
    """A budget for the render that runs inside (a template included in it, or imported, shares it)."""
    if _BUDGET.get() is not None:
        yield
        return
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _spend(steps: int, text: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is not None:  # None: constant folding while compiling, which runs nothing a template chose
        budget.spend(steps, text)


# What a template can hold that prints as all of its items: lists, tuples, sets, and a dict's views.
_CONTAINERS = (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)
_SIZED = (str, bytes, range, Mapping, *_CONTAINERS)


def _size(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters ``value`` makes as text: a string its length, a container its items (one
    that appears twice, twice), a number its digits; counted up to just past ``limit``."""
    total, pending = 0, [value]
    while pending and total <= limit:
        item = pending.pop()
        total += 1
        if isinstance(item, str | bytes | range):
            total += len(item)
        elif isinstance(item, int):
            total += item.bit_length() * 3 // 10
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, _CONTAINERS):
            pending.extend(item)
        elif isinstance(item, Namespace):
            pending.append(item._Namespace__attrs)
    return total


def _shallow(value: Any) -> int:
    """What a value costs to pass around or to make in one piece: a container its slots, not its items."""
    if isinstance(value, _SIZED):
        return 1 + len(value)
    return _size(value) if isinstance(value, int) else 1


def _too_long(size: int) -> RenderBudgetExceeded:
    return RenderBudgetExceeded(f"this would make a piece of text of about {size:,} characters, more than "
                                f"{MAX_VALUE:,}")  # fmt: skip


_WIDTH = re.compile(r"\d+")


def _widths(text: Any) -> int:
    """The widest field a format string (``"%9999d"``, ``"{:>9999}"``) may ask for."""
    return max((int(digits) for digits in _WIDTH.findall(text)), default=0) if isinstance(text, str) else 0


# Functions whose result repeats their other arguments once per character or line of their subject:
# "".join(items), s.replace(old, new), s|indent(width), s|wordwrap(wrapstring=...), s.expandtabs(n).
_REPEATING = frozenset({"join", "replace", "indent", "wordwrap", "fill", "urlize", "expandtabs"})
_FORMATTING = frozenset({"format", "format_map", "%"})
# Filters, tests and methods that take containers as they are, without printing, comparing or hashing
# their items (most others read every item: |string, |join, |sort, |unique, |tojson, ==, in ...).
_SHALLOW = frozenset({
    "length", "count", "first", "last", "random", "list", "reverse", "batch", "slice", "map", "select", "reject",
    "selectattr", "rejectattr", "attr", "items", "keys", "values", "get", "default", "d", "safe_range",
    "defined", "undefined", "none", "mapping", "sequence", "iterable", "callable", "sameas", "string", "number",
    "integer", "float", "boolean", "true", "false", "odd", "even", "divisibleby", "filter", "test", "escaped",
})  # fmt: skip
_JINJA_KEYWORDS = ("_loop_vars", "_block_vars")
# The course's markup (emails/markup.py) takes about twenty times as long per character as copying text.
_SLOW_READERS = {"markup": 20, "inline": 20}


def _before(name: str, subject: Any, args: tuple[Any, ...], kwargs: dict[str, Any], shallow: bool = False) -> None:
    """Meter a call before it runs: refused if its result could be too long; its inputs are read (item by
    item, unless ``shallow`` or its name says that it takes containers as they are)."""
    size = _shallow if shallow or name in _SHALLOW else _size
    others = [value for key, value in kwargs.items() if key not in _JINJA_KEYWORDS]
    others += args
    # Numbers as the widths and counts they may be (range() is lazy, and the sandbox limits it itself).
    counts = [abs(value) for value in others if type(value) is int and name != "safe_range"]
    texts = [size(value) for value in others if type(value) is not int]
    read = size(subject) + sum(texts)
    estimate = read + sum(counts)
    if name in _REPEATING:
        estimate += size(subject) * (1 + sum(texts) + sum(counts) + (8 if name == "expandtabs" else 0))
    if name in _FORMATTING:
        estimate += _widths(subject)
    if name == "generate_lorem_ipsum":  # lipsum(n, html, min, max): n paragraphs of up to max words
        estimate += int(kwargs.get("n", args[0] if args else 5)) * int(kwargs.get("max", 100)) * 16
    if estimate > MAX_VALUE:
        raise _too_long(estimate)
    _spend(1, read * _SLOW_READERS.get(name, 1))


def _too_many_digits() -> RenderBudgetExceeded:
    return RenderBudgetExceeded(f"this would make a number of more than {MAX_DIGITS:,} digits")


def _after(result: Any) -> Any:
    """Meter what a call made (a new container holds its items' places, not copies of them)."""
    if type(result) is int and result.bit_length() > _MAX_BITS:
        raise _too_many_digits()
    size = _shallow(result)
    if size > MAX_VALUE:
        raise _too_long(size)
    _spend(0, size)
    return result


def _metered(name: str, function: Any) -> Callable[..., Any]:
    """A filter or test, metered like a call (its subject is its first argument after what Jinja passes)."""
    passed = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    if getattr(function, "metered", False):
        return function  # type: ignore[no-any-return]

    @functools.wraps(function)
    def metered(*args: Any, **kwargs: Any) -> Any:
        if name in _REPEATING and len(args) > passed and isinstance(args[passed], Iterator):
            # items made one by one (|map): counted before anything is repeated between them
            args = (*args[:passed], list(args[passed]), *args[passed + 1 :])
        _before(name, args[passed] if len(args) > passed else None, args[passed + 1 :], kwargs)
        return _after(function(*args, **kwargs))

    metered.metered = True  # type: ignore[attr-defined]
    return metered


# What the code generator puts into templates (as imported names, called through ``environment.call``).


def _turns(iterable: Any) -> Iterator[Any]:
    """A loop's items, one step each."""
    for item in iterable:
        _spend(1)
        yield item


def _read(value: Any) -> Any:
    """A value compared or joined with ``~``: as many characters read as it has."""
    _spend(1, _size(value))
    return value


def _written(value: Any) -> Any:
    """A value printed: refused if it would print as more than any one value may hold."""
    size = _size(value)
    if size > MAX_VALUE:
        raise _too_long(size)
    _spend(1, size)
    return value


def _wrote(characters: int) -> None:
    """The template's own text, as it is output (once per turn of a loop it is in)."""
    _spend(1, characters)


_METERS = frozenset({_turns, _read, _written, _wrote})


def _meter(name: str, node: nodes.Node) -> nodes.Call:
    call = nodes.Call(nodes.ImportedName(f"{__name__}.{name}"), [node], [], None, None)
    if node.lineno:
        call.set_lineno(node.lineno)
    return call


def _put_in_meters(template: nodes.Template) -> None:
    """Meter every loop turn, every output, and every value compared or joined with ``~``."""
    for node in [template, *template.find_all(nodes.Node)]:
        if isinstance(node, nodes.For):
            node.iter = _meter("_turns", node.iter)
        elif isinstance(node, nodes.Concat):
            node.nodes = [_meter("_read", child) for child in node.nodes]
        elif isinstance(node, nodes.Compare):  # (a constant is as long as the template says)
            if not isinstance(node.expr, nodes.Const):
                node.expr = _meter("_read", node.expr)
            for operand in node.ops:
                if not isinstance(operand.expr, nodes.Const):
                    operand.expr = _meter("_read", operand.expr)
        elif isinstance(node, nodes.Output):
            node.nodes = [
                child if isinstance(child, nodes.TemplateData) else _meter("_written", child) for child in node.nodes
            ]
        for field in node.fields:
            statements = getattr(node, field)
            if isinstance(statements, list) and any(isinstance(child, nodes.Output) for child in statements):
                metered: list[nodes.Node] = []
                for child in statements:
                    if isinstance(child, nodes.Output):
                        text = sum(len(part.data) for part in child.nodes if isinstance(part, nodes.TemplateData))
                        metered.append(nodes.ExprStmt(_meter("_wrote", nodes.Const(text)), lineno=child.lineno))
                    metered.append(child)
                setattr(node, field, metered)


class _MeteredCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        functions = {**self.environment.filters, **self.environment.tests}
        unmetered = [name for name, function in functions.items() if not getattr(function, "metered", False)]
        if unmetered:
            raise RuntimeError(f"filters or tests without a meter (see meter_filters_and_tests): {unmetered}")
        _put_in_meters(node)
        super().visit_Template(node, frame)


class _MeteredTemplate(jinja2.Template):
    """A template whose every render has a budget of its own."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        with _budgeted():
            return super().render(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        budget, pieces = _Budget(), super().generate(*args, **kwargs)
        while True:
            token = _BUDGET.set(budget)
            try:
                piece = next(pieces, None)
            finally:
                _BUDGET.reset(token)
            if piece is None:
                return
            yield piece

    def make_module(self, *args: Any, **kwargs: Any) -> TemplateModule:
        with _budgeted():
            return super().make_module(*args, **kwargs)


class CourseEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with a render budget (see above) and one change: on a dict, a key wins over a method
    of the same name.

    The course data reaches templates as plain dicts, and ``checklist.items`` must mean the checklist's
    items, not ``dict.items``.
    """

    code_generator_class = _MeteredCodeGenerator
    template_class = _MeteredTemplate
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def meter_filters_and_tests(self) -> None:
        """Meter every filter and test the environment has (call once they are all in)."""
        self.filters = {name: _metered(name, function) for name, function in self.filters.items()}
        self.tests = {name: _metered(name, function) for name, function in self.tests.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        _spend(1)
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _spend(1)
        found = super().getitem(obj, argument)
        return _after(found) if isinstance(argument, slice) else found

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if type(__obj) is types.FunctionType and __obj in _METERS:
            return __obj(*args)
        shallow = isinstance(__obj, Macro | LoopContext)  # what a macro prints is metered as it prints it
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level: its turns count too
            args = (_turns(args[0]), *args[1:])
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        subject = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if name == "join" and isinstance(args[0] if args else None, Iterator):
            args = (list(args[0]), *args[1:])  # counted before the separator is repeated between them
        _before(name if isinstance(name, str) else "", subject, args, kwargs, shallow)
        return _after(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        read = _size(left) + _size(right)
        if operator == "**" and type(left) is int and type(right) is int and abs(left) > 1 and right > 0:
            if left.bit_length() * right > _MAX_BITS:
                raise _too_many_digits()
        elif operator == "*" and (type(left) is int) != (type(right) is int):
            count, repeated = (left, right) if type(left) is int else (right, left)
            if (_size(repeated) - 1) * count > MAX_VALUE:
                raise _too_long((_size(repeated) - 1) * count)
        elif operator == "%" and isinstance(left, str):  # "%*d" % (width, n): a width may come from either side
            values = right if type(right) is tuple else (right,)
            widths = _widths(left) + sum(abs(value) for value in values if type(value) is int)
            if read + widths > MAX_VALUE:
                raise _too_long(read + widths)
        _spend(1, read)
        return _after(super().call_binop(context, operator, left, right))

    def get_template(self, *args: Any, **kwargs: Any) -> jinja2.Template:
        _spend(1)  # {% include %}, {% import %}, {% extends %}
        return super().get_template(*args, **kwargs)

    def select_template(self, *args: Any, **kwargs: Any) -> jinja2.Template:
        _spend(1)
        return super().select_template(*args, **kwargs)


# --- Compiled templates kept between processes ------------------------------------------------------------
#
# Making Python code of a template is most of what a check of a course costs: the 22 emails' templates take
# 3 s to compile and 0.2 s to render. The check runs in a new child process each time (emails/sandbox.py),
# which would compile them all again at every save and publish; so would every new worker. Compiled code is
# kept on disk, in Jinja's own bytecode cache: a directory of the temporary folder private to this user (Jinja
# refuses one another user owns or can write to), each entry checked against the template's source.
#
# The code depends on more than the source: the environment's kind (HTML escapes, text does not) and the code
# generator above, which meters what a template does (the render budget). So an entry is keyed by the kind, by
# Jinja's version and by this file's own text: code made by any other version of the meter is never used.
_COMPILER_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


class CodeCache(jinja2.FileSystemBytecodeCache):
    def __init__(self, kind: str, directory: str | None = None) -> None:
        super().__init__(directory)
        self.tag = f"{kind}|jinja {jinja2.__version__}|{_COMPILER_DIGEST}"

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return super().get_cache_key(f"{self.tag}|{name}", filename)

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):  # damaged: compiled again
            bucket.reset()
        if bucket.code is not None:  # used: the last to be pruned
            with contextlib.suppress(OSError):
                os.utime(self._get_cache_filename(bucket))

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):  # a full or read-only disk: the next process compiles again
            super().dump_bytecode(bucket)
        if secrets.randbelow(PRUNE_EVERY) == 0:
            prune(Path(self.directory))


# The directory keeps at most KEEP_MOST entries (a course's templates make about 60, 1.6 MB): every
# PRUNE_EVERY-th entry written, the least recently used beyond KEEP_LEAST go.
KEEP_MOST, KEEP_LEAST, PRUNE_EVERY = 1000, 800, 20


def prune(directory: Path) -> None:
    with contextlib.suppress(OSError):
        entries = []
        for entry in os.scandir(directory):
            with contextlib.suppress(OSError):  # another process pruned it meanwhile
                entries.append((entry.stat().st_mtime, entry.path))
        if len(entries) > KEEP_MOST:
            for _, path in sorted(entries)[: len(entries) - KEEP_LEAST]:
                with contextlib.suppress(OSError):
                    os.remove(path)


def _code_cache(kind: str) -> CodeCache | None:
    try:
        return CodeCache(kind)
    except (RuntimeError, OSError):  # no private directory can be made: every process compiles for itself
        return None


def kept(environment: jinja2.Environment, what: str, source: str, make: Callable[[], Any]) -> Any:
    """``make()``, what a check learns of one template ``source`` (``what``: which question; JSON data),
    kept beside the compiled templates and read back by any later process that asks it of the same source."""
    cache = environment.bytecode_cache
    if not isinstance(cache, CodeCache):
        return make()
    key = cache.get_cache_key(f"{what}:{hashlib.sha256(source.encode()).hexdigest()}")
    path = Path(cache.directory) / f"{key}.json"
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(path.read_bytes())
        os.utime(path)
        return found
    value = make()
    try:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as file:
            json.dump(value, file)
        os.replace(file.name, path)  # whole or not at all, for a process reading it meanwhile
    except OSError:  # a full or read-only disk: the next process works it out again
        pass
    return value


def from_source(environment: jinja2.Environment, source: str) -> jinja2.Template:
    """``environment.from_string(source)``, its compiled code taken from the environment's cache when it
    holds this very source's (and put there when not)."""
    cache = environment.bytecode_cache
    if cache is None:
        return environment.from_string(source)
    name = "source:" + hashlib.sha256(source.encode()).hexdigest()
    bucket = cache.get_bucket(environment, name, None, source)
    if bucket.code is None:
        bucket.code = environment.compile(source)
        cache.set_bucket(bucket)
    return environment.template_class.from_code(environment, bucket.code, environment.make_globals(None), None)


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
        bytecode_cache=_code_cache("html" if html else "text"),  # {% include %} and {% import %} read it too
    )
    environment.filters["fill"] = fill
    # The course's words carry a small markup (emails/markup.py): each part renders it its own way.
    environment.filters["markup"] = markup_html if html else markup_text
    environment.filters["inline"] = inline_html if html else inline_text
    environment.filters["plain"] = plain
    environment.filters["punctuated"] = punctuated
    environment.meter_filters_and_tests()
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
    mjml_source: str  # body.mjml as written (for the line of a mistake found while rendering)
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
        snippet = document[offset : offset + width]  # or the text that starts there
        if snippet.strip() and source.count(snippet) == 1:
            return source.count("\n", 0, source.index(snippet)) + 1
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
    for offset, said in misspellings(document):  # what MRML passes over without a word
        raise TemplateError(name, "body.mjml", f"MJML: {said}", _line_in(files["body.mjml"], document, offset))
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
            parsed[file] = from_source(environment, source)
        except jinja2.TemplateSyntaxError as error:
            # For body.mjml the line is of MJML's output: the file as written says where, when the
            # mistake is in it (and not in a section it includes).
            line = error.lineno if file != "body.mjml" else _jinja_line(environment, files["body.mjml"])
            raise TemplateError(name, error.name or file, f"Jinja: {error.message}", line) from None
    return CompiledEmail(
        name=name,
        version=templates.version,
        html_source=html_source,
        mjml_source=files["body.mjml"],
        subject=parsed["subject.txt"],
        text=parsed["body.txt"],
        html=parsed["body.mjml"],
    )
