"""Two people's edits of one email, merged field by field: what only one of them changed comes through on
its own; what both changed is theirs to choose (yours, theirs, both); a merge posted back damaged, half
chosen or against text that moved on again saves nothing."""

from __future__ import annotations

import html
import json
import re

from fastapi.testclient import TestClient

from course.models.studio import StudioRole
from emails.store import draft_of

from .conftest import Site
from .test_studio_access import csrf_of
from .test_studio_editing import publish, signed_in
from .test_studio_stale import browser, opened
from .test_studio_words import DAY_3, render_live

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_MERGE_FORM = re.compile(r'<form method="post" action="/studio/merge\?course=[^"]+">(.*?)</form>', re.S)
_CLASH = re.compile(r'<legend>([^<]*): you both changed it</legend>\s*<label class="side"><input type="radio" '
                    r'name="choice\.(\d+)"')  # fmt: skip


def with_shape(client: TestClient, item: str = DAY_3) -> dict[str, str]:
    """The form as opened, with what it carries of the content it was drawn from."""
    form = opened(client, item)
    page = client.get(f"/studio/edit?item={item}").text
    for name, value in _HIDDEN.findall(page):
        if name == "w.@shape":
            form[name] = html.unescape(value)
    assert "w.@shape" in form
    return form


def merge_offered(page: str) -> tuple[dict[str, str], dict[str, str]]:
    """The merge form of a refused save: its hidden fields, and each clash's label by its number."""
    found = _MERGE_FORM.search(page)
    assert found, "no merge is offered"
    hidden = {name: html.unescape(value) for name, value in _HIDDEN.findall(found.group(1))}
    clashes = {number: html.unescape(label) for label, number in _CLASH.findall(found.group(1))}
    return hidden, clashes


def body_fields(form: dict[str, str]) -> list[str]:
    """The body's long text fields, one per block, in the order of the blocks."""
    seen: dict[str, str] = {}
    for name in form:
        found = re.fullmatch(r"w\.body\.(\d+)\.(.+\.)?paragraphs", name)
        if found and found.group(1) not in seen:
            seen[found.group(1)] = name
    assert len(seen) >= 2, "day 3 has two text blocks to change"
    return list(seen.values())


def two_people(site: Site) -> tuple[TestClient, TestClient]:
    anna = signed_in(site, "anna@example.org", StudioRole.PUBLISHER)
    ben = signed_in(site, "ben@example.org", StudioRole.PUBLISHER, browser(site))
    return anna, ben


def test_a_save_behind_a_publish_merges_field_by_field_and_asks_only_what_both_changed(site: Site) -> None:
    anna, ben = two_people(site)
    annas, bens = with_shape(anna), with_shape(ben)  # both open day 3, with no draft
    first, second = body_fields(annas)[:2]
    annas |= {"w.title": "Rituals of your own", first: "Anna's first block."}
    assert anna.post("/studio/save", data=annas).status_code == 200
    assert publish(anna, DAY_3, "her title and first block") == 303

    bens |= {"w.title": "A ritual for two", "w.teaser": "Tomorrow: the phone, put away.", second: "Ben's second block."}
    refused = ben.post("/studio/save", data=bens)
    assert refused.status_code == 409
    hidden, clashes = merge_offered(refused.text)
    assert list(clashes.values()) == ["Title"]  # the one field both changed
    text = html.unescape(refused.text)
    assert "Their changes, kept as they are:" in text and "Your changes, kept as they are:" in text
    assert "Rituals of your own" in text and "A ritual for two" in text  # both titles, to choose from

    # Half chosen: nothing saved, the question asked again by name.
    unchosen = ben.post("/studio/merge", data={**hidden, "csrf": csrf_of(refused.text)})
    assert unchosen.status_code == 400 and "choose yours or theirs for “Title”" in html.unescape(unchosen.text)
    # "Both" for a title is not offered, and not taken.
    both = ben.post("/studio/merge", data={**hidden, "csrf": csrf_of(refused.text), "choice.1": "both"})
    assert both.status_code == 400
    with site.session() as session:
        assert draft_of(session, site.runtime.settings.course_slug, DAY_3) is None

    merged = ben.post("/studio/merge", data={**hidden, "csrf": csrf_of(refused.text), "choice.1": "theirs"},
                      follow_redirects=False)  # fmt: skip
    assert merged.status_code == 303 and "saved=" in merged.headers["location"]
    assert publish(ben, DAY_3, "merged") == 303
    _, page, plain = render_live(site, "day-03")
    assert "Rituals of your own" in page  # her title, chosen
    assert "Anna's first block." in plain and "Ben's second block." in plain  # each one's block
    assert "the phone, put away" in plain  # his teaser
    assert "A ritual for two" not in page + plain


