"""The email form: an email's content as form fields, and the fields posted back as its file.

The form has one field per piece of wording, grouped as the email reads (the subject and preview line,
the title, each block of the body, tomorrow's teaser). The body's blocks are the marketer's to order, add
and take out (:data:`NEW_BLOCKS`): each block has its own fields (a button's action and words, an image's
upload and description, a checklist to pick) and its own buttons to move it up or down or take it out;
SortableJS moves them by dragging. A list of paragraphs is one text box (a blank line between
paragraphs), a list of short items one box with an item per line. Field names are the content's paths
(``w.body.0.paragraphs``); the form also carries the content it was drawn from (``w.@shape``), the blocks'
order as the page shows them (``w.@order``) and the block button pressed (``w.@block``: ``up:3``,
``remove:3``, ``add:image``). The shared wording's shape stays the course's: a checklist's items and bands
are counted by answers already given.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException

from course.curriculum import Course
from course.wording import dump, email_of, shipped
from emails import markup

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
_LETTER_SUBJECT = "Empty: the layout's own (for a welcome, “Welcome to” and the course's title). About 50 characters."
# Text that is the course's shape, not its words: which block or band it is, whether an example is good.
_SHAPE = {"key", "kind", "tone"}
_KINDS = {"text": "text", "list": "list", "labelled": "labelled rows", "cards": "examples", "groups": "groups",
          "steps": "steps", "quote": "quote", "callout": "set-apart note", "figures": "figures"}  # fmt: skip


@dataclass(frozen=True)
class Field:
    path: str  # "body.0.paragraphs"
    label: str
    value: str
    # "line", "text" (a sentence or two), "paragraphs", "lines"; for a block's settings: "select" (one of
    # ``options``), "choices" (any of them), "check" (yes or no), "number", "image" (an upload)
    kind: str
    hint: str = ""
    options: tuple[tuple[str, str], ...] = ()
    chosen: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return PREFIX + self.path

    @property
    def id(self) -> str:
        return field_id(self.path)

    @property
    def rows(self) -> int:
        lines = self.value.count("\n") + len(self.value) // 70 + 1
        return max(2 if self.kind == "text" else 3, min(lines + 1, 24))


def field_id(path: str) -> str:
    """The HTML id of a field of the form (``body.0.paragraphs``: ``w-body-0-paragraphs``)."""
    return "w-" + re.sub(r"[^a-z0-9-]", "-", path.lower())


@dataclass
class Section:
    title: str
    fields: list[Field] = field(default_factory=list)
    block: int | None = None  # the body's block this section is (its index), for its move and remove buttons
    kind: str = ""
    note: str = ""  # what a block without fields shows, in words
    inner: list[tuple[int, str]] = field(default_factory=list)  # an exercise's own parts: (place, what it is)


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
        section.fields.append(Field(".".join(path), label_of(path), joined, kind, _hint(path, kind)))
    elif isinstance(value, str) or value is None:
        if key in _SHAPE:
            return
        kind = "line" if key in _PLAIN or key.isdigit() or key not in _LONG else "text"
        section.fields.append(Field(".".join(path), label_of(path), value or "", kind, _hint(path, kind)))
    elif isinstance(value, dict):
        for inner_key, inner in value.items():
            _leaves(inner, (*path, str(inner_key)), section)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _leaves(inner, (*path, str(index)), section)
    # numbers and booleans are the course's shape, not its words


def label_of(path: tuple[str, ...]) -> str:
    """ "exercise.blocks.1.cards.0.rows.2.text" -> "Example 1, row 3: text"."""
    words: list[str] = []
    parts = list(path)
    for index, part in enumerate(parts):
        if part.isdigit():
            container = parts[index - 1] if index else ""
            if container in {"body", "blocks"}:
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


def place_label(body: Any, path: tuple[str, ...]) -> str:
    """Where a field is, as the form names it: "Block 2: the exercise box: paragraphs", "Title"."""
    if len(path) >= 2 and path[0] == "body" and path[1].isdigit():
        index = int(path[1])
        blocks = body if isinstance(body, list) else []
        block = blocks[index] if index < len(blocks) and isinstance(blocks[index], dict) else {}
        title = block_title(str(block.get("kind", "text")), index + 1, block)
        return title if len(path) == 2 else f"{title}: {label_of(path[2:]).lower()}"
    return label_of(path) if path else "the email"


def block_title(kind: str, number: int, block: Mapping[str, Any]) -> str:
    name = block.get("title") if kind not in _SETTINGS_ONLY else None
    return f"Block {number}: {_KINDS.get(kind, kind)}" + (f" ({name})" if name else "")


# The body's blocks the marketer adds (course/curriculum.py: Part), in the words of the form's list, each
# with what it starts with. ``None``: the course has nothing for it yet (no checklist, no guide).
NEW_BLOCKS: dict[str, str] = {
    "text": "Text",
    "list": "A list",
    "callout": "A set-apart note",
    "quote": "A quote",
    "exercise": "The exercise box",
    "checklist": "A checklist (answers by one tap)",
    "button": "A button",
    "consultation": "The call to book a consultation",
    "guides": "Guides to go further",
    "image": "An image",
    "divider": "A divider",
    "glance": "The course at a glance",
}
_KINDS.update({kind: name[0].lower() + name[1:] for kind, name in NEW_BLOCKS.items() if kind not in _KINDS})
# Blocks whose fields are settings, not words: their title is their kind's.
_SETTINGS_ONLY = {"button", "checklist", "consultation", "guides", "image", "divider", "glance"}
_NOTES = {
    "consultation": "The practice's call to book: its title, text and button are in the shared words.",
    "divider": "A thin line between the blocks above and below.",
    "glance": "Every email's short title, by group, and the course's key takeaways.",
}
BUTTON_ACTIONS = (("done", "Mark today's exercise done"), ("consultation", "Book the free consultation"),
                  ("about", "Open the course's web page"), ("guide", "Open a guide"))  # fmt: skip
BUTTON_STYLES = (("primary", "A filled button (the email's main action)"), ("secondary", "An outlined button"),
                 ("link", "A link in the text"))  # fmt: skip


def new_block(kind: str, course: Course) -> dict[str, Any] | None:
    """A block of ``kind`` as it is added: words that say what to write, settings that work as they are."""
    starts: dict[str, dict[str, Any]] = {
        "text": {"paragraphs": ["Write this part here."]},
        "list": {"items": ["The first item", "The second item"]},
        "callout": {"title": "A tip", "text": "Write the note here."},
        "quote": {"text": "The words quoted.", "attribution": "Who said them"},
        "exercise": {"title": "Try this", "blocks": [{"kind": "text", "paragraphs": ["Describe the exercise here."]}]},
        "button": {"action": "consultation", "style": "primary"},
        "consultation": {}, "divider": {}, "glance": {},
        "image": {"file": "", "alt": "", "width": 552},
    }  # fmt: skip
    if kind == "checklist":
        return {"kind": kind, "checklist": next(iter(course.checklists))} if course.checklists else None
    if kind == "guides":
        first = next(iter(course.resources), None)
        return {"kind": kind, "title": "To go further", "guides": [first]} if first else None
    return {"kind": kind, **starts[kind]} if kind in starts else None


def _settings(block: Mapping[str, Any], path: tuple[str, ...], course: Course, section: Section) -> None:
    """A block's settings as form controls: what it does, which checklist or guides, an image's upload."""
    name = ".".join(path)
    kind = block.get("kind")
    guides = tuple((key, resource.title) for key, resource in course.resources.items())
    if kind == "checklist":
        options = tuple((key, checklist.title) for key, checklist in course.checklists.items())
        section.fields.append(Field(f"{name}.checklist", "Which checklist", str(block.get("checklist") or ""), "select",
                                    "A new list of signs is a new checklist (answers already given count the "
                                    "old one's items): define it on the course's page, under Checklists.",
                                    options))  # fmt: skip
    elif kind == "button":
        section.fields.append(Field(f"{name}.action", "What it does", str(block.get("action") or ""), "select",
                                    options=BUTTON_ACTIONS))  # fmt: skip
        section.fields.append(Field(f"{name}.guide", "Which guide (for “Open a guide”)", str(block.get("guide") or ""),
                                    "select", options=(("", "None"), *guides)))  # fmt: skip
        section.fields.append(Field(f"{name}.label", "Its words", str(block.get("label") or ""), "line",
                                    "Empty: the action's own (“I did today's exercise”, the consultation's button, "
                                    "the guide's link words)."))  # fmt: skip
        section.fields.append(Field(f"{name}.style", "How it looks", str(block.get("style") or "primary"), "select",
                                    options=BUTTON_STYLES))  # fmt: skip
        section.fields.append(Field(f"{name}.note", "A quiet line under it (optional)", str(block.get("note") or ""),
                                    "text", markup.INLINE_HELP))  # fmt: skip
    elif kind == "guides":
        section.fields.append(Field(f"{name}.title", "Heading", str(block.get("title") or ""), "line"))
        section.fields.append(Field(f"{name}.guides", "Which guides", "", "choices", options=guides,
                                    chosen=frozenset(block.get("guides") or ())))  # fmt: skip
    elif kind == "image":
        section.fields.append(Field(f"{name}.file", "The image (PNG, JPEG, GIF or WebP, at most 2 MB)",
                                    str(block.get("file") or ""), "image",
                                    "Stored and served by the course's own site, never from elsewhere."))  # fmt: skip
        section.fields.append(Field(f"{name}.alt", "What it shows, for readers who do not see it",
                                    str(block.get("alt") or ""), "line"))  # fmt: skip
        section.fields.append(Field(f"{name}.decorative", "Only decoration (nothing to describe)",
                                    "on" if block.get("decorative") else "", "check"))  # fmt: skip
        section.fields.append(Field(f"{name}.width", "Width in pixels (48 to 552: the email's text column)",
                                    str(block.get("width") or 552), "number"))  # fmt: skip
    elif kind == "list":
        _leaves({key: value for key, value in block.items() if key != "numbered"}, path, section)
        section.fields.append(Field(f"{name}.numbered", "Numbered", "on" if block.get("numbered") else "", "check"))
    else:
        _leaves(block, path, section)


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
    if "title" not in data:  # a letter: its subject's default is its layout's, not a day's
        head.fields = [dataclasses.replace(field, hint=_LETTER_SUBJECT) if field.path == "subject" else field
                       for field in head.fields]  # fmt: skip
    result.append(head)
    if "title" in data:
        top = Section("The day")
        for key in ("title", "short_title"):
            _leaves(data.get(key), (key,), top)
        result.append(top)
    for index, block in enumerate(data.get("body") or []):
        kind = str(block.get("kind", ""))
        section = Section(block_title(kind, index + 1, block), block=index, kind=kind, note=_NOTES.get(kind, ""))
        _settings(block, ("body", str(index)), course, section)
        if kind == "exercise":
            section.inner = [(place, _KINDS.get(str(part.get("kind", "text")), "text"))
                             for place, part in enumerate(block.get("blocks") or [])]  # fmt: skip
        result.append(section)
    if data.get("page"):
        page = data["page"]
        top = Section("The web page the letter links to")
        for key in ("title", "link"):
            _leaves(page.get(key), ("page", key), top)
        result.append(top)
        for index, block in enumerate(page.get("blocks", [])):
            section = Section(f"The web page, {block_title(block.get('kind', ''), index + 1, block).lower()}")
            _leaves(block, ("page", "blocks", str(index)), section)
            result.append(section)
    if "teaser" in data:
        tail = Section("Tomorrow")
        _leaves(data["teaser"], ("teaser",), tail)
        result.append(tail)
    return result


# --- Posted back ----------------------------------------------------------------------------------

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# Settings left empty mean "none" (the default): a button's words, its note, its guide.
_NONE_WHEN_EMPTY = {"label", "note", "guide"}
_CHECKS = {"numbered", "decorative"}
SHAPE, ORDER, BLOCK, ADD, ADD_IN = "@shape", "@order", "@block", "@add", "@add-in"


def _posted(value: Any, path: tuple[str, ...], posted: Mapping[str, str]) -> Any:
    name = ".".join(path)
    key = path[-1] if path else ""
    if key in _CHECKS and name in posted:
        return posted[name] == "on"
    if key == "width" and name in posted:
        width = posted[name].strip()
        return int(width) if width.isdigit() and len(width) < 6 else width  # else the check names it
    if key == "guides" and isinstance(value, list) and name in posted:
        return [guide.removeprefix(f"{name}.") for guide, on in posted.items() if guide.startswith(f"{name}.") and on]
    if isinstance(value, list) and key in _PARAGRAPHS | _LINES and all(isinstance(v, str) for v in value):
        if name not in posted:
            return value
        text = posted[name].replace("\r\n", "\n")
        parts = _BLANK_LINE.split(text) if key in _PARAGRAPHS else text.split("\n")
        return [" ".join(part.split()) if key in _LINES else part.strip() for part in parts if part.strip()]
    if isinstance(value, str) or value is None:
        if key in _SHAPE or name not in posted:
            return value
        text = posted[name].replace("\r\n", "\n").strip()
        return None if key in _NONE_WHEN_EMPTY and not text else text
    if isinstance(value, dict):
        found = {inner_key: _posted(inner, (*path, str(inner_key)), posted) for inner_key, inner in value.items()}
        if value.get("kind") == "button":  # its optional settings, posted though not set before
            for extra in ("label", "note", "guide"):
                given = _posted(None, (*path, extra), posted)
                if extra not in value and given is not None:
                    found[extra] = given
        return found
    if isinstance(value, list):
        return [_posted(inner, (*path, str(index)), posted) for index, inner in enumerate(value)]
    return value


def shape(course: Course, item: str) -> dict[str, Any]:
    """What a words file holds, as shipped, with a day's optional lines (its own subject and preview)."""
    skeleton = shipped(course, item)
    if "title" in skeleton and email_of(item) is not None:
        skeleton = {"subject": None, "preview": None, **skeleton}
    elif email_of(item) is not None:  # a letter: its own subject, or its layout's
        skeleton = {"subject": None, **skeleton}
    return skeleton


