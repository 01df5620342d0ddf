"""`course demo`: the whole product in one process, on nothing but this machine.

A PostgreSQL of its own (cli/embedded.py: PostgreSQL 18 from a wheel, its data under var/demo), an
in-process broker instead of Redis, the outbox sender instead of an SMTP relay: otherwise the same code
runs as in production. The Celery worker (in the main thread),
the beat (a thread) and the web app (a thread) share the process. A sample subscriber signs up and
confirms, and the course arrives in the inbox page, one email every ``--day-seconds``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from sqlalchemy import func, select

from cli import embedded
from cli.database import upgrade
from cli.root import Root
from course.models.deliveries import Delivery, DeliveryState, SendBatch
from course.models.studio import StudioRole, StudioUser
from course.models.subscribers import Subscriber, SubscriberStatus
from course.settings import get_settings
from course.studio import add_user, set_password
from course.subscriptions import Consent, confirm, subscribe
from workers.beat import run as run_beat
from workers.engine import Runtime

DEMO_DIR = Path("var/demo")
DEMO_QUEUE = "course-demo"
DEMO_STUDIO_USER = "studio@example.com"


def configure_environment(day_seconds: int, port: int, folder: Path, database_url: str) -> None:
    """The demo's settings. Must run before anything reads the settings."""
    os.environ.update(
        {
            "ENVIRONMENT": "development",
            "DATABASE_URL": database_url,
            "BROKER_URL": "memory://",
            "SMTP_URL": f"outbox:{folder / 'outbox'}",
            "DEMO_INBOX": "true",  # the inbox page; refused outside development
            "COURSE_DAY_SECONDS": str(day_seconds),
            "BASE_URL": f"http://127.0.0.1:{port}",
            "CELERY_QUEUE": DEMO_QUEUE,
            "SEND_RATE_PER_SECOND": "50",
        }
    )


class PortInUse(Exception):
    pass


def _listen(port: int) -> socket.socket:
    """The web app's socket, bound before anything starts: a port in use stops the demo with a clear message."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as error:
        listener.close()
        raise PortInUse(f"port {port} is in use ({error.strerror}); try course demo --port {port + 1}") from None
    listener.listen(128)
    return listener


def run(*, day_seconds: int, port: int, fresh: bool, until_complete: bool, email: str) -> int:
    try:
        listener = _listen(port)
    except PortInUse as error:
        print(f"course demo: {error}", file=sys.stderr)
        return 1
    port = int(listener.getsockname()[1])  # the one chosen, for --port 0
    if fresh:
        shutil.rmtree(DEMO_DIR, ignore_errors=True)
        embedded.discard(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    try:
        with embedded.embedded_database(DEMO_DIR) as database_url:
            configure_environment(day_seconds, port, DEMO_DIR, database_url)
            return _run(listener, day_seconds, port, until_complete, email)
    except embedded.EmbeddedUnavailable as error:
        print(f"course demo: {error}", file=sys.stderr)
        return 1


def _run(listener: socket.socket, day_seconds: int, port: int, until_complete: bool, email: str) -> int:
    get_settings.cache_clear()  # the settings configure_environment() just set
    with Root.from_environment() as root:
        upgrade(root.settings.database_url)
        subscriber_id = _enrol_sample_subscriber(root.runtime, email)
        studio_password = _demo_studio_account(root.runtime)

        app = root.web()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        web = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="web", daemon=True)
        web.start()
        stop_beat = threading.Event()
        beat = threading.Thread(target=run_beat, args=(root.runtime, stop_beat), name="beat", daemon=True)
        beat.start()
        print(
            f"\n  The course is on its way to {email}: one email every {day_seconds} seconds.\n"
            f"  Watch it arrive: http://127.0.0.1:{port}/inbox\n"
            f"  The studio: http://127.0.0.1:{port}/studio  ({DEMO_STUDIO_USER}, password {studio_password})\n"
            f"  Files: {DEMO_DIR / 'outbox'}/   Stop: Ctrl+C\n",
            flush=True,
        )
        if until_complete:
            watch = threading.Thread(target=_stop_when_complete, args=(root.runtime, subscriber_id), name="watch",
                                     daemon=True)  # fmt: skip
            watch.start()
        try:
            root.worker(
                ["worker", "--pool=threads", "--concurrency=2", "--loglevel=WARNING", "-Q", DEMO_QUEUE,
                 "--without-heartbeat", "--without-mingle", "--without-gossip"]
            )  # fmt: skip
        finally:
            # The beat and the web app finish what they are doing before the database stops (cli/embedded.py).
            stop_beat.set()
            server.should_exit = True
            beat.join(timeout=30)
            web.join(timeout=30)
    return 0


def _demo_studio_account(runtime: Runtime) -> str:
    """A publisher account for trying the studio, with a password made for this run (printed at start)."""

    password = secrets.token_urlsafe(12)
    with runtime.sessions() as session:
        user = session.query(StudioUser).filter_by(email=DEMO_STUDIO_USER).one_or_none()
        if user is None:
            add_user(session, DEMO_STUDIO_USER, role=StudioRole.PUBLISHER, password=password, now=runtime.now())
        else:  # --keep: the same account, a new password
            set_password(session, user, password)
        session.commit()
    return password


def _enrol_sample_subscriber(runtime: Runtime, email: str) -> int:
    """Sign up the demo's reader through the same lifecycle as the web form; confirm once the
    confirmation email has gone, as a person clicking its button would."""

    with runtime.sessions() as session:
        signed_up = subscribe(
            session,
            course_slug=runtime.settings.course_slug,
            email=email,
            first_name="Alex",
            timezone="UTC",
            consent=Consent(at=runtime.now(), form="course demo"),
            timing=runtime.timing,
        )
        session.commit()  # its confirmation goes to the worker as it commits
    assert signed_up.subscriber_id is not None  # noqa: S101 - subscribe always names the subscriber
    reader = threading.Thread(target=_confirm_when_asked, args=(runtime, signed_up.subscriber_id), name="reader",
                              daemon=True)  # fmt: skip
    reader.start()
    return signed_up.subscriber_id


def _confirm_when_asked(runtime: Runtime, subscriber_id: int) -> None:

    while True:
        with runtime.sessions() as session:
            sent = session.scalar(
                select(Delivery.id).where(
                    Delivery.subscriber_id == subscriber_id,
                    Delivery.step.is_(None),
                    Delivery.state == DeliveryState.SENT.value,
                )
            )
            if sent is not None:
                # The database's clock, as every process goes by (course/clock.py), never this machine's.
                confirm(session, subscriber_id, now=runtime.now(), timing=runtime.timing)
                session.commit()  # the welcome goes to the worker as it commits
                return
        time.sleep(0.5)


def _stop_when_complete(runtime: Runtime, subscriber_id: int) -> None:

    while True:
        time.sleep(0.5)
        with runtime.sessions() as session:
            subscriber = session.get(Subscriber, subscriber_id)
            # Completed as its last email is claimed: stop once that email has left the send queue too.
            if (
                subscriber is not None
                and subscriber.status == SubscriberStatus.COMPLETED.value
                and not (session.scalar(select(func.count()).select_from(SendBatch)))
            ):
                break
    print("  The whole course has arrived; stopping.", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # the worker's warm shutdown
