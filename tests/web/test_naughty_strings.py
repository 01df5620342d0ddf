"""Hostile input with counts: the Big List of Naughty Strings (tests/support/naughty.py) through every
field of the subscriber's forms: the sign-up, the preferences, and the link forms that take a field.

Every string goes through every field, one field at a time with good values in the others, and each
answer must be a safe success or a clear refusal:
- never a 5xx;
- a refusal (4xx) is one of our pages saying what was wrong, and the database is exactly as it was
  (every table's rows, by count and hash);
- a success stored the string or its normalised form (read back from the database), in the tables
  that form writes and no other;
- no HTML the app answers with (pages, emails) carries markup from the string.

Each test counts what it sent (strings x fields) and what came back by status, prints the tally
(``pytest -s`` shows the lines that start with NAUGHTY) and fails unless the whole list went through
every field.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from httpx2 import Response
from markupsafe import escape
from sqlalchemy import select
from starlette.types import Message

from course.models.engagement import Answer
from course.models.subscribers import SignupRequest, Subscriber, SubscriberStatus
from course.subscriptions import InvalidSubscription, check_timezone, clean_first_name, normalise_email, parse_send_time
from web.security import NUL_MESSAGE

from ..support.asgi import DirectClient
from ..support.naughty import MarkupCheck, Snapshots, Tally, naughty_strings
from .conftest import BROWSER, Site

STRINGS = naughty_strings()
BASE = "https://course.example.org"
Judge = Callable[[set[str]], str | None]


def field_named(name: str) -> str:
    """How the page of a request FastAPI refused names the field (web/app.py, ``what_was_wrong``)."""
    return f"The field “{name}”"


@dataclass
class Run:
    """One form's run: its tally, its client, the database's snapshots, the markup check, and the
    problems found (reported together at the end, so that one run shows every one)."""

    site: Site
    tally: Tally
    client: DirectClient
    snapshots: Snapshots
    markup: MarkupCheck = field(default_factory=MarkupCheck)
    problems: list[str] = field(default_factory=list)

    def fail(self, label: str, value: str, status: int, why: str) -> None:
        self.problems.append(f"{label}={value!r}: {status} {why}")

    def page(self, label: str, value: str, response: Response, *varying: str) -> None:
        """Markup from the string in an HTML answer is a problem, whatever the status (``varying``: text
        that differs from page to page, such as a new address each time)."""
        if is_html(response):
            for problem in self.markup.problems(response.text, value, *varying):
                self.fail(label, value, response.status_code, problem)

    def answer(
        self, fields: list[str], value: str, response: Response, says: tuple[str, ...], judge: Judge, *varying: str
    ) -> None:
        """Check the answer to ``value`` sent through ``fields`` (most often one): a refusal must say one
        of ``says`` and change nothing; ``judge(changed_tables)`` checks a success (None: all is well)."""
        status = response.status_code
        for name in fields:
            self.tally.record(name, status)
        tables = self.snapshots.changed()
        label = "+".join(fields)
        if status >= 500:
            self.fail(label, value, status, f"a server error{f', and it wrote to {sorted(tables)}' if tables else ''}")
            return
        self.page(label, value, response, *varying)
        if status >= 400:
            if tables:
                self.fail(label, value, status, f"refused, yet it wrote to {sorted(tables)}")
            problem = refusal_problem(response, (*says, NUL_MESSAGE) if "\x00" in value else says)
        else:
            problem = judge(tables)
        if problem is not None:
            self.fail(label, value, status, problem)

    def check(self) -> None:
        self.tally.check()
        shown = "\n".join(self.problems[:40])
        assert not self.problems, f"{len(self.problems)} problems:\n{shown}"


@contextmanager
def run_of(site: Site, tally: Tally) -> Iterator[Run]:
    """A run on the site: its own client (the same app) and its own connection for the snapshots."""
    client = DirectClient(app_of(site), base_url=BASE, headers={"User-Agent": BROWSER})
    try:
        with site.runtime.sessions.kw["bind"].connect() as connection:
            yield Run(site, tally, client, Snapshots(connection.execution_options(isolation_level="AUTOCOMMIT")))
    finally:
        client.close()


def app_of(site: Site) -> FastAPI:
    app = site.client.app
    assert isinstance(app, FastAPI)
    return app


def is_html(response: Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/html")


def refusal_problem(response: Response, says: tuple[str, ...]) -> str | None:
    """A clear refusal: one of our pages, with a heading, whose text says what was wrong (one of ``says``);
    a download's refusal may be a line of plain text that says it."""
    if not is_html(response):
        plain = response.headers.get("content-type", "").startswith("text/plain")
        if plain and any(phrase in response.text for phrase in says):
            return None
        return f"a refusal that is not a page ({response.headers.get('content-type')}): {response.text[:80]!r}"
    heading = re.search(r"<h1>(.+?)</h1>", response.text, re.S)
    if heading is None or not heading.group(1).strip():
        return "a refusal without a heading"
    shown = html.unescape(re.sub(r"<[^>]+>", " ", response.text))
    if not any(phrase in shown for phrase in says):
        message = re.search(r"</h1>\s*<p>(.*?)</p>", response.text, re.S)
        return f"a refusal that does not say what was wrong: {heading.group(1)!r} {message and message.group(1)!r}"
    return None


