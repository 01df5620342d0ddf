"""The ``course`` command: one entry point that wires the rooms together for operators.

It lives outside ``course/`` because it reaches every room (``course`` must not import ``emails``),
and each subcommand only parses arguments and calls into the room that does the work.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from course.curriculum import load_course
from course.db import describe
from course.settings import Settings, get_settings
from emails.compiler import TemplateError
from emails.dkim import DkimError, DkimSigner
from emails.preview import write_previews
from emails.rendering import Renderer


def _render(arguments: argparse.Namespace) -> int:
    settings = get_settings()
    course = load_course(settings.course_slug)
    names = Renderer(course, settings).email_names()
    only = None
    if arguments.day is not None:
        if not 1 <= arguments.day <= len(course.days):
            print(f"course render: --day takes 1..{len(course.days)}, not {arguments.day}", file=sys.stderr)
            return 2
        only = [course.step(arguments.day).email]
    try:
        written = write_previews(course, settings, arguments.out, only=only)
    except TemplateError as error:
        print(f"course render: {error}", file=sys.stderr)
        return 1
    for email in written:
        print(f"{email.eml}")
        print(f"  subject ({len(email.subject)} characters): {email.subject}")
        print(f"  preview ({len(email.preview)} characters): {email.preview}")
    print(f"{len(written)} of {len(names)} emails written; open {arguments.out / 'index.html'} in a browser.")
    return 0


def _db(arguments: argparse.Namespace) -> int:
    from cli import database

    settings = get_settings()
    if arguments.action == "upgrade":
        database.upgrade(settings.database_url)
        print("The database schema is up to date.")
        return 0
    drift = database.check(settings.database_url)
    if drift:
        print(f"course db check: the models and the migrations differ: {drift}", file=sys.stderr)
        return 1
    print("The models and the migrations agree.")
    return 0


class CommandError(Exception):
    """A problem the operator can fix, said in one line (the command exits 1)."""


def _require_schema(settings: Settings) -> None:
    """Refuse to start a process that needs tables the database does not have yet."""
    from course.db import make_engine, schema_state

    engine = make_engine(settings.database_url)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    if not state.up_to_date:
        raise CommandError(f"the database ({describe(settings.database_url)}) has {state.describe()}")


def _web(arguments: argparse.Namespace) -> int:
    import uvicorn

    from web.webhooks.sns import SnsVerifier

    settings = get_settings()
    _require_schema(settings)
    try:
        SnsVerifier.from_settings(settings)  # a pinned certificate that cannot be used stops it now
    except ValueError as error:
        raise CommandError(str(error)) from None
    # One process per core by default: a Python process serves one request's Python at a time, and
    # mail scanners open every link of every email within seconds of its delivery.
    # uvicorn's own X-Forwarded-For handling stays off: the app believes the header only from the
    # proxies in FORWARDED_ALLOW_IPS (web/clients.py), and keeps the peer's address otherwise.
    uvicorn.run("web.app:from_environment", factory=True, host=arguments.host, port=arguments.port,
                workers=arguments.workers, proxy_headers=False, access_log=arguments.access_log,
                log_level="info")  # fmt: skip
    return 0


def _dkim_record(arguments: argparse.Namespace) -> int:
    signer = DkimSigner.from_settings(get_settings())
    if signer is None:
        print("course dkim-record: DKIM is not set up: set DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE "
              "(a key: openssl genrsa -out dkim.pem 2048)", file=sys.stderr)  # fmt: skip
        return 2
    print(signer.dns_record())
    return 0


def _mailbox(arguments: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from cli.mailbox import EX_TEMPFAIL, MailboxError, MailboxUrl, Reader, run_imap, run_stdin
    from course.db import make_engine, make_sessionmaker

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
        _require_schema(settings)
    except SQLAlchemyError as error:
        if url is not None:
            raise
        # From a mail server's pipe: "try again later", and the message stays in its queue.
        print(f"course mailbox: cannot use the database ({describe(settings.database_url)}): {_reason(error)}; "
              "try again later", file=sys.stderr)  # fmt: skip
        return EX_TEMPFAIL
    engine = make_engine(settings.database_url)
    try:
        reader = Reader.from_settings(settings, make_sessionmaker(engine))
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
    finally:
        engine.dispose()


def _worker(arguments: argparse.Namespace) -> int:
    from workers.app import app

    settings = get_settings()
    _require_schema(settings)
    DkimSigner.from_settings(settings)  # a key that cannot sign stops the worker now, not each batch
    app.worker_main(
        ["worker", "-Q", settings.celery_queue, f"--hostname={arguments.name or settings.celery_queue + '@%h'}",
         f"--concurrency={arguments.concurrency}",
         f"--pool={arguments.pool}", f"--loglevel={arguments.loglevel}", "--without-gossip", "--without-mingle"]
    )  # fmt: skip
    return 0


def _beat(arguments: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from workers.beat import run
    from workers.tasks import runtime

    settings = get_settings()
    _require_schema(settings)
    logging.basicConfig(level=arguments.loglevel.upper(), format="[%(asctime)s: %(levelname)s/beat] %(message)s")
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())  # the tick under way finishes, then the beat stops
    run(runtime(), stop)
    return 0


def _health(arguments: argparse.Namespace) -> int:
    from web.health import check
    from workers.engine import seconds_since_last_tick

    settings = get_settings()
    results = check(settings)
    if arguments.tick_age is not None:
        age = seconds_since_last_tick(settings)
        results["tick"] = "never ran" if age is None else f"{age:.0f}s ago"
        if age is None or age > arguments.tick_age:
            results["tick"] = f"stale: {results['tick']}"
        else:
            results["tick"] = f"ok ({results['tick']})"
    for name, state in results.items():
        print(f"{name}: {state}")
    return 0 if all(state.startswith("ok") for state in results.values()) else 1


def _studio(arguments: argparse.Namespace) -> int:
    """`course studio add-user EMAIL`: an account, with a password typed now or a one-time link."""
    import getpass

    from course.clock import DatabaseClock
    from course.db import make_engine, make_sessionmaker
    from course.models import StudioRole
    from course.studio import StudioError, add_user, check_password
    from web.studio.auth import sign_in_link

    settings = get_settings()
    _require_schema(settings)
    password = None
    if not arguments.link and sys.stdin.isatty():
        password = getpass.getpass("Password (12+ characters; empty: print a one-time sign-in link instead): ")
        if password:
            try:
                check_password(password)
            except StudioError as error:
                raise CommandError(str(error)) from None
            if getpass.getpass("The same password again: ") != password:
                raise CommandError("the two passwords differ; nothing was created")
        password = password or None
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            try:
                user = add_user(session, arguments.email, role=StudioRole(arguments.role), courses=arguments.courses,
                                password=password, now=DatabaseClock(engine)())  # fmt: skip
            except StudioError as error:
                raise CommandError(str(error)) from None
            session.commit()
            print(f"Studio account for {user.email} ({user.role}).")
            if password is None:
                print(
                    f"Send them this link to set a password (it works once, for a day):\n{sign_in_link(settings, user)}"
                )
    finally:
        engine.dispose()
    return 0


def _studio_account(arguments: argparse.Namespace) -> int:
    """`course studio reset-password | disable-user | enable-user EMAIL`."""
    from course.clock import DatabaseClock
    from course.db import make_engine, make_sessionmaker
    from course.studio import StudioError, reset_password, set_disabled
    from web.studio.auth import sign_in_link

    settings = get_settings()
    _require_schema(settings)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            now = DatabaseClock(engine)()  # the time every process goes by (course/clock.py)
            try:
                if arguments.action == "reset-password":
                    user = reset_password(session, arguments.email, now)
                else:
                    user = set_disabled(session, arguments.email, now, disabled=arguments.action == "disable-user")
            except StudioError as error:
                raise CommandError(str(error)) from None
            session.commit()
            if arguments.action == "reset-password":
                print(f"The password of {user.email} is removed and every session of theirs has ended.")
                link = sign_in_link(settings, user)
                print(f"Send them this link to set a new one (it works once, for a day):\n{link}")
            elif arguments.action == "disable-user":
                print(f"{user.email} can no longer sign in; every session of theirs has ended.")
            else:
                print(f"{user.email} may sign in again (with their password, or `course studio reset-password`).")
    finally:
        engine.dispose()
    return 0


def _insights(arguments: argparse.Namespace) -> int:
    """`course insights`: sum the studio's insights now (the beat does it every few minutes)."""
    import time
    from datetime import UTC, date, datetime

    from course import insights
    from course.db import make_engine, make_sessionmaker

    settings = get_settings()
    _require_schema(settings)
    course = load_course(settings.course_slug)
    since = None
    if arguments.since:
        try:
            since = date.fromisoformat(arguments.since)
        except ValueError:
            raise CommandError(f"--since takes a date such as 2026-11-02, not {arguments.since!r}") from None
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            started, now = time.perf_counter(), datetime.now(UTC)
            if arguments.all or since:
                cohorts = insights.refresh(session, course, now, since=since)
            else:
                cohorts = insights.refresh_active(session, course, now)
            session.commit()
    finally:
        engine.dispose()
    print(f"Summed the figures of {cohorts} sign-up weeks of {course.slug} in {time.perf_counter() - started:.2f} s.")
    return 0


