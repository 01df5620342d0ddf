"""How long each email is on a phone: its HTML laid out by Chromium 375 px wide, counted in screens.

People decide in the first screen or two whether to keep reading a course, so ``python -m bench heights``
prints each email's height (and the editorial tests hold the welcome to about three screens). Laying out
an email takes a real browser engine: Playwright (a development dependency) drives the Chromium the
machine has (``CHROMIUM``, or ``chromium`` on the PATH); where either is missing, it says why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from course.curriculum import Course
from course.lifecycle import is_day_email
from course.settings import Settings
from emails.preview import write_previews

# A phone's viewport in CSS pixels (an iPhone of the X to 15 size): one "screen" is its height.
PHONE_WIDTH = 375
SCREEN_HEIGHT = 812
# How Chromium runs headless here (and in the tests): no sandbox in a container, nothing fetched, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


@dataclass(frozen=True)
class Height:
    pixels: int

    @property
    def screens(self) -> float:
        return self.pixels / SCREEN_HEIGHT

    def __str__(self) -> str:
        return f"{self.pixels:,} px ({self.screens:.1f} screens)"


class NotMeasured(RuntimeError):
    """No browser to lay the emails out with; the message says what to install."""


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def heights(htmls: Mapping[str, str]) -> dict[str, Height]:
    """Each email's full height at phone width, by name (NotMeasured without Playwright or Chromium)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise NotMeasured("Playwright is not installed (pip install -e '.[dev]')") from None
    executable = chromium_path()
    if executable is None:
        raise NotMeasured("no Chromium found (apt-get install chromium, or set CHROMIUM to its path)")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": PHONE_WIDTH, "height": SCREEN_HEIGHT})
                measured = {}
                for name, html in htmls.items():
                    page.set_content(html)
                    measured[name] = Height(int(page.evaluate("document.documentElement.scrollHeight")))
                return measured
            finally:
                browser.close()
    except Error as error:
        raise NotMeasured(f"Chromium at {executable} did not run: {str(error).splitlines()[0]}") from None


def print_heights(course: Course, settings: Settings, out: Path) -> None:
    """Write every email as ``course render`` does, then print each one's height on a phone."""
    written = write_previews(course, settings, out)
    tall = heights({email.name: email.html.read_text(encoding="utf-8") for email in written})
    for email in written:
        print(f"{email.name:<20} {tall[email.name]}")
    days = {name: height for name, height in tall.items() if is_day_email(name)}
    longest = max(days, key=lambda name: days[name].pixels)
    print(f"On a phone ({PHONE_WIDTH} x {SCREEN_HEIGHT} px a screen):", ", ".join(
        f"{name} {tall[name]}" for name in ("welcome", "completion") if name in tall),
        f"the longest day {longest} {days[longest]}.")  # fmt: skip
