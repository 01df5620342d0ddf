"""The insights' charts, drawn here as SVG: no script, nothing fetched, readable at 375 px and on a desktop.

Each chart is drawn for the smallest box it is shown in, a phone's card (WIDTH units, about 320 px),
so that its text (LABEL_SIZE, VALUE_SIZE units) shows at 12 px or more: course.css never lets a chart
be narrower than MIN_SHOWN px (its frame scrolls sideways instead, on the narrowest phones) and shows
it at most a little larger on a desktop. Each names itself to screen readers (role="img", a title
and a description), takes its colours from the page's CSS variables (so dark mode follows) and
tells its series apart by shape as well as colour (dashes, markers, patterns). Its numbers are always
in a table beside it: the chart is for the eye, the table for reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Series colours (on the card's background, light and dark) and the dash patterns that tell them apart.
COLOURS = ("var(--accent)", "var(--chart-2)", "var(--chart-3)", "var(--chart-4)", "var(--chart-5)", "var(--chart-6)")
DASHES = ("", "6 4", "2 3", "10 3 2 3", "1 5", "12 6")
# The width every chart is drawn at, in units: a phone's card at 375 px is about 320 px wide.
WIDTH = 320
# The narrowest a chart is shown (course.css, svg.chart's min-width): its smallest text at 12 px or more.
MIN_SHOWN = 296
LABEL_SIZE = 14  # axes, row labels, legends
VALUE_SIZE = 13  # the numbers at the bars' ends
FONT = f'font-size="{LABEL_SIZE}" fill="var(--text)"'
VALUE_FONT = f'font-size="{VALUE_SIZE}" fill="var(--text)"'
# How wide a character is drawn, at most, in units (the system sans-serif fonts, digits and letters):
# room is made for labels from this, so that none runs out of its chart.
LABEL_CHAR, VALUE_CHAR = 0.56 * LABEL_SIZE, 0.58 * VALUE_SIZE
LINE = 17  # from one line of a label to the next
LEGEND_ROW = 22  # a row of keys of one line
LABEL_ROOM = 150  # the most room row labels take (about 17 characters a line), so that bars keep theirs


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]  # None: nothing to show at that point


def _frame(name: str, title: str, description: str, width: int, height: float, body: str) -> Markup:
    ident, tall = escape(name), math.ceil(height)
    # Every text in ``body`` went through escape() where it was drawn; the rest is numbers and our markup.
    # The frame scrolls the chart sideways where its box is narrower than MIN_SHOWN (course.css).
    return Markup(  # noqa: S704
        f'<div class="chart-frame">'
        f'<svg class="chart" viewBox="0 0 {width} {tall}" width="{width}" height="{tall}" role="img"'
        f' aria-labelledby="{ident}-title {ident}-desc" preserveAspectRatio="xMinYMin meet"'
        f' xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(description)}</desc>'
        f"{body}</svg></div>"
    )


def _label_width(label: str) -> float:
    return LABEL_CHAR * len(label)


def line_chart(name: str, title: str, description: str, x_labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Shares (0 to 1) along the x labels, one line per series: retention by day, a line per cohort."""
    width, top, inner_h = WIDTH, 10, 160
    left = round(_label_width("100%")) + 16  # "%" is wider than most
    # Room for half the last x label beyond the last point.
    right = max(12, round(_label_width(x_labels[-1]) / 2) + 4) if x_labels else 12
    inner_w = width - left - right
    step = inner_w / max(1, len(x_labels) - 1)
    parts = []
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = top + inner_h * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="var(--line)"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 5:.1f}" text-anchor="end" {FONT}>{tick * 100:.0f}%</text>')
    # Every fourth label and the last, unless the last would run into the one before it.
    shown = [index for index in range(len(x_labels)) if index % 4 == 0]
    if x_labels and shown[-1] != len(x_labels) - 1:
        room = (len(x_labels) - 1 - shown[-1]) * step
        if room < (_label_width(x_labels[shown[-1]]) + _label_width(x_labels[-1])) / 2 + 6:
            shown.pop()
        shown.append(len(x_labels) - 1)
    for index in shown:
        x = left + index * step
        parts.append(
            f'<text x="{x:.1f}" y="{top + inner_h + 18}" text-anchor="middle" {FONT}>{escape(x_labels[index])}</text>'
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
    legend, legend_h = _legend(name, [line.label for line in series], top + inner_h + 28, width, lines=True)
    parts.append(legend)
    return _frame(name, title, description, width, top + inner_h + 30 + legend_h, "".join(parts))


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


def _lines(label: str, room: float) -> list[str]:
    """A label broken at its spaces into lines of at most ``room`` units (a word longer than a line is cut,
    with an ellipsis): a long row label or key must neither run out of the chart nor squeeze the bars."""
    most = max(2, int(room / LABEL_CHAR))
    lines: list[str] = []
    for word in label.split() or [""]:
        if len(word) > most:
            word = word[: most - 1] + "…"
        if lines and len(lines[-1]) + 1 + len(word) <= most:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _text(x: float, first_baseline: float, lines: Sequence[str], anchor: str = "start") -> str:
    """A text of one or more lines (tspans), each line LINE units below the one before."""
    spans = "".join(f'<tspan x="{x:.1f}" dy="{0 if index == 0 else LINE}">{escape(line)}</tspan>'
                    for index, line in enumerate(lines))  # fmt: skip
    return f'<text x="{x:.1f}" y="{first_baseline:.1f}" text-anchor="{anchor}" {FONT}>{spans}</text>'


def _legend(name: str, labels: Sequence[str], y: float, width: int, *, lines: bool) -> tuple[str, float]:
    """The series' keys in rows from ``y`` (the top of the first row), wrapped to the chart's width (a key
    too long for a line: in lines of its own); returns the markup and the height of its rows."""
    parts: list[str] = []
    x, row_top, row_lines = 8.0, y, 1
    for number, label in enumerate(labels):
        text = _lines(label, width - 8 - 28 - 8)
        span = 28 + max(_label_width(line) for line in text)
        if x > 8 and x + span > width - 4:
            x, row_top, row_lines = 8.0, row_top + row_lines * LINE + LEGEND_ROW - LINE, 1
        row_lines = max(row_lines, len(text))
        middle = row_top + LEGEND_ROW / 2
        colour = COLOURS[number % len(COLOURS)]
        if lines:
            dash = DASHES[number % len(DASHES)]
            dashes = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<line x1="{x:.0f}" x2="{x + 22:.0f}" y1="{middle:.0f}" y2="{middle:.0f}" stroke="{colour}" '
                         f'stroke-width="2.5"{dashes}/>')  # fmt: skip
            parts.append(_marker(number, x + 11, middle, colour))
        else:
            parts.append(f'<rect x="{x:.0f}" y="{middle - 6:.0f}" width="22" height="12" '
                         f'fill="url(#{escape(name)}-fill-{number})" stroke="{colour}"/>')  # fmt: skip
        parts.append(_text(x + 28, middle + 5, text))
        x += span + 14
    height = row_top + row_lines * LINE + LEGEND_ROW - LINE - y if labels else 0
    return "".join(parts), height


