"""Hostile input with counts, in the studio's editor: the Big List of Naughty Strings through every
field of its forms (save, publish, roll back, test, preview) and the query of its pages (the editor,
the preview, the diff). tests/web/test_naughty_strings.py says what each answer must be, and
tests/web/test_naughty_strings_studio.py how the studio's fields are sampled: the whole list would
take minutes here, since a save or a publish renders every email of the course in a child process
(1 to 3 s) and a preview renders one (about 1 s).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import yaml
from httpx2 import Response
from sqlalchemy import func, select

from course.curriculum import Course, load_course
from course.models.studio import StudioRole
from course.models.templates import TemplatePublication, TemplateVersion
from course.studio import add_user
from emails.store import draft_of
from web.security import EMAIL_POLICY
from web.studio.words import sections, shape

from ..support.asgi import DirectClient
from ..support.naughty import Tally
from .conftest import Site
from .test_naughty_strings import Run, app_of, field_named, run_of
from .test_naughty_strings_studio import (
    LIST,
    NOT_OURS,
    NUL_SAMPLES,
    Check,
    Samples,
    answer,
    never,
    sign_in,
    through,
    writes_only,
)
from .test_studio_access import PASSWORD, csrf_of
from .test_studio_editing import DAY_FILES, editor_form, signed_in

# --- The editor: save, publish, roll back, test, preview, compare -------------------------------------------

TEMPLATE_WRITES = ("template_drafts", "audit_log")
PUBLISH_WRITES = ("template_versions", "template_publications", "template_drafts", "audit_log")
UNKNOWN_ITEM = ("No such template", field_named("item"))
WORDS_ITEM = "_words/day-01.yaml"
SHARED_ITEM = "_base/footer.mjml"


def words_fields(course: Course, item: str) -> dict[str, str]:
    """The words form's text fields, by name, and what kind of text each takes (as the form describes them);
    a block's settings (a button's action, a guide's choice, an image's width) are choices, not text."""
    return {
        field.name: field.kind
        for section in sections(course, item, shape(course, item))
        for field in section.fields
        if field.kind in {"line", "text", "paragraphs", "lines"}
    }


def as_worded(kind: str, value: str) -> object:
    """What a words field keeps of the text typed in it: the text trimmed; paragraphs split at blank
    lines; a list, an item per line, each line's spaces made one."""
    typed = value.replace("\r\n", "\n")
    if kind == "paragraphs":
        return [part.strip() for part in re.split(r"\n[ \t]*\n", typed) if part.strip()]
    if kind == "lines":
        return [" ".join(part.split()) for part in typed.split("\n") if part.strip()]
    return typed.strip()