class FormProblem(ValueError):
    """A posted form that cannot be read back (its content, its order or its button): said in plain words."""


def drawn_from(course: Course, item: str, posted: Mapping[str, str]) -> dict[str, Any]:
    """The content the form was drawn from: what it carried (``w.@shape``), else the course's own."""
    skeleton = shape(course, item)
    carried = posted.get(SHAPE)
    if email_of(item) is None or not carried:
        return skeleton
    try:
        data = json.loads(carried)
    except ValueError:
        raise FormProblem("the form came back damaged: reload the page (your typing is kept by this browser)") from None
    if not isinstance(data, dict) or not isinstance(data.get("body"), list):
        raise FormProblem("the form came back damaged: reload the page (your typing is kept by this browser)")
    return {**skeleton, **data}


def _ordered(body: list[Any], order: str) -> list[Any]:
    """The body in the order the page showed its blocks (after a drag), each block once."""
    if not order:
        return body
    try:
        places = [int(place) for place in order.split(",")]
    except ValueError:
        raise FormProblem("the blocks' order came back damaged: reload the page") from None
    if sorted(places) != list(range(len(body))):
        raise FormProblem("the blocks' order does not match the blocks: reload the page")
    return [body[place] for place in places]


def _acted(course: Course, body: list[Any], action: str, adding: str = "") -> tuple[list[Any], int | None]:
    """The body after a block's button (``up:3``, ``down:3``, ``remove:3``, ``add:image``), and the block the
    page should show next (none: no block button)."""
    if not action:
        return body, None
    what, _, where = action.partition(":")
    body = list(body)
    if what in {"add-in", "remove-in"}:
        return _acted_inside(course, body, what, where, adding)
    if what == "add":
        where = where or adding
        block = new_block(where, course)
        if block is None:
            raise FormProblem(f"there is no such block to add ({where or 'none'}), or the course has nothing for it")
        body.append(block)
        return body, len(body) - 1
    if not where.isdigit() or not 0 <= int(where) < len(body):
        raise FormProblem("that block is not in the email any more: reload the page")
    index = int(where)
    if what == "remove":
        if len(body) == 1:
            raise FormProblem("an email keeps at least one block: add another before taking this one out")
        del body[index]
        return body, max(index - 1, 0)
    if what in {"up", "down"}:
        other = index - 1 if what == "up" else index + 1
        if 0 <= other < len(body):
            body[index], body[other] = body[other], body[index]
            return body, other
        return body, index
    raise FormProblem(f"unknown block button {what!r}")


