"""What every request handler needs, built once per app: settings, courses, database, links, queue."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import Request
from fastapi.templating import Jinja2Templates
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import TextClause
from sqlalchemy.orm import Session, sessionmaker

from course.catalog import course_at
from course.curriculum import Course
from course.deliveries.timing import Timing
from course.links import LinkSigner
from course.settings import Settings
from emails.store import current_release
from web.ratelimit import RateLimiter

# The event loop's connections (:meth:`WebContext.one_row`), per process: as many as the requests it serves
# at once; how long a request waits for one before it fails (a database that is away: its restart).
LOOP_POOL_SIZE = 20
LOOP_POOL_WAIT_SECONDS = 10.0
LOOP_APPLICATION = "course-web-clicks"  # pg_stat_activity's application_name


@dataclass
class WebContext:
    settings: Settings
    sessions: sessionmaker[Session]
    signer: LinkSigner
    templates: Jinja2Templates
    limiter: RateLimiter
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _wording: dict[str, tuple[int, Course]] = field(default_factory=dict)
    _pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _statements: dict[TextClause, str] = field(default_factory=dict)
    _checking: bool = False

    @property
    def timing(self) -> Timing:
        return Timing.of(self.settings)

    @property
    def default_slug(self) -> str:
        """The course a request that names none is about (COURSE): the demo's, the old links' pages."""
        return self.settings.course_slug

    def live_course(self, session: Session, slug: str | None = None) -> Course:
        """The course as it is live now, with the wording published in the studio (its pages say what its
        emails say). LookupError for a course the deployment does not have."""
        slug = slug or self.default_slug
        return self.course_at(slug, current_release(session, slug), session)

    def course_at(self, slug: str, release: int, session: Session | None = None) -> Course:
        """The course as ``release`` published it (read with ``session``, or a session of its own)."""
        kept = self._wording.get(slug)
        if kept is not None and kept[0] == release:
            return kept[1]
        if session is None:
            with self.session() as own:
                return self.course_at(slug, release, own)
        found = course_at(session, slug, release)
        self._wording[slug] = (release, found)  # only a course's latest release is ever asked for again
        return found

    def known_course_at(self, slug: str, release: int) -> Course | None:
        """:meth:`course_at` when it is at hand (no database): on the event loop."""
        kept = self._wording.get(slug)
        return kept[1] if kept is not None and kept[0] == release else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    async def one_row(self, statement: TextClause, parameters: dict[str, Any]) -> tuple[Any, ...]:
        """Run ``statement`` on the event loop, as its own transaction, and return its one row: for the links
        mail scanners open (web/links.py), thousands a second. Through psycopg's own pool, not SQLAlchemy's
        async engine: its connection checkout and result cost 130 µs of the web's 450 µs a click (the
        statement is the same text, compiled for psycopg once)."""
        pool = await self._pool()
        try:
            async with pool.connection() as connection:
                cursor = await connection.execute(self._compiled(statement), parameters)
                row = await cursor.fetchone()
        except psycopg.OperationalError:
            # The database went away (a restart): this connection is dropped on its return. Before this request
            # fails, the idle ones are tried (a round trip each) and the dead among them replaced, so that the
            # next requests do not each find another dead one.
            if not self._checking:
                self._checking = True
                try:
                    await pool.check()
                finally:
                    self._checking = False
            raise
        if row is None:
            raise LookupError("the statement returned no row")
        return tuple(row)

    async def _pool(self) -> AsyncConnectionPool:
        """This event loop's pool (a server has one loop; a test client one per client). The first requests
        wait for its first connection, as with any pool."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            engine = self.sessions.kw["bind"]
            _, connect = engine.dialect.create_connect_args(engine.url)  # what the app's engine connects with
            made = AsyncConnectionPool(
                kwargs={**connect, "autocommit": True, "application_name": LOOP_APPLICATION},
                min_size=1, max_size=LOOP_POOL_SIZE, timeout=LOOP_POOL_WAIT_SECONDS, open=False,
                name=LOOP_APPLICATION,
            )  # fmt: skip
            await made.open(wait=False)
            pool = self._pools.setdefault(loop, made)
            if pool is not made:  # another request of this loop opened one meanwhile
                await made.close()
        return pool

    def _compiled(self, statement: TextClause) -> str:
        compiled = self._statements.get(statement)
        if compiled is None:
            dialect = self.sessions.kw["bind"].dialect
            compiled = self._statements[statement] = str(statement.compile(dialect=dialect))
        return compiled

    async def dispose(self) -> None:
        """At shutdown: close this event loop's connections."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()


def context(request: Request) -> WebContext:
    found: WebContext = request.app.state.context
    return found