@dataclass
class Editor:
    """A publisher in the editor, sending strings through its forms."""

    site: Site
    run: Run
    client: DirectClient
    csrf: str
    course: Course
    previews: list[str] = field(default_factory=list)

    def post(self, path: str, **typed: str) -> Response:
        return self.client.post(path, data={"csrf": self.csrf, **typed}, follow_redirects=False)

    def get(self, path: str, **query: str) -> Response:
        return self.client.get(f"{path}?{urlencode(query)}", follow_redirects=False)

    def draft(self, item: str) -> tuple[int, dict[str, str]]:
        with self.site.session() as session:
            found = draft_of(session, self.course.slug, item)
            return (found.revision, json.loads(found.files)) if found is not None else (0, {})

    def save(self, item: str, **files: str) -> Response:
        return self.post("/studio/save", item=item, revision=str(self.draft(item)[0]), **files)

    def saved(self, item: str, expected: Callable[[dict[str, str]], str | None]) -> Check:
        """A save that says so, stored the draft as ``expected`` says, and wrote nothing else."""

        def judge(value: str, response: Response, tables: set[str]) -> str | None:
            location = response.headers.get("location", "")
            if response.status_code != 303 or "/studio/edit?" not in location or "saved=" not in location:
                return "a save that does not come back to the editor (Post/Redirect/Get)"
            if "Draft saved." not in self.client.get(location).text:
                return "a save that does not say it saved"
            if (problem := writes_only(*TEMPLATE_WRITES)(value, response, tables)) is not None:
                return problem
            return expected(self.draft(item)[1])

        return judge

    def published(self, item: str) -> Check:
        """A publish that went back to the editor, stored the string as its note, and shows it as text."""

        def judge(value: str, response: Response, tables: set[str]) -> str | None:
            if not str(response.headers.get("location")).startswith(
                f"/studio/edit?course=building-emotional-intimacy&item={quote(item)}&published="
            ):
                return f"published, then sent to {response.headers.get('location')}"
            if (problem := writes_only(*PUBLISH_WRITES)(value, response, tables)) is not None:
                return problem
            with self.site.session() as session:
                version = session.scalars(select(TemplateVersion).order_by(TemplateVersion.id.desc()).limit(1)).one()
            if item == WORDS_ITEM and version.note != (value.strip() or "no note"):
                return f"the note was stored as {version.note!r}"
            for path in (f"/studio/edit?{urlencode({'item': item})}", "/studio"):  # the history, the list
                shown = self.client.get(path)
                self.run.page(f"page {path}", value, shown)
                if shown.status_code != 200:
                    return f"{path} answers {shown.status_code} after the publish"
            return None

        return judge

    def rolled_back(self, value: str, response: Response, tables: set[str]) -> str | None:
        back = "/studio/edit?course=building-emotional-intimacy&item=welcome&rolled-back=0"
        if response.headers.get("location") != back:
            return f"rolled back, then sent to {response.headers.get('location')}"
        return writes_only("template_publications", "audit_log")(value, response, tables)

    def previewed(self, reader: bool) -> Check:
        """A preview panel, whose email opens sandboxed; with the string as the reader's name, the email
        shows it as text (the template text is the marketer's own markup)."""

        def judge(value: str, response: Response, tables: set[str]) -> str | None:
            if (problem := writes_only("template_previews")(value, response, tables)) is not None:
                return problem
            token = re.search(r'data-token="([^"]*)"', response.text)
            if token is None:
                return "no preview panel"
            if not token.group(1):
                return None if "It does not render" in response.text and not reader else "the preview did not render"
            self.previews.append(token.group(1))
            email = self.client.get(f"/studio/preview/{token.group(1)}/html")
            if email.status_code != 200 or email.headers.get("content-security-policy") != EMAIL_POLICY:
                return f"the previewed email: {email.status_code}, {email.headers.get('content-security-policy')}"
            if not reader:
                return None
            return "; ".join(self.run.markup.problems(email.text, value)) or None

        return judge


def test_naughty_strings_through_the_studios_editor(site: Site) -> None:
    studio_editor(site, LIST).check()


