"""The sample payloads and messages of tests/samples: the providers' published examples (SES, Postmark)
and delivery reports, complaints and replies as mail servers write them, with placeholders for the
address, the Message-ID and the unsubscribe token of the test's own subscriber."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def payload(name: str, replace: dict[str, str] | None = None) -> Any:
    """A JSON sample, with the ``old: new`` strings replaced in its text (addresses, ids)."""
    text = (SAMPLES / f"{name}.json").read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return json.loads(text)


def message(name: str, *, address: str = "", message_id: str = "", token: str = "") -> bytes:
    """A mail sample with its {ADDRESS}, {MESSAGE_ID} and {TOKEN} filled in, with CRLF line ends."""
    text = (SAMPLES / "mail" / f"{name}.eml").read_text(encoding="utf-8")
    text = text.replace("{ADDRESS}", address).replace("{MESSAGE_ID}", message_id).replace("{TOKEN}", token)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def mail_names() -> list[str]:
    return sorted(path.stem for path in (SAMPLES / "mail").glob("*.eml"))
