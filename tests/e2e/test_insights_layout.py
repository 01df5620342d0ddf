"""The insights page reads well on a desktop (1280 px) and a phone (375 px), measured in a real browser:
nothing makes the document wider than the window, every chart's text is shown at 12 px or more and
stays inside its chart, and on the desktop the wide tables (each day, retention by day, version by
version) fit without scrolling sideways; axe-core finds nothing serious. Screenshots in
test-artefacts/insights-layout/."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page
from sqlalchemy import insert

from course.curriculum import Course
from course.insights import measures, reading, summing
from course.models.insights import InsightCohort, InsightCount
from course.models.studio import StudioRole
from web.studio import charts

from .test_journey import Journey, booking_site, journey  # noqa: F401 - the fixtures this test uses
from .test_studio import enrol, make_user, next_email, open_browser, sign_in

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "insights-layout"
SMALLEST_TEXT = 12  # CSS px, as shown
WIDE_TABLES = ("days", "retention", "versions")  # sections whose tables must fit at 1280 px
SCREENS = ((1280, 900), (375, 812))

# What the page measures of itself: the document's width; each chart text's size as shown (its font
# size times the chart's scale on screen), its box's height, and whether it lies inside its chart; each
# chart's width and its frame's scrolling; each section's tables' scrolling; and how many characters
# (zeros) a line of the first card's paragraph holds.
MEASURE = """() => {
  const charts = [...document.querySelectorAll("svg.chart")];
  const texts = charts.flatMap(svg => {
    const box = svg.getBoundingClientRect();
    return [...svg.querySelectorAll("text")].map(text => {
      const ctm = text.getScreenCTM(), rect = text.getBoundingClientRect();
      return {chart: svg.getAttribute("aria-labelledby"), text: text.textContent, height: rect.height,
              shown: parseFloat(getComputedStyle(text).fontSize) * Math.hypot(ctm.a, ctm.b),
              inside: rect.left >= box.left - 1 && rect.right <= box.right + 1
                      && rect.top >= box.top - 1 && rect.bottom <= box.bottom + 1};
    });
  });
  const scrolls = element => ({scrollWidth: element.scrollWidth, clientWidth: element.clientWidth});
  const tables = {};
  for (const section of document.querySelectorAll("section[aria-labelledby]")) {
    const name = section.getAttribute("aria-labelledby").replace(/-heading$/, "");
    tables[name] = [...section.querySelectorAll(".table-scroll")].map(scrolls);
  }
  const paragraph = document.querySelector(".insights-page .card > p:not(.eyebrow)");
  const zero = document.createElement("span");
  zero.textContent = "0";
  zero.style.position = "absolute";
  paragraph.append(zero);
  const characters = paragraph.getBoundingClientRect().width / zero.getBoundingClientRect().width;
  zero.remove();
  return {document: document.documentElement.scrollWidth, window: window.innerWidth, texts, tables,
          charts: charts.map(svg => ({name: svg.id || svg.getAttribute("aria-labelledby"),
                                      width: svg.getBoundingClientRect().width, frame: scrolls(svg.parentElement)})),
          paragraphCharacters: characters};
}"""


# The share of the emails that reached them each figure of a step comes to (measures.DELIVERY_MEASURES
# and EVENT_MEASURES; a figure not named here: 2%).
SHARES = {measures.SENT: 1.02, measures.FAILED: 0.021, measures.SOFT: 0.013, measures.COMPLAINED: 0.0008,
          measures.EXERCISE: 0.31, measures.ENGAGED: 0.46, measures.CONSULTATION: 0.034, measures.RESOURCE: 0.12,
          measures.UNSUBSCRIBED: 0.012, measures.LEFT: 0.014, measures.PAUSED: 0.004}  # fmt: skip


def busy_weeks(journey: Journey, course: Course, weeks: int) -> None:  # noqa: F811
    """Figures of a busy course for the ``weeks`` weeks before the first one summed, as summing.refresh
    sums them into insight_counts: thousands of people a week (wide numbers), two releases of some emails,
    each older week further through the course, the checklists answered."""
    steps = course.steps
    with journey.runtime.sessions() as session:
        first_week = reading.cohorts_known(session, course)[0][-1]
    baseline, retake = measures.asked_twice(course)["warning-signs"]
    rows: list[dict[str, Any]] = []

    def count(cohort: date, measure: str, step: int, value: int, version: str = "", key: str = "") -> None:
        if value > 0:
            rows.append({"course_slug": course.slug, "cohort": cohort, "measure": measure, "step": step,
                         "version": version, "key": key, "value": value})  # fmt: skip

    for week in range(1, weeks + 1):
        cohort = first_week - timedelta(days=7 * week)
        began = 12_000 + 731 * week
        reached = min(len(steps), 3 * week + 1)
        count(cohort, measures.PEOPLE, measures.NONE, began * 97 // 100)
        count(cohort, measures.BEGAN, measures.NONE, began)
        count(cohort, measures.CONFIRMED, measures.NONE, began * 9 // 10)
        for step in steps[:reached]:
            delivered = int(began * 0.88 * (0.975 - 0.002 * week) ** step.number)
            releases = {"r4": delivered}
            if step.number % 3 == 1:
                releases = {"r3": delivered // 2, "r4": delivered - delivered // 2}
            for release, people in releases.items():
                count(cohort, measures.DELIVERED, step.number, people, release)
                for measure in (*measures.DELIVERY_MEASURES, *measures.EVENT_MEASURES):
                    if measure == measures.DELIVERED or measure.startswith("link-"):  # links: per link key
                        continue
                    if measure == measures.EXERCISE and step.day_number is None:
                        continue
                    count(cohort, measure, step.number, int(people * SHARES.get(measure, 0.02)), release)
            if step.checklist is None:
                continue
            bands = course.checklists[step.checklist].bands
            for number, band in enumerate(bands):
                count(cohort, measures.ANSWER, step.number, began // (4 + number), "r4", band.key)
                if step.number == baseline:
                    count(cohort, measures.BOOKED, baseline, began // (30 - 5 * number), "", band.key)
                if step.number == retake:
                    for before in bands:
                        count(cohort, measures.MOVEMENT, retake, began // 40, "r4", f"{before.key}>{band.key}")
    with journey.runtime.sessions() as session:
        session.execute(insert(InsightCount), rows)
        session.execute(
            insert(InsightCohort),
            [{"course_slug": course.slug, "cohort": first_week - timedelta(days=7 * week),
              "refreshed_at": journey.clock()} for week in range(1, weeks + 1)],
        )  # fmt: skip
        session.commit()


def measure(page: Page, width: int) -> dict[str, Any]:
    """Screenshots of the page and of each section (to look at), and the page's measurements."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.fonts.ready.then(() => true)")
    page.screenshot(path=str(ARTEFACTS / f"insights-{width}.png"), full_page=True)
    for section in page.locator("section[aria-labelledby]").all():
        name = (section.get_attribute("aria-labelledby") or "section").removesuffix("-heading")
        section.screenshot(path=str(ARTEFACTS / f"insights-{name}-{width}.png"))
    found: dict[str, Any] = page.evaluate(MEASURE)
    return found


