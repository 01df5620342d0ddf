"""The small markup of the course's words: what a marketer may write in a text field, and nothing else.

The course's long text fields (a teaching's paragraphs, a callout, a band's meaning) accept:

- paragraphs, separated by a blank line;
- ``*emphasis*`` and ``**strong emphasis**``;
- lists: lines starting with ``- `` (bullets) or ``1. `` (numbered);
- links: ``[the words](https://example.com/page)``;
- a backslash before a character that would otherwise be markup: ``\\*`` is an asterisk.

Short fields (titles, list items, a row's text) accept emphasis and links only. Anything else, raw HTML
included, is shown as the characters typed: nothing a marketer writes becomes markup we did not choose.
It is CommonMark, parsed by markdown-it-py with only those rules switched on, so it behaves as the
same syntax does everywhere else.

Each form has two renderings: HTML for the HTML part (with the inline styles an email needs, given by
the template) and plain text for the text part (wrapped at 72 columns; a link becomes
"the words (https://...)", so the text part carries every link the HTML part does).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape

_INLINE_RULES = ["emphasis", "link", "escape"]
_BLOCK_RULES = [*_INLINE_RULES, "list"]

# "zero": only paragraphs and text; raw HTML is never parsed (escaped as text) whatever the rules.
_block = MarkdownIt("zero").enable(_BLOCK_RULES)
_inline = MarkdownIt("zero").enable(_INLINE_RULES)

# The one merge tag the words take: the reader's first name, or the words after "|" for a reader without
# one ({first_name|friend}). Filled in after the email is rendered (emails/rendering.py), so a name is
# never read as markup; anything else in braces that looks like a tag is refused (course/wording.py).
FIRST_NAME = re.compile(r"\{first_name(?:\|([^{}\n]*))?\}")
LOOKS_LIKE_A_TAG = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_. ]*?)\s*(?:\|[^{}\n]*)?\}")
TAG_HELP = "{first_name|friend}: the reader's first name, or “friend” for a reader without one."


def fill_first_name(text: str, name: str | None, *, html: bool) -> str:
    """``text`` with each first-name tag replaced by ``name`` (HTML-escaped when ``html``), or its fallback."""
    if "{first_name" not in text:
        return text
    return FIRST_NAME.sub(lambda tag: (str(escape(name)) if html else name) if name else (tag.group(1) or ""), text)


SYNTAX_HELP = (
    "Blank line: new paragraph. *emphasis*, **strong**. Lines starting with - or 1. make a list. "
    "[words](https://this course's site/page) or [words](mailto:someone@example.org): links go to the "
    "course's own pages or to an email address. " + TAG_HELP + " \\* for a plain asterisk."
)
INLINE_HELP = (
    "*emphasis*, **strong**, [words](a page of this course's site, or mailto:someone@example.org). " + TAG_HELP
)


# --- HTML -----------------------------------------------------------------------------------------

_STYLED = {
    "paragraph_open": "p",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "list_item_open": "li",
    "link_open": "a",
}


def _style(tokens: Sequence[Token], styles: dict[str, str]) -> None:
    for token in tokens:
        style = styles.get(_STYLED.get(token.type, ""), "")
        if style:
            token.attrSet("style", style)
        if token.children:
            _style(token.children, styles)


def markup_html(text: str, p: str = "", list: str = "", li: str = "", a: str = "") -> Markup:
    """A long field as HTML: paragraphs and lists, each element with the style the template gives it."""
    tokens = _block.parse(str(text))
    _style(tokens, {"p": p, "list": list, "li": li, "a": a})
    # Safe: with raw HTML off, markdown-it escapes every character typed and every attribute value.
    return Markup(_block.renderer.render(tokens, _block.options, {}).strip())  # noqa: S704


def inline_html(text: str, a: str = "") -> Markup:
    """A short field as HTML: emphasis and links only."""
    tokens = _inline.parseInline(str(text))
    _style(tokens, {"a": a})
    return Markup(_inline.renderer.render(tokens, _inline.options, {}).strip())  # noqa: S704


# --- Plain text -----------------------------------------------------------------------------------


def _text_of(children: Sequence[Token], *, marks: bool) -> str:
    """Inline tokens as plain text: emphasis kept as asterisks (``marks``), a link followed by its address."""
    out: list[str] = []
    links: list[tuple[str, int]] = []
    for token in children:
        if token.type == "text":
            out.append(token.content)
        elif token.type in {"softbreak", "hardbreak"}:
            out.append(" ")
        elif token.type in {"em_open", "em_close", "strong_open", "strong_close"}:
            if marks:
                out.append("*")
        elif token.type == "link_open":
            links.append((str(token.attrGet("href") or ""), len(out)))
        elif token.type == "link_close" and links:
            href, start = links.pop()
            words = "".join(out[start:])
            if words.strip() != href:
                out.append(f" ({href})")
        else:
            out.append(token.content)
    return "".join(out)


def inline_text(text: str) -> str:
    """A short field for the text part (not wrapped: the template wraps it with what surrounds it)."""
    return _text_of(_inline.parseInline(str(text))[0].children or [], marks=True)


def plain(text: str) -> str:
    """A field with its markup taken away (no asterisks, a link's words only): for the inbox preview."""
    tokens = _block.parse(str(text))
    parts = [
        _text_of([child for child in token.children or [] if not child.type.startswith("link")], marks=False)
        for token in tokens
        if token.type == "inline"
    ]
    return " ".join(" ".join(parts).split())


def punctuated(title: str) -> str:
    """A title run into the text after it ends as a sentence does ("Cool down first. Wait until..."):
    a full stop unless it ends in one already, or in ? ! or :."""
    title = str(title)
    return title if not title or title[-1] in ".?!:" else title + "."


def _fill(text: str, width: int, initial: str, subsequent: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=width, initial_indent=initial, subsequent_indent=subsequent,
                         break_long_words=False, break_on_hyphens=False)  # fmt: skip


def markup_text(text: str, width: int = 72, indent: str = "") -> str:
    """A long field for the text part: paragraphs wrapped, list items indented under their marker."""
    blocks: list[str] = []
    lists: list[list[int | None]] = []  # per open list: [the next number] or [None] for bullets
    marker = ""
    for token in _block.parse(str(text)):
        if token.type in {"bullet_list_open", "ordered_list_open"}:
            start = token.attrGet("start")
            lists.append([int(start) if start is not None else 1] if token.type == "ordered_list_open" else [None])
        elif token.type in {"bullet_list_close", "ordered_list_close"}:
            lists.pop()
            if not lists:
                blocks.append("")
        elif token.type == "list_item_open":
            current = lists[-1]
            number = current[0]
            marker = "- " if number is None else f"{number}. "
            if number is not None:
                current[0] = number + 1
        elif token.type == "inline":
            words = _text_of(token.children or [], marks=True)
            if lists:
                lead = indent + "  " * len(lists)
                blocks.append(_fill(words, width, lead + marker, lead + " " * len(marker)))
                marker = ""
            else:
                blocks.append(_fill(words, width, indent, indent))
        elif token.type == "paragraph_close" and not lists:
            blocks.append("")
    lines = "\n".join(blocks)
    return "\n".join(line.rstrip() for line in lines.splitlines()).strip("\n")
