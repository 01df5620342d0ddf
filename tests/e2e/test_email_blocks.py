"""A marketer builds an email from blocks in a real browser: the form and its live preview side by side on a
desktop (stacked on a phone), a button added and moved above the exercise, an image uploaded and described,
the preview opening at the block being edited, publish, and the next email carrying both. Screenshots in
test-artefacts/email-blocks/; every page checked for serious accessibility problems at its width."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from playwright.sync_api import Browser

from course.catalog import course_at

from .test_course_building import publisher_at
from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .watch import check_page

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "email-blocks"
# The smallest PNG there is: one pixel.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
DAY_3 = "/studio/edit?item=_words/day-03.yaml"


def test_a_marketer_builds_an_email_from_blocks_beside_its_preview(
    journey: Journey,  # noqa: F811
    browser: Browser,
    tmp_path: Path,
) -> None:
    context, page, problems = publisher_at(journey, browser, DAY_3)
    page.get_by_role("heading", name="Day 3 · words").wait_for()
    form, preview = page.locator(".editing-form"), page.locator(".editing-preview")
    preview.locator("iframe.phone-frame").first.wait_for(state="attached")
    form_box, preview_box = form.bounding_box(), preview.bounding_box()
    assert form_box and preview_box and preview_box["x"] > form_box["x"] + form_box["width"] - 1  # side by side
    assert preview.locator("iframe.phone-frame").first.evaluate("f => f.getBoundingClientRect().width") == 375

    # A button that books the consultation, added at the end, then moved up above the exercise.
    page.get_by_label("Add a block at the end").select_option("button")
    with page.expect_navigation():
        page.get_by_role("button", name="Add it", exact=True).click()
    page.get_by_text("Draft saved.").wait_for()
    block = page.locator("fieldset.block").last
    assert "a button" in block.locator("legend").inner_text()
    assert "/studio/edit?" in page.url and "block=4" in page.url  # Post/Redirect/Get, at the block added
    block.get_by_label("Its words").fill("Talk it through with Kayla")
    for place in (4, 3, 2):  # the keyboard's way (a drag is SortableJS's, as on the course page)
        with page.expect_navigation():
            page.locator("fieldset.block").nth(place).get_by_role("button", name=re.compile(r"^Up: ")).click()
    kinds = page.locator("fieldset.block").evaluate_all("blocks => blocks.map(b => b.dataset.kind)")
    assert kinds == ["text", "button", "exercise", "button", "guides"], kinds
    assert page.locator("fieldset.block").nth(1).get_by_label("Its words").input_value() == "Talk it through with Kayla"

    # An image: uploaded, described; the preview shows it from the course's own site.
    page.get_by_label("Add a block at the end").select_option("image")
    with page.expect_navigation():
        page.get_by_role("button", name="Add it", exact=True).click()
    image = page.locator("fieldset.block").last
    picture = tmp_path / "pixel.png"
    picture.write_bytes(PIXEL)
    image.get_by_label("The image (PNG, JPEG, GIF or WebP, at most 2 MB)").set_input_files(str(picture))
    image.get_by_label("What it shows, for readers who do not see it").fill("A couple at breakfast")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_text("Every email renders with it.").wait_for()
    stored = page.locator("fieldset.block").last.locator("img.block-image").get_attribute("src") or ""
    assert stored.startswith("/media/") and stored.endswith(".png")
    served = page.request.get(journey.base + stored)
    assert served.status == 200 and served.headers["content-type"] == "image/png" and served.body() == PIXEL

    # The preview opens at the block being edited, and shows the new button and image.
    page.locator("fieldset.block").nth(1).get_by_label("Its words").fill("Talk it through with Kayla, free")
    frame = page.frame_locator("iframe.phone-frame").first
    frame.get_by_role("link", name="Talk it through with Kayla, free").wait_for(state="attached")
    assert "#part-1" in (page.locator("iframe.phone-frame").first.get_attribute("src") or "")
    page.screenshot(path=str(ARTEFACTS / "editing-beside-the-preview-1280.png"))  # what the marketer sees
    shown = frame.locator("img[alt='A couple at breakfast']").get_attribute("src", timeout=10_000)
    assert shown is not None and shown.endswith(stored)
    with page.expect_navigation():
        page.get_by_role("button", name="Save the draft and check it").click()
    page.get_by_text("Every email renders with it.").wait_for()
    check_page(page, ARTEFACTS, "editor", 1280)

    page.get_by_label("What changed (for the history)").fill("a button to book, and a picture")
    with page.expect_navigation():
        page.get_by_role("button", name="Publish what is in the form").click()
    page.get_by_text("Published as version").wait_for()
    with journey.runtime.sessions() as session:
        day = course_at(session, journey.runtime.settings.course_slug).day(3)
    assert [part.kind for part in day.body] == ["text", "button", "exercise", "button", "guides", "image"]
    assert day.consultation_leads  # the button books: no "P.S." line under the signature

    # On a phone the form and the preview stack, and nothing scrolls sideways.
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(journey.base + DAY_3)
    page.get_by_role("heading", name="Day 3 · words").wait_for()
    check_page(page, ARTEFACTS, "editor", 375)
    assert problems.found == [], problems.found
    context.close()
