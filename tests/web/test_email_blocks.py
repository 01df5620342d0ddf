"""The email form's blocks: added, moved, taken out and dragged; an image uploaded, stored and served; and
every form that comes back broken refused with nothing saved."""

from __future__ import annotations

import base64
import html
import json
import re

import yaml
from fastapi.testclient import TestClient

from course.models.studio import StudioRole
from emails.store import draft_of

from .conftest import Site
from .test_studio_editing import publish, signed_in
from .test_studio_words import DAY_3, render_live, words_form

PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
_SHAPE = re.compile(r'name="w\.@shape" value="([^"]*)"')


def form_of(client: TestClient, item: str = DAY_3) -> tuple[dict[str, str], str]:
    """The form as the browser posts it (its fields and the content it was drawn from), and the page."""
    csrf, revision, fields = words_form(client, item)
    page = client.get(f"/studio/edit?item={item}").text
    shape = _SHAPE.search(page)
    assert shape is not None
    return {"csrf": csrf, "item": item, "revision": str(revision), "w.@shape": html.unescape(shape.group(1)),
            **fields}, page  # fmt: skip


def body_of(site: Site, item: str = DAY_3) -> list[dict[str, object]]:
    with site.session() as session:
        draft = draft_of(session, site.runtime.settings.course_slug, item)
        assert draft is not None
        data = yaml.safe_load(json.loads(draft.files)[item])
    body: list[dict[str, object]] = data["body"]
    return body


