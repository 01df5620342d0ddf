"""`course mailbox`: the bounce mailbox read into the database (emails/reports.py, course/feedback.py).

``course mailbox --imap URL`` reads every unseen message of an IMAP folder once (``--every SECONDS``
keeps reading); ``course mailbox -`` reads one message from standard input, for a mail server's pipe
(Postfix: ``bounces unix - n n - - pipe user=course argv=course mailbox -``). A message is flagged seen
only after what it says is committed; a database away is exit status 75 (EX_TEMPFAIL), which a mail
server takes as "try again later".
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from course.feedback import Outcome, SoftBouncePolicy, record_all
from course.links import LinkSigner
from emails.mailbox import Mailbox, MailboxError, MailboxUrl, open_mailbox
from emails.reports import Report, read_report

log = logging.getLogger("course.mailbox")

EX_TEMPFAIL = 75  # sysexits.h: the mail server keeps the message and tries again


@dataclass
class Tally:
    messages: int = 0
    ignored: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        said = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes.items())) or "no notice"
        return f"{self.messages} messages read: {said}; {self.ignored} not a report (left flagged)"


@dataclass(frozen=True)
class Reader:
    """One message in, its notices recorded and committed."""

    sessions: sessionmaker[Session]
    signer: LinkSigner
    address_key: bytes
    policy: SoftBouncePolicy
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def take(self, raw: bytes, tally: Tally) -> Report:
        report = read_report(raw)
        tally.messages += 1
        if not report.understood:
            tally.ignored += 1
            log.info("mailbox: a message was ignored: %s (%s)", report.reason, report.kind)
            return report
        with self.sessions() as session, session.begin():
            recorded = record_all(session, list(report.items), signer=self.signer, address_key=self.address_key,
                                  now=self.clock(), policy=self.policy)  # fmt: skip
        for item in recorded:
            tally.outcomes[item.outcome.value] += 1
            if item.outcome is not Outcome.DUPLICATE:
                log.info("mailbox: %s %s: %s", report.kind, item.feedback.kind.value, item.outcome.value)
        return report


def read_once(reader: Reader, mailbox: Mailbox, tally: Tally) -> None:
    for message in mailbox.unseen():
        report = reader.take(message.raw, tally)  # raises when the database is away: the message stays unseen
        mailbox.done(message.uid, understood=report.understood)


def run_imap(reader: Reader, url: MailboxUrl, every: float | None, stop: threading.Event) -> Tally:
    tally = Tally()
    while True:
        with open_mailbox(url) as mailbox:
            read_once(reader, mailbox, tally)
        if every is None or stop.wait(every):
            return tally
        log.info("mailbox: %s", tally.line())


def run_stdin(reader: Reader) -> int:
    raw = sys.stdin.buffer.read()
    tally = Tally()
    try:
        report = reader.take(raw, tally)
    except SQLAlchemyError as error:
        print(f"course mailbox: the database is unavailable ({error.__class__.__name__}); try again later",
              file=sys.stderr)  # fmt: skip
        return EX_TEMPFAIL
    print(f"{report.kind}: {tally.line()}" if report.understood else f"ignored: {report.reason}")
    return 0


__all__ = ["EX_TEMPFAIL", "MailboxError", "MailboxUrl", "Reader", "Tally", "read_once", "run_imap", "run_stdin"]