# What an exercise's own parts may be, as the form offers to add them.
INNER_BLOCKS: dict[str, str] = {"text": "Text", "list": "A list", "callout": "A set-apart note", "quote": "A quote"}


def _acted_inside(course: Course, body: list[Any], what: str, where: str, adding: str) -> tuple[list[Any], int]:
    """An exercise's own parts after its buttons: ``add-in:3`` (a part of kind ``adding`` at its end),
    ``remove-in:3:1`` (its second part); the page comes back at the exercise."""
    place, _, inner = where.partition(":")
    if not place.isdigit() or not 0 <= int(place) < len(body) or body[int(place)].get("kind") != "exercise":
        raise FormProblem("that exercise is not in the email any more: reload the page")
    index = int(place)
    exercise = dict(body[index])
    parts = list(exercise.get("blocks") or [])
    if what == "add-in":
        part = new_block(adding, course) if adding in INNER_BLOCKS else None
        if part is None:
            raise FormProblem(f"an exercise cannot hold that ({adding or 'nothing chosen'})")
        parts.append(part)
    else:
        if not inner.isdigit() or not 0 <= int(inner) < len(parts):
            raise FormProblem("that part of the exercise is not there any more: reload the page")
        if len(parts) == 1:
            raise FormProblem("an exercise keeps at least one part: add another before taking this one out")
        del parts[int(inner)]
    exercise["blocks"] = parts
    body[index] = exercise
    return body, index