def redirect_to(response: Response, location: str) -> str | None:
    if response.status_code != 303 or response.headers.get("location") != location:
        return f"a success that is not the redirect to {location}: {response.headers.get('location')}"
    return None


# --- The sign-up form -------------------------------------------------------------------------------

SIGN_UP = {"email": "", "first_name": "Alex", "send_time": "07:30", "timezone": "Europe/Paris", "website": ""}
# What the endpoint takes for a field sent empty: FastAPI gives it the field's default.
SIGN_UP_DEFAULTS = {"email": "", "first_name": "", "send_time": "08:00", "timezone": "", "website": ""}
SIGN_UP_WRITES = {"subscribers", "progress", "signup_requests", "deliveries"}
SIGN_UP_SAYS = {
    "email": ("Please check the email address.", field_named("email")),
    "first_name": ("Please use just your first name", field_named("first_name")),
    "send_time": ("Choose a time of day from the list", field_named("send_time")),
    "timezone": ("Choose a time zone from the list.", field_named("timezone")),
    "website": (field_named("website"),),
}


def test_every_naughty_string_through_every_field_of_the_sign_up_form(site: Site) -> None:
    sign_up_form(site, STRINGS).check()


def sign_up_form(site: Site, strings: Sequence[str]) -> Run:
    with run_of(site, Tally("sign-up (POST /subscribe)", dict.fromkeys(SIGN_UP, len(strings)))) as run:
        for number, (name, value) in enumerate((name, value) for name in SIGN_UP for value in strings):
            site.clock.advance(minutes=7)  # under the sign-ups one client may send an hour (10)
            typed = {**SIGN_UP, "email": f"naughty-{number}@example.com", name: value}
            response = run.client.post("/subscribe", data=typed, follow_redirects=False)

            def judge(tables: set[str], name: str = name, value: str = value, typed: dict[str, str] = typed,
                      response: Response = response) -> str | None:  # fmt: skip
                if (problem := redirect_to(response, "/check-your-inbox")) is not None:
                    return problem
                if name == "website" and value:  # the honeypot: the same answer, and nothing stored
                    return f"the honeypot stored {sorted(tables)}" if tables else None
                return signed_up(run, {key: text or SIGN_UP_DEFAULTS[key] for key, text in typed.items()}, tables,
                                 value)  # fmt: skip

            run.answer([name], value, response, SIGN_UP_SAYS[name], judge, typed["email"])
    return run


