"""A course's theme on its web pages: its colours and font as CSS custom properties over course.css's."""

from __future__ import annotations

from course.curriculum import Theme


def mix(colour: str, other: str, share: float) -> str:
    """``colour`` with ``share`` of ``other`` mixed in (both #rrggbb)."""
    channels = [round(int(colour[i : i + 2], 16) * (1 - share) + int(other[i : i + 2], 16) * share) for i in (1, 3, 5)]
    return "#" + "".join(f"{channel:02x}" for channel in channels)


def page_theme(theme: Theme) -> str:
    """The stylesheet that gives a course's pages its theme (light; the dark scheme lightens the accent)."""
    return (
        f"@media not all and (prefers-color-scheme: dark) {{ :root {{ --bg: {theme.background}; "
        f"--text: {theme.text}; --accent: {theme.accent}; --box: {mix(theme.accent, '#ffffff', 0.9)}; }} }}\n"
        f"@media (prefers-color-scheme: dark) {{ :root {{ --accent: {mix(theme.accent, '#ffffff', 0.5)}; }} }}\n"
        f"body {{ font-family: {theme.font}; }}\n"
    )