def studio_editor(site: Site, samples: Samples) -> Run:
    """Every form of the editor, and the query of its pages (the editor itself, the preview, the diff)."""
    _, some, few = samples
    with site.session() as session:
        add_user(session, "kayla@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=datetime.now(UTC))
        session.commit()
    course = load_course()
    words = words_fields(course, WORDS_ITEM)
    texts = {name: DAY_FILES[name] for name in ("subject.txt", "body.mjml", "body.txt")}
    fields = {
        "edit item": some, "save item": some, "save revision": some, "save subject.txt+body.mjml+body.txt": few,
        "save shared": few[-1:], f"save {len(words)} words fields": few, "publish item": some, "publish revision": some,
        "publish note": few, "roll-back item": some, "roll-back number": some, "roll-back note": few,
        "discard item": some, "test-send item": some,
        "test-send email": some, "preview item": some, "preview first_name+email+answer": few,
        "preview subject.txt+body.mjml+body.txt": few, "preview page token": some, "preview page scheme": some,
        "diff item": some, "diff before": some, "diff after": some,
    }  # fmt: skip
    with run_of(site, Tally("studio editor", {name: len(values) for name, values in fields.items()})) as run:
        client = run.client
        assert sign_in(client, "kayla@example.org").status_code == 303
        run.snapshots.changed()  # signed in
        editor = Editor(site, run, client, csrf_of(client.get("/studio/edit?item=day").text), course)
        post, get = editor.post, editor.get

        def stored_as(wanted: dict[str, str]) -> Callable[[dict[str, str]], str | None]:
            return lambda files: None if files == wanted else f"saved {files!r:.200}"

        through(run, "edit item", some, lambda v: get("/studio/edit", item=v), UNKNOWN_ITEM, never)
        through(run, "save item", some, lambda v: post("/studio/save", item=v, revision="0", **texts), UNKNOWN_ITEM,
                never)  # fmt: skip
        # A shared section that does not render: the check of every email stops at once.
        through(run, "save revision", some, lambda v: post("/studio/save", item=SHARED_ITEM, revision=v, shared="{{"),
                ("saved this draft while you were editing", field_named("revision")),
                writes_only(*TEMPLATE_WRITES))  # fmt: skip
        for value in few:  # an email's three files at once
            typed = value.replace("\r\n", "\n")
            answer(run, "save subject.txt+body.mjml+body.txt", value, editor.save("day", **dict.fromkeys(texts, value)),
                   (), editor.saved("day", stored_as({f"day/{name}": typed for name in texts})))  # fmt: skip
        for value in few[-1:]:  # a shared section, with the script (an emptied file is the day's, above)
            answer(run, "save shared", value, editor.save(SHARED_ITEM, shared=value), (),
                   editor.saved(SHARED_ITEM, stored_as({SHARED_ITEM: value.replace("\r\n", "\n")})))  # fmt: skip
        for value in few:  # every field of the wording at once, then published with the string for its note
            saved = editor.save(WORDS_ITEM, **dict.fromkeys(words, value))
            answer(run, f"save {len(words)} words fields", value, saved, (),
                   editor.saved(WORDS_ITEM, partial(worded, words, value)))  # fmt: skip
            revision = str(editor.draft(WORDS_ITEM)[0])
            answer(run, "publish note", value, post("/studio/publish", item=WORDS_ITEM, revision=revision, note=value),
                   ("Not published",), editor.published(WORDS_ITEM))  # fmt: skip
        through(run, "publish item", some, lambda v: post("/studio/publish", item=v, revision="1", note="x"),
                UNKNOWN_ITEM, never)  # fmt: skip
        through(run, "publish revision", some, lambda v: post("/studio/publish", item="day", revision=v, note="x"),
                ("The draft changed (or was published)", "Not published", field_named("revision")),
                editor.published("day"))  # fmt: skip
        through(run, "roll-back item", some, lambda v: post("/studio/roll-back", item=v, number="0"), UNKNOWN_ITEM,
                never)  # fmt: skip
        through(run, "roll-back number", some, lambda v: post("/studio/roll-back", item="welcome", number=v),
                ("welcome has no version", field_named("number")), editor.rolled_back)  # fmt: skip
        through(run, "roll-back note", few, lambda v: post("/studio/roll-back", item="welcome", number="0", note=v),
                (field_named("note"),), editor.rolled_back)  # fmt: skip
        through(run, "discard item", some, lambda v: post("/studio/discard", item=v, revision="1"), UNKNOWN_ITEM,
                never)  # fmt: skip
        through(run, "test-send item", some, lambda v: post("/studio/test-send", item=v, email="day-01"),
                UNKNOWN_ITEM, never)  # fmt: skip
        through(run, "test-send email", some, lambda v: post("/studio/test-send", item="day", email=v),
                ("does not use day", field_named("email")), never)  # fmt: skip
        through(run, "preview item", some, lambda v: post("/studio/preview", item=v, email="day-01"), UNKNOWN_ITEM,
                never)  # fmt: skip
        chosen = f"answer.{next(iter(course.checklists))}"  # the reader's answer to the first checklist
        through(run, "preview first_name+email+answer", few,
                lambda v: post("/studio/preview", item="day", email=v, first_name=v, **{chosen: v}, **texts),
                (field_named("first_name"),), editor.previewed(reader=True))  # fmt: skip
        through(run, "preview subject.txt+body.mjml+body.txt", few,
                lambda v: post("/studio/preview", item="day", email="day-01", **dict.fromkeys(texts, v)), (),
                editor.previewed(reader=False))  # fmt: skip
        preview = editor.previews[0] if editor.previews else "none"  # the scheme is checked before the preview
        through(run, "preview page token", some, lambda v: client.get(f"/studio/preview/{quote(v, safe='')}/html"),
                ("No such preview", *NOT_OURS), never)  # fmt: skip
        through(run, "preview page scheme", some, lambda v: get(f"/studio/preview/{preview}/html", scheme=v),
                ("The address's “scheme”",), never)  # fmt: skip
        through(run, "diff item", some, lambda v: get("/studio/diff", item=v), UNKNOWN_ITEM, never)
        through(run, "diff before", some, lambda v: get("/studio/diff", item="day", before=v),
                ("has no version", "The address's “before”"), writes_only())  # fmt: skip
        through(run, "diff after", some, lambda v: get("/studio/diff", item="day", after=v),
                ("has no version", "There is no draft", "The address's “after”"), writes_only())  # fmt: skip
    return run


def worded(words: dict[str, str], value: str, files: dict[str, str]) -> str | None:
    """Whether the saved words file holds ``value`` in every field, as each field keeps text."""
    data = yaml.safe_load(files[WORDS_ITEM])
    for name, kind in words.items():
        found: Any = data
        for part in name.removeprefix("w.").split("."):
            found = found[int(part)] if isinstance(found, list) else (found or {}).get(part)
        wanted = as_worded(kind, value)
        optional = name in {"w.subject", "w.preview"} or name.endswith((".label", ".note"))  # empty: none
        if found != wanted and not (optional and not wanted and found is None):
            return f"{name} saved as {found!r:.80}, not {wanted!r:.80}"
    return None


# --- What the strings found ---------------------------------------------------------------------------


def test_a_nul_character_in_any_field_of_the_editor_is_refused_with_a_page_that_says_so_and_nothing_written(
    site: Site,
) -> None:
    """Before, a NUL in a publish's note, in the preview's reader name or in a preview's address was a
    server error: PostgreSQL's text cannot hold one."""
    run = studio_editor(site, NUL_SAMPLES)
    run.check()
    assert set(run.tally.statuses) == {400}, run.tally.line()


def test_a_file_emptied_in_the_editor_is_saved_empty_not_left_out(site: Site) -> None:
    """FastAPI reads a field sent empty as one not sent: the emptied file was left out of the draft (and
    a publish of it would have removed the file), while the page said the draft was saved."""
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    csrf, revision = editor_form(client, "day")
    typed = {"subject.txt": DAY_FILES["subject.txt"], "body.mjml": DAY_FILES["body.mjml"], "body.txt": ""}
    saved = client.post("/studio/save", data={"csrf": csrf, "item": "day", "revision": revision, **typed})
    assert saved.status_code == 200 and "Draft saved." in saved.text
    with site.session() as session:
        draft = draft_of(session, app_of(site).state.context.default_slug, "day")
        assert draft is not None
        assert json.loads(draft.files) == {f"day/{name}": text for name, text in typed.items()}
    # The preview of three emptied files is of them, not of the saved draft.
    empty = client.post("/studio/preview", data={"csrf": csrf, "item": "day", "email": "day-01", "subject.txt": "",
                                                 "body.mjml": "", "body.txt": ""})  # fmt: skip
    assert empty.status_code == 200 and "It does not render" in empty.text


def test_what_is_missing_is_named_on_the_page_that_says_it_is_not_there(site: Site) -> None:
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    unknown = client.get("/studio/edit?item=day-99")
    assert unknown.status_code == 404 and "No such template" in unknown.text
    assert "has no version 7" in client.get("/studio/diff?item=day&before=7").text
    nowhere = client.get("/no-such-page")
    assert nowhere.status_code == 404 and "The page may have moved" in nowhere.text


def test_a_roll_back_without_its_number_is_refused_not_taken_for_the_text_as_shipped(site: Site) -> None:
    """The number's default was 0: a roll-back posted without one made the text as shipped live again."""
    client = signed_in(site, "kayla@example.org", StudioRole.PUBLISHER)
    csrf, _ = editor_form(client, "welcome")
    for number in ({}, {"number": ""}):
        refused = client.post("/studio/roll-back", data={"csrf": csrf, "item": "welcome", **number})
        assert refused.status_code == 400 and "The field “number” is missing." in refused.text
    with site.session() as session:
        assert session.scalar(select(func.count()).select_from(TemplatePublication)) == 0