def signed_up(run: Run, typed: dict[str, str], tables: set[str], value: str) -> str | None:
    """What a sign-up stored: the request, with the form's values as the rules tidy them, in the tables
    a sign-up writes; and a confirmation sent, whose HTML and page show the name as text."""
    if not tables <= SIGN_UP_WRITES:
        return f"a sign-up wrote to {sorted(tables - SIGN_UP_WRITES)}"
    try:
        address = normalise_email(typed["email"])
        expected = (clean_first_name(typed["first_name"] or None), check_timezone(typed["timezone"]),
                    parse_send_time(typed["send_time"]))  # fmt: skip
    except InvalidSubscription as error:
        return f"accepted what the rules refuse ({error})"
    with run.site.session() as session:
        stored = session.execute(
            select(SignupRequest.first_name, SignupRequest.timezone, SignupRequest.send_time)
            .join(Subscriber, SignupRequest.subscriber_id == Subscriber.id)
            .where(Subscriber.email == address)
            .order_by(SignupRequest.id.desc())
            .limit(1)
        ).one_or_none()
    if stored is None or tuple(stored) != expected:
        return f"stored {stored}, not {expected}"
    mail = run.site.smtp.to(address)
    if len(mail) != 1:
        return f"{len(mail)} confirmations sent"
    body = mail[0].message.get_body(preferencelist=("html",))
    assert body is not None
    if problems := run.markup.problems(body.get_content(), value):
        return f"the confirmation: {problems}"
    page = run.client.get(run.site.link(address, "/confirm/"))
    run.page("confirm page", value, page, address)
    if page.status_code != 200 or (expected[0] and f"greeting you as {escape(expected[0])}" not in page.text):
        return f"the confirmation page does not show the name: {page.status_code}"
    return None


# --- The preferences ----------------------------------------------------------------------------------

# The preferences forms that take a field: the path, the field, the other fields' good values, what a
# refusal says. (Resume, restart and renew take no field but the link.) Erasure is on the data page,
# whose link is emailed on request.
PREFERENCES = {
    "schedule send_time": ("schedule", "send_time", {"timezone": "Asia/Tokyo"},
                           ("That time did not work", field_named("send_time"))),
    "schedule timezone": ("schedule", "timezone", {"send_time": "21:30"},
                          ("That time zone did not work", field_named("timezone"))),
    "pause length": ("pause", "length", {}, (field_named("length"),)),
    "erase sure": ("erase", "sure", {}, ("Nothing was deleted", field_named("sure"))),
}  # fmt: skip
NOT_A_LINK = ("This link does not work", "There is nothing here", "The address is not one of ours")


def test_every_naughty_string_through_every_field_of_the_preferences(site: Site) -> None:
    preferences_forms(site, STRINGS).check()


def preferences_forms(site: Site, strings: Sequence[str]) -> Run:
    site.sign_up_and_confirm()
    page = site.link("alex@example.com", "/preferences/", "Welcome")
    data = site.data_link()
    tally = Tally("preferences (POST /preferences/{token}/..., GET /preferences/{token})",
                  dict.fromkeys([*PREFERENCES, "token"], len(strings)))  # fmt: skip
    with run_of(site, tally) as run:
        for label, (action, name, others, says) in PREFERENCES.items():
            for value in strings:
                typed = {**others, name: value}
                form = f"{data}/{action}" if action == "erase" else f"{page}/{action}"
                response = run.client.post(form, data=typed, follow_redirects=False)
                # No string is "week", "until-resumed" or "yes": only a new time may be taken.
                judge = scheduled(run, page, typed, value, response) if action == "schedule" else partial(taken, value)
                run.answer([label], value, response, says, judge)
        alex = site.subscriber("alex@example.com")
        assert alex.status == SubscriberStatus.ACTIVE.value, "a pause or an erasure went through"
        for value in strings:  # the link itself: only ours opens the page
            response = run.client.get(f"/preferences/{quote(value, safe='')}", follow_redirects=False)
            run.answer(["token"], value, response, NOT_A_LINK, partial(not_a_link, value, response))
    return run