def _scrolls(box: dict[str, int]) -> bool:
    return box["scrollWidth"] > box["clientWidth"]


def test_a_charts_text_shows_at_12_px_or_more_at_its_narrowest() -> None:
    """course.css never shows a chart narrower than charts.MIN_SHOWN px (its frame scrolls instead)."""
    assert min(charts.LABEL_SIZE, charts.VALUE_SIZE) * charts.MIN_SHOWN / charts.WIDTH >= SMALLEST_TEXT
    css = (Path(__file__).resolve().parents[2] / "web" / "static" / "course.css").read_text()
    assert f"min-width: {charts.MIN_SHOWN}px" in css.split("svg.chart {", 1)[1].split("}", 1)[0]


def test_the_insights_read_well_on_a_desktop_and_a_phone(
    journey: Journey,  # noqa: F811
    browser: Browser,
    course: Course,
) -> None:
    """Three people through the real path to day 1, summed by summing.refresh, beside eight busy weeks;
    the page at 1280 and 375 px."""
    make_user(journey, StudioRole.EDITOR)
    for address, hour in (("robin@example.org", 8), ("kim@example.org", 9), ("ali@example.org", 10)):
        next_email(journey, enrol(journey, address, hour))  # the welcome, then day 1
    with journey.runtime.sessions() as session:
        assert summing.refresh(session, course, journey.clock()) == 1
        session.commit()
    busy_weeks(journey, course, weeks=8)
    figures: dict[int, dict[str, Any]] = {}
    for width, height in SCREENS:
        context, page, problems = open_browser(journey, browser, width)
        page.set_viewport_size({"width": width, "height": height})
        page.goto(journey.base + "/studio/insights")
        sign_in(page)
        page.get_by_role("heading", name="Insights").wait_for()
        page.get_by_text("Figures summed at").wait_for()
        assert page.locator("svg.chart").count() == 4  # the funnel, retention, each day, the answers
        figures[width] = found = measure(page, width)
        assert found["window"] == width
        assert found["document"] <= width, f"the page scrolls sideways at {width} px: {found['document']} px wide"
        small = [text for text in found["texts"] if text["shown"] < SMALLEST_TEXT]
        assert not small, f"chart text under {SMALLEST_TEXT} px at {width} px: {small[:5]}"
        outside = [text for text in found["texts"] if not text["inside"]]
        assert not outside, f"chart text cut off at {width} px: {outside[:5]}"
        scrolling = [chart for chart in found["charts"] if _scrolls(chart["frame"])]
        assert not scrolling, f"a chart scrolls sideways at {width} px: {scrolling}"
        if width == 1280:
            for section in WIDE_TABLES:
                tables = found["tables"].get(section)
                assert tables, f"no {section} table"
                wider = [table for table in tables if _scrolls(table)]
                assert not wider, f"the {section} tables scroll sideways at 1280 px: {wider}"
            assert found["paragraphCharacters"] <= 80, f"a line of {found['paragraphCharacters']:.0f} characters"
        # A box that scrolls must take the keyboard's focus, and the rest of axe-core's serious rules.
        violations = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id + ': ' + v.help)"
        )
        assert violations == [], f"{width} px: {violations}"
        assert problems.found == [], problems.found
        context.close()
    for width, found in figures.items():  # for the log (pytest -s): the figures behind the assertions
        texts = found["texts"]
        print(f"{width} px: document {found['document']} px wide; smallest chart text "
              f"{min(text['shown'] for text in texts):.1f} px (box {min(text['height'] for text in texts):.1f} px); "
              f"charts {[round(chart['width']) for chart in found['charts']]} px; tables {found['tables']}; "
              f"{found['paragraphCharacters']:.0f} characters a line")  # fmt: skip
