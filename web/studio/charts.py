"""The insights' charts, drawn here as SVG: no script, nothing fetched, readable at 375 px and on a desktop.

Each chart scales to its box (a viewBox, width 100%), names itself to screen readers (role="img",
a title and a description), takes its colours from the page's CSS variables (so dark mode follows)
and tells its series apart by shape as well as colour (dashes, markers, patterns). Its numbers are
always in a table beside it: the chart is for the eye, the table for reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Series colours (on the card's background, light and dark) and the dash patterns that tell them apart.
COLOURS = ("var(--accent)", "var(--chart-2)", "var(--chart-3)", "var(--chart-4)", "var(--chart-5)", "var(--chart-6)")
DASHES = ("", "6 4", "2 3", "10 3 2 3", "1 5", "12 6")
FONT = 'font-size="13" fill="var(--text)"'
# Drawn for a phone's width (the card is about 320 px there) and scaled up to at most 640 px (course.css).
WIDTH = 360


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]  # None: nothing to show at that point


def _frame(name: str, title: str, description: str, width: int, height: int, body: str) -> Markup:
    ident = escape(name)
    # Every text in ``body`` went through escape() where it was drawn; the rest is numbers and our markup.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ident}-title {ident}-desc"'
        f' preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(description)}</desc>'
        f"{body}</svg>"
    )


def line_chart(name: str, title: str, description: str, x_labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Shares (0 to 1) along the x labels, one line per series: retention by day, a line per cohort."""
    width, left, right, top, inner_h = WIDTH, 40, 12, 10, 160
    inner_w = width - left - right
    height = top + inner_h + 30 + 18 * ((len(series) + 1) // 2)
    step = inner_w / max(1, len(x_labels) - 1)
    parts = []
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = top + inner_h * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="var(--line)"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{tick * 100:.0f}%</text>')
    for index, label in enumerate(x_labels):
        if index % 4 == 0 or index == len(x_labels) - 1:
            x = left + index * step
            parts.append(
                f'<text x="{x:.1f}" y="{top + inner_h + 16}" text-anchor="middle" {FONT}>{escape(label)}</text>'
            )
    for number, line in enumerate(series):
        colour, dash = COLOURS[number % len(COLOURS)], DASHES[number % len(DASHES)]
        points = [
            (left + i * step, top + inner_h * (1 - value)) for i, value in enumerate(line.values) if value is not None
        ]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"{dashes}/>')
        parts.extend(_marker(number, x, y, colour) for x, y in points)
    parts.append(_legend([line.label for line in series], top + inner_h + 30, width, lines=True))
    return _frame(name, title, description, width, height, "".join(parts))


def _marker(number: int, x: float, y: float, colour: str) -> str:
    """A shape per series (circle, square, diamond, triangle...), so that colour is not the only cue."""
    shape = number % 4
    if shape == 0:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'
    if shape == 1:
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}"/>'
    if shape == 2:
        diamond = f"M{x:.1f} {y - 4.5:.1f}L{x + 4.5:.1f} {y:.1f}L{x:.1f} {y + 4.5:.1f}L{x - 4.5:.1f} {y:.1f}Z"
        return f'<path d="{diamond}" fill="{colour}"/>'
    return f'<path d="M{x:.1f} {y - 4.5:.1f}L{x + 4.5:.1f} {y + 4:.1f}L{x - 4.5:.1f} {y + 4:.1f}Z" fill="{colour}"/>'


def _legend(labels: Sequence[str], y: float, width: int, *, lines: bool) -> str:
    parts, x, row = [], 12.0, 0
    for number, label in enumerate(labels):
        span = 36 + 7.5 * len(label)
        if x + span > width:
            x, row = 12.0, row + 1
        top = y + row * 18
        colour = COLOURS[number % len(COLOURS)]
        if lines:
            dash = DASHES[number % len(DASHES)]
            dashes = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<line x1="{x:.0f}" x2="{x + 22:.0f}" y1="{top:.0f}" y2="{top:.0f}" stroke="{colour}" '
                         f'stroke-width="2.5"{dashes}/>')  # fmt: skip
            parts.append(_marker(number, x + 11, top, colour))
        else:
            parts.append(f'<rect x="{x:.0f}" y="{top - 6:.0f}" width="22" height="12" fill="url(#fill-{number})" '
                         f'stroke="{colour}"/>')  # fmt: skip
        parts.append(f'<text x="{x + 28:.0f}" y="{top + 4:.0f}" {FONT}>{escape(label)}</text>')
        x += span
    return "".join(parts)


