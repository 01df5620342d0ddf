"""Saving a checklist answer needs what the page's form sends: a POST without it (an empty body, a
replayed or guessed request) stores nothing and leaves the current answer alone; ticking nothing is
still an answer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from course.models.engagement import Answer, Event

from .conftest import Site


def answer_links(site: Site) -> list[str]:
    return [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")]


def stored(site: Site) -> list[tuple[str, int | None, str | None]]:
    with site.session() as session:
        return [(a.band, a.score, a.items) for a in session.scalars(select(Answer).order_by(Answer.id))]


def answer_events(site: Site) -> int:
    with site.session() as session:
        return len(list(session.scalars(select(Event).where(Event.kind == "answer"))))


@pytest.mark.parametrize("which", [0, 2, 3], ids=["band normal", "band significant", "checklist"])
@pytest.mark.parametrize(
    "body",
    [None, {}, {"items": ["1", "2"]}, {"checklist": ""}, {"checklist": "another-checklist"}, {"band": ""},
     {"band": "normal"}, {"band": "prioritise", "checklist": "x"}],
    ids=["no body", "empty form", "items only", "empty checklist", "wrong checklist", "empty band", "band normal",
         "mixed"],
)  # fmt: skip
def test_a_post_without_the_pages_field_stores_nothing(site: Site, which: int, body: dict[str, object] | None) -> None:
    site.sign_up_and_confirm()
    link = answer_links(site)[which]
    site.clock.advance(minutes=30)
    site.submit(answer_links(site)[1])  # the current answer: "prioritise"
    before = stored(site)
    site.clock.advance(minutes=5)
    page_field = site.client.get(link).text
    response = site.client.post(link, data=body) if body is not None else site.client.post(link)
    if which == 0 and body == {"band": "normal"}:  # exactly what the band page's form sends
        assert 'name="band" value="normal"' in page_field
        assert response.status_code == 200 and "Saved." in response.text
        return
    assert response.status_code == 400 and "Nothing was saved" in response.text
    assert stored(site) == before == [("prioritise", None, None)]
    assert answer_events(site) == 1
    assert "Your saved answer: <strong>2-3 checked" in site.client.get(answer_links(site)[3]).text


def test_ticking_nothing_is_an_answer(site: Site) -> None:
    site.sign_up_and_confirm()
    checklist = answer_links(site)[3]
    page = site.client.get(checklist)
    assert '<input type="hidden" name="checklist" value="' in page.text
    saved = site.submit(checklist)  # no box ticked
    assert saved.status_code == 200 and "Saved." in saved.text
    assert stored(site) == [("normal", 0, "")]


def test_the_band_pages_button_saves_its_band(site: Site) -> None:
    site.sign_up_and_confirm()
    significant = answer_links(site)[2]
    assert 'name="band" value="significant"' in site.client.get(significant).text
    saved = site.submit(significant)
    assert saved.status_code == 200 and "Saved." in saved.text
    assert stored(site) == [("significant", None, None)]
