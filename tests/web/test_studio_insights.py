"""The insights page, driven through the app: people sign up and use their links, a studio user sums
the figures and reads them, downloads every table as CSV, and the raw events (addresses for publishers only)."""

from __future__ import annotations

import csv
import io
import re

from course.models.studio import StudioRole

from .conftest import Site
from .test_studio_access import csrf_of
from .test_studio_editing import signed_in


def journey(site: Site) -> None:
    """Alex and Sam confirm and get day 1; Alex does the exercise and opens the consultation link, a
    scanner opens Sam's seconds after delivery, and Sam leaves."""
    site.sign_up_and_confirm("alex@example.com")
    site.sign_up_and_confirm("sam@example.com")
    due = site.subscriber("alex@example.com").next_send_at
    assert due is not None
    site.clock.to(max(due, site.subscriber("sam@example.com").next_send_at or due))
    site.tick()
    site.clock.advance(seconds=2)
    site.client.get(site.link("sam@example.com", "/consultation/", "Day 1"), follow_redirects=False)  # a scanner
    site.clock.advance(minutes=30)
    exercise = site.link("alex@example.com", "/exercise/", "Day 1")
    assert site.client.post(exercise).status_code == 200
    site.client.get(site.link("alex@example.com", "/consultation/", "Day 1"), follow_redirects=False)
    assert site.client.post(site.link("sam@example.com", "/unsubscribe/", "Day 1")).status_code == 200


def sum_now(site: Site) -> str:
    page = site.client.get("/studio/insights")
    assert page.status_code == 200
    response = site.client.post("/studio/insights/refresh", data={"csrf": csrf_of(page.text)}, follow_redirects=True)
    assert response.status_code == 200
    return response.text


def cells(page: str, row: str) -> list[str]:
    """The cells of the first table row headed ``row`` (tags dropped)."""
    found = re.search(rf"<th scope=\"row\">(?:<a [^>]*>)?{re.escape(row)}(?:</a>)?</th>(.*?)</tr>", page, re.S)
    assert found, f"no row {row!r}"
    return [
        " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1), re.S)
    ]


def test_signed_out_the_insights_and_their_downloads_ask_to_sign_in(site: Site) -> None:
    for path in ("/studio/insights", "/studio/insights.csv?table=days", "/studio/insights/events.csv"):
        response = site.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/studio/sign-in?next=")


def test_the_page_shows_what_people_did_after_summing(site: Site) -> None:
    journey(site)
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    before = site.client.get("/studio/insights").text
    assert "No figures summed yet" in before
    page = sum_now(site)
    assert "Figures summed at" in page
    assert cells(page, "Began the course")[:2] == ["2", "100%"]
    assert cells(page, "Got the welcome")[:1] == ["2"] and cells(page, "Reached day 1")[:1] == ["2"]
    day1 = cells(page, "Day 1")
    # reached, hard bounced, soft bounced, complaints, exercise, acted on it, consultation, guide, scanner
    # clicks, unsubscribed after, left after, paused after
    assert day1 == ["2", "0 (0%)", "0 (0%)", "0 (0%)", "1 (50%)", "1 (50%)", "1", "0", "1", "1 (50%)", "1 (50%)",
                    "0"]  # fmt: skip
    assert page.count('<svg class="chart"') == 4 and 'role="img"' in page
    assert "Day 1, version by version" in page and "The first version these weeks got" in page
    assert "not a randomised test" in page


def test_every_table_downloads_as_csv_with_the_pages_numbers(site: Site) -> None:
    journey(site)
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    sum_now(site)
    for table in ("funnel", "days", "versions", "links", "retention", "answers"):
        response = site.client.get(f"/studio/insights.csv?table={table}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(site.client.get("/studio/insights.csv?table=days").text)))
    day1 = next(row for row in rows if row["email"] == "Day 1")
    assert (day1["reached"], day1["exercise_done"], day1["exercise_rate"], day1["scanner_clicks"]) == (
        "2", "1", "0.5000", "1",
    )  # fmt: skip
    links = list(csv.DictReader(io.StringIO(site.client.get("/studio/insights.csv?table=links").text)))
    # The exercise and the unsubscribe were pressed on their pages' buttons (POSTs): clicks are the links opened.
    assert [(row["email"], row["link_key"], row["people_who_clicked"], row["scanner_clicks"]) for row in links] == [
        ("Day 1", "consultation", "1", "1")
    ]
    assert site.client.get("/studio/insights.csv?table=secrets").status_code == 404


def test_raw_events_carry_addresses_only_for_publishers(site: Site) -> None:
    journey(site)
    today = site.clock().date().isoformat()
    signed_in(site, "sam@example.org", StudioRole.EDITOR)
    editor = site.client.get(f"/studio/insights/events.csv?since={today}&until={today}").text
    rows = list(csv.DictReader(io.StringIO(editor)))
    assert "email" not in rows[0] and "@" not in editor
    kinds = sorted({row["kind"] for row in rows})
    assert kinds == ["consultation", "exercise-done", "unsubscribed"]  # the confirmations were days before
    assert [row["automated"] for row in rows if row["kind"] == "consultation"] == ["yes", "no"]
    site.client.post("/studio/sign-out", data={"csrf": csrf_of(site.client.get("/studio/insights").text)})
    signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    publisher = list(csv.DictReader(io.StringIO(site.client.get(f"/studio/insights/events.csv?since={today}").text)))
    assert {row["email"] for row in publisher} == {"alex@example.com", "sam@example.com"}


def test_hand_made_choices_fall_back_and_a_refresh_needs_the_forms_token(site: Site) -> None:
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    for day in ("999", "x", "-1", "١", "9" * 5000):
        odd = site.client.get(f"/studio/insights?since=not-a-date&until=2026-02-31&cohort=x&day={day}")
        assert odd.status_code == 200 and "Day 1, version by version" in odd.text
    refused = site.client.post("/studio/insights/refresh", data={"csrf": "forged"})
    assert refused.status_code == 403


def test_summing_one_chosen_week_comes_back_to_it(site: Site) -> None:
    journey(site)
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    sum_now(site)
    week = re.search(r'<option value="(\d{4}-\d{2}-\d{2})">Week of', site.client.get("/studio/insights").text)
    assert week
    page = site.client.get(f"/studio/insights?cohort={week.group(1)}").text
    assert "Sum this week again now" in page
    response = site.client.post("/studio/insights/refresh", follow_redirects=False, data={
        "csrf": csrf_of(page), "since": week.group(1), "until": week.group(1), "cohort": week.group(1)})  # fmt: skip
    assert response.status_code == 303 and response.headers["location"].endswith(f"&cohort={week.group(1)}")
