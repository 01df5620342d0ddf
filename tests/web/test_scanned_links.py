"""The links mail scanners open in every email (consultation, resource, exercise page) are answered before
the framework (web.links.ScannedLinks): the same answers as their routes give, every refusal the app's own
page, and everything that is not such a link left to the app."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from starlette.types import Receive, Scope, Send

from course.links import LinkSigner, Purpose
from course.models.engagement import Event
from web.context import LOOP_APPLICATION
from web.links import ScannedLinks

from ..conftest import TEST_SECRET
from .conftest import Site

BASE = "https://course.example.org"


class Routed:
    """The app, noting for each request whether FastAPI's router chose a route for it (the router writes
    the route's endpoint into the request's scope)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.endpoints: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.endpoints.append(scope.get("endpoint"))


def without_scanned_links(app: FastAPI) -> FastAPI:
    """The same app answering every request through its routes."""
    app.user_middleware = [
        middleware for middleware in app.user_middleware if getattr(middleware, "cls", None) is not ScannedLinks
    ]
    app.middleware_stack = None  # built again at the next request
    return app


def the_links(site: Site) -> dict[str, str]:
    site.sign_up_and_confirm()
    site.to_day_one()
    alex = site.subscriber("alex@example.com")
    signer = LinkSigner(TEST_SECRET, BASE)
    consultation = site.link("alex@example.com", "/consultation/", "Day 1")
    return {
        "consultation": consultation,
        "exercise": site.link("alex@example.com", "/exercise/", "Day 1"),
        "resource": signer.url(Purpose.RESOURCE, alex.id, 16, "stonewalling-quiz").removeprefix(BASE),
        "a guide we do not have": signer.url(Purpose.RESOURCE, alex.id, 16, "no-such-guide").removeprefix(BASE),
        "no one's": signer.url(Purpose.CONSULTATION, alex.id + 1000, 1).removeprefix(BASE),
        "forged": consultation[:-3] + ("AAA" if not consultation.endswith("AAA") else "BBB"),
        "another purpose's": consultation.replace("/consultation/", "/exercise/"),
        "no day": signer.url(Purpose.EXERCISE_DONE, alex.id).removeprefix(BASE),
    }


def answers(client: TestClient, links: dict[str, str]) -> dict[str, tuple[int, str | None, str, str | None]]:
    found = {}
    for name, link in links.items():
        for method in ("GET", "HEAD"):
            response = client.request(method, link, follow_redirects=False)
            found[f"{method} {name}"] = (
                response.status_code, response.headers.get("location"), response.text,
                response.headers.get("content-security-policy"),
            )  # fmt: skip
    return found


def test_the_scanned_links_answer_before_the_framework_what_their_routes_answer(site: Site) -> None:
    links = the_links(site)
    routed = Routed(site.client.app)  # type: ignore[arg-type]
    with TestClient(routed, base_url=BASE) as client:
        early = answers(client, links)
    assert routed.endpoints == [None] * len(early)  # no route was chosen: ScannedLinks answered them all
    assert early["GET consultation"][0] == 303 and early["GET consultation"][1].startswith("https://")  # type: ignore[union-attr]
    assert early["HEAD exercise"][0] == early["GET exercise"][0] == 200
    assert early["GET resource"][0] == 303
    for refused, status in (("a guide we do not have", 404), ("no one's", 404), ("forged", 400),
                            ("another purpose's", 400), ("no day", 404)):  # fmt: skip
        assert early[f"GET {refused}"][0] == status, refused
        assert "<html" in early[f"GET {refused}"][2]  # the app's own page
    assert all(csp for _, _, _, csp in early.values())  # the security headers wrap it

    # Within the minute the clicks above are already recorded: the routes answer the very same.
    routed = Routed(without_scanned_links(site.client.app))  # type: ignore[arg-type]
    with TestClient(routed, base_url=BASE) as client:
        assert answers(client, links) == early
    assert None not in routed.endpoints


def test_what_is_not_a_scanned_link_goes_on_to_the_app(site: Site) -> None:
    links = the_links(site)
    consultation, exercise = links["consultation"], links["exercise"]
    routed = Routed(site.client.app)  # type: ignore[arg-type]
    with TestClient(routed, base_url=BASE) as client:
        malformed = client.get("/consultation/not!a%20token", follow_redirects=False)
        assert malformed.status_code == 400 and "Something in that request was not right" in malformed.text
        too_long = client.get(f"/consultation/{'a' * 401}", follow_redirects=False)
        assert too_long.status_code == 400
        assert client.get(f"{consultation}/", follow_redirects=False).status_code == 307  # the slash redirect
        assert client.get(f"{consultation}?x=%00", follow_redirects=False).status_code == 400  # a NUL
        assert client.post(consultation, follow_redirects=False).status_code == 405
        done = client.post(exercise, follow_redirects=False)  # marking it done is the app's form
        assert done.status_code == 200 and "done" in done.text.lower()
        assert client.get("/consultation/", follow_redirects=False).status_code == 404
    # The malformed tokens and the POSTs reached their routes; the slash, the NUL and the bare prefix were
    # the app's own answers (its 404 handler, its body limit, no route), as for any other address.
    reached = [getattr(endpoint, "__name__", None) for endpoint in routed.endpoints]
    assert reached == ["consultation", "consultation", None, None, "consultation", "exercise_done_now", None]


def test_clicks_outlive_their_connections_being_cut_and_a_failed_one_is_the_apps_error(site: Site) -> None:
    """The clicks' own connections (psycopg's pool, web/context.py) cut by the database, as in its restart:
    a request that finds its connection dead fails (the app's error), once the pool has tried its idle
    connections, so that the clicks that follow do not each find another dead one; and they are recorded."""
    links = the_links(site)
    with ThreadPoolExecutor(8) as pool:  # requests at once: the pool opens several connections
        assert set(pool.map(lambda _: site.client.get(links["exercise"]).status_code, range(40))) == {200}
    with site.session() as session:
        cut = session.execute(
            # Only this test's database: other tests running at once have clicks' connections of their own.
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": LOOP_APPLICATION},
        ).all()
        session.commit()
    assert len(cut) > 1  # several connections were open, and are gone
    answers: list[int | str] = []
    for _ in range(8):
        try:
            answers.append(site.client.get(links["consultation"], follow_redirects=False).status_code)
        except psycopg.OperationalError:  # what the server error page stands for
            answers.append("dead connection")
    assert answers.count("dead connection") <= 1 and answers[-6:] == [303] * 6, answers
    with site.session() as session:
        assert session.scalar(select(func.count()).select_from(Event).where(Event.kind == "consultation")) == 1
