"""A PostgreSQL database per test, copied from one migrated with Alembic at the start of the run.

The server must be reachable: a missing PostgreSQL fails the run (CI starts it), it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from cli.database import upgrade

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def sqlalchemy_url(database: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {ADMIN_URL} ({error}). Start it: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        ) from None


@contextmanager
def _database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database (a copy of ``template``, or empty), dropped afterwards; yields its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield name
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def template_database() -> Iterator[str]:
    with _database("course_template") as name:
        upgrade(sqlalchemy_url(name))
        yield name


@contextmanager
def database_from(template: str) -> Iterator[str]:
    with _database("course_test", template) as name:
        yield sqlalchemy_url(name)


@contextmanager
def empty_database() -> Iterator[str]:
    """A database with no tables at all: what `course web` meets before `course db upgrade`."""
    with _database("course_empty") as name:
        yield sqlalchemy_url(name)
