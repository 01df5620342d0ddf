"""Editing in the studio: drafts, checks, publishing, conflicts, roll-backs and the diff."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from course.models.studio import AuditEntry, StudioRole
from course.studio import add_user
from emails.compiler import default_templates

from .conftest import BROWSER, Site
from .test_studio_access import PASSWORD, csrf_of

DAY_FILES = {path.split("/")[1]: text for path, text in default_templates().files.items() if path.startswith("day/")}


def signed_in(site: Site, email: str, role: StudioRole, client: TestClient | None = None) -> TestClient:
    client = client or site.client
    with site.session() as session:
        add_user(session, email, role=role, password=PASSWORD, now=datetime.now(UTC))
        session.commit()
    page = client.get("/studio/sign-in")
    client.post("/studio/sign-in", data={"csrf": csrf_of(page.text), "email": email, "password": PASSWORD})
    return client


def editor_form(client: TestClient, item: str) -> tuple[str, int]:
    page = client.get(f"/studio/edit?item={item}")
    assert page.status_code == 200, page.text
    revision = re.search(r'name="revision" value="(\d+)"', page.text)
    assert revision
    return csrf_of(page.text), int(revision.group(1))


def save(client: TestClient, item: str, subject: str, revision: int | None = None) -> tuple[int, str]:
    csrf, current = editor_form(client, item)
    response = client.post("/studio/save", data={
        "csrf": csrf, "item": item, "revision": current if revision is None else revision,
        "subject.txt": subject, "body.mjml": DAY_FILES["body.mjml"], "body.txt": DAY_FILES["body.txt"],
    })  # fmt: skip
    return response.status_code, response.text


def publish(client: TestClient, item: str, note: str) -> int:
    page = client.get(f"/studio/edit?item={item}")
    revision = re.search(r'name="revision" value="(\d+)"', page.text)
    assert revision, "no publish form"
    response = client.post("/studio/publish", data={"csrf": csrf_of(page.text), "item": item,
                                                    "revision": revision.group(1), "note": note},
                           follow_redirects=False)  # fmt: skip
    return response.status_code


def test_an_editor_saves_a_checked_draft_and_nothing_changes_until_a_publisher_publishes(site: Site) -> None:
    editor = signed_in(site, "sam@example.org", StudioRole.EDITOR)
    status, text = save(editor, "day", "Today: {{ day.title }}")
    assert status == 200 and "Draft saved. Every email renders with it." in text
    assert "Day 3: Pick a ritual that is just yours" in editor.get("/studio").text  # still the live subject
    csrf = csrf_of(editor.get("/studio/edit?item=day").text)
    refused = editor.post("/studio/publish", data={"csrf": csrf, "item": "day", "revision": 1, "note": "x"})
    assert refused.status_code == 403 and "for publishers" in refused.text

    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER,
                          TestClient(site.client.app, base_url="https://course.example.org",
                                     headers={"User-Agent": BROWSER}))  # fmt: skip
    assert publish(publisher, "day", "a shorter subject") == 303
    listing = publisher.get("/studio").text
    assert "Today: Create Rituals of Connection" in listing and "kayla@example.org, " in listing
    with site.session() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.item == "day").order_by(AuditEntry.id))
        assert list(actions) == ["save-draft", "publish"]


def test_a_broken_draft_is_saved_with_its_problems_named_and_cannot_be_published(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    status, text = save(publisher, "day", "Day {{ day.number }}: {{ day.subtitle }}")
    assert status == 200 and "It does not render yet" in text
    assert "day-01 … day-18 (18 emails)</strong>, subject.txt" in text and "undefined" in html.unescape(text)
    status, text = save(publisher, "day", "{{ letter.title }}")
    assert "unknown variable: letter" in html.unescape(text)
    assert publish(publisher, "day", "broken") == 400
    assert "Day 1: A 5-minute check-in that keeps you close" in publisher.get("/studio").text


def test_two_people_saving_one_draft_never_overwrite_each_other(site: Site) -> None:
    first = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    second = signed_in(site, "sam@example.org", StudioRole.EDITOR,
                       TestClient(site.client.app, base_url="https://course.example.org",
                                  headers={"User-Agent": BROWSER}))  # fmt: skip
    _, opened_at = editor_form(second, "welcome")  # both open the editor at revision 0
    welcome = {path.split("/")[1]: text for path, text in default_templates().files.items()
               if path.startswith("welcome/")}  # fmt: skip
    csrf, revision = editor_form(first, "welcome")
    first.post("/studio/save", data={"csrf": csrf, "item": "welcome", "revision": revision,
                                     "subject.txt": "Kayla's subject", "body.mjml": welcome["body.mjml"],
                                     "body.txt": welcome["body.txt"]})  # fmt: skip
    csrf = csrf_of(second.get("/studio/edit?item=welcome").text)
    late = second.post("/studio/save", data={"csrf": csrf, "item": "welcome", "revision": opened_at,
                                             "subject.txt": "Sam's subject", "body.mjml": welcome["body.mjml"],
                                             "body.txt": welcome["body.txt"]})  # fmt: skip
    assert late.status_code == 409 and "saved this draft while you were editing" in late.text
    # Nothing lost: Sam's text is still in the form, Kayla's is shown beside it, and the saved draft is Kayla's.
    assert "Sam&#39;s subject</textarea>" in late.text and "Kayla&#39;s subject</pre>" in late.text
    assert "Kayla&#39;s subject</textarea>" in first.get("/studio/edit?item=welcome").text


def test_roll_back_and_compare_versions(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    save(publisher, "day", "First: {{ day.title }}")
    assert publish(publisher, "day", "one") == 303
    save(publisher, "day", "Second: {{ day.title }}")
    assert publish(publisher, "day", "two") == 303
    assert "Second: Practice Daily Check-Ins" in publisher.get("/studio").text
    diff = publisher.get("/studio/diff?item=day&before=1&after=2")
    shown = html.unescape(re.sub(r"<[^>]+>", "", diff.text)).replace("\xa0", " ")  # spaces are &nbsp; there
    assert diff.status_code == 200 and "First: {{ day.title }}" in shown and "Second: {{ day.title }}" in shown
    assert '<code>day/body.txt</code></h2>\n  <p class="muted">No change.</p>' in diff.text
    page = publisher.get("/studio/edit?item=day").text  # any two versions, picked on the editor page
    assert '<form method="get" action="/studio/diff"' in page and '<option value="0">version 0 (as shipped)' in page
    save(publisher, "day", "Third: {{ day.title }}")
    assert 'value="draft" selected' in publisher.get("/studio/edit?item=day").text
    shown = html.unescape(publisher.get("/studio/diff?item=day&before=0&after=draft").text).replace("\xa0", " ")
    assert "Version 0 and the draft" in shown and "Third: {{ day.title }}" in shown
    assert publisher.get("/studio/diff?item=day&before=0&after=later").status_code == 400
    csrf = csrf_of(publisher.get("/studio/edit?item=day").text)
    back = publisher.post("/studio/roll-back", data={"csrf": csrf, "item": "day", "number": 1}, follow_redirects=False)
    assert back.status_code == 303
    assert "First: Practice Daily Check-Ins" in publisher.get("/studio").text
    publisher.post("/studio/roll-back", data={"csrf": csrf, "item": "day", "number": 0, "note": "as it was"})
    assert "Day 1: A 5-minute check-in that keeps you close" in publisher.get("/studio").text
    # Each time the item went live is listed, newest first, with why.
    history = publisher.get("/studio/edit?item=day").text.split("What went live, and when", 1)[1]
    rows = [html.unescape(re.sub(r"<[^>]+>", "", row)).split(", ")[0]
            for row in re.findall(r"<tr>(.*?)</tr>", history, re.S)[1:]]  # fmt: skip
    assert [" ".join(row.split()) for row in rows] == [
        "Rolled back to version 0 (as shipped) as it was kayla@example.org",
        "Rolled back to version 1 back to version 1 kayla@example.org",
        "Published version 2 two kayla@example.org",
        "Published version 1 one kayla@example.org",
    ]
    with site.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "roll-back")
                                .order_by(AuditEntry.id.desc())).first()  # fmt: skip
        assert entry is not None and (entry.version, entry.detail) == (0, "as it was")


def test_a_draft_can_be_thrown_away_but_not_a_colleagues_newer_one(site: Site) -> None:
    editor = signed_in(site, "sam@example.org", StudioRole.EDITOR)
    save(editor, "welcome", "Mine: {{ subscriber.first_name }}")
    page = editor.get("/studio/edit?item=welcome").text
    assert "Throw the draft away…" in page and "Mine: {{ subscriber.first_name }}" in html.unescape(page)
    csrf = csrf_of(page)
    colleague = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER,
                          TestClient(site.client.app, base_url="https://course.example.org",
                                     headers={"User-Agent": BROWSER}))  # fmt: skip
    save(colleague, "welcome", "Theirs: {{ subscriber.first_name }}", revision=1)  # revision 2, after my page
    stale = editor.post("/studio/discard", data={"csrf": csrf, "item": "welcome", "revision": 1})
    assert stale.status_code == 409 and "Nothing was discarded: kayla@example.org saved" in stale.text
    fresh = editor.get("/studio/edit?item=welcome").text
    gone = editor.post("/studio/discard", data={"csrf": csrf_of(fresh), "item": "welcome", "revision": 2},
                       follow_redirects=False)  # fmt: skip
    assert (
        gone.status_code == 303
        and gone.headers["location"] == "/studio/edit?course=building-emotional-intimacy&item=welcome&discarded=2"
    )
    after = editor.get(gone.headers["location"]).text
    assert "The draft is thrown away" in after and "No draft: the text below is what is live." in after
    assert 'data-saved="yes"' in after  # the browser's kept copy of the form goes too
    with site.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "discard-draft")).one()
        assert (entry.item, entry.version) == ("welcome", 2)
    again = editor.post("/studio/discard", data={"csrf": csrf_of(after), "item": "welcome", "revision": 2})
    assert again.status_code == 409 and "someone published or discarded" in again.text


def test_a_resource_bomb_is_refused_and_the_site_keeps_answering(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    status, text = save(publisher, "day", '{{ "A" * 10**9 }}')
    # Named by the render budget (emails/compiler.py) before the checking child's limits are reached.
    assert status == 200 and "a piece of text of about 1,000,000,000 characters" in text
    assert site.client.get("/healthz").status_code == 200
    assert publish(publisher, "day", "bomb") == 400


def test_unknown_items_and_forms_without_their_token_are_refused(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert publisher.get("/studio/edit?item=../course/settings.py").status_code == 404
    assert publisher.get("/studio/edit?item=day-07").status_code == 200  # a day's own files, to be made
    no_token = publisher.post("/studio/save", data={"item": "day", "revision": 0, "subject.txt": "x"})
    assert no_token.status_code == 403


def test_a_test_send_goes_to_the_signed_in_user_only_marked_and_limited(site: Site) -> None:
    editor = signed_in(site, "sam@example.org", StudioRole.EDITOR)
    save(editor, "day", "Fresh: {{ day.title }}")
    csrf = csrf_of(editor.get("/studio/edit?item=day").text)
    sent = editor.post("/studio/test-send", data={"csrf": csrf, "item": "day", "email": "day-03"})
    assert sent.status_code == 200 and "is on its way to sam@example.org" in sent.text
    (test,) = site.smtp.to("sam@example.org")
    assert test.subject == "[Test] Fresh: Create Rituals of Connection"
    # Its links belong to nobody: they open a page and change no subscriber.
    unsubscribe = re.search(
        r"<https://course\.example\.org(/unsubscribe/[^>]+)>", str(test.message["List-Unsubscribe"])
    )
    assert unsubscribe, str(test.message["List-Unsubscribe"])
    assert site.client.post(unsubscribe.group(1)).status_code == 200
    wrong = editor.post("/studio/test-send", data={"csrf": csrf, "item": "day", "email": "welcome"})
    assert wrong.status_code == 400
    for _ in range(9):
        editor.post("/studio/test-send", data={"csrf": csrf, "item": "day", "email": "day-01"})
    limited = editor.post("/studio/test-send", data={"csrf": csrf, "item": "day", "email": "day-01"})
    assert limited.status_code == 429 and len(site.smtp.to("sam@example.org")) == 10
    assert site.smtp.received == site.smtp.to("sam@example.org")  # nobody else got anything
    with site.session() as session:
        sends = session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "test-send")).all()
    assert len(sends) == 10 and str(sends[0]).startswith("day-03 (draft) to sam@example.org")


def test_the_preview_renders_the_text_as_typed_for_its_maker_only(site: Site) -> None:
    editor = signed_in(site, "sam@example.org", StudioRole.EDITOR)
    csrf, _ = editor_form(editor, "day")
    panel = editor.post("/studio/preview", data={
        "csrf": csrf, "item": "day", "email": "day-05", "first_name": "Robin",
        "subject.txt": "Typed, not saved: {{ day.title }}", "body.mjml": DAY_FILES["body.mjml"],
        "body.txt": DAY_FILES["body.txt"],
    })  # fmt: skip
    assert panel.status_code == 200
    assert "Typed, not saved: Express Appreciation Daily" in panel.text and "of the ~102 KB" in panel.text
    frame = re.search(r'src="(/studio/preview/[^/]+/html)"', panel.text)
    assert frame
    email = editor.get(frame.group(1))
    assert email.status_code == 200 and "Hi Robin," in email.text
    assert "sandbox" in email.headers["content-security-policy"]
    dark = editor.get(frame.group(1) + "?scheme=dark").text
    assert "prefers-color-scheme: dark" in email.text and "prefers-color-scheme: dark" not in dark
    # The editor page may frame it; nothing was saved; another studio user cannot open it.
    assert "frame-src 'self'" in editor.get("/studio/edit?item=day").headers["content-security-policy"]
    assert "Draft saved" not in editor.get("/studio/edit?item=day").text
    other = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER,
                      TestClient(site.client.app, base_url="https://course.example.org",
                                 headers={"User-Agent": BROWSER}))  # fmt: skip
    assert other.get(frame.group(1)).status_code == 404
    # Signed out, the frame says so in the frame (the sign-in page refuses to be framed), and shows nothing.
    signed_out = TestClient(site.client.app, base_url="https://course.example.org", headers={"User-Agent": BROWSER})
    gone = signed_out.get(frame.group(1), follow_redirects=False)
    assert gone.status_code == 401 and "Your session has ended" in gone.text and "Robin" not in gone.text
    assert "sandbox" in gone.headers["content-security-policy"] and gone.headers["x-frame-options"] == "SAMEORIGIN"
    broken = editor.post("/studio/preview", data={"csrf": csrf, "item": "day", "email": "day-05",
                                                  "subject.txt": "{{ day.nope }}", "body.mjml": DAY_FILES["body.mjml"],
                                                  "body.txt": DAY_FILES["body.txt"]})  # fmt: skip
    assert broken.status_code == 200 and "It does not render" in broken.text


def test_a_day_gets_its_own_files_starting_from_the_day_template(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    page = publisher.get("/studio/edit?item=day-07")
    assert "Day {{ day.position }}: {{ day.title }}{% endif %}\n</textarea>" in page.text  # a copy of day/subject.txt
    _, revision = editor_form(publisher, "day-07")
    save(publisher, "day-07", "A week in: {{ day.title }}", revision)
    assert publish(publisher, "day-07", "day 7 says a week") == 303
    listing = publisher.get("/studio").text
    assert "A week in: Share Your Dreams and Fears" in listing
    assert "Day 8: What are you two building together?" in listing


def test_only_the_courses_own_days_can_have_files_of_their_own(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    assert publisher.get("/studio/edit?item=day-18").status_code == 200
    for item in ("day-19", "day-00", "day-7x"):
        assert publisher.get(f"/studio/edit?item={item}").status_code == 404, item


ANSWERED_SUBJECT = (
    '{% if "warning-signs" in answers %}[{{ answers["warning-signs"].label }}] {% endif %}Day {{ day.number }}: '
    "{{ day.title }}"
)


def test_the_preview_and_the_sent_email_speak_to_the_readers_answers_so_far(site: Site) -> None:
    publisher = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    csrf, _ = editor_form(publisher, "day")
    typed = {"csrf": csrf, "item": "day", "email": "day-02", "subject.txt": ANSWERED_SUBJECT,
             "body.mjml": DAY_FILES["body.mjml"], "body.txt": DAY_FILES["body.txt"]}  # fmt: skip
    none_yet = publisher.post("/studio/preview", data=typed)
    assert "Day 2: Turn Toward Bids for Connection" in none_yet.text and "checked]" not in none_yet.text
    answered = publisher.post("/studio/preview", data={**typed, "answer.warning-signs": "significant",
                                                       "answer.no-such-checklist": "x"})  # fmt: skip
    assert "[4+ checked] Day 2: Turn Toward Bids for Connection" in html.unescape(answered.text)
    unknown_band = publisher.post("/studio/preview", data={**typed, "answer.warning-signs": "no-such-band"})
    assert "checked]" not in unknown_band.text  # an answer the course does not have is no answer
    page = publisher.get("/studio/edit?item=day").text
    assert 'data-answer="warning-signs"' in page and "4+ checked: " in page

    assert save(publisher, "day", ANSWERED_SUBJECT)[0] == 200
    assert publish(publisher, "day", "the answer in the subject") == 303
    site.sign_up_and_confirm("sam@example.com")  # another reader, who answers nothing: each their own answers
    site.sign_up_and_confirm()
    welcome_answers = [link for link in site.links("alex@example.com", "Welcome") if link.startswith("/answer/")]
    assert site.submit(welcome_answers[2]).status_code == 200  # "4+ checked"
    # The preview as Alex: their first name and their answer so far, not the sample's; links that are nobody's.
    as_alex = publisher.post("/studio/preview", data={**typed, "reader": " Alex@Example.com ", "first_name": "Sam"})
    text = html.unescape(as_alex.text)
    assert "[4+ checked] Day 2" in text and "for Alex (alex@example.com; answered warning-signs: 4+ checked)" in text
    for stranger, why in (("nobody@example.com", "No reader of this course has the address nobody@example.com"),
                          ("not an address", "“not an address” is not an email address")):  # fmt: skip
        sample = {**typed, "reader": stranger, "first_name": "Sam"}
        answer = html.unescape(publisher.post("/studio/preview", data=sample).text)
        assert why in answer and "for Sam" in answer and "checked]" not in answer  # the sample, said so
    alex = site.subscriber("alex@example.com")
    assert alex.next_send_at is not None
    site.clock.to(alex.next_send_at)
    site.tick()
    assert [m.subject for m in site.smtp.to("alex@example.com")][-1] == "[4+ checked] Day 1: Practice Daily Check-Ins"
    assert [m.subject for m in site.smtp.to("sam@example.com")][-1] == "Day 1: Practice Daily Check-Ins"