def _label_room(labels: Sequence[str]) -> int:
    """Room for the longest row label (about 7.5 units a character at the charts' font), at least 72."""
    return max(72, round(7.5 * max((len(label) for label in labels), default=0)) + 12)


def _patterns(count: int) -> str:
    """Fills per series: solid, stripes, dots... (in the series' colour), so bars differ by more than colour."""
    parts = ["<defs>"]
    for number in range(count):
        colour = COLOURS[number % len(COLOURS)]
        kind = number % 3
        if kind == 0:
            parts.append(f'<pattern id="fill-{number}" width="6" height="6" patternUnits="userSpaceOnUse">'
                         f'<rect width="6" height="6" fill="{colour}"/></pattern>')  # fmt: skip
        elif kind == 1:
            parts.append(f'<pattern id="fill-{number}" width="6" height="6" patternUnits="userSpaceOnUse" '
                         f'patternTransform="rotate(45)"><rect width="6" height="6" fill="var(--card)"/>'
                         f'<rect width="3" height="6" fill="{colour}"/></pattern>')  # fmt: skip
        else:
            parts.append(f'<pattern id="fill-{number}" width="5" height="5" patternUnits="userSpaceOnUse">'
                         f'<rect width="5" height="5" fill="var(--card)"/><circle cx="2.5" cy="2.5" r="1.6" '
                         f'fill="{colour}"/></pattern>')  # fmt: skip
    parts.append("</defs>")
    return "".join(parts)


def bar_chart(name: str, title: str, description: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Horizontal bars, a row per label and a bar per series in it: long lists stay readable on a phone."""
    width, right, top = WIDTH, 40, 8
    left = _label_room(labels)
    bar, gap = 10, 10
    row = bar * len(series) + gap
    inner_w = width - left - right
    largest = max((value or 0 for line in series for value in line.values), default=0) or 1
    height = top + row * len(labels) + 24 + 18 * len(series)
    parts = [_patterns(len(series))]
    for index, label in enumerate(labels):
        y = top + index * row
        parts.append(f'<text x="{left - 8}" y="{y + row / 2:.1f}" text-anchor="end" {FONT}>{escape(label)}</text>')
        for number, line in enumerate(series):
            value = line.values[index] or 0
            length = inner_w * value / largest
            by = y + number * bar
            colour = COLOURS[number % len(COLOURS)]
            parts.append(f'<rect x="{left}" y="{by}" width="{length:.1f}" height="{bar - 1}" '
                         f'fill="url(#fill-{number})" stroke="{colour}" stroke-width="0.8"/>')  # fmt: skip
            if value:
                parts.append(f'<text x="{left + length + 4:.1f}" y="{by + bar - 1.5}" font-size="10" '
                             f'fill="var(--text)">{value:,.0f}</text>')  # fmt: skip
    parts.append(_legend([line.label for line in series], top + row * len(labels) + 14, width, lines=False))
    return _frame(name, title, description, width, height, "".join(parts))


def stacked_bars(name: str, title: str, description: str, labels: Sequence[str], parts_of: Sequence[Series]) -> Markup:
    """One bar per label, split into shares (the series): the answers before and after, band by band."""
    width, right, top, bar, gap = WIDTH, 8, 8, 28, 14
    left = _label_room(labels)
    inner_w = width - left - right
    height = top + (bar + gap) * len(labels) + 24 + 18 * len(parts_of)
    parts = [_patterns(len(parts_of))]
    for index, label in enumerate(labels):
        y = top + index * (bar + gap)
        total = sum(line.values[index] or 0 for line in parts_of)
        parts.append(f'<text x="{left - 8}" y="{y + bar / 2 + 4:.1f}" text-anchor="end" {FONT}>{escape(label)}</text>')
        x = float(left)
        for number, line in enumerate(parts_of):
            value = line.values[index] or 0
            length = inner_w * value / total if total else 0
            colour = COLOURS[number % len(COLOURS)]
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="{bar}" fill="url(#fill-{number})" '
                         f'stroke="{colour}"/>')  # fmt: skip
            x += length
        if not total:
            parts.append(f'<text x="{left}" y="{y + bar / 2 + 4:.1f}" {FONT}>no answers</text>')
    parts.append(_legend([line.label for line in parts_of], top + (bar + gap) * len(labels) + 10, width, lines=False))
    return _frame(name, title, description, width, height, "".join(parts))