def test_blocks_are_added_moved_dragged_and_taken_out_and_each_save_comes_back_at_its_block(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    form, page = form_of(client)
    assert [kind for kind in re.findall(r'data-kind="([a-z]+)"', page)] == ["text", "exercise", "button", "guides"]
    for kind in ("text", "list", "callout", "quote", "checklist", "button", "consultation", "guides", "divider",
                 "glance", "image"):  # fmt: skip
        assert f'<option value="{kind}">' in page, kind

    added = client.post("/studio/save", data={**form, "w.@add": "divider", "w.@block": "add"}, follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"].endswith("&block=4")
    assert [part["kind"] for part in body_of(site)] == ["text", "exercise", "button", "guides", "divider"]
    assert 'data-focus="block-4"' in client.get(added.headers["location"]).text

    form, _ = form_of(client)
    client.post("/studio/save", data={**form, "w.@block": "up:4"})
    assert [part["kind"] for part in body_of(site)] == ["text", "exercise", "button", "divider", "guides"]
    form, _ = form_of(client)
    # A drag: the blocks' hidden order fields, posted in the order the page now shows them.
    dragged = client.post("/studio/save", data={**form, "w.@order": ["3", "0", "1", "2", "4"]})
    assert dragged.status_code == 200
    assert [part["kind"] for part in body_of(site)] == ["divider", "text", "exercise", "button", "guides"]
    form, _ = form_of(client)
    client.post("/studio/save", data={**form, "w.@block": "remove:0"})
    assert [part["kind"] for part in body_of(site)] == ["text", "exercise", "button", "guides"]
    assert publish(client, DAY_3, "as it was, but mine") == 303


def test_a_form_that_comes_back_broken_saves_nothing_and_says_so(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    form, _ = form_of(client)
    cases = [
        ({"w.@shape": "{not json"}, "the form came back damaged"),
        ({"w.@shape": json.dumps({"body": "nothing"})}, "the form came back damaged"),
        ({"w.@block": "remove:99"}, "that block is not in the email any more"),
        ({"w.@block": "up:-1"}, "that block is not in the email any more"),
        ({"w.@block": "explode:1"}, "unknown block button"),
        ({"w.@block": "add", "w.@add": "script"}, "there is no such block to add"),
        ({"w.@order": "0,1,1,3"}, "the blocks' order does not match"),
        ({"w.@order": "zero"}, "the blocks' order came back damaged"),
        ({"w.body.0.paragraphs": "A NUL \x00 here"}, "NUL"),
    ]
    for changes, said in cases:
        response = client.post("/studio/save", data={**form, **changes})
        assert response.status_code == 400 and said in html.unescape(response.text), (changes, response.status_code)
    # A form that carries an image is let past the door's NUL check whole: its fields are checked inside.
    nul = client.post("/studio/save", data={**form, "w.body.0.paragraphs": "A NUL \x00 here"},
                      files={"upload.body.9": ("p.png", PIXEL, "image/png")})  # fmt: skip
    assert nul.status_code == 400 and "a field holds a NUL character" in nul.text
    with site.session() as session:
        assert draft_of(session, site.runtime.settings.course_slug, DAY_3) is None
    alone = {**form, "w.@shape": json.dumps({"body": [{"kind": "divider"}]}), "w.@block": "remove:0"}
    refused = client.post("/studio/save", data=alone)
    assert refused.status_code == 400 and "an email keeps at least one block" in refused.text


def test_an_image_is_stored_once_and_served_as_itself_and_anything_else_is_refused(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    form, _ = form_of(client)
    client.post("/studio/save", data={**form, "w.@add": "image", "w.@block": "add"})
    form, page = form_of(client)
    assert 'name="upload.body.4"' in page and "No image yet" in page

    def upload(data: bytes, name: str = "picture.png") -> tuple[int, str]:
        response = client.post("/studio/save", data={**form, "w.body.4.alt": "A couple at breakfast"},
                               files={"upload.body.4": (name, data, "image/png")})  # fmt: skip
        return response.status_code, response.text

    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    for data, said in ((svg, "not a PNG, JPEG, GIF or WebP"), (b"", "the file is empty"),
                       (PIXEL + b"\0" * (2 * 1024 * 1024), "larger than 2 MB")):  # fmt: skip
        status, text = upload(data)
        assert status in (400, 413) and (said in text or status == 413), said
        assert status == 413 or "A couple at breakfast" in text  # what was typed is still in the form
    assert body_of(site)[4]["file"] == ""  # nothing of it saved

    status, text = upload(PIXEL)
    assert status == 200 and "Draft saved." in text
    name = str(body_of(site)[4]["file"])
    assert re.fullmatch(r"[0-9a-f]{32}\.png", name)
    served = site.client.get(f"/media/{name}")
    assert served.status_code == 200 and served.content == PIXEL
    assert served.headers["content-type"] == "image/png" and served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    assert site.client.head(f"/media/{name}").status_code == 200
    for missing in ("0123456789abcdef0123456789abcdef.png", "../secrets.png", "picture.svg"):
        assert site.client.get(f"/media/{missing}").status_code == 404
    form, _ = form_of(client)
    status, _ = upload(PIXEL)  # the same picture again: one row, the same name
    assert status == 200 and body_of(site)[4]["file"] == name

    assert publish(client, DAY_3, "a picture") == 303
    _, email, text = render_live(site, "day-03")  # the next day-3 email: the image from the course's own site
    assert f'src="https://course.example.org/media/{name}"' in email and 'alt="A couple at breakfast"' in email
    assert "[A couple at breakfast]" in text


def test_an_exercises_own_parts_are_added_and_taken_out(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    form, page = form_of(client)
    assert 'name="w.@add-in.1"' in page  # day 3's exercise is its second block

    def exercise() -> list[str]:
        return [str(part.get("kind", "text")) for part in body_of(site)[1]["blocks"]]  # type: ignore[attr-defined]

    added = client.post("/studio/save", data={**form, "w.@block": "add-in:1", "w.@add-in.1": "callout"},
                        follow_redirects=False)  # fmt: skip
    assert added.status_code == 303 and added.headers["location"].endswith("&block=1")
    before = exercise()
    assert before[-1] == "callout"
    form, page = form_of(client)
    assert "Take out part 1" in page
    client.post("/studio/save", data={**form, "w.@block": f"remove-in:1:{len(before) - 1}"})
    assert exercise() == before[:-1]
    # Refused, nothing saved: a part an exercise cannot hold; a part or an exercise that is not there.
    for action, adding in (("add-in:1", "button"), ("add-in:1", "image"), ("remove-in:1:99", ""),
                           ("add-in:0", "text"), ("remove-in:x:0", ""), ("add-in:99", "text")):  # fmt: skip
        form, _ = form_of(client)
        refused = client.post("/studio/save", data={**form, "w.@block": action, "w.@add-in.1": adding,
                                                    "w.@add-in.0": adding})  # fmt: skip
        assert refused.status_code == 400 and "Nothing was saved" in refused.text, action
    assert exercise() == before[:-1]