def words_from_form(course: Course, item: str, posted: Mapping[str, str]) -> tuple[dict[str, str], int | None]:
    """The words file a posted form makes (the content it was drawn from, with every posted field's text,
    its blocks in the posted order and the block button applied), and the block to show next."""
    drawn = drawn_from(course, item, posted)
    data = _posted(drawn, (), posted)
    focus = None
    if isinstance(data.get("body"), list):
        body = _ordered(data["body"], posted.get(ORDER, ""))
        action = posted.get(BLOCK, "")
        adding = posted.get(f"{ADD_IN}.{action.partition(':')[2]}", "") if action.startswith("add-in:") else ""
        data["body"], focus = _acted(course, body, action, adding or posted.get(ADD, ""))
    for optional in ("subject", "preview"):
        if ("title" in data or optional == "subject") and not data.get(optional):
            data.pop(optional, None)  # empty: the default
    return {item: dump(data)}, focus


def prefixed_fields(prefix: str) -> Callable[[Request], Awaitable[dict[str, str]]]:
    """A dependency: the posted fields whose names start with ``prefix``, by the rest of their name
    (the form is parsed once, for these and the endpoint's declared fields)."""

    async def fields(request: Request) -> dict[str, str]:
        form = await request.form()
        found: dict[str, str] = {}
        for name, value in form.multi_items():
            if isinstance(value, str) and "\x00" in value:  # a form with files is let through whole (web/app.py)
                raise HTTPException(400, "Something in that form was not right: a field holds a NUL character.")
            if name.startswith(prefix) and isinstance(value, str):
                key = name.removeprefix(prefix)
                # The blocks' order comes as one field per block, in the page's order.
                found[key] = f"{found[key]},{value}" if key == ORDER and key in found else value
        return found

    return fields


# The wording fields of the words form.
posted_fields = prefixed_fields(PREFIX)
