"""`course mailbox`: the parser and the process around cli/mailbox.py, which reads the bounce mailbox."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from cli.common import reason, require_schema
from course.db import describe
from course.settings import get_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mailbox = commands.add_parser(
        "mailbox",
        help="read bounces, complaints and mail unsubscribes from the bounce mailbox",
        description="Read delivery reports (RFC 3464), feedback-loop complaints (ARF, RFC 5965) and mail to the "
        "List-Unsubscribe mailto: address: every unseen message of an IMAP folder (--imap "
        "imaps://user:password@host/INBOX), or one message from standard input (-), e.g. from a mail server's "
        "pipe. A hard bounce or a complaint suppresses the address and stops its course at once; soft bounces "
        "count toward SOFT_BOUNCE_LIMIT in SOFT_BOUNCE_DAYS.",
    )
    mailbox.add_argument("source", nargs="?", choices=["-"], help="-: one message from standard input")
    mailbox.add_argument("--imap", metavar="URL", help="imaps://, imap+starttls:// or imap:// (this machine only); "
                         "default: BOUNCE_MAILBOX_URL, which keeps the password out of the process list")  # fmt: skip
    mailbox.add_argument("--every", type=float, metavar="SECONDS", help="--imap: keep reading, this often")
    mailbox.add_argument("--loglevel", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    mailbox.set_defaults(handler=_mailbox)


def _mailbox(arguments: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from cli.mailbox import EX_TEMPFAIL, MailboxError, MailboxUrl, Reader, run_imap, run_stdin
    from cli.root import Root
    from course.feedback import SoftBouncePolicy

    settings = get_settings()
    imap = arguments.imap
    if imap is None and arguments.source != "-" and settings.bounce_mailbox_url is not None:
        imap = settings.bounce_mailbox_url.get_secret_value()
    if (arguments.source == "-") == bool(imap):
        print("course mailbox: read either one message from standard input (-) or a folder (--imap URL, or "
              "BOUNCE_MAILBOX_URL)", file=sys.stderr)  # fmt: skip
        return 2
    logging.basicConfig(level=arguments.loglevel.upper(), format="[%(asctime)s: %(levelname)s/mailbox] %(message)s")
    url = None
    if imap:
        try:
            url = MailboxUrl.parse(imap)
        except MailboxError as error:
            print(f"course mailbox: {error}", file=sys.stderr)
            return 2
    try:
        require_schema(settings)
    except SQLAlchemyError as error:
        if url is not None:
            raise
        # From a mail server's pipe: "try again later", and the message stays in its queue.
        print(f"course mailbox: cannot use the database ({describe(settings.database_url)}): {reason(error)}; "
              "try again later", file=sys.stderr)  # fmt: skip
        return EX_TEMPFAIL
    with Root(settings) as root:
        # The database's clock, as the web's webhooks go by: notices from both are counted in one window.
        reader = Reader(root.sessions, root.signer, settings.address_key, SoftBouncePolicy.of(settings), root.clock)
        if url is None:
            return run_stdin(reader)
        stop = threading.Event()
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: stop.set())
        try:
            tally = run_imap(reader, url, arguments.every, stop)
        except MailboxError as error:
            print(f"course mailbox: {error}", file=sys.stderr)
            return 1
        except SQLAlchemyError as error:
            print(f"course mailbox: the database is unavailable ({error.__class__.__name__}); the unread "
                  "messages stay unseen for the next run", file=sys.stderr)  # fmt: skip
            return 1
        print(tally.line())
        return 0