def scheduled(run: Run, page: str, typed: dict[str, str], value: str, response: Response) -> Judge:
    """A new time and zone: the redirect to the page, which says so; the subscriber's row holds them."""

    def judge(tables: set[str]) -> str | None:
        if (problem := redirect_to(response, f"{page}?done=schedule")) is not None:
            return problem
        if not tables <= {"subscribers", "progress"}:  # the next email's time moves with them
            return f"a new time wrote to {sorted(tables)}"
        try:
            expected = (parse_send_time(typed["send_time"]), check_timezone(typed["timezone"]))
        except InvalidSubscription as error:
            return f"accepted what the rules refuse ({error})"
        alex = run.site.subscriber("alex@example.com")
        if (alex.send_time, alex.timezone) != expected:
            return f"stored {(alex.send_time, alex.timezone)}, not {expected}"
        shown = run.client.get(f"{page}?done=schedule")
        run.page("preferences page", value, shown)
        return None if shown.status_code == 200 and "Saved." in shown.text else "the page after saving"

    return judge


def taken(value: str, tables: set[str]) -> str | None:
    return f"{value!r} was taken, and wrote to {sorted(tables)}"


def not_a_link(value: str, response: Response, tables: set[str]) -> str | None:
    """A naughty string where the link's token goes opens nothing: at most the redirect to the same
    address without its trailing slash (web/security.py), on our own site."""
    if tables:
        return f"a string in the link wrote to {sorted(tables)}"
    same = f"{BASE}/preferences/{quote(value.rstrip('/'))}"
    if response.status_code == 307 and value.endswith("/") and response.headers.get("location") == same:
        return None
    return f"a string opened a preferences page: {response.headers.get('location')}"


# --- The link forms -------------------------------------------------------------------------------------


def test_every_naughty_string_through_the_fields_of_the_link_forms(site: Site) -> None:
    link_forms(site, STRINGS).check()


def link_forms(site: Site, strings: Sequence[str]) -> Run:
    site.sign_up_and_confirm()
    site.clock.advance(minutes=30)
    answers = [href for href in site.links("alex@example.com", "Welcome") if href.startswith("/answer/")]
    band_link, checklist_link = answers[0], answers[-1]  # "normal", and the checklist to tick
    checklist_page = site.client.get(checklist_link).text
    checklist_key = re.search(r'name="checklist" value="([^"]+)"', checklist_page)
    assert checklist_key and re.search(r'name="band" value="normal"', site.client.get(band_link).text)
    items = checklist_page.count('name="items"')
    unsubscribe = site.link("alex@example.com", "/unsubscribe/", "Welcome")
    forms = {  # the link, its form's other fields, the field, what a refusal says
        "answer items": (checklist_link, {"checklist": checklist_key.group(1)}, "items", (field_named("items"),)),
        "answer checklist": (checklist_link, {}, "checklist", ("Nothing was saved", field_named("checklist"))),
        "answer band": (band_link, {}, "band", ("Nothing was saved", field_named("band"))),
        # The unsubscribe form's one field (RFC 8058's List-Unsubscribe=One-Click): whatever it says, it is a click.
        "unsubscribe List-Unsubscribe": (unsubscribe, {}, "List-Unsubscribe", ()),
    }
    with run_of(site, Tally("link forms (POST /answer/{token}, /unsubscribe/{token})",
                            dict.fromkeys(forms, len(strings)))) as run:  # fmt: skip
        for label, (link, others, name, says) in forms.items():
            for value in strings:
                response = run.client.post(link, data={**others, name: value})

                def judge(tables: set[str], name: str = name, value: str = value,
                          response: Response = response) -> str | None:  # fmt: skip
                    if name == "List-Unsubscribe":
                        left = response.status_code == 200 and "unsubscribed" in response.text.lower()
                        done = left and tables <= {"subscribers", "progress", "deliveries", "events"}
                        return None if done else f"not unsubscribed: {response.status_code}, {sorted(tables)}"
                    return saved_answer(run, name, value, items, tables)

                run.answer([label], value, response, says, judge)
    return run