def test_two_drafts_that_add_blocks_at_one_place_can_keep_both(site: Site) -> None:
    anna, ben = two_people(site)
    annas, bens = with_shape(anna), with_shape(ben)
    assert anna.post("/studio/save", data={**annas, "w.@block": "add", "w.@add": "divider"}).status_code == 200
    refused = ben.post("/studio/save", data={**bens, "w.@block": "add", "w.@add": "quote"})
    assert refused.status_code == 409 and "anna@example.org saved this draft" in html.unescape(refused.text)
    hidden, clashes = merge_offered(refused.text)
    assert len(clashes) == 1
    number = next(iter(clashes))
    assert f'name="choice.{number}" value="both"' in refused.text
    merged = ben.post("/studio/merge", data={**hidden, "csrf": csrf_of(refused.text), f"choice.{number}": "both"},
                      follow_redirects=False)  # fmt: skip
    assert merged.status_code == 303
    with site.session() as session:
        draft = draft_of(session, site.runtime.settings.course_slug, DAY_3)
        assert draft is not None and draft.author == "ben@example.org" and draft.revision == 2
        body = json.loads(draft.files)[DAY_3]
    assert body.index("kind: quote") < body.index("kind: divider")  # both, his first


def test_a_merge_against_text_that_moved_on_again_is_offered_anew(site: Site) -> None:
    anna, ben = two_people(site)
    annas, bens = with_shape(anna), with_shape(ben)
    assert anna.post("/studio/save", data={**annas, "w.title": "Anna's title"}).status_code == 200
    refused = ben.post("/studio/save", data={**bens, "w.title": "Ben's title"})
    hidden, _ = merge_offered(refused.text)
    again = with_shape(anna)  # Anna saves once more while Ben chooses
    assert anna.post("/studio/save", data={**again, "w.title": "Anna's second title"}).status_code == 200
    late = ben.post("/studio/merge", data={**hidden, "csrf": csrf_of(refused.text), "choice.1": "mine"})
    assert late.status_code == 409 and "it changed again while you were choosing" in html.unescape(late.text)
    assert "Anna's second title" in html.unescape(late.text)  # the new merge is with her newest text
    hidden, _ = merge_offered(late.text)
    merged = ben.post("/studio/merge", data={**hidden, "csrf": csrf_of(late.text), "choice.1": "mine"},
                      follow_redirects=False)  # fmt: skip
    assert merged.status_code == 303
    with site.session() as session:
        draft = draft_of(session, site.runtime.settings.course_slug, DAY_3)
        assert draft is not None and "Ben's title" in json.loads(draft.files)[DAY_3]


def test_a_damaged_or_forged_merge_saves_nothing(site: Site) -> None:
    anna, ben = two_people(site)
    annas, bens = with_shape(anna), with_shape(ben)
    assert anna.post("/studio/save", data={**annas, "w.title": "Anna's title"}).status_code == 200
    refused = ben.post("/studio/save", data={**bens, "w.title": "Ben's title"})
    hidden, _ = merge_offered(refused.text)
    csrf = csrf_of(refused.text)
    cases = {
        "base not JSON": ({**hidden, "base": "{not json"}, 400),
        "mine a list": ({**hidden, "mine": "[1, 2]"}, 400),
        "mine of a thousand blocks": ({**hidden, "mine": json.dumps({"body": [{"kind": "divider"}] * 1000})}, 400),
        "a layout": ({**hidden, "item": "day"}, 400),
        "an unknown email": ({**hidden, "item": "_words/day-99.yaml"}, 404),
        "a choice that is no side": ({**hidden, "choice.1": "everything"}, 400),
    }
    for name, (data, status) in cases.items():
        answer = ben.post("/studio/merge", data={**data, "csrf": csrf, "choice.1": data.get("choice.1", "mine")})
        assert answer.status_code == status, name
    tokenless = {name: value for name, value in hidden.items() if name != "csrf"}
    assert ben.post("/studio/merge", data={**tokenless, "choice.1": "mine"}).status_code == 403
    with site.session() as session:
        draft = draft_of(session, site.runtime.settings.course_slug, DAY_3)
        assert draft is not None and draft.revision == 1 and "Anna's title" in json.loads(draft.files)[DAY_3]
