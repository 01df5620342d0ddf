"""What a rendered email must hold before it may be published, beyond rendering at all.

The law and the mailbox providers ask for an unsubscribe link and the sender's postal address; the
course needs its own links (the preferences page, today's exercise, every answer of a checklist); and
an email edited in the browser must not start loading remote images or scripts, carry a form, or send
readers anywhere but the course's own pages (which record the click and redirect to the configured
booking page or guide). Each problem names the email and the part it is about.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from emails.compiler import TemplateError
from emails.rendering import RenderedEmail

# Elements an email must not carry: they load or run something, or post the reader's input somewhere.
FORBIDDEN_ELEMENTS = frozenset({"script", "form", "iframe", "object", "embed", "input", "button", "textarea", "base"})


class _Parts(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.sources: list[str] = []
        self.forbidden: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in FORBIDDEN_ELEMENTS:
            self.forbidden.add(tag)
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(str(attributes["href"]))
        for name in ("src", "background", "srcset"):
            if attributes.get(name):
                self.sources.append(str(attributes[name]))
        if tag == "link" and attributes.get("href"):
            self.sources.append(str(attributes["href"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def content_problems(rendered: RenderedEmail, context: dict[str, Any], base_url: str) -> list[TemplateError]:
    """The problems of one rendered email; ``context`` is what it was rendered with."""
    email = rendered.email
    parts = _Parts()
    parts.feed(rendered.html)
    problems: list[TemplateError] = []

    def problem(file: str, message: str) -> None:
        problems.append(TemplateError(email, file, message))

    links = context["links"]
    required = {}
    if context["step"]["kind"] != "confirmation":  # not yet a subscriber: nothing to leave or to set
        required = {"the unsubscribe link": links["unsubscribe"], "the preferences link": links["preferences"]}
    if "confirm" in links:
        required["the confirmation link"] = links["confirm"]
    if "exercise_done" in links:
        required["the link that marks the exercise done"] = links["exercise_done"]
    checklist = context.get("checklist")
    if checklist:
        for band in checklist["bands"]:
            required[f"the answer link for {band['label']!r}"] = band["url"]
    for what, url in required.items():
        if url not in parts.hrefs:
            problem("body.mjml", f"{what} is missing")
        if url not in rendered.text:
            problem("body.txt", f"{what} is missing from the plain-text part")
    if " ".join(context["postal_address"].split()) not in " ".join("".join(parts.text).split()):
        problem("body.mjml", "the practice's postal address is missing")
    if context["postal_address"] not in rendered.text:
        problem("body.txt", "the practice's postal address is missing from the plain-text part")
    for tag in sorted(parts.forbidden):
        problem("body.mjml", f"<{tag}> is not allowed in an email")
    remote = [source for source in parts.sources if source.strip().lower().startswith(("http:", "https:", "//"))]
    if remote:
        problem("body.mjml", f"no remote images or files (they track readers and break offline): {remote[0]}")
    base = base_url.rstrip("/") + "/"
    elsewhere = [href for href in parts.hrefs if not href.startswith((base, "mailto:", "#"))]
    if elsewhere:
        problem("body.mjml", f"links go to the course's own pages only (they redirect onwards): {elsewhere[0]}")
    missing_in_text = [href for href in parts.hrefs if href.startswith(base) and href not in rendered.text]
    if missing_in_text:
        problem("body.txt", f"the plain-text part lacks a link the HTML has: {missing_in_text[0]}")
    if "\n" in rendered.subject or not rendered.subject.strip():
        problem("subject.txt", "the subject is one line of text")
    return problems
