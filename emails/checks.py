"""What a rendered email must hold before it may be published, beyond rendering at all.

The law and the mailbox providers ask for an unsubscribe link and the sender's postal address; the
course needs its own links (the preferences page, today's exercise, every answer of a checklist); and
an email edited in the browser must not start loading remote images or scripts, carry a form, or send
readers anywhere but the course's own pages (which record the click and redirect to the configured
booking page or guide). Each problem names the email and the part it is about.

Remote content is looked for wherever a mail client or a browser would fetch a URL by itself: every
attribute that loads something (``src``, ``srcset``, ``poster``, ``background``, ``data``, the ``href``
of anything but a link...), CSS (``url()``, ``image-set()``, ``@import``) in ``style`` attributes, SVG
paint attributes and ``<style>`` blocks, and ``<meta http-equiv="refresh">``. The only URLs an email may
load are embedded images (``data:image/...``), references inside itself (``#id``) and the images uploaded
in the studio, as the course's own site serves them (``BASE_URL/media/<hash>.png``: one address for every
reader, so it tells nobody who opened what); its links go to the course's own pages. The HTML is read
with Python's HTML parser, which hides less from the check than a browser shows: whatever it leaves
unparsed that a browser or Outlook may still read as markup (comments, including Outlook's
``<!--[if mso]>``, ``<![CDATA[...]]>``, the text of ``<style>``) is read again as HTML. CSS is read by a
small tokenizer that follows the CSS Syntax spec (comments, quotes, escapes such as ``u\\72l(``), so no
spelling of ``url(`` gets past it. (tinycss2 does the same, but the few token kinds the check needs do not
justify another dependency on the send path's package.)
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import yaml

from course.curriculum import IMAGE_FILE
from course.lifecycle import EmailKind
from course.wording import email_of, is_words, strings
from emails.compiler import TemplateError
from emails.markup import FIRST_NAME, LOOKS_LIKE_A_TAG, TAG_HELP
from emails.rendering import MEDIA_PATH, RenderedEmail

# Elements an email must not carry: they load or run something, or post the reader's input somewhere.
FORBIDDEN_ELEMENTS = frozenset({
    "script", "form", "iframe", "object", "embed", "input", "button", "textarea", "base",
    "frame", "frameset", "applet", "portal", "fencedframe",
})  # fmt: skip

# Attributes whose value is a URL that is loaded by itself, on whichever element (``<image src>`` is an
# ``<img>`` to a browser; VML's ``<v:fill src>`` and ``<v:imagedata src>`` are Outlook's images).
FETCHED_ATTRIBUTES = frozenset({
    "src", "lowsrc", "dynsrc", "poster", "background", "data", "codebase", "archive", "classid", "manifest",
    "icon",
})  # fmt: skip
# Lists of URLs: image candidates ("a.png 1x, b.png 2x"), and the addresses a click pings.
SRCSET_ATTRIBUTES = frozenset({"srcset", "imagesrcset"})
PING_ATTRIBUTES = frozenset({"ping"})
# Where a URL is followed when the reader acts (a click, a submit): those go to the course's own pages.
LINK_ELEMENTS = frozenset({"a", "area"})
NAVIGATING_ATTRIBUTES = frozenset({"action", "formaction"})
# Attributes that hold CSS: the style of any element, and SVG's presentation attributes (fill="url(...)").
CSS_ATTRIBUTES = frozenset({
    "style", "fill", "stroke", "filter", "clip-path", "mask", "marker-start", "marker-mid", "marker-end",
    "cursor", "color-profile",
})  # fmt: skip
# SVG animation sets attributes as it runs: <set attributeName="href" to="https://...">.
ANIMATION_ELEMENTS = frozenset({"set", "animate", "animatemotion", "animatetransform", "discard"})
ANIMATION_VALUES = ("to", "from", "by", "values")
# Elements that load a whole document (a style sheet, an SVG with scripts and images of its own), not
# an image: for them not even a data: URL is safe, only a reference inside the email (#id).
DOCUMENT_LOADERS = frozenset({"link", "use", "object", "embed", "iframe", "frame", "script", "base", "applet"})
# What <meta http-equiv> may say in an email: the rest act on the reader's browser (refresh, set-cookie, Link).
HARMLESS_HTTP_EQUIV = frozenset({"content-type", "x-ua-compatible", "content-language"})
# CSS functions whose strings are URLs that are loaded (url("...") is one of them).
CSS_FETCHING_FUNCTIONS = frozenset({
    "url", "src", "image", "image-set", "-webkit-image-set", "cross-fade", "-webkit-cross-fade",
})  # fmt: skip
NOTHING_ELSE = "they track readers and break offline"


@dataclass
class _Found:
    """What the HTML of one email holds, as far as the checks are concerned."""

    hrefs: list[str] = field(default_factory=list)  # the links a reader sees (required links are looked for here)
    links: list[tuple[str, str]] = field(default_factory=list)  # (url, where): everywhere a reader is sent
    remote: list[tuple[str, str]] = field(default_factory=list)  # (url, where): everything loaded by itself
    imports: list[tuple[str, str]] = field(default_factory=list)  # (url, where): CSS @import
    refused: list[str] = field(default_factory=list)  # what is not allowed at all, said in full
    forbidden: set[str] = field(default_factory=set)
    text: list[str] = field(default_factory=list)


_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))


def _url(value: str) -> str:
    """A URL as a browser reads it before resolving it: without the spaces and control characters around it
    and the tabs and line breaks inside it (the WHATWG URL parser drops them), in lower case."""
    return re.sub(r"[\t\n\r]", "", value).strip(_C0_OR_SPACE).lower()


def _embedded(value: str, tag: str) -> bool:
    """Whether loading ``value`` reaches nothing outside the email: an embedded image, or a part of itself."""
    url = _url(value)
    if not url or url.startswith("#"):
        return True
    return url.startswith("data:image/") and tag not in DOCUMENT_LOADERS


def _srcset(value: str) -> Iterator[str]:
    """The URLs of a ``srcset`` (the HTML spec's parsing: a data: URL may hold commas)."""
    at, end = 0, len(value)
    while at < end:
        while at < end and value[at] in " \t\n\r\f,":
            at += 1
        start = at
        while at < end and value[at] not in " \t\n\r\f":
            at += 1
        url = value[start:at]
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # its descriptors ("2x", "300w"), up to the next comma outside parentheses
            depth = 0
            while at < end and (value[at] != "," or depth > 0):
                depth += 1 if value[at] == "(" else -1 if value[at] == ")" else 0
                at += 1
        if url:
            yield url


# --- CSS: the tokens of CSS Syntax Level 3 that can hold a URL ------------------------------------

_CSS_SPACE = " \t\n"
_HEX = re.compile(r"[0-9a-fA-F]{1,6}")


def _name_char(char: str) -> bool:
    return not char.isascii() or char.isalnum() or char in "_-"


def _name_start(char: str) -> bool:
    return not char.isascii() or char.isalpha() or char == "_"


def _valid_escape(css: str, at: int) -> bool:
    return at < len(css) and css[at] == "\\" and (at + 1 >= len(css) or css[at + 1] != "\n")


def _starts_name(css: str, at: int) -> bool:
    """Whether an identifier starts at ``at`` (CSS Syntax 4.3.9)."""
    if at >= len(css):
        return False
    if css[at] == "-":
        return at + 1 < len(css) and (_name_start(css[at + 1]) or css[at + 1] == "-" or _valid_escape(css, at + 1))
    return _name_start(css[at]) or _valid_escape(css, at)


def _escape(css: str, at: int) -> tuple[str, int]:
    """The character the backslash at ``at`` escapes, and where the text after the escape starts."""
    at += 1
    if at >= len(css):
        return "\ufffd", at
    digits = _HEX.match(css, at)
    if digits is None:
        return css[at], at + 1
    code, at = int(digits.group(), 16), digits.end()
    if at < len(css) and css[at] in _CSS_SPACE:
        at += 1
    return ("\ufffd" if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else chr(code)), at


def _name(css: str, at: int) -> tuple[str, int]:
    name = []
    while at < len(css):
        if _valid_escape(css, at):
            char, at = _escape(css, at)
            name.append(char)
        elif _name_char(css[at]):
            name.append(css[at])
            at += 1
        else:
            break
    return "".join(name), at


def _string(css: str, at: int) -> tuple[str, int]:
    quote, at, value = css[at], at + 1, []
    while at < len(css) and css[at] != quote:
        if css[at] == "\n":  # a bad string: the browser drops the declaration; the check reads it anyway
            break
        if css[at] == "\\":
            if at + 1 < len(css) and css[at + 1] == "\n":
                at += 2
                continue
            char, at = _escape(css, at)
            value.append(char)
        else:
            value.append(css[at])
            at += 1
    return "".join(value), at + 1


def _unquoted_url(css: str, at: int) -> tuple[str, int]:
    """The URL of ``url(...)`` without quotes, from after the parenthesis (a bad URL is read as it stands)."""
    value = []
    while at < len(css) and css[at] != ")":
        if _valid_escape(css, at):
            char, at = _escape(css, at)
            value.append(char)
        else:
            value.append(css[at])
            at += 1
    return "".join(value).strip(_CSS_SPACE), at + 1


def _css_tokens(css: str) -> Iterator[tuple[str, str]]:
    """(kind, value): "at" (an at-keyword's name), "function" (its name), "url", "string", "ident", or a
    single character of anything else. Names are unescaped and in lower case."""
    css = css.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\x00", "\ufffd")
    at = 0
    while at < len(css):
        char = css[at]
        if css.startswith("/*", at):
            end = css.find("*/", at + 2)
            at = len(css) if end < 0 else end + 2
        elif char in _CSS_SPACE:
            at += 1
        elif char in "\"'":
            value, at = _string(css, at)
            yield "string", value
        elif char == "@" and _starts_name(css, at + 1):
            name, at = _name(css, at + 1)
            yield "at", name.lower()
        elif _starts_name(css, at):
            name, at = _name(css, at)
            if at < len(css) and css[at] == "(":
                at += 1
                if name.lower() == "url":
                    while at < len(css) and css[at] in _CSS_SPACE:
                        at += 1
                    if at >= len(css) or css[at] not in "\"'":
                        value, at = _unquoted_url(css, at)
                        yield "url", value
                        continue
                yield "function", name.lower()
            else:
                yield "ident", name.lower()
        else:
            yield char, char
            at += 1


def _css_urls(css: str) -> Iterator[tuple[str, str]]:
    """(what, url) for every URL the CSS loads: "url()", "@import", or the function that holds a string.

    A string that reads as an absolute URL (``"https://..."``, ``"//host/..."``) counts wherever it is:
    old mail clients run filters such as ``progid:...AlphaImageLoader(src='...')``."""
    functions: list[str] = []  # the functions (and parentheses: "(") the tokens are in
    importing = False  # after an @import, until its URL
    for kind, value in _css_tokens(css):
        if kind == "at":
            if importing:
                yield "@import", ""
            importing = value == "import"
        elif kind == "url" or (kind == "string" and importing):
            yield ("@import" if importing else "url()"), value
            importing = False
        elif kind == "string":
            fetching = [name for name in functions if name in CSS_FETCHING_FUNCTIONS]
            if fetching:
                yield f"{fetching[-1]}()", value
            elif re.match(r"\s*(//|\\\\|[a-zA-Z][a-zA-Z0-9+.-]*://)", value):
                yield "a CSS string", value
        elif kind == "function":
            if value == "expression":
                yield "expression()", ""
            functions.append(value)
        elif kind == "(":
            functions.append("(")
        elif kind == ")":
            if functions:
                functions.pop()
        elif kind in (";", "{", "}"):
            functions.clear()
            if importing:
                yield "@import", ""
            importing = False
    if importing:
        yield "@import", ""


@functools.lru_cache(maxsize=4096)
def _css_urls_of(css: str) -> tuple[tuple[str, str], ...]:
    """``_css_urls``, remembered: MJML writes the same few style attributes on every email's elements."""
    return tuple(_css_urls(css))


# --- HTML -----------------------------------------------------------------------------------------


class _Parts(HTMLParser):
    """Reads rendered HTML into a :class:`_Found`. ``hidden``: the text is what a comment or a ``<style>``
    hides from this parser (not from every mail client): its links do not count as the email's links."""

    def __init__(self, found: _Found, hidden: str = "") -> None:
        super().__init__(convert_charrefs=True)
        self.found, self.hidden = found, hidden
        self._raw_text_of: str | None = None  # "style" or "script" while in one

    def _where(self, what: str) -> str:
        return what + self.hidden

    def _css(self, css: str, where: str, tag: str) -> None:
        for what, url in _css_urls_of(css):
            if what == "@import":
                self.found.imports.append((url, self._where(f"@import in {where}")))
            elif what == "expression()":
                self.found.refused.append(f"CSS expression() runs code and is not allowed in an email ({where})")
            elif not _embedded(url, tag):
                self.found.remote.append((url, self._where(f"{what} in {where}")))

    def _fetched(self, url: str, tag: str, where: str) -> None:
        if not _embedded(url, tag):
            self.found.remote.append((url, self._where(where)))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_ELEMENTS:
            self.found.forbidden.add(tag)
        if tag in ("style", "script"):
            self._raw_text_of = tag
        # Every value, in order: a browser takes the first of two attributes of one name, dict() the last.
        names = {name: value or "" for name, value in reversed(attrs)}
        for name, value in attrs:
            value = value or ""
            where = f"the {name} of <{tag}>"
            if name in FETCHED_ATTRIBUTES:
                if value.strip():
                    self._fetched(value, tag, where)
            elif name in SRCSET_ATTRIBUTES:
                for url in _srcset(value):
                    self._fetched(url, tag, where)
            elif name in PING_ATTRIBUTES:
                for url in value.split():
                    self._fetched(url, "link", where)  # a ping is a request of its own, never an image
            elif name in ("href", "xlink:href"):
                if tag in LINK_ELEMENTS:
                    if value and not self.hidden:
                        self.found.hrefs.append(value)
                    if value:
                        self.found.links.append((value, self._where(where)))
                elif value.strip():
                    self._fetched(value, tag, where)
            elif name in NAVIGATING_ATTRIBUTES:
                self.found.links.append((value, self._where(where)))
            if name in CSS_ATTRIBUTES:
                self._css(value, where, tag)
        if tag in ANIMATION_ELEMENTS and names.get("attributename", "").lower() in ("href", "xlink:href", "src"):
            for name in ANIMATION_VALUES:
                for url in names.get(name, "").split(";"):
                    if url.strip():
                        self._fetched(url, tag, f"the {name} of <{tag}>")
        if tag == "meta" and "http-equiv" in names:
            equiv = names["http-equiv"].strip().lower()
            if equiv == "refresh":
                self.found.refused.append(
                    '<meta http-equiv="refresh"> would open a page or reload by itself: readers follow links'
                    + self.hidden
                )
            elif equiv not in HARMLESS_HTTP_EQUIV:
                self.found.refused.append(f'<meta http-equiv="{equiv}"> is not allowed in an email{self.hidden}')

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw_text_of:
            self._raw_text_of = None

    def handle_data(self, data: str) -> None:
        if self._raw_text_of == "style":
            self._css(data, "a <style> block", "style")
            # SVG's <style> holds markup to a browser (and one that ends at "</style x>" ends earlier than
            # here): what would be markup there is looked at as markup, and its entities decoded.
            if "&" in data:
                self._css(html.unescape(data), "a <style> block", "style")
            self._again(data, ", inside a <style> block")
        elif self._raw_text_of == "script":
            self._again(data, ", inside a <script>")
        elif not self.hidden:
            self.found.text.append(data)

    def handle_comment(self, data: str) -> None:
        # Outlook reads <!--[if mso]>...<![endif]--> as markup, and a browser ends "<!-->" or "--!>"
        # sooner than this parser does: a comment is read again as HTML.
        self._again(data, ", inside an HTML comment")

    def unknown_decl(self, data: str) -> None:  # <![CDATA[...]]>: a browser ends it at the first ">"
        self._again(data, ", inside <![...]>")

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        """``<![`` as this parser knows it (``<![CDATA[``, ``<![if ...]>``), or else as a browser reads it:
        a comment up to the next ">" (this parser would stop with an AssertionError)."""
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            if end < 0:
                return -1
            self.unknown_decl(self.rawdata[i + 3 : end])
            return end + 1

    def _again(self, markup: str, hidden: str) -> None:
        if "<" in markup:
            parser = _Parts(self.found, self.hidden or hidden)
            parser.feed(markup)
            parser.close()


def _parts(markup: str) -> _Found:
    found = _Found()
    parser = _Parts(found)
    parser.feed(markup)
    parser.close()
    return found


def _first(found: list[tuple[str, str]]) -> str:
    """The first of these places (a long URL cut short), and how many more there are."""
    found = sorted(dict.fromkeys(found), key=lambda place: ", inside " in place[1])  # what shows everywhere first
    url, where = found[0]
    url = " ".join(url.split())
    shown = url if len(url) <= 100 else url[:97] + "..."
    more = f"; and {len(found) - 1} more" if len(found) > 1 else ""
    return f"{shown or '(no address)'} ({where}{more})"


def link_refused(href: str, base_url: str) -> str | None:
    """Why an email may not carry a link to ``href`` (None: it may): the one rule for links, in the layouts'
    HTML and in the words typed in the studio alike. A link goes to the course's own pages (they redirect
    onwards, counted), to an email address, or to a place in the email itself."""
    base = base_url.rstrip("/") + "/"
    if href.startswith((base, "mailto:", "#")):
        return None
    if re.match(r"(?i)\s*(https?:)?//", href):
        return (
            f"“{href}” is another site: an email links only to this course's own pages ({base}…) or to an "
            "email address (mailto:…). Link to a page of the course, or write the address as text"
        )
    return f"“{href}” is not a link an email may carry: a link starts with {base} or mailto:"


_WORDS_LINK = re.compile(
    r"\[[^\]\n]*\]\(\s*<?((?:[^()\s>]|\([^()\s]*\))*)"
)  # one level of (parentheses), as CommonMark


def words_link_problems(files: Mapping[str, str], base_url: str) -> list[TemplateError]:
    """Each link typed in the emails' words (``[words](address)``) that :func:`link_refused` refuses, and each
    merge tag but the first name's, beside its field: found where it was typed, not in the layout showing it."""
    problems = []
    for path, text in files.items():
        if not is_words(path):
            continue
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # reading the file says what is wrong with it
        for where, value in strings(data):
            whys = [link_refused(href, base_url) for href in _WORDS_LINK.findall(value)]
            whys += [f"“{tag.group(0)}” is not a tag the words take: the one there is, is {TAG_HELP}"
                     for tag in LOOKS_LIKE_A_TAG.finditer(value) if not FIRST_NAME.fullmatch(tag.group(0))]  # fmt: skip
            for why in whys:
                if why is not None:
                    problems.append(TemplateError(email_of(path) or "every email", path, f"{where}: {why}",
                                                  field=where))  # fmt: skip
    return problems


def typed_links(files: Mapping[str, str]) -> frozenset[str]:
    """Every link address typed in the emails' words."""
    return frozenset(_WORDS_LINK.findall("\n".join(text for path, text in files.items() if is_words(path))))


def content_problems(
    rendered: RenderedEmail, context: dict[str, Any], base_url: str, said: frozenset[str] = frozenset()
) -> list[TemplateError]:
    """The problems of one rendered email; ``context`` is what it was rendered with."""
    email = rendered.email
    try:
        parts = _parts(rendered.html)
    except AssertionError as error:  # markup Python's HTML parser gives up on: refused, not passed
        return [TemplateError(email, "body.mjml", f"the HTML cannot be read: {error}")]
    problems: list[TemplateError] = []

    def problem(file: str, message: str) -> None:
        problems.append(TemplateError(email, file, message))

    links = context["links"]
    required = {}
    if context["step"]["kind"] != EmailKind.CONFIRMATION:  # not yet a subscriber: nothing to leave or to set
        required = {"the unsubscribe link": links["unsubscribe"], "the preferences link": links["preferences"]}
    if "confirm" in links:
        required["the confirmation link"] = links["confirm"]
    if "data" in links:  # the email that answers a request for one's data: the one way to it
        required["the link to their data"] = links["data"]
    for part in context.get("body") or []:  # every button the email's body holds, where the layout shows it
        if part["kind"] == "button" and part["href"]:
            done = part["action"] == "done"
            required.setdefault("the link that marks the exercise done" if done else f"the button {part['text']!r}",
                                part["href"])  # fmt: skip
    checklist = context.get("checklist")
    if checklist:
        for band in checklist["bands"]:
            required[f"the answer link for {band['label']!r}"] = band["url"]
    for what, url in required.items():
        if url not in parts.hrefs:
            problem("body.mjml", f"{what} is missing")
        if url not in rendered.text:
            problem("body.txt", f"{what} is missing from the plain-text part")
    if " ".join(context["postal_address"].split()) not in " ".join("".join(parts.text).split()):
        problem("body.mjml", "the practice's postal address is missing")
    if context["postal_address"] not in rendered.text:
        problem("body.txt", "the practice's postal address is missing from the plain-text part")
    for tag in sorted(parts.forbidden):
        problem("body.mjml", f"<{tag}> is not allowed in an email")
    ours = re.compile(re.escape(base_url.rstrip("/") + MEDIA_PATH + "/") + IMAGE_FILE.removeprefix("^"))
    remote = [(url, where) for url, where in parts.remote if not ours.fullmatch(url)]
    if remote:
        problem("body.mjml", f"no remote images or files ({NOTHING_ELSE}): {_first(remote)}")
    if parts.imports:
        problem("body.mjml", f"no style sheets from elsewhere (an email carries its own): {_first(parts.imports)}")
    for message in dict.fromkeys(parts.refused):
        problem("body.mjml", message)
    base = base_url.rstrip("/") + "/"
    # Links typed in the words are named beside their field already (``said``).
    elsewhere = [(href, where) for href, where in parts.links if href not in said and link_refused(href, base_url)]
    if elsewhere:
        problem("body.mjml", f"links go to the course's own pages only (they redirect onwards): {_first(elsewhere)}")
    missing_in_text = [href for href in parts.hrefs if href.startswith(base) and href not in rendered.text]
    if missing_in_text:
        problem("body.txt", f"the plain-text part lacks a link the HTML has: {missing_in_text[0]}")
    if "\n" in rendered.subject or not rendered.subject.strip():
        problem("subject.txt", "the subject is one line of text")
    return problems
