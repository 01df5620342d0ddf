"""Render an email once for every reader who would get the same email, and per reader only fill in theirs.

Most of a course email is the same for every reader: the day's teaching, its exercise, the layout. What
is a reader's own is their name, their address and their signed links (see
:meth:`emails.rendering.Renderer.reader_values`), and which answers they have given so far changes
which blocks appear. So an email is rendered once per template version, email and *shape* of reader
(a first name or none, and their answers), with a stand-in for each of the reader's values; the output
is cut at the stand-ins into a list of fixed text and :class:`Slot` s. Sending to a reader then costs
the signing of their links and a join, not a Jinja render of the whole course.

The fast path must produce the very bytes the full render would, or not be used:

- A template that uses the reader's name or address for anything but printing it, or testing whether
  it is there (``{% if subscriber.first_name %}``), is rendered in full for every reader: a comparison
  or a filter could treat "Alex" differently from the stand-in.
- The email is prepared twice, with stand-ins of different lengths and markers. A stand-in that a
  filter changed (``|upper``, ``|truncate``), or text that depends on a value's length (wrapping),
  makes the two disagree: rendered in full, every time.
- Each place a stand-in appears records whether it was HTML-escaped there, and the reader's value
  is escaped the same way.
- A reader's value with a line break, a control character or spaces that a subject or the text part
  would fold or strip (``"Alex  "``) gets the full render.

``tests/emails/test_prepared.py`` holds every email of the course, for readers with and without names,
answers and awkward characters, to byte-for-byte equality with the full render.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import jinja2
from jinja2 import meta, nodes
from markupsafe import escape

from emails.compiler import TemplateSet, compile_email, environments
from emails.rendering import Recipient, RenderedEmail, Renderer

log = logging.getLogger(__name__)

# How many prepared emails a renderer keeps: emails x shapes of reader (answers given, a name or none).
PREPARED_KEPT = 512
# The reader's fields a template may print or test for, and nothing else, for the fast path.
_READER_FIELDS = frozenset({"first_name", "email"})
# What links and addresses are made of (a marker holds them all; see _StandIns).
_ALPHABET = "https://course.example.org/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+@"
# A value the fast path can put in: words separated by single spaces, no control characters.
_PLAIN_VALUE = re.compile(r"[^\s\x00-\x1f\x7f]+(?: [^\s\x00-\x1f\x7f]+)*")


@dataclass(frozen=True)
class Slot:
    """Where one of the reader's values goes, and whether it is HTML-escaped there."""

    key: str
    escaped: bool


Parts = tuple[str | Slot, ...]


def fill(parts: Parts, values: Mapping[str, str]) -> str:
    return "".join(
        part if type(part) is str else (str(escape(values[part.key])) if part.escaped else values[part.key])  # type: ignore[union-attr]
        for part in parts
    )


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a cache key for its encoded bodies
class PreparedEmail:
    email: str
    step: int | None
    template_version: str
    preview: str
    keys: frozenset[str]  # the reader's values it takes
    subject: Parts
    text: Parts
    html: Parts
    unsubscribe: Parts

    def takes(self, values: Mapping[str, str]) -> bool:
        """Whether these values fill it exactly as the full render would."""
        return values.keys() == self.keys and all(_PLAIN_VALUE.fullmatch(value) for value in values.values())

    def fill(self, values: Mapping[str, str]) -> RenderedEmail:
        return RenderedEmail(
            email=self.email,
            step=self.step,
            template_version=self.template_version,
            subject=fill(self.subject, values),
            text=fill(self.text, values),
            html=fill(self.html, values),
            unsubscribe_url=fill(self.unsubscribe, values),
            preview=self.preview,
        )