def _demo(arguments: argparse.Namespace) -> int:
    from cli import demo

    return demo.run(
        day_seconds=arguments.day_seconds,
        port=arguments.port,
        fresh=not arguments.keep,
        until_complete=arguments.until_complete,
        email=arguments.email,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="Run and inspect the email course.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser(
        "render",
        help="write every course email as a complete .eml file for a sample subscriber",
        description="Write every course email (confirmation, welcome, each day, completion) as the .eml "
        "file that would be sent to a sample subscriber, with its HTML and text parts and an index.html.",
    )
    render.add_argument("--out", type=Path, required=True, help="folder to write into (created if missing)")
    render.add_argument("--day", type=int, help="only this course day (1..18)")
    render.set_defaults(handler=_render)

    demo = commands.add_parser(
        "demo",
        help="run everything in one process on this machine and watch the course arrive",
        description="A PostgreSQL of its own (from a wheel), an in-process broker, worker and beat, and the web "
        "app with an inbox page that "
        "shows every email sent. A sample subscriber signs up and the course arrives in minutes.",
    )
    demo.add_argument("--day-seconds", type=int, default=10, help="length of a course day (default 10)")
    demo.add_argument("--port", type=int, default=8000, help="web port (default 8000)")
    demo.add_argument("--email", default="you@example.com", help="the sample subscriber's address")
    demo.add_argument("--keep", action="store_true", help="keep the previous demo's data instead of starting afresh")
    demo.add_argument("--until-complete", action="store_true", help="stop once the whole course has been sent")
    demo.set_defaults(handler=_demo)

    web = commands.add_parser("web", help="serve the web app (uvicorn)")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes serving requests (default: one per core, %(default)s here)",
    )
    web.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                     help="log a line per request (--no-access-log behind a proxy that logs them)")  # fmt: skip
    web.set_defaults(handler=_web)

    worker = commands.add_parser("worker", help="run a Celery worker that sends the course")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    worker.add_argument("--loglevel", default="INFO")
    # Celery's node name. A node's control queue is exclusive on RabbitMQ: two workers of one name there
    # stop each other. The default, CELERY_QUEUE@host, is one per host and deployment; a second worker
    # of the same deployment on one host takes --name second@%%h (or more --concurrency instead).
    worker.add_argument("--name", help="the worker's node name (default: CELERY_QUEUE@%%h, %%h the host name)")
    worker.set_defaults(handler=_worker)

    beat = commands.add_parser(
        "beat", help="run the beat: it claims due emails and queues them for the workers (one per deployment)"
    )
    beat.add_argument("--loglevel", default="INFO")
    beat.set_defaults(handler=_beat)

    health = commands.add_parser("health", help="exit 0 when the database and broker answer (for health checks)")
    health.add_argument("--tick-age", type=float, help="also require a beat tick to have run within this many seconds")
    health.set_defaults(handler=_health)

    studio = commands.add_parser("studio", help="the studio's accounts")
    studio_commands = studio.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = studio_commands.add_parser(
        "add-user",
        help="create a studio account",
        description="Create a studio account. At a terminal it asks for a password; otherwise (or with --link) "
        "it prints a one-time link with which the person sets their own.",
    )
    add.add_argument("email")
    add.add_argument(
        "--role",
        choices=["editor", "publisher"],
        default="editor",
        help="editor: saves drafts; publisher: also publishes and rolls back (default editor)",
    )
    add.add_argument("--courses", default="*", help="comma-separated course slugs they may edit (default: all)")
    add.add_argument("--link", action="store_true", help="print a one-time sign-in link instead of asking")
    add.set_defaults(handler=_studio)
    reset = studio_commands.add_parser(
        "reset-password",
        help="take an account's password away and end its sessions",
        description="For a forgotten or leaked password: the password is removed, every session of the account "
        "ends at once, and a one-time link is printed with which its person sets a new one. Written to the "
        "audit log.",
    )
    reset.add_argument("email")
    reset.set_defaults(handler=_studio_account)
    disable = studio_commands.add_parser(
        "disable-user",
        help="stop an account from signing in and end its sessions",
        description="For someone who left, or an account that may be in the wrong hands: no sign-in, every "
        "session and one-time link ends at once. `enable-user` undoes it. Written to the audit log.",
    )
    disable.add_argument("email")
    disable.set_defaults(handler=_studio_account)
    enable = studio_commands.add_parser("enable-user", help="let a disabled account sign in again")
    enable.add_argument("email")
    enable.set_defaults(handler=_studio_account)

    summing = commands.add_parser(
        "insights",
        help="sum the studio's insights now",
        description="Sum the figures the studio's insights page reads, now: the sign-up weeks still in the course "
        "(what the beat does every INSIGHTS_REFRESH_SECONDS), every week (--all), or the weeks from a date on.",
    )
    summing.add_argument("--all", action="store_true", help="every sign-up week, not only those still in the course")
    summing.add_argument("--since", help="the weeks from this date (YYYY-MM-DD) on")
    summing.set_defaults(handler=_insights)

    record = commands.add_parser(
        "dkim-record",
        help="print the DNS TXT record of the DKIM key",
        description="Print the TXT record that publishes the public half of DKIM_PRIVATE_KEY_FILE for "
        "DKIM_SELECTOR at the sending domain (MAIL_FROM's). Generate a key with: openssl genrsa -out dkim.pem 2048",
    )
    record.set_defaults(handler=_dkim_record)

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

    db = commands.add_parser("db", help="the database schema")
    db.add_argument("action", choices=["upgrade", "check"], help="upgrade: migrate to the latest; check: drift")
    db.set_defaults(handler=_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    arguments = build_parser().parse_args(argv)
    handler = arguments.handler
    try:
        return int(handler(arguments))
    except (CommandError, DkimError) as error:
        print(f"{_name(arguments)}: {error}", file=sys.stderr)
        return 1
    except OperationalError as error:
        # One line with where and why, not a driver's traceback.
        print(
            f"{_name(arguments)}: cannot use the database ({describe(get_settings().database_url)}): {_reason(error)}",
            file=sys.stderr,
        )
        return 1


def _name(arguments: argparse.Namespace) -> str:
    action = getattr(arguments, "action", None)
    return f"course {arguments.command}" + (f" {action}" if action else "")


def _reason(error: Exception) -> str:
    """The driver's own words, on one line: "Connection refused", "database "x" does not exist"."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(("(Background", "[SQL", "Is the server"))]
    return (meaningful or lines or [type(cause).__name__])[-1]


if __name__ == "__main__":
    sys.exit(main())
