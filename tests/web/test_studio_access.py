"""The studio's door: accounts, sign-in, sessions, CSRF; nothing of it without a session."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from course.curriculum import Course
from course.models.studio import AuditEntry, StudioRole, StudioSession, StudioUser
from course.studio import SESSION_IDLE, SESSION_LIFETIME, add_user, reset_password, set_disabled
from emails.compiler import default_templates
from emails.store import files_of, publish
from web.studio.auth import sign_in_link

from .conftest import BROWSER, Site

PASSWORD = "a long studio passphrase"


def make_user(site: Site, email: str = "kayla@example.org", role: StudioRole = StudioRole.PUBLISHER) -> StudioUser:
    with site.session() as session:
        user = add_user(session, email, role=role, password=PASSWORD, now=datetime.now(UTC))
        session.commit()
        session.expunge(user)
        return user


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


def sign_in(site: Site, email: str = "kayla@example.org", password: str = PASSWORD) -> int:
    page = site.client.get("/studio/sign-in")
    response = site.client.post(
        "/studio/sign-in",
        data={"csrf": csrf_of(page.text), "email": email, "password": password, "next": "/studio"},
        follow_redirects=False,
    )
    return response.status_code


def test_nothing_of_the_studio_without_a_session(site: Site) -> None:
    for path in ("/studio", "/studio?x=1"):
        response = site.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/studio/sign-in?next=/studio")
    # A subscriber's signed link, put where the session cookie goes, is not a session.
    site.sign_up_and_confirm()
    token = site.link("alex@example.com", "/preferences/", "Welcome").rsplit("/", 1)[1]
    site.client.cookies.set("studio", token, domain="course.example.org", path="/studio")
    assert site.client.get("/studio", follow_redirects=False).status_code == 303


def test_a_background_request_without_a_session_is_told_so_and_starts_no_session(site: Site) -> None:
    """The editor's preview, asked after the session ended: a 401, no way to the sign-in page and no
    cookie, so that it cannot start a session racing the one the page signs in with."""
    make_user(site)
    for mode in ("cors", "same-origin", "no-cors"):
        answer = site.client.post("/studio/preview", data={"csrf": "x", "item": "welcome"},
                                  headers={"Sec-Fetch-Mode": mode}, follow_redirects=False)  # fmt: skip
        assert answer.status_code == 401 and "session has ended" in answer.text
        assert "set-cookie" not in answer.headers
    assert not site.client.cookies
    page = site.client.get("/studio/sign-in")  # the page the person signs in on, then, is the only one
    site.client.post("/studio/preview", data={"csrf": "x"}, headers={"Sec-Fetch-Mode": "cors"})
    form = {"csrf": csrf_of(page.text), "email": "kayla@example.org", "password": PASSWORD}
    signed = site.client.post("/studio/sign-in", data=form, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/studio"
    # A navigation (the browser's own, or a client that says nothing) still goes to the sign-in page.
    site.client.cookies.clear()
    for headers in ({"Sec-Fetch-Mode": "navigate"}, {}):
        answer = site.client.post("/studio/preview", data={"csrf": "x"}, headers=headers, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/studio/sign-in")


def test_a_one_time_link_sets_the_password_and_signs_in(site: Site) -> None:
    with site.session() as session:
        user = add_user(session, "editor@example.org", role=StudioRole.EDITOR, now=datetime.now(UTC))
        session.commit()
        link = sign_in_link(site.runtime.settings, user).removeprefix("https://course.example.org")
    page = site.client.get(link)
    assert page.status_code == 200 and "Welcome, editor@example.org" in page.text
    # Not signed in yet: the studio's bar (whose first button was "Sign out") is not there.
    assert "Sign out" not in page.text and 'class="studio-bar"' not in page.text
    short = site.client.post(link, data={"csrf": csrf_of(page.text), "password": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    assert "Sign out" not in short.text and "editor@example.org" in short.text
    done = site.client.post(link, data={"csrf": csrf_of(page.text), "password": PASSWORD})
    assert done.status_code == 200 and "The emails" in done.text and "editor@example.org · editor" in done.text
    again = site.client.get(link)
    assert again.status_code == 400 and "does not work any more" in again.text  # it worked once


def test_signing_in_shows_every_email_and_what_is_live(site: Site, course: Course) -> None:
    make_user(site)
    assert sign_in(site) == 303
    page = site.client.get("/studio")
    assert page.status_code == 200
    rows = re.findall(r'<th scope="row">(.*?)</th>', page.text)
    labels = [re.sub(r"<[^>]+>", "", row) for row in rows]
    assert labels[:3] == ["Confirmation", "Welcome", "Day 1"]
    assert labels[19:22] == ["Day 18", "Completion", "Preferences link"]
    assert "Confirm your place in Building Emotional Intimacy" in page.text
    assert "<code>footer.mjml</code>" in page.text
    files = files_of(default_templates(), "welcome")
    files["welcome/subject.txt"] = "Welcome, {{ subscriber.first_name or 'friend' }}"
    with site.session() as session:
        publish(session, course=course, settings=site.runtime.settings, item="welcome", files=files, note="warmer",
                author="kayla@example.org", now=datetime.now(UTC))  # fmt: skip
        session.commit()
    page = site.client.get("/studio")
    assert "Welcome, Sam" in page.text and "kayla@example.org, " in page.text


def test_a_wrong_password_says_nothing_about_the_account_and_attempts_are_limited(site: Site) -> None:
    make_user(site)
    assert sign_in(site, password="not the password") == 400
    assert sign_in(site, email="nobody@example.org", password="not the password") == 400
    for _ in range(4):
        sign_in(site, password="still not it")
    # Five failures for the account: even the right password waits a quarter of an hour.
    assert sign_in(site) == 429
    site.clock.advance(minutes=16)
    assert sign_in(site) == 303


def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    make_user(site)
    missing = site.client.post("/studio/sign-in", data={"email": "kayla@example.org", "password": PASSWORD})
    assert missing.status_code == 403 and "Nothing was changed" in missing.text
    site.client.get("/studio/sign-in")
    forged = site.client.post(
        "/studio/sign-in", data={"csrf": "x" * 43, "email": "kayla@example.org", "password": PASSWORD}
    )
    assert forged.status_code == 403
    assert sign_in(site) == 303
    assert site.client.post("/studio/sign-out", data={}).status_code == 403  # signing out takes the token too


def test_the_session_cookie_is_http_only_lax_secure_and_for_the_studio_only(site: Site) -> None:
    make_user(site)
    page = site.client.get("/studio/sign-in")
    response = site.client.post(
        "/studio/sign-in",
        data={"csrf": csrf_of(page.text), "email": "kayla@example.org", "password": PASSWORD},
        follow_redirects=False,
    )
    cookies = {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}
    cookie = cookies["studio"]
    assert "path=/studio" in cookie and "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower() and "secure" in cookie.lower()
    device = cookies["studio_device"].lower()  # only the sign-in form ever sees it
    assert "path=/studio/sign-in" in device and "httponly" in device and "samesite=strict" in device
    assert "set-cookie" not in site.client.get("/").headers  # the subscriber's pages set no cookie


def browser(site: Site) -> TestClient:
    """Another browser on the same site."""
    return TestClient(site.client.app, base_url="https://course.example.org", headers={"User-Agent": BROWSER})


def sign_in_with(client: TestClient, email: str = "kayla@example.org", password: str = PASSWORD) -> int:
    page = client.get("/studio/sign-in")
    return client.post("/studio/sign-in", follow_redirects=False, data={
        "csrf": csrf_of(page.text), "email": email, "password": password, "next": "/studio"}).status_code  # fmt: skip


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(site: Site) -> None:
    make_user(site)
    assert sign_in(site) == 303
    copied = browser(site)
    copied.cookies.set("studio", site.client.cookies["studio"], domain="course.example.org", path="/studio")
    assert copied.get("/studio", follow_redirects=False).status_code == 200
    page = site.client.get("/studio")
    site.client.post("/studio/sign-out", data={"csrf": csrf_of(page.text)})
    for client in (site.client, copied):
        assert client.get("/studio", follow_redirects=False).status_code == 303
    with site.session() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["add-user", "sign-in", "sign-out"]


def test_a_session_lasts_its_lifetime_from_sign_in_however_busy_and_ends_when_left_idle(site: Site) -> None:
    make_user(site)
    assert sign_in(site) == 303
    busy = SESSION_LIFETIME - timedelta(minutes=1)
    while site.clock() < datetime(2026, 11, 27, 15, 0, tzinfo=UTC) + busy:  # a request every half hour
        assert site.client.get("/studio", follow_redirects=False).status_code == 200
        site.clock.advance(minutes=30)
    site.clock.advance(minutes=1)
    assert site.client.get("/studio", follow_redirects=False).status_code == 303
    assert sign_in(site) == 303
    site.clock.advance(seconds=SESSION_IDLE.total_seconds() + 1)
    assert site.client.get("/studio", follow_redirects=False).status_code == 303
    with site.session() as session:
        endings = session.scalars(select(StudioSession.ended_why).order_by(StudioSession.id)).all()
    assert endings == ["expired", "idle"]


def test_a_new_password_in_the_studio_ends_every_other_session_and_keeps_this_one(site: Site) -> None:
    make_user(site)
    other = browser(site)
    assert sign_in(site) == 303 and sign_in_with(other) == 303
    page = site.client.get("/studio/account")
    assert page.status_code == 200 and "Change your password" in page.text
    form = {"csrf": csrf_of(page.text), "current": PASSWORD, "password": "another long passphrase"}
    differ = site.client.post("/studio/account/password", data={**form, "again": "another long passphrase!"})
    assert differ.status_code == 400 and "differ" in differ.text
    wrong = site.client.post("/studio/account/password", data={**form, "current": "not it at all", "again":
                                                               "another long passphrase"})  # fmt: skip
    assert wrong.status_code == 400 and "not your current password" in wrong.text
    done = site.client.post("/studio/account/password", data={**form, "again": "another long passphrase"})
    assert done.status_code == 200 and "signed out everywhere else (1)" in done.text
    assert site.client.get("/studio", follow_redirects=False).status_code == 200
    assert other.get("/studio", follow_redirects=False).status_code == 303
    assert sign_in_with(other) == 400  # the old password is gone
    assert sign_in_with(other, password="another long passphrase") == 303
    with site.session() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["add-user", "sign-in", "sign-in", "password-change", "sign-in"]


def test_reset_and_disable_from_the_command_line_end_every_session(site: Site) -> None:
    make_user(site)
    assert sign_in(site) == 303
    with site.session() as session:
        user = reset_password(session, "Kayla@Example.org", site.clock())
        session.commit()
        link = sign_in_link(site.runtime.settings, user).removeprefix("https://course.example.org")
    assert site.client.get("/studio", follow_redirects=False).status_code == 303
    assert sign_in(site) == 400  # no password any more
    page = site.client.get(link)
    site.client.post(link, data={"csrf": csrf_of(page.text), "password": "a brand new passphrase"})
    assert site.client.get("/studio", follow_redirects=False).status_code == 200
    with site.session() as session:
        set_disabled(session, "kayla@example.org", site.clock(), disabled=True)
        session.commit()
    assert site.client.get("/studio", follow_redirects=False).status_code == 303
    assert sign_in(site, password="a brand new passphrase") == 400
    assert site.client.get(link).status_code == 400  # its links too
    with site.session() as session:
        set_disabled(session, "kayla@example.org", site.clock(), disabled=False)
        session.commit()
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert sign_in(site, password="a brand new passphrase") == 303
    assert actions == ["add-user", "sign-in", "reset-password", "set-password", "disable-user", "enable-user"]


def test_sign_in_limits_count_the_account_not_the_text_typed(site: Site) -> None:
    make_user(site, "editor@example.org", StudioRole.EDITOR)
    spellings = ["editor@example.org", "Editor@Example.org", "editor@\uff45xample.org", " EDITOR@example.org ",
                 "editor@ｅｘａｍｐｌｅ.org"]  # fmt: skip
    attacker = browser(site)
    codes = [sign_in_with(attacker, spelling, "wrong password!!") for spelling in spellings]
    assert codes == [400] * 5
    for spelling in spellings:
        assert sign_in_with(attacker, spelling, PASSWORD) == 429
        assert sign_in_with(browser(site), spelling, PASSWORD) == 429  # any browser it never signed in from


def test_a_stranger_who_fails_cannot_lock_out_the_owners_own_browser(site: Site) -> None:
    make_user(site, "editor@example.org", StudioRole.EDITOR)
    owner = browser(site)
    assert sign_in_with(owner, "editor@example.org") == 303  # the owner's browser gets its device cookie
    owner.post("/studio/sign-out", data={"csrf": csrf_of(owner.get("/studio").text)})
    for _ in range(10):  # the attacker, from anywhere, fails again and again
        sign_in_with(browser(site), "editor@example.org", "guessing away!!")
    assert sign_in_with(browser(site), "editor@example.org") == 429
    assert sign_in_with(owner, "editor@example.org") == 303
    # A device cookie is for its account only, and cannot be forged.
    thief = browser(site)
    thief.cookies.set("studio_device", "forged.value.here", domain="course.example.org", path="/studio/sign-in")
    assert sign_in_with(thief, "editor@example.org") == 429


def test_after_signing_in_it_goes_back_only_to_a_studio_page(site: Site) -> None:
    make_user(site)
    page = site.client.get("/studio/sign-in?next=https://evil.example/")
    assert 'name="next" value="/studio"' in page.text
    response = site.client.post(
        "/studio/sign-in",
        data={"csrf": csrf_of(page.text), "email": "kayla@example.org", "password": PASSWORD, "next": "//evil.example"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/studio"
