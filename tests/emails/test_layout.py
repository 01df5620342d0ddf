"""The emails in a real browser engine: readable on a 375 px phone and held to 600 px on a desktop."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from emails.rendering import RenderedEmail

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "emails"


@pytest.mark.parametrize(
    "name", ["confirmation", "welcome", "day-02", "day-10", "day-16", "day-18", "completion", "preferences-link"]
)
def test_it_fits_a_phone_without_sideways_scrolling_and_its_buttons_are_easy_to_tap(
    browser: Browser, rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.set_content(rendered_emails[name].html)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    heights = page.eval_on_selector_all("td[bgcolor] > a", "links => links.map(a => a.getBoundingClientRect().height)")
    assert heights, "no buttons found"
    assert min(heights) >= 44, heights
    body_size = page.eval_on_selector("h1", "h => parseFloat(getComputedStyle(h.closest('div')).fontSize)")
    assert body_size >= 22
    page.close()


@pytest.mark.parametrize("name", ["day-01", "completion"])
def test_on_a_desktop_the_email_is_a_600px_column(
    browser: Browser, rendered_emails: dict[str, RenderedEmail], name: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_content(rendered_emails[name].html)
    widths = page.eval_on_selector_all("div.card", "cards => cards.map(c => c.getBoundingClientRect().width)")
    assert widths and max(widths) <= 600
    page.close()


def test_in_dark_mode_the_text_stays_light_on_dark(browser: Browser, rendered_emails: dict[str, RenderedEmail]) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 800}, color_scheme="dark")
    page.set_content(rendered_emails["day-05"].html)
    colours = page.eval_on_selector(
        "div.card p",
        "p => [getComputedStyle(p).color, getComputedStyle(p.closest('div.card')).backgroundColor]",
    )
    assert colours == ["rgb(243, 235, 228)", "rgb(42, 36, 32)"]
    page.close()


def test_the_preferences_link_email_leads_to_the_data_page_and_the_settings(
    browser: Browser, rendered_emails: dict[str, RenderedEmail]
) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.set_content(rendered_emails["preferences-link"].html)
    href = page.get_by_role("link", name="Download or delete my data").get_attribute("href", timeout=5000)
    assert href is not None and href.startswith("https://course.example.org/my-data/")
    href = page.get_by_role("link", name="open my settings").get_attribute("href", timeout=5000)
    assert href is not None and href.startswith("https://course.example.org/preferences/")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "preferences-link.png"), full_page=True)
    page.close()
