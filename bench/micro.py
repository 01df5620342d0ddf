"""How fast one process turns a subscriber into message bytes: render, then MIME assembly; the full
render beside the prepared one the workers use (emails/prepared.py), and the standard library's MIME
build as a baseline.

Speed is measured here and printed by ``python -m bench micro``, never asserted by a timed test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

from course.curriculum import load_course
from course.settings import Settings
from emails.dkim import DkimSigner, throwaway_signer
from emails.mime import MessageBuilder
from emails.prepared import Preparer
from emails.rendering import Recipient, RenderedEmail, Renderer


@dataclass(frozen=True)
class Measurement:
    email: str
    count: int
    render_ms: float  # per message
    mime_ms: float  # per message
    html_bytes: int
    message_bytes: int
    naive_mime_ms: float = 0.0  # per message, the standard library's EmailMessage: the baseline
    prepared_ms: float = 0.0  # per message, render + MIME as the workers do it (emails/prepared.py)
    dkim_ms: float = 0.0  # per message, a DKIM signature of the assembled message (emails/dkim.py)

    @property
    def messages_per_second(self) -> float:
        """With the full render: a template that cannot be prepared."""
        return 1000 / (self.render_ms + self.mime_ms)

    @property
    def prepared_per_second(self) -> float:
        return 1000 / self.prepared_ms if self.prepared_ms else 0.0


def measure(
    renderer: Renderer, builder: MessageBuilder, email: str, count: int, signer: DkimSigner | None = None
) -> Measurement:
    """``signer``: also time a DKIM signature of each message (on top of what ``builder`` does)."""
    recipients = [Recipient(number, f"reader{number}@example.com", "Alex") for number in range(count)]
    renderer.render(email, recipients[0])  # compile outside the timing: that happens once per version
    date = datetime.now(UTC)
    started = time.perf_counter()
    rendered = [renderer.render(email, recipient) for recipient in recipients]
    rendered_at = time.perf_counter()
    envelopes = [
        builder.build(
            message,
            to_address=recipient.email,
            to_name=recipient.first_name,
            message_id=builder.message_id(recipient.subscriber_id, email),
            date=date,
        )
        for message, recipient in zip(rendered, recipients, strict=True)
    ]
    finished = time.perf_counter()
    for message, recipient in zip(rendered, recipients, strict=True):
        bytes(_naive(message, recipient, date))
    naive_finished = time.perf_counter()
    preparer = Preparer(renderer)
    preparer.render(email, recipients[0])  # prepared outside the timing: once per version and shape of reader
    prepared_started = time.perf_counter()
    for recipient in recipients:
        values = renderer.reader_values(email, recipient)
        prepared = preparer.prepared(email, recipient, values)
        if prepared is None:
            raise RuntimeError(f"{email} cannot be prepared: its templates need a full render per reader")
        builder.build_prepared(prepared, values, to_address=recipient.email, to_name=recipient.first_name,
                               message_id=builder.message_id(recipient.subscriber_id, email), date=date)  # fmt: skip
    prepared_finished = time.perf_counter()
    if signer is not None:
        for envelope in envelopes:
            signer.header(envelope.data, int(date.timestamp()))
    signed_finished = time.perf_counter()
    return Measurement(
        email=email,
        count=count,
        render_ms=1000 * (rendered_at - started) / count,
        mime_ms=1000 * (finished - rendered_at) / count,
        html_bytes=len(rendered[0].html.encode()),
        message_bytes=len(envelopes[0].data),
        naive_mime_ms=1000 * (naive_finished - finished) / count,
        prepared_ms=1000 * (prepared_finished - prepared_started) / count,
        dkim_ms=1000 * (signed_finished - prepared_finished) / count,
    )


def _naive(rendered: RenderedEmail, recipient: Recipient, date: datetime) -> EmailMessage:
    """The message as ``email.message.EmailMessage`` builds it by default: what our builder is measured against."""
    message = EmailMessage()
    message["From"] = "South Denver Therapy <course@example.com>"
    message["To"] = recipient.email
    message["Subject"] = rendered.subject
    message["Date"] = date
    message["Message-ID"] = make_msgid()
    message["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def print_table(settings: Settings, emails: list[str], count: int) -> None:
    """Each email's figures (all of the course's when ``emails`` is empty), one row each."""
    course = load_course(settings.course_slug)
    renderer = Renderer(course, settings)
    # The columns are unsigned; the DKIM column prices a signature on its own, with the configured key or,
    # where DKIM is not set up, a throwaway 2048-bit one.
    builder = MessageBuilder(settings.model_copy(update={"dkim_selector": None}), course.slug, course.title)
    signer = DkimSigner.from_settings(settings) or throwaway_signer(settings.sending_domain)
    print(f"{'email':<17}{'prepared ms':>12}{'msgs/s':>8}{'full render':>12}{'MIME ms':>9}{'msgs/s':>8}"
          f"{'naive MIME':>11}{'DKIM ms':>9}{'HTML KB':>9}{'message KB':>12}")  # fmt: skip
    for email in emails or renderer.email_names():
        figures = measure(renderer, builder, email, count, signer)
        print(
            f"{figures.email:<17}{figures.prepared_ms:>12.3f}{figures.prepared_per_second:>8.0f}"
            f"{figures.render_ms:>12.3f}{figures.mime_ms:>9.3f}{figures.messages_per_second:>8.0f}"
            f"{figures.naive_mime_ms:>11.3f}{figures.dkim_ms:>9.3f}{figures.html_bytes / 1024:>9.1f}"
            f"{figures.message_bytes / 1024:>12.1f}"
        )
    print(f"({count} messages each, one process, one core, ms per message; compile time excluded. prepared: "
          "render and MIME as the workers do them, the course part rendered once per version; full render: the "
          "whole template per reader, then MIME; naive MIME: the standard library's EmailMessage building the same "
          "message, the baseline; DKIM: what signing the message adds when DKIM_SELECTOR is set"
          f"{'' if settings.dkim_selector else ', priced with a throwaway key: DKIM is not set up'})")  # fmt: skip
