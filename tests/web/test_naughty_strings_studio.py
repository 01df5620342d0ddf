"""Hostile input with counts, in the studio: the Big List of Naughty Strings through the fields of its
door (signing in, setting a password) and of its insights (the page's choices, the downloads, summing
again); tests/web/test_naughty_strings_editor.py does the editor. tests/web/test_naughty_strings.py
says what each answer must be.

The studio's fields cost more than the subscriber's: a sign-in or a new password is an argon2 hash
(about 0.15 s), the insights page and its downloads sum the figures (30 to 40 ms), a save or a publish
renders every email of the course in a child process (1 to 3 s), a preview renders one (about 1 s).
So most fields are sent strings spread evenly over the list (tests/support/naughty.py ``spread``:
always the same ones): 64 through the fields that answer at once, every other one of them (32)
through those that sum the figures, 3 through those that hash a password or render emails; the
sign-in's CSRF field gets the whole list. A form's text fields, which a save or a preview takes
together, get each string together, in one request. The counts are checked all the same: for each
field, the strings it was to be sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple
from urllib.parse import quote, urlencode

import pytest
from httpx2 import Response

from course.models.studio import StudioRole, StudioUser
from course.studio import add_user
from web.studio.auth import WORK_LIMITS, safe_next, sign_in_link

from ..support.asgi import DirectClient
from ..support.naughty import Tally, naughty_strings, spread
from .conftest import BROWSER, Site
from .test_naughty_strings import BASE, NUL, Run, app_of, field_named, run_of
from .test_studio_access import PASSWORD, csrf_of
from .test_studio_editing import signed_in


class Samples(NamedTuple):
    """The strings a run sends: ``every`` one through the cheapest fields, ``some`` through those that
    answer at once, a ``few`` through those that hash a password or render emails."""

    every: Sequence[str]
    some: Sequence[str]
    few: Sequence[str]


STRINGS = naughty_strings()
# 64 spread over the list; 3 for the costly fields: "", "\u2029test\u2029" and a script.
LIST = Samples(STRINGS, spread(STRINGS, 64), spread(STRINGS, 3))
EXPIRED = ("That form had expired", "Nothing was changed", "The field “csrf”")
NOT_OURS = ("There is nothing here", "The address is not one of ours")

Check = Callable[[str, Response, set[str]], str | None]


def answer(run: Run, label: str, value: str, response: Response, says: tuple[str, ...], judge: Check) -> None:
    """Check the answer to ``value`` sent through the field(s) ``label``; ``judge(value, response, tables)``
    checks a success."""
    run.answer([label], value, response, says, lambda tables: judge(value, response, tables))


def through(run: Run, label: str, values: Sequence[str], send: Callable[[str], Response], says: tuple[str, ...],
            judge: Check) -> None:  # fmt: skip
    """Each of ``values`` through one field: ``send(value)`` sends it."""
    for value in values:
        answer(run, label, value, send(value), says, judge)


def writes_only(*allowed: str) -> Check:
    """A success that may write to these tables and no other."""

    def judge(value: str, response: Response, tables: set[str]) -> str | None:
        return None if tables <= set(allowed) else f"wrote to {sorted(tables - set(allowed))}"

    return judge


def never(value: str, response: Response, tables: set[str]) -> str | None:
    return f"a naughty string was taken ({response.headers.get('location')}, wrote to {sorted(tables)})"


def sign_in(client: DirectClient, email: str, password: str = PASSWORD, **typed: str) -> Response:
    csrf = csrf_of(client.get("/studio/sign-in").text)
    data = {"csrf": csrf, "email": email, "password": password, **typed}
    return client.post("/studio/sign-in", data=data, follow_redirects=False)


# --- The door: signing in, setting a password -------------------------------------------------------------


def test_naughty_strings_at_the_studios_door(site: Site) -> None:
    studio_door(site, LIST).check()


def studio_door(site: Site, samples: Samples) -> Run:
    """The sign-in page and form, and the one-time link's page and form."""
    every, some, few = samples
    with site.session() as session:
        add_user(session, "kayla@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=datetime.now(UTC))
        newcomer = add_user(session, "sam@example.org", role=StudioRole.EDITOR, now=datetime.now(UTC))
        session.commit()
        newcomer_id = newcomer.id
    fields = {
        "sign-in page next": some, "sign-in csrf": every, "sign-in email": few, "sign-in password": few,
        "sign-in next": few, "welcome page token": some, "welcome token": some, "welcome csrf": some,
        "welcome password": few,
    }  # fmt: skip
    tally = Tally("studio sign-in and welcome", {name: len(values) for name, values in fields.items()})
    with run_of(site, tally) as run:
        client = run.client
        csrf = [csrf_of(client.get("/studio/sign-in").text)]

        def signing_in(**typed: str) -> Response:
            site.clock.advance(minutes=16)  # past the attempts an account and a client have in 15 minutes
            data = {"csrf": csrf[0], "email": "kayla@example.org", "password": PASSWORD, "next": "/studio", **typed}
            response = client.post("/studio/sign-in", data=data, follow_redirects=False)
            if response.status_code == 303:  # signed in: a new session, with a token of its own
                csrf[0] = csrf_of(client.get("/studio/sign-in").text)
            return response

        def shown_next(value: str, response: Response, tables: set[str]) -> str | None:
            kept = f'name="next" value="{safe_next(value)}"'.replace("&", "&amp;")
            return None if not tables and kept in response.text else "the page does not keep a safe next"

        def went_next(value: str, response: Response, tables: set[str]) -> str | None:
            if response.headers.get("location") != safe_next(value):
                return f"signed in, then sent to {response.headers.get('location')!r}"
            return writes_only("studio_users", "studio_sessions", "audit_log")(value, response, tables)

        no_match = ("That email and password do not match an account.", field_named("email"), field_named("password"))
        through(run, "sign-in page next", some, lambda v: client.get("/studio/sign-in", params={"next": v}), (),
                shown_next)  # fmt: skip
        through(run, "sign-in csrf", every, lambda v: signing_in(csrf=v), EXPIRED, never)
        through(run, "sign-in email", few, lambda v: signing_in(email=v), no_match, never)
        through(run, "sign-in password", few, lambda v: signing_in(password=v), no_match, never)
        through(run, "sign-in next", few, lambda v: signing_in(next=v), (field_named("next"),), went_next)

        welcome = DirectClient(app_of(site), base_url=BASE, headers={"User-Agent": BROWSER})
        link = [""]

        def new_link() -> None:  # a link works until a password is set with it
            with site.session() as session:
                user = session.get(StudioUser, newcomer_id)
                assert user is not None
                link[0] = sign_in_link(site.runtime.settings, user).removeprefix(BASE)
            csrf[0] = csrf_of(welcome.get(link[0]).text)

        def set_password(path: str | None = None, **typed: str) -> Response:
            data = {"csrf": csrf[0], "password": "a long new passphrase", **typed}
            response = welcome.post(path or link[0], data=data, follow_redirects=False)
            if response.status_code == 303:
                new_link()
            return response

        def password_set(value: str, response: Response, tables: set[str]) -> str | None:
            if response.headers.get("location") != "/studio" or not 12 <= len(value) <= 200:
                return f"a password of {len(value)} characters was set"
            return writes_only("studio_users", "studio_sessions", "audit_log")(value, response, tables)

        new_link()
        gone = ("does not work any more", *NOT_OURS)
        too_short = ("a password needs at least 12 characters", "a password has at most 200 characters",
                     field_named("password"))  # fmt: skip
        through(run, "welcome page token", some, lambda v: welcome.get(f"/studio/welcome/{quote(v, safe='')}"), gone,
                never)  # fmt: skip
        through(run, "welcome token", some, lambda v: set_password(f"/studio/welcome/{quote(v, safe='')}"),
                (*gone, *EXPIRED), never)  # fmt: skip
        through(run, "welcome csrf", some, lambda v: set_password(csrf=v), EXPIRED, never)
        through(run, "welcome password", few, lambda v: set_password(password=v), too_short, password_set)
        welcome.close()
    return run


# --- The insights: the page's choices, the downloads, summing again -----------------------------------------


def test_naughty_strings_through_the_studios_insights(site: Site) -> None:
    studio_insights(site, LIST).check()


def studio_insights(site: Site, samples: Samples) -> Run:
    """The insights page's choices, its downloads' and the form that sums the figures again."""
    _, some, _ = samples
    summing_each = some[::2]  # through the fields of the pages and the form that sum the figures (30 to 40 ms)
    with site.session() as session:
        add_user(session, "kayla@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=datetime.now(UTC))
        session.commit()
    site.sign_up_and_confirm()  # a subscriber, so that there are figures to read and sum
    reads = {"/studio/insights": ("since", "until", "cohort", "day"), "/studio/insights.csv": ("since", "until",
             "cohort"), "/studio/insights/events.csv": ("since", "until")}  # fmt: skip
    sums = ("since", "until", "cohort")
    fields = {
        **{f"{path} {name}": some if path.endswith("events.csv") else summing_each for path, names in reads.items()
           for name in names},
        "/studio/insights.csv table": some, **{f"refresh {name}": summing_each for name in sums},
    }  # fmt: skip
    with run_of(site, Tally("studio insights", {name: len(values) for name, values in fields.items()})) as run:
        client = run.client
        assert sign_in(client, "kayla@example.org").status_code == 303
        csrf = csrf_of(client.get("/studio/insights").text)
        run.snapshots.changed()  # signed in

        def reading(path: str, name: str, value: str) -> Response:
            return client.get(path, params={name: value})

        def summing(name: str, value: str) -> Response:
            # One sum per share of the per-person limit's window: the strings are the test, not the limit.
            times, window = WORK_LIMITS["insights-refresh"]
            run.site.clock.advance(seconds=window / times + 1)
            client.get("/studio/insights")  # the session is seen again (a write that is not the form's)
            run.snapshots.changed()
            return client.post("/studio/insights/refresh", data={"csrf": csrf, name: value}, follow_redirects=False)

        def read_only(value: str, response: Response, tables: set[str]) -> str | None:
            kind = response.headers.get("content-type", "")
            if response.status_code != 200 or not kind.startswith(("text/html", "text/csv")):
                return f"answered {response.status_code} {kind}"
            return f"reading wrote to {sorted(tables)}" if tables else None

        def summed(value: str, response: Response, tables: set[str]) -> str | None:
            location = str(response.headers.get("location"))
            if response.status_code != 303 or not location.startswith("/studio/insights"):
                return f"summed, then sent to {location}"
            return writes_only("insight_counts", "insight_cohorts", "audit_log")(value, response, tables)

        for path, names in reads.items():
            for name in names:
                through(run, f"{path} {name}", fields[f"{path} {name}"], partial(reading, path, name), (), read_only)
        through(run, "/studio/insights.csv table", some,
                lambda v: client.get("/studio/insights.csv", params={"table": v}), ("No table",), never)  # fmt: skip
        for name in sums:
            through(run, f"refresh {name}", summing_each, partial(summing, name), (field_named(name),), summed)
    return run


# --- What the strings found ---------------------------------------------------------------------------

NUL_SAMPLES = Samples(NUL, NUL, NUL[:3])


@pytest.mark.parametrize("form", [studio_door, studio_insights])
def test_a_nul_character_in_any_studio_field_is_refused_with_a_page_that_says_so_and_nothing_written(
    site: Site, form: Callable[[Site, Samples], Run]
) -> None:
    run = form(site, NUL_SAMPLES)
    run.check()
    assert set(run.tally.statuses) == {400}, run.tally.line()


def test_an_insights_day_in_other_digits_shows_day_one(site: Site) -> None:
    """ "₀₁₂" is digits to str.isdigit, not to int: it was a server error."""
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    for day in ("₀₁₂", "⁰⁴⁵", "１２"):
        page = client.get(f"/studio/insights?{urlencode({'day': day})}")
        assert page.status_code == 200 and '<option value="1" selected>' in page.text, day
