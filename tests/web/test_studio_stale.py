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


def browser(site: Site) -> TestClient:
    """A second person's browser: its own cookies."""
    return TestClient(site.client.app, base_url="https://course.example.org", headers={"User-Agent": BROWSER})


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
    revision = re.search(r'name="revision" value="(\d+)"', page)
    assert revision is not None
    refused = anna.post("/studio/publish", data={"csrf": csrf_of(page), "item": DAY_3, "note": "two",
                                                 "revision": revision.group(1)}, follow_redirects=False)  # fmt: skip
    assert refused.status_code == 409 and "live version changed" in html.unescape(refused.text)
    assert "Version one" not in render_live(site, "day-03")[0] and "Version two" not in render_live(site, "day-03")[1]


def test_publish_takes_the_text_as_typed_and_a_refused_publish_keeps_it(site: Site) -> None:
    """Publish drops nothing typed after the last save: the form's text is saved as the draft's next
    revision and published; when that cannot be (a colleague published since), it is refused with the
    text kept in the page."""
    anna = signed_in(site, "anna@example.org", StudioRole.PUBLISHER)
    form = opened(anna)
    form["w.title"] = "Saved first"
    assert anna.post("/studio/save", data=form).status_code == 200
    form = opened(anna)
    form["w.teaser"] = "Tomorrow: typed, never saved."
    published = anna.post("/studio/publish", data={**form, "note": "typed and published"}, follow_redirects=False)
    assert published.status_code == 303 and "published=1" in published.headers["location"]
    live = render_live(site, "day-03")
    assert "Saved first" in live[1] and "typed, never saved" in live[2]

    ben = signed_in(site, "ben@example.org", StudioRole.PUBLISHER, browser(site))
    bens = opened(ben)
    annas = opened(anna)
    annas["w.title"] = "Anna's second"
    assert anna.post("/studio/publish", data={**annas, "note": "two"}, follow_redirects=False).status_code == 303
    bens["w.title"] = "Ben's, typed on version 1"
    refused = ben.post("/studio/publish", data={**bens, "note": "mine"}, follow_redirects=False)
    assert refused.status_code == 409 and "Ben&#39;s, typed on version 1" in refused.text
    assert "Anna's second" in html.unescape(render_live(site, "day-03")[1])
