"""The mark a browser shows in its tab: linked from every page, and at /favicon.ico for whoever asks there."""

from __future__ import annotations

from xml.etree import ElementTree

from .conftest import Site


def test_every_page_links_the_icon_and_it_is_there(site: Site) -> None:
    for path in ("/", "/about", "/studio/sign-in", "/no-such-page"):
        page = site.client.get(path)
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text, path
    for path in ("/favicon.ico", "/static/favicon.svg"):
        icon = site.client.get(path)
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml"), path
        assert ElementTree.fromstring(icon.content).tag == "{http://www.w3.org/2000/svg}svg"  # noqa: S314 - ours
    assert "max-age=86400" in site.client.get("/favicon.ico").headers["cache-control"]
    head = site.client.head("/favicon.ico")
    assert head.status_code == 200 and head.content == b""
