"""The words form: a course's wording as form fields, and the fields posted back as a words file.

The form has one field per piece of wording, grouped as the email reads (the subject and preview line,
the title, each part of the teaching, the exercise, tomorrow's teaser). Its shape is the course's
shipped shape (emails/words.py): a marketer changes words, never which parts there are. A list of
paragraphs is one text box (a blank line between paragraphs), a list of short items one box with an
item per line. Field names are the wording's paths: ``w.teaching.0.paragraphs``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from course.curriculum import Course
from emails import markup
from emails.words import dump, email_of, shipped

PREFIX = "w."
# Fields a subscriber reads as a heading, a label, an address or a line in the inbox: no markup.
_PLAIN = {"title", "short_title", "subject", "preview", "label", "value", "url", "key", "name", "attribution",
          "source", "consultation_title", "consultation_button", "call_to_action", "prompt"}  # fmt: skip
_PARAGRAPHS = {"paragraphs"}  # a list of long texts: one box, a blank line between them
_LINES = {"items"}  # a list of short texts: one box, one per line
_LONG = {"text", "meaning", "next_step", "description", "consultation_text", "detail", "intro", "outro",
         "teaser", "author_credentials", "tagline", "areas_served", "sessions", "answer"}  # fmt: skip
_NAMES = {
    "subject": "Subject",
    "preview": "Preview line",
    "title": "Title",
    "short_title": "Short title",
    "teaser": "Tomorrow's teaser",
    "intro": "Introduction",
    "outro": "Closing line",
    "paragraphs": "Paragraphs",
    "items": "Items, one per line",
    "text": "Text",
    "label": "Label",
    "attribution": "Attribution",
    "value": "Figure",
    "source": "Sources",
    "prompt": "Prompt",
    "detail": "Detail",
    "meaning": "What it means",
    "next_step": "What to do next",
    "description": "Description",
    "url": "Address (https://...)",
    "call_to_action": "Link words",
    "link": "Link words",
    "signer": "Who signs the emails",
    "signer_role": "Their role",
    "consultation_note": "The quiet call to book (a line under the signature)",
}
_HINTS: dict[tuple[str, ...], str] = {
    ("subject",): "Empty: “Day N: ” and the title. About 50 characters, the promise first.",
    (
        "preview",
    ): "40 to 90 characters that make people open it, not the email's first sentence (empty: that sentence).",
    ("short_title",): "As the list of all the ways names it.",
}
# Text that is the course's shape, not its words: which block or band it is, whether an example is good.
_SHAPE = {"key", "kind", "tone"}
_KINDS = {"text": "text", "list": "list", "labelled": "labelled rows", "cards": "examples", "groups": "groups",
          "steps": "steps", "quote": "quote", "callout": "set-apart note", "figures": "figures"}  # fmt: skip


@dataclass(frozen=True)
class Field:
    path: str  # "teaching.0.paragraphs"
    label: str
    value: str
    kind: str  # "line", "text" (a sentence or two), "paragraphs", "lines"
    hint: str = ""

    @property
    def name(self) -> str:
        return PREFIX + self.path

    @property
    def id(self) -> str:
        return "w-" + re.sub(r"[^a-z0-9-]", "-", self.path.lower())

    @property
    def rows(self) -> int:
        lines = self.value.count("\n") + len(self.value) // 70 + 1
        return max(2 if self.kind == "text" else 3, min(lines + 1, 24))


@dataclass
class Section:
    title: str
    fields: list[Field] = field(default_factory=list)


def _hint(path: tuple[str, ...], kind: str) -> str:
    if path[-1:] in _HINTS:
        return _HINTS[path[-1:]]
    if kind == "paragraphs":
        return markup.SYNTAX_HELP
    if kind in {"text", "lines"}:
        return markup.INLINE_HELP
    return ""


def _leaves(value: Any, path: tuple[str, ...], section: Section) -> None:
    key = path[-1] if path else ""
    if isinstance(value, list) and key in _PARAGRAPHS | _LINES and all(isinstance(v, str) for v in value):
        kind = "paragraphs" if key in _PARAGRAPHS else "lines"
        joined = ("\n\n" if kind == "paragraphs" else "\n").join(value)
        section.fields.append(Field(".".join(path), _label(path), joined, kind, _hint(path, kind)))
    elif isinstance(value, str) or value is None:
        if key in _SHAPE:
            return
        kind = "line" if key in _PLAIN or key.isdigit() or key not in _LONG else "text"
        section.fields.append(Field(".".join(path), _label(path), value or "", kind, _hint(path, kind)))
    elif isinstance(value, dict):
        for inner_key, inner in value.items():
            _leaves(inner, (*path, str(inner_key)), section)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _leaves(inner, (*path, str(index)), section)
    # numbers and booleans are the course's shape, not its words


def _label(path: tuple[str, ...]) -> str:
    """ "exercise.blocks.1.cards.0.rows.2.text" -> "Example 1, row 3: text"."""
    words: list[str] = []
    parts = list(path)
    for index, part in enumerate(parts):
        if part.isdigit():
            container = parts[index - 1] if index else ""
            if container in {"teaching", "blocks"}:
                continue  # the section says which part
            singular = {"cards": "Example", "rows": "Row", "groups": "Group", "steps": "Step", "figures": "Figure",
                         "items": "Item", "bands": "Band"}.get(container, "Part")  # fmt: skip
            words.append(f"{singular} {int(part) + 1}")
        elif index + 1 < len(parts) and parts[index + 1].isdigit():
            continue  # named by the number that follows
        elif index == len(parts) - 1:
            words.append(_NAMES.get(part, part.replace("_", " ").capitalize()))
    if not words:
        return _NAMES.get(parts[-1], parts[-1])
    if len(words) == 1:
        return words[0]
    parts_after = [word[0].lower() + word[1:] for word in words[1:-1]]
    return ", ".join([words[0], *parts_after]) + ": " + words[-1].lower()


def _block_title(kind: str, number: int, block: Mapping[str, Any]) -> str:
    name = block.get("title") or _KINDS.get(kind, kind)
    return f"part {number} ({name})"


def sections(course: Course, item: str, data: Mapping[str, Any]) -> list[Section]:
    """The form, section by section, for a words file holding ``data``."""
    email = email_of(item)
    result: list[Section] = []
    if email is None:  # the shared wording
        result.append(Section("The practice and its free consultation"))
        _leaves(data.get("practice", {}), ("practice",), result[-1])
        for key, checklist in data.get("checklists", {}).items():
            result.append(Section(f"Checklist: {checklist.get('title', key)}"))
            _leaves(checklist, ("checklists", key), result[-1])
        for key, resource in data.get("resources", {}).items():
            result.append(Section(f"Resource: {resource.get('title', key)}"))
            _leaves(resource, ("resources", key), result[-1])
        return result
    skeleton = shape(course, item)
    if "title" in skeleton:  # a day's own subject or preview left out of its file: empty, the default
        skeleton = {**skeleton, "subject": None, "preview": None}
    data = {**skeleton, **data}
    head = Section("In the inbox")
    for key in ("subject", "preview"):
        if key in data:
            _leaves(data[key], (key,), head)
    result.append(head)
    if "title" in data:
        top = Section("The day")
        for key in ("title", "short_title"):
            _leaves(data.get(key), (key,), top)
        result.append(top)
    parts = (("teaching", "Teaching"), ("blocks", "The letter"), ("after", "After the checklist"))
    for parent, name in parts:
        for index, block in enumerate(data.get(parent) or []):
            section = Section(f"{name}, {_block_title(block.get('kind', ''), index + 1, block)}")
            _leaves(block, (parent, str(index)), section)
            result.append(section)
    if data.get("page"):
        page = data["page"]
        top = Section("The web page the letter links to")
        for key in ("title", "link"):
            _leaves(page.get(key), ("page", key), top)
        result.append(top)
        for index, block in enumerate(page.get("blocks", [])):
            section = Section(f"The web page, {_block_title(block.get('kind', ''), index + 1, block)}")
            _leaves(block, ("page", "blocks", str(index)), section)
            result.append(section)
    if "exercise" in data:
        exercise = data["exercise"]
        title = Section("The exercise")
        _leaves(exercise.get("title"), ("exercise", "title"), title)
        result.append(title)
        for index, block in enumerate(exercise.get("blocks", [])):
            section = Section(f"The exercise, {_block_title(block.get('kind', ''), index + 1, block)}")
            _leaves(block, ("exercise", "blocks", str(index)), section)
            result.append(section)
    if "teaser" in data:
        tail = Section("Tomorrow")
        _leaves(data["teaser"], ("teaser",), tail)
        result.append(tail)
    return result


# --- Posted back ----------------------------------------------------------------------------------

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _posted(value: Any, path: tuple[str, ...], posted: Mapping[str, str]) -> Any:
    name = ".".join(path)
    key = path[-1] if path else ""
    if isinstance(value, list) and key in _PARAGRAPHS | _LINES and all(isinstance(v, str) for v in value):
        if name not in posted:
            return value
        text = posted[name].replace("\r\n", "\n")
        parts = _BLANK_LINE.split(text) if key in _PARAGRAPHS else text.split("\n")
        return [" ".join(part.split()) if key in _LINES else part.strip() for part in parts if part.strip()]
    if isinstance(value, str) or value is None:
        if key in _SHAPE or name not in posted:
            return value
        return posted[name].replace("\r\n", "\n").strip()
    if isinstance(value, dict):
        return {inner_key: _posted(inner, (*path, str(inner_key)), posted) for inner_key, inner in value.items()}
    if isinstance(value, list):
        return [_posted(inner, (*path, str(index)), posted) for index, inner in enumerate(value)]
    return value


def shape(course: Course, item: str) -> dict[str, Any]:
    """What a words file holds, as shipped, with a day's optional lines (its own subject and preview)."""
    skeleton = shipped(course, item)
    if "title" in skeleton and email_of(item) is not None:
        skeleton = {"subject": None, "preview": None, **skeleton}
    return skeleton


def words_from_form(course: Course, item: str, posted: Mapping[str, str]) -> dict[str, str]:
    """The words file a posted form makes: the course's shape, with every posted field's text."""
    data = _posted(shape(course, item), (), posted)
    for optional in ("subject", "preview"):
        if "title" in data and not data.get(optional):
            data.pop(optional, None)  # empty: the default
    return {item: dump(data)}


def prefixed_fields(prefix: str) -> Callable[[Request], Awaitable[dict[str, str]]]:
    """A dependency: the posted fields whose names start with ``prefix``, by the rest of their name
    (the form is parsed once, for these and the endpoint's declared fields)."""

    async def fields(request: Request) -> dict[str, str]:
        form = await request.form()
        return {
            name.removeprefix(prefix): value
            for name, value in form.multi_items()
            if name.startswith(prefix) and isinstance(value, str)
        }

    return fields


# The wording fields of the words form.
posted_fields = prefixed_fields(PREFIX)
