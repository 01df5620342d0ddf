"""Write every email of a course, as sent to a sample subscriber, to a folder one can open in a browser.

Each email becomes ``NAME.eml`` (the complete message, exactly the bytes SMTP would carry),
``NAME.html`` and ``NAME.txt`` (its two parts), and ``index.html`` lists them with phone-sized previews.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from course.curriculum import Course
from course.lifecycle import EmailKind
from course.settings import Settings
from emails.mime import MessageBuilder
from emails.rendering import Recipient, RenderedEmail, Renderer

SAMPLE_RECIPIENT = Recipient(subscriber_id=1, email="alex@example.com", first_name="Alex")


@dataclass(frozen=True)
class WrittenEmail:
    name: str
    subject: str
    eml: Path
    preview: str = ""  # the inbox preview line

    @property
    def html(self) -> Path:
        return self.eml.with_suffix(".html")


def write_previews(
    course: Course,
    settings: Settings,
    out: Path,
    *,
    only: list[str] | None = None,
    recipient: Recipient = SAMPLE_RECIPIENT,
    now: datetime | None = None,
) -> list[WrittenEmail]:
    renderer = Renderer(course, settings)
    builder = MessageBuilder(
        settings,
        course.slug,
        course.title,
        renderer.course.practice.signer,
        sender_name=renderer.course.sender_name,
        reply_to=renderer.course.reply_to,
    )
    date = now or datetime.now(UTC)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in only or renderer.email_names():
        rendered = renderer.render(name, recipient)
        message_id = builder.message_id(recipient.subscriber_id, _message_key(rendered))
        envelope = builder.build(
            rendered, to_address=recipient.email, to_name=recipient.first_name, message_id=message_id, date=date
        )
        (out / f"{name}.eml").write_bytes(envelope.data)
        (out / f"{name}.html").write_text(rendered.html, encoding="utf-8")
        (out / f"{name}.txt").write_text(rendered.text, encoding="utf-8")
        written.append(WrittenEmail(name, rendered.subject, out / f"{name}.eml", rendered.preview))
    (out / "index.html").write_text(_index(course, written), encoding="utf-8")
    return written


def _message_key(rendered: RenderedEmail) -> int | str:
    return EmailKind.CONFIRMATION if rendered.step is None else rendered.step


def _index(course: Course, written: list[WrittenEmail]) -> str:
    rows = "\n".join(
        f"""<section>
  <h2>{html.escape(email.subject)}</h2>
  <p><a href="{email.name}.html">Open the HTML part</a> · <a href="{email.name}.txt">the text part</a> ·
     <a href="{email.name}.eml">the whole message (.eml)</a></p>
  <iframe src="{email.name}.html" title="{html.escape(email.subject)} at phone width" loading="lazy"></iframe>
</section>"""
        for email in written
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(course.title)}: every email</title>
<style>
  body {{ font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, sans-serif; background: #f5efe9;
         color: #2b2622; margin: 0 auto; max-width: 1100px; padding: 24px; line-height: 1.5; }}
  a {{ color: #a3472a; }}
  section {{ background: #fff; border-radius: 12px; padding: 16px 24px; margin: 0 0 24px; }}
  h2 {{ font-size: 19px; margin: 0 0 4px; }}
  iframe {{ width: 375px; height: 640px; border: 1px solid #eadfd6; border-radius: 8px; }}
</style>
</head>
<body>
<h1>{html.escape(course.title)}: the {len(written)} emails a subscriber receives</h1>
<p>Each is shown at phone width (375 px), as rendered for a sample subscriber.</p>
{rows}
</body>
</html>
"""