class Preparer:
    """A renderer's prepared emails, made on first use per shape of reader and kept."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._prepared: dict[tuple[object, ...], PreparedEmail | None] = {}
        self._proven: set[tuple[object, ...]] = set()

    def prepared(self, email: str, recipient: Recipient, values: Mapping[str, str]) -> PreparedEmail | None:
        """The email prepared for readers of this one's shape, or None: render this reader's in full."""
        # A name, an empty one or none: a template printing the name unguarded prints "" and "None" apart.
        name = None if recipient.first_name is None else bool(recipient.first_name)
        shape = (email, name, tuple(sorted(recipient.answers.items())))
        if shape not in self._prepared:
            while len(self._prepared) >= PREPARED_KEPT:
                oldest = next(iter(self._prepared))
                del self._prepared[oldest]
                self._proven.discard(oldest)
            self._prepared[shape] = prepare(self.renderer, email, recipient, values.keys())
        prepared = self._prepared[shape]
        if prepared is None or not prepared.takes(values):
            return None
        if shape not in self._proven:
            # Its first reader: the full render too, once. Anything the checks above could not see
            # makes the two differ, and then every reader of this shape gets the full render.
            full = self.renderer.render_with(email, self.renderer.context(email, recipient, values))
            if prepared.fill(values) != full:
                log.warning("%s: rendered in full for every reader: its templates use a reader's own values "
                            "in a way that cannot be prepared once", email)  # fmt: skip
                self._prepared[shape] = None
                return None
            self._proven.add(shape)
        return prepared

    def render(self, email: str, recipient: Recipient) -> RenderedEmail:
        """The email for this reader, as :meth:`Renderer.render` makes it, prepared when it can be."""
        values = self.renderer.reader_values(email, recipient)
        prepared = self.prepared(email, recipient, values)
        if prepared is None:
            return self.renderer.render_with(email, self.renderer.context(email, recipient, values))
        return prepared.fill(values)


def prepare(renderer: Renderer, email: str, recipient: Recipient, keys: Iterable[str]) -> PreparedEmail | None:
    """``email`` rendered for readers shaped like ``recipient``, cut at their values; None when the
    templates use a reader's value in a way that only a full render gets right."""
    if not reads_reader_plainly(renderer.templates, email):
        return None
    names = sorted(keys)
    first = _StandIns(names, padding="")
    second = _StandIns(names, padding="x" * 41)  # a different length: wrapping and truncation would show
    one = renderer.render_with(email, renderer.context(email, recipient, first.values))
    other = renderer.render_with(email, renderer.context(email, recipient, second.values))
    pieces = {}
    for field in ("subject", "text", "html", "unsubscribe_url"):
        cut = first.cut(getattr(one, field))
        if cut is None or cut != second.cut(getattr(other, field)):
            return None
        pieces[field] = cut
    return PreparedEmail(
        email=one.email,
        step=one.step,
        template_version=one.template_version,
        preview=one.preview,
        keys=frozenset(names),
        subject=pieces["subject"],
        text=pieces["text"],
        html=pieces["html"],
        unsubscribe=pieces["unsubscribe_url"],
    )


class _StandIns:
    """A marker for each value. It holds every character a link or an address is made of, so a filter
    that changes any of them (``|replace('/', '|')``) changes the marker too; and it ends in a ``<`` that
    HTML-escaping turns into ``&lt;``, so each place it appears tells whether it was escaped."""

    def __init__(self, names: list[str], padding: str) -> None:
        self.names = names
        self.nonce = secrets.token_hex(6)
        self.values = {name: f"zq{self.nonce}n{index}{padding}{_ALPHABET}<qz" for index, name in enumerate(names)}
        self._found = re.compile(rf"zq{self.nonce}n(\d+){re.escape(padding + _ALPHABET)}(<|&lt;)qz")

    def cut(self, text: str) -> Parts | None:
        parts: list[str | Slot] = []
        at = 0
        for match in self._found.finditer(text):
            parts.append(text[at : match.start()])
            parts.append(Slot(self.names[int(match.group(1))], escaped=match.group(2) != "<"))
            at = match.end()
        parts.append(text[at:])
        if any(type(part) is str and self.nonce in part for part in parts):
            return None  # a stand-in that a filter changed: only the full render is right
        return tuple(part for part in parts if part != "")


@functools.lru_cache(maxsize=256)
def reads_reader_plainly(templates: TemplateSet, email: str) -> bool:
    """Whether the email's templates (and those they import) use ``subscriber`` only to print a field
    or test that it is there."""
    compiled = compile_email(templates, email)
    envs = environments(templates)
    sources = [
        (envs.text, templates.source(templates.email_path(email, "subject.txt"))),
        (envs.text, templates.source(templates.email_path(email, "body.txt"))),
        (envs.html, compiled.html_source),
    ]
    seen: set[str] = set()
    while sources:
        environment, source = sources.pop()
        try:
            tree = environment.parse(source)
        except jinja2.TemplateSyntaxError:
            return False
        if not _plain(tree, None, None):
            return False
        for name in meta.find_referenced_templates(tree):
            if name is None:
                return False  # a template chosen at render time: cannot be read ahead
            if name not in seen:
                seen.add(name)
                try:
                    sources.append((environment, templates.source(name)))
                except KeyError:
                    return False
    return True


# Blocks whose output a template can process further (wrap, filter, capture): a name printed inside
# one may not come out as printed.
_PROCESSED = (nodes.FilterBlock, nodes.AssignBlock, nodes.Macro, nodes.CallBlock)


def _plain(
    node: nodes.Node, parent: nodes.Node | None, grandparent: nodes.Node | None, processed: bool = False
) -> bool:
    if isinstance(node, nodes.Name) and node.name == "subscriber":
        field = isinstance(parent, nodes.Getattr) and parent.attr in _READER_FIELDS
        printed = isinstance(grandparent, nodes.Output) and not processed
        tested = isinstance(grandparent, nodes.If) and grandparent.test is parent
        if not (field and (printed or tested)):
            return False
    processed = processed or isinstance(node, _PROCESSED)
    return all(_plain(child, node, parent, processed) for child in node.iter_child_nodes())