def saved_answer(run: Run, name: str, value: str, items: int, tables: set[str]) -> str | None:
    """An answer saved: a new row and its event, ticking the item the string names (when it is a whole
    number of the checklist: pydantic reads "1.00" as 1 too)."""
    if tables != {"answers", "events"}:
        return f"an answer wrote to {sorted(tables)}"
    if name != "items":
        return f"{name}={value!r} was saved"
    with run.site.session() as session:
        stored = session.scalars(select(Answer).order_by(Answer.id.desc()).limit(1)).one()
    ticked = [int(number) for number in (stored.items or "").split(",") if number]
    whole = re.fullmatch(r"\s*([-+]?\d+)(\.0*)?\s*", value)
    if whole is None:
        return f"{value!r} was taken for a number, and saved as {ticked}"
    number = int(whole.group(1))
    return None if ticked == ([number] if 1 <= number <= items else []) else f"saved {ticked} for {value!r}"


# --- What the strings found ---------------------------------------------------------------------------

# The list has no NUL character, which PostgreSQL's text cannot hold: these strings carry one where a
# field's good value would be, and where a link or a path goes.
NUL = ("\x00", "Alex\x00", "a\x00<script>alert(1)</script>", "Europe/Paris\x00", "07:30\x00", "/studio\x00x")


@pytest.mark.parametrize("form", [sign_up_form, preferences_forms, link_forms])
def test_a_nul_character_in_any_field_is_refused_with_a_page_that_says_so_and_nothing_written(
    site: Site, form: Callable[[Site, Sequence[str]], Run]
) -> None:
    run = form(site, NUL)
    run.check()
    assert set(run.tally.statuses) == {400}, run.tally.line()


def test_a_nul_character_is_refused_in_a_multipart_form_too_and_a_typed_percent_zero_zero_is_text(site: Site) -> None:
    """The studio's editor posts multipart forms, whose values are sent as they are: there, only a NUL is one."""
    form = {"email": "alex@example.com", "timezone": "UTC", "send_time": "07:30"}
    attached = {"note": ("note.txt", b"a file, so that the form is sent as multipart/form-data")}
    nul = site.client.post("/subscribe", data={**form, "first_name": "Al\x00ex"}, files=attached)
    assert nul.status_code == 400 and NUL_MESSAGE in html.unescape(nul.text)
    percent = site.client.post("/subscribe", data={**form, "first_name": "Al%00ex"}, files=attached)
    assert percent.status_code == 400 and "Please use just your first name" in percent.text


def test_a_field_that_breaks_a_declared_limit_is_named_on_the_page_that_refuses_it(site: Site) -> None:
    typed = {"email": "alex@example.com", "timezone": "UTC", "send_time": "07:30" * 3, "first_name": "A" * 201}
    refused = site.client.post("/subscribe", data=typed)
    assert refused.status_code == 400
    shown = html.unescape(refused.text)
    assert "The field “send_time” is longer than 10 characters." in shown
    assert "The field “first_name” is longer than 200 characters." in shown
    paused = site.client.post("/preferences/not-a-real-token/pause", data={"length": "a year"})
    assert paused.status_code == 400
    assert "The field “length” is not one of 'week' or 'until-resumed'." in html.unescape(paused.text)


def test_a_length_in_other_digits_is_refused_as_a_request_not_right(site: Site) -> None:
    """ "²" is a digit to str.isdigit but not to int: a Content-Length of it is a bad request, not a crash.
    (HTTP servers refuse it before the app; the app holds its own line too.)"""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
             "path": "/subscribe", "raw_path": b"/subscribe", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"course.example.org"), (b"content-length", "²".encode("latin-1"))],
             "client": ("192.0.2.1", 50000), "server": ("course.example.org", 443)}  # fmt: skip

    async def call() -> None:
        await app_of(site)(scope, receive, send)

    with ThreadPoolExecutor(max_workers=1) as thread:  # a loop of its own, whatever runs on the test's thread
        thread.submit(asyncio.run, call()).result()
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
