"""Misspelt MJML, found with its line: MRML (mjml-python) passes an attribute or a tag it does not know
through without a word, so ``<mj-text colr="red">`` renders black and ``<mj-buton>`` renders nothing.

The names below are MJML 4's own (its documentation, component by component). A tag that is not one of
them but is close to one (``mj-buton``), or an attribute a tag does not have that is close to one it has
(``colr``, ``font-sise``), is a mistake said with its line and what was probably meant; a name close to
nothing is left alone, so a layout that uses something this list lacks is never refused for it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator


def _n(names: str = "") -> frozenset[str]:
    return frozenset(names.split())


_PADDING = _n("padding padding-bottom padding-left padding-right padding-top")
_BORDER = _n("border border-bottom border-left border-radius border-right border-top")
_FONT = _n(
    "color font-family font-size font-style font-weight letter-spacing line-height text-decoration text-transform"
)
_EVERY = _n("css-class mj-class")
_BACKGROUND = _n(
    "background-color background-position background-position-x background-position-y background-repeat "
    "background-size background-url"
)

ATTRIBUTES: dict[str, frozenset[str]] = {
    "mjml": _n("dir lang owa"),
    "mj-head": _n(),
    "mj-body": _n("background-color width"),
    "mj-attributes": _n(),
    "mj-all": _n(),
    "mj-class": _n(),
    "mj-breakpoint": _n("width"),
    "mj-font": _n("href name"),
    "mj-html-attributes": _n(),
    "mj-html-attribute": _n("name"),
    "mj-selector": _n("path"),
    "mj-preview": _n(),
    "mj-style": _n("inline"),
    "mj-title": _n(),
    "mj-include": _n("css-inline path type"),
    "mj-raw": _n("position"),
    "mj-section": _BACKGROUND | _BORDER | _PADDING | _n("direction full-width text-align text-padding"),
    "mj-wrapper": _BACKGROUND | _BORDER | _PADDING | _n("direction full-width gap text-align"),
    "mj-group": _n("background-color direction vertical-align width"),
    "mj-column": _BORDER
    | _PADDING
    | _n("background-color direction inner-background-color inner-border inner-border-radius vertical-align width"),
    "mj-text": _PADDING | _FONT | _n("align container-background-color height"),
    "mj-button": _BORDER
    | _PADDING
    | _FONT
    | _n(
        "align background-color container-background-color height href inner-padding name rel target text-align title "
        "vertical-align width"
    ),
    "mj-image": _BORDER
    | _PADDING
    | _n(
        "align alt container-background-color fluid-on-mobile font-size height href max-height name rel sizes src "
        "srcset target title usemap width"
    ),
    "mj-divider": _PADDING | _n("align border-color border-style border-width container-background-color width"),
    "mj-spacer": _PADDING | _n("container-background-color height"),
    "mj-table": _PADDING
    | _FONT
    | _n("align border cellpadding cellspacing container-background-color role table-layout width"),
    "mj-hero": _BACKGROUND
    | _BORDER
    | _PADDING
    | _n(
        "background-height background-width container-background-color height inner-background-color inner-padding "
        "inner-padding-bottom inner-padding-left inner-padding-right inner-padding-top mode vertical-align width"
    ),
    "mj-social": _BORDER
    | _PADDING
    | _FONT
    | _n("align container-background-color icon-height icon-padding icon-size inner-padding mode text-padding"),
    "mj-social-element": _BORDER
    | _PADDING
    | _FONT
    | _n(
        "align alt background-color href icon-height icon-padding icon-position icon-size name rel sizes src srcset "
        "target text-padding title vertical-align"
    ),
    "mj-navbar": _n(
        "align base-url hamburger ico-align ico-close ico-color ico-font-family ico-font-size ico-line-height "
        "ico-open ico-padding ico-padding-bottom ico-padding-left ico-padding-right ico-padding-top "
        "ico-text-decoration ico-text-transform"
    ),
    "mj-navbar-link": _PADDING | _FONT | _n("href name rel target title"),
    "mj-accordion": _BORDER
    | _PADDING
    | _FONT
    | _n(
        "container-background-color icon-align icon-height icon-position icon-unwrapped-alt icon-unwrapped-url "
        "icon-width icon-wrapped-alt icon-wrapped-url"
    ),
    "mj-accordion-element": _BORDER
    | _FONT
    | _n(
        "background-color icon-align icon-height icon-position icon-unwrapped-alt icon-unwrapped-url icon-width "
        "icon-wrapped-alt icon-wrapped-url"
    ),
    "mj-accordion-title": _PADDING | _FONT | _n("background-color"),
    "mj-accordion-text": _PADDING | _FONT | _n("background-color"),
    "mj-carousel": _n(
        "align border-radius container-background-color icon-width left-icon right-icon tb-border tb-border-radius "
        "tb-hover-border-color tb-selected-border-color tb-width thumbnails"
    ),
    "mj-carousel-image": _n("alt border-radius href rel src target thumbnails-src title"),
}
_TAG = re.compile(r"<(mj-[A-Za-z0-9-]+|mjml)\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_ATTRIBUTE = re.compile(r"([A-Za-z_:][A-Za-z0-9_.:-]*)\s*=")
_LOOSE = {"mj-attributes", "mj-all", "mj-class", "mj-html-attributes"}  # defaults for any attribute


def _close(name: str, known: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
    return found[0] if found else None


_DEFAULTS = re.compile(r"<mj-attributes\b.*?</mj-attributes>", re.S)


def misspellings(document: str) -> Iterator[tuple[int, str]]:
    """Each likely misspelling in an MJML document: where it is (an offset) and what to say. What
    ``<mj-attributes>`` holds (defaults for any attribute of any tag) is not looked at."""
    document = _DEFAULTS.sub(lambda block: " " * len(block.group(0)), document)  # the same offsets
    for tag in _TAG.finditer(document):
        name = tag.group(1).lower()
        if name not in ATTRIBUTES:
            meant = _close(name, list(ATTRIBUTES))
            if meant:
                yield tag.start(), f"<{tag.group(1)}> is not an MJML tag: <{meant}>?"
            continue
        if name in _LOOSE:
            continue
        allowed = ATTRIBUTES[name] | _EVERY
        for attribute in _ATTRIBUTE.finditer(tag.group(2)):
            given = attribute.group(1).lower()
            if given in allowed:
                continue
            meant = _close(given, allowed)
            if meant:
                yield tag.start(), f"<{tag.group(1)}> has no attribute {given!r}: {meant!r}?"
