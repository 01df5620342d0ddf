"""The course page's checklists: define one (its question, its items, its bands and what each band means),
and change one that readers have answered only as a new version of it.

A checklist's items and bands are what answers are counted by: once a checklist is live, they are never
changed in place (the insights compare like with like). So a live checklist is shown as it is, with a
button that starts a new version (a copy under a new key, then edited freely until it is published); a
checklist that is not live yet is edited here. Its words (title, prompt, items, what each band says) are
the course's words too, and stay editable in the shared words file once it is live. An email asks a
checklist by its checklist block (the email form picks one of the course's live checklists).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from course.curriculum import Checklist, Course

MAX_CHECKLISTS = 20
MAX_ITEMS = 30
BAND_ROWS = 4  # the bands a checklist may have on this page (two at least)
_KEY = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class ChecklistView:
    checklist: Checklist
    live: bool  # answered by readers (or may be): shown, not edited
    used_in: list[str]  # the emails whose body asks it

    @property
    def bands(self) -> list[Any]:
        """The bands as the page's rows: the checklist's, then empty rows up to BAND_ROWS."""
        return [*self.checklist.bands, *([None] * max(0, BAND_ROWS - len(self.checklist.bands)))]


def views(course: Course, live: Course) -> list[ChecklistView]:
    used: dict[str, list[str]] = {}
    for step in course.steps:
        if step.checklist is not None:
            day = step.day_number
            name = step.email.capitalize() if day is None else course.day(day).title
            used.setdefault(step.checklist, []).append(name)
    return [ChecklistView(checklist, key in live.checklists, used.get(key, [])) for key, checklist in
            course.checklists.items()]  # fmt: skip


def _key_for(title: str, taken: set[str]) -> str:
    base = _KEY.sub("-", title.lower()).strip("-")[:40].strip("-") or "checklist"
    key, number = base, 2
    while key in taken:
        key, number = f"{base}-{number}", number + 1
    return key


def new_checklist(taken: set[str]) -> dict[str, Any]:
    return {
        "key": _key_for("a new checklist", taken), "title": "A new checklist",
        "prompt": "Check each one that is true for you this week:",
        "items": [{"text": "The first thing to notice"}, {"text": "The second"}, {"text": "The third"}],
        "bands": [
            {"key": "few", "min": 0, "max": 1, "label": "0-1 checked", "title": "A few", "meaning": "What this means.",
             "next_step": "What to do next."},
            {"key": "many", "min": 2, "max": None, "label": "2+ checked", "title": "Several",
             "meaning": "What this means.", "next_step": "What to do next.", "suggests_consultation": True},
        ],
    }  # fmt: skip


def new_version(checklist: dict[str, Any], taken: set[str]) -> dict[str, Any]:
    """A copy of a live checklist under a key of its own, to change its items and bands."""
    key = _key_for(f"{checklist['key']} v2", taken)
    return {**checklist, "key": key, "title": f"{checklist['title']} (new version)"}


def _text(form: Mapping[str, Any], name: str, default: str) -> str:
    return " ".join(str(form.get(name, default)).split())


def applied(data: dict[str, Any], live: Course, form: Mapping[str, Any], action: str, errors: dict[str, str]) -> None:
    """The checklists of ``data`` (a course's data) as the form posts them: each checklist that is not live
    with its fields as typed; then the form's checklist button (``checklist-add``,
    ``checklist-version:<key>``, ``checklist-remove:<key>``)."""
    checklists: dict[str, Any] = data.setdefault("checklists", {})
    for key, checklist in list(checklists.items()):
        if key in live.checklists or f"checklist.{key}.title" not in form:
            continue  # live: its items and bands stay as readers answered them
        prefix = f"checklist.{key}"
        checklist["title"] = _text(form, f"{prefix}.title", checklist["title"])
        checklist["prompt"] = _text(form, f"{prefix}.prompt", checklist["prompt"])
        lines = [" ".join(line.split()) for line in str(form.get(f"{prefix}.items", "")).splitlines()]
        items = [{"text": line} for line in lines if line]
        if not items or len(items) > MAX_ITEMS:
            errors[prefix] = f"A checklist has from 1 to {MAX_ITEMS} items, one per line."
        else:
            checklist["items"] = items
        bands: list[dict[str, Any]] = []
        low = 0
        for row in range(BAND_ROWS):
            band_prefix = f"{prefix}.band.{row}"
            label = _text(form, f"{band_prefix}.label", "")
            if not label:
                continue  # an empty row
            up_to = str(form.get(f"{band_prefix}.max", "")).strip()
            if up_to and not (up_to.isascii() and up_to.isdigit()):
                errors[prefix] = "A band ends at a whole number of checked items (or, for the last, is open)."
                break
            high = int(up_to) if up_to else None
            bands.append({"key": _key_for(label, {str(band["key"]) for band in bands}), "min": low, "max": high,
                          "label": label, "title": _text(form, f"{band_prefix}.title", "") or label,
                          "meaning": _text(form, f"{band_prefix}.meaning", "") or "-",
                          "next_step": _text(form, f"{band_prefix}.next_step", "") or "-",
                          "suggests_consultation": form.get(f"{band_prefix}.consultation") == "on"})  # fmt: skip
            low = (high if high is not None else low) + 1
        if len(bands) < 2:
            errors.setdefault(prefix, "A checklist has two bands at least: fill in each band's label.")
        else:
            checklist["bands"] = bands
    verb, _, key = action.partition(":")
    taken = set(checklists)
    if verb == "checklist-add" and len(checklists) < MAX_CHECKLISTS:
        added = new_checklist(taken)
        checklists[added["key"]] = added
    elif verb == "checklist-version" and key in checklists and len(checklists) < MAX_CHECKLISTS:
        copy = new_version(checklists[key], taken)
        checklists[copy["key"]] = copy
    elif verb == "checklist-remove" and key in checklists and key not in live.checklists:
        del checklists[key]  # a checklist no reader has answered; an email that asks it is named by the checks