def _row_labels(labels: Sequence[str]) -> tuple[int, list[list[str]]]:
    """Room for the row labels (the longest, up to LABEL_ROOM units; longer ones in lines) and their lines."""
    longest = math.ceil(max((_label_width(label) for label in labels), default=0))
    if longest + 14 <= LABEL_ROOM:
        return max(60, longest + 14), [[label] for label in labels]
    return LABEL_ROOM, [_lines(label, LABEL_ROOM - 14) for label in labels]


def _patterns(name: str, count: int) -> str:
    """Fills per series: solid, stripes, dots... (in the series' colour), so bars differ by more than colour.
    Their ids start with the chart's name: several charts share a page."""
    parts = ["<defs>"]
    for number in range(count):
        colour = COLOURS[number % len(COLOURS)]
        ident = f"{escape(name)}-fill-{number}"
        kind = number % 3
        if kind == 0:
            parts.append(f'<pattern id="{ident}" width="6" height="6" patternUnits="userSpaceOnUse">'
                         f'<rect width="6" height="6" fill="{colour}"/></pattern>')  # fmt: skip
        elif kind == 1:
            parts.append(f'<pattern id="{ident}" width="6" height="6" patternUnits="userSpaceOnUse" '
                         f'patternTransform="rotate(45)"><rect width="6" height="6" fill="var(--card)"/>'
                         f'<rect width="3" height="6" fill="{colour}"/></pattern>')  # fmt: skip
        else:
            parts.append(f'<pattern id="{ident}" width="5" height="5" patternUnits="userSpaceOnUse">'
                         f'<rect width="5" height="5" fill="var(--card)"/><circle cx="2.5" cy="2.5" r="1.6" '
                         f'fill="{colour}"/></pattern>')  # fmt: skip
    parts.append("</defs>")
    return "".join(parts)


