"""Work one studio user may start in a few minutes: previews, save checks, publishes and sums of the
insights each cost seconds of a core; past the limit the answer says so, and nothing typed is lost."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select

from course.models.studio import StudioRole, StudioUser
from web.studio.auth import WORK_LIMITS

from .conftest import Site
from .test_studio_access import csrf_of
from .test_studio_editing import DAY_FILES, signed_in


def spent_already(site: Site, email: str, work: str, times: int) -> None:
    """``times`` of the user's allowance for ``work`` spent, as that many requests would (each preview or
    check costs seconds of a core: the tests make the last few for real)."""
    with site.session() as session:
        user_id = session.scalar(select(StudioUser.id).where(StudioUser.email == email))
    limit, window = WORK_LIMITS[work]
    web = site.client.app.state.context  # type: ignore[attr-defined]
    for _ in range(times):
        assert web.limiter.allow(f"studio-{work}:{user_id}", limit, window, site.clock())


def test_previews_past_the_limit_wait_and_say_so(site: Site) -> None:
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    csrf = csrf_of(site.client.get("/studio/edit?item=day").text)
    times, window = WORK_LIMITS["preview"]
    spent_already(site, "kayla@example.org", "preview", times - 3)
    answers = [site.client.post("/studio/preview", data={"csrf": csrf, "item": "day", "email": "day-01",
                                                         "subject.txt": DAY_FILES["subject.txt"]}).status_code
               for _ in range(4)]  # fmt: skip
    assert answers == [200] * 3 + [429]
    late = site.client.post("/studio/preview", data={"csrf": csrf, "item": "day", "email": "day-01"})
    assert late.status_code == 429 and "a lot of previews" in late.text
    site.clock.advance(seconds=window)
    assert site.client.post("/studio/preview", data={"csrf": csrf, "item": "day", "email": "day-01"}).status_code == 200


def test_a_save_past_the_limit_keeps_the_draft_and_only_its_check_waits(site: Site) -> None:
    signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    times, _ = WORK_LIMITS["check"]
    spent_already(site, "kayla@example.org", "check", times - 3)
    for number in range(times - 3, times + 1):
        page = site.client.get("/studio/edit?item=day")
        revision = int(page.text.split('name="revision" value="', 1)[1].split('"', 1)[0])
        saved = site.client.post("/studio/save", data={"csrf": csrf_of(page.text), "item": "day", "revision":
                                                       revision, "subject.txt": DAY_FILES["subject.txt"]})  # fmt: skip
        if number < times:
            assert saved.status_code == 200 and "Draft saved." in saved.text
    # The save itself went through (and redirected to the editor): only its check waits.
    assert saved.status_code == 200 and "Draft saved. It was not checked" in saved.text
    assert "/studio/edit?" in str(saved.url)
    page = site.client.get("/studio/edit?item=day")
    published = site.client.post("/studio/publish", data={"csrf": csrf_of(page.text), "item": "day", "revision":
                                                          page.text.split('name="revision" value="', 1)[1]
                                                          .split('"', 1)[0]})  # fmt: skip
    assert published.status_code == 429 and "Nothing was published" in published.text


def test_sums_of_the_insights_past_the_limit_wait_and_say_so(site: Site) -> None:
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    csrf = csrf_of(site.client.get("/studio/insights").text)
    times, window = WORK_LIMITS["insights-refresh"]
    codes = [site.client.post("/studio/insights/refresh", data={"csrf": csrf}, follow_redirects=False).status_code
             for _ in range(times + 1)]  # fmt: skip
    assert codes == [303] * times + [429]
    refused = site.client.post("/studio/insights/refresh", data={"csrf": csrf}, follow_redirects=False)
    assert "Not summed yet" in refused.text
    site.clock.advance(seconds=window)
    assert site.client.post("/studio/insights/refresh", data={"csrf": csrf}, follow_redirects=False).status_code == 303


def _sandbox_children() -> list[int]:
    """The template sandbox's children running now (emails/sandbox.py), by their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"-m\x00emails.sandbox" in command:
                found.append(int(entry.name))
    return found


def test_a_newer_preview_stops_the_older_one_still_rendering(site: Site) -> None:
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    csrf = csrf_of(site.client.get("/studio/edit?item=day").text)
    # A template that keeps a core busy (each loop within the sandbox's limit, the whole far longer).
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}Day"
    before = set(_sandbox_children())
    with ThreadPoolExecutor(1) as pool:
        busy = {"csrf": csrf, "item": "day", "email": "day-01", **DAY_FILES, "subject.txt": slow}
        older = pool.submit(site.client.post, "/studio/preview", data=busy)
        deadline = time.monotonic() + 20
        while not set(_sandbox_children()) - before:  # the older one is rendering
            assert time.monotonic() < deadline and not older.done(), "the first preview never started rendering"
            time.sleep(0.01)
        during = set(_sandbox_children()) - before  # its child (and the spare started beside it)
        newer = site.client.post("/studio/preview", data={"csrf": csrf, "item": "day", "email": "day-01", **DAY_FILES})
        replaced = older.result(timeout=20)
    assert newer.status_code == 200 and "inbox-subject" in newer.text
    assert replaced.status_code == 409 and "A newer preview replaced this one" in replaced.text  # not timed out
    assert not during & set(_sandbox_children())  # and its child is gone, its core given back


def test_a_preview_asked_for_earlier_that_arrives_later_stops_itself_not_the_newer_one(site: Site) -> None:
    """Under load an older request can reach the server after the newer one replaced it (the browser asked
    for them in order, a thread ran late): the page's order counts, not the server's; and no clock is
    compared with the server's (a browser's may be a year off: another page's request wins as it arrives)."""
    signed_in(site, "kayla@example.org", StudioRole.EDITOR)
    csrf = csrf_of(site.client.get("/studio/edit?item=day").text)
    slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}Day"
    form = {"csrf": csrf, "item": "day", "email": "day-01", **DAY_FILES}
    page = "a-page-of-its-own"
    asked = 400_000.0 + 365 * 86_400_000  # a year off anyone's clock: only this page's order matters
    before = set(_sandbox_children())
    with ThreadPoolExecutor(1) as pool:
        newer = pool.submit(site.client.post, "/studio/preview",
                            data={**form, "subject.txt": slow, "page": page, "asked": str(asked)})  # fmt: skip
        deadline = time.monotonic() + 20
        while not set(_sandbox_children()) - before:
            assert time.monotonic() < deadline and not newer.done(), "the newer preview never started rendering"
            time.sleep(0.01)
        late = site.client.post("/studio/preview", data={**form, "page": page, "asked": str(asked - 400)})
        assert late.status_code == 409 and "A newer preview replaced this one" in late.text
        assert not newer.done()  # still rendering: the late one did not stop it
        # Nonsense for a page or its order is a request of its own, as of its arrival: it replaces.
        for nonsense in ({"page": page, "asked": "nan"}, {"page": page, "asked": "inf"}, {"page": "x y", "asked": "1"},
                         {"page": "", "asked": str(asked + 1)}, {}):  # fmt: skip
            answer = site.client.post("/studio/preview", data={**form, **nonsense})
            assert answer.status_code == 200 and "inbox-subject" in answer.text, nonsense
        assert newer.result(timeout=20).status_code == 409
    # The same page, asked later, is shown; another page with a clock far behind is too (a second tab).
    assert site.client.post("/studio/preview", data={**form, "page": page, "asked": str(asked + 1)}).status_code == 200
    assert site.client.post("/studio/preview", data={**form, "page": "another-page", "asked": "1"}).status_code == 200
