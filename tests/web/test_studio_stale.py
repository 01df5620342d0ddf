"""A page opened on an older live version cannot save over a colleague's published change: the save is
refused, nothing is lost, and the page shows theirs beside what was typed."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from course.models.studio import StudioRole

from .conftest import BROWSER, Site
from .test_studio_access import csrf_of
from .test_studio_editing import publish, signed_in
from .test_studio_words import DAY_3, render_live, words_form

_LIVE = re.compile(r'name="live" value="(\d+)"')


def opened(client: TestClient, item: str = DAY_3) -> dict[str, str]:
    """The form as a browser holds it once the page is open (what it posts later, whatever happened since)."""
    csrf, revision, fields = words_form(client, item)
    page = client.get(f"/studio/edit?item={item}").text
    live = _LIVE.search(page)
    assert live is not None, "the form does not say which live version it was opened on"
    return {"csrf": csrf, "item": item, "revision": str(revision), "live": live.group(1), **fields}


def test_a_save_from_a_page_opened_before_a_colleague_published_is_refused_and_keeps_both(site: Site) -> None:
    anna = signed_in(site, "anna@example.org", StudioRole.PUBLISHER)
    ben = signed_in(
        site,
        "ben@example.org",
        StudioRole.PUBLISHER,
        TestClient(site.client.app, base_url="https://course.example.org", headers={"User-Agent": BROWSER}),
    )
    annas, bens = opened(anna), opened(ben)  # both open day 3, with no draft
    annas["w.title"] = "Rituals of your own"
    assert anna.post("/studio/save", data=annas).status_code == 200
    assert publish(anna, DAY_3, "a warmer title") == 303

    bens["w.teaser"] = "Tomorrow: the phone, put away."
    refused = ben.post("/studio/save", data=bens)
    text = html.unescape(refused.text)
    assert refused.status_code == 409 and "anna@example.org published version 1 since you opened this page" in text
    assert "Tomorrow: the phone, put away." in text  # what Ben typed is in the form
    assert "Rituals of your own" in text  # and Anna's version beside it
    assert render_live(site, "day-03")[1].count("Rituals of your own") >= 1  # hers is still what is live

    # Ben takes her title and keeps his teaser: the page he now has is on version 1, so it saves.
    again = {**bens, "csrf": csrf_of(refused.text), "live": _LIVE.search(refused.text).group(1),  # type: ignore[union-attr]
             "w.title": "Rituals of your own"}  # fmt: skip
    assert again["live"] == "1"
    assert ben.post("/studio/save", data=again).status_code == 200
    assert publish(ben, DAY_3, "his teaser, her title") == 303
    live = render_live(site, "day-03")
    assert "Rituals of your own" in live[1] and "the phone, put away" in live[2]


def test_a_draft_started_before_a_roll_back_is_not_published_over_it(site: Site) -> None:
    anna = signed_in(site, "anna@example.org", StudioRole.PUBLISHER)
    first = opened(anna)
    first["w.title"] = "Version one"
    anna.post("/studio/save", data=first)
    assert publish(anna, DAY_3, "one") == 303
    second = opened(anna)
    second["w.title"] = "Version two, in a draft"
    anna.post("/studio/save", data=second)  # a draft based on version 1
    page = anna.get(f"/studio/edit?item={DAY_3}").text
    back = anna.post("/studio/roll-back", data={"csrf": csrf_of(page), "item": DAY_3, "number": 0, "note": "undo"},
                     follow_redirects=False)  # fmt: skip
    assert back.status_code == 303
    page = anna.get(f"/studio/edit?item={DAY_3}").text
    revision = re.search(r'action="/studio/publish[^"]*">.*?name="revision" value="(\d+)"', page, re.S)
    assert revision is not None
    refused = anna.post("/studio/publish", data={"csrf": csrf_of(page), "item": DAY_3, "note": "two",
                                                 "revision": revision.group(1)}, follow_redirects=False)  # fmt: skip
    assert refused.status_code == 409 and "live version changed" in html.unescape(refused.text)
    assert "Version one" not in render_live(site, "day-03")[0] and "Version two" not in render_live(site, "day-03")[1]