def bar_chart(name: str, title: str, description: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Horizontal bars, a row per label and a bar per series in it: long lists stay readable on a phone.
    Each bar ends with its number; one series gets thicker bars."""
    width, top, gap = WIDTH, 6, 8
    left, label_lines = _row_labels(labels)
    values = [value or 0 for line in series for value in line.values]
    # Room after the longest bar for its number.
    right = max(12, round(VALUE_CHAR * max((len(f"{value:,.0f}") for value in values), default=1)) + 10)
    bar = 20 if len(series) == 1 else 14
    bars = bar * len(series)
    inner_w = width - left - right
    largest = max(values, default=0) or 1
    parts = [_patterns(name, len(series))]
    y = float(top)
    for index, lines in enumerate(label_lines):
        block = max(bars, LINE * len(lines))
        parts.append(_text(left - 8, y + (block - LINE * len(lines)) / 2 + LINE - 4, lines, "end"))
        for number, line in enumerate(series):
            value = line.values[index] or 0
            length = inner_w * value / largest
            by = y + (block - bars) / 2 + number * bar
            colour = COLOURS[number % len(COLOURS)]
            parts.append(f'<rect x="{left}" y="{by:.1f}" width="{length:.1f}" height="{bar - 1}" '
                         f'fill="url(#{escape(name)}-fill-{number})" stroke="{colour}" '
                         f'stroke-width="0.8"/>')  # fmt: skip
            if value:
                parts.append(f'<text x="{left + length + 4:.1f}" y="{by + (bar - 1) / 2 + 4.5:.1f}" '
                             f"{VALUE_FONT}>{value:,.0f}</text>")  # fmt: skip
        y += block + gap
    legend, legend_h = _legend(name, [line.label for line in series], y, width, lines=False)
    parts.append(legend)
    return _frame(name, title, description, width, y + legend_h + 2, "".join(parts))


def stacked_bars(name: str, title: str, description: str, labels: Sequence[str], parts_of: Sequence[Series]) -> Markup:
    """One bar per label, split into shares (the series): the answers before and after, band by band."""
    width, right, top, bar, gap = WIDTH, 8, 8, 28, 14
    left, label_lines = _row_labels(labels)
    inner_w = width - left - right
    parts = [_patterns(name, len(parts_of))]
    y = float(top)
    for index, lines in enumerate(label_lines):
        block = max(bar, LINE * len(lines))
        by = y + (block - bar) / 2
        total = sum(line.values[index] or 0 for line in parts_of)
        parts.append(_text(left - 8, y + (block - LINE * len(lines)) / 2 + LINE - 4, lines, "end"))
        x = float(left)
        for number, line in enumerate(parts_of):
            value = line.values[index] or 0
            length = inner_w * value / total if total else 0
            colour = COLOURS[number % len(COLOURS)]
            parts.append(f'<rect x="{x:.1f}" y="{by:.1f}" width="{length:.1f}" height="{bar}" '
                         f'fill="url(#{escape(name)}-fill-{number})" stroke="{colour}"/>')  # fmt: skip
            x += length
        if not total:
            parts.append(_text(left, by + bar / 2 + 5, ["no answers"]))
        y += block + gap
    legend, legend_h = _legend(name, [line.label for line in parts_of], y - 4, width, lines=False)
    parts.append(legend)
    return _frame(name, title, description, width, y - 4 + legend_h + 2, "".join(parts))
