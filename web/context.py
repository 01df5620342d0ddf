"""What every request handler needs, built once per app: settings, courses, database, links, queue."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar, cast

import psycopg
from fastapi import Request
from fastapi.templating import Jinja2Templates
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import TextClause
from sqlalchemy.orm import Session, sessionmaker

from course.catalog import course_at
from course.curriculum import Course
from course.deliveries.timing import Timing
from course.engagement.clicks import CLICKS_AT_ONCE, Click, Clicked, clicked, clicks_parameters
from course.links import LinkSigner
from course.settings import Settings
from emails.store import current_release
from web.ratelimit import RateLimiter
from web.scanners import HUMAN_DELAY_SECONDS

LOOP_APPLICATION = "course-web-clicks"  # pg_stat_activity's application_name

# Views of a course's words a process keeps (:meth:`WebContext.of_course`): a few per email of each course.
VIEWS_KEPT = 1024

T = TypeVar("T")

# A process's click statements under way at once, and the clicks one statement takes at most: while they
# are under way, the clicks that arrive wait and go together in the next. Two: one under way while the
# next gathers; more would spread the same clicks over more, smaller statements (a round trip and a
# commit each).
CLICK_STATEMENTS_AT_ONCE = 2
CLICKS_PER_STATEMENT = 64

# The click connections run the click statement only, prepared (psycopg prepares what it runs often): its
# plan is the same for any clicks, and PostgreSQL, left to choose, plans it anew each time (1 ms of its
# CPU, more than the statement's own work). Made once, the plan must not scan a table whole because it was
# small then (a new deployment's): the statement only looks rows up by their keys
# (tests/web/test_clicks.py holds its plan to that).
CLICK_SETTINGS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}

# How long a click statement waits for one of the event loop's connections (one per statement under way)
# before its requests fail: a database that is away (its restart).
LOOP_POOL_WAIT_SECONDS = 10.0


@dataclass
class _Batch:
    """An event loop's clicks waiting for a statement, and its statements under way."""

    waiting: list[tuple[Click, asyncio.Future[Clicked]]] = field(default_factory=list)
    running: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _answer(taken: list[tuple[Click, asyncio.Future[Clicked]]], error: BaseException) -> None:
    for _, reply in taken:
        if not reply.done():
            reply.set_exception(error)


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
    _batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _statements: dict[TextClause, str] = field(default_factory=dict)
    _views: dict[tuple[int, Hashable], tuple[Course, object]] = field(default_factory=dict)
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

    def of_course(self, course: Course, key: Hashable, make: Callable[[], T]) -> T:
        """What ``make`` gives for ``course`` and ``key``, made once: a release's words never change, and
        a page every reader of it is shown (the exercise page mail scanners open) need not build its
        view of them each time. At most :data:`VIEWS_KEPT` are kept; a course's later releases are new
        objects, never an earlier one's views."""
        kept = self._views.get((id(course), key))
        if kept is not None and kept[0] is course:
            return cast(T, kept[1])
        made = make()
        if len(self._views) >= VIEWS_KEPT:
            self._views.clear()
        self._views[(id(course), key)] = (course, made)
        return made

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    async def record_click(self, click: Click) -> Clicked:
        """Record ``click`` by the click rule (course/engagement/clicks.py) on the event loop: for the links
        mail scanners open (web/links.py), thousands a second. The clicks that arrive while this process's
        statements are under way wait, and go together in the next one (:data:`CLICK_STATEMENTS_AT_ONCE`):
        one round trip and one commit for all of them, as a database's group commit does. Through psycopg's
        own pool, not SQLAlchemy's async engine, whose connection checkout and result handling cost more of
        the web's CPU than the rest of the click (the statement is the same text, compiled for psycopg once)."""
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches.setdefault(loop, _Batch())
        reply: asyncio.Future[Clicked] = loop.create_future()
        batch.waiting.append((click, reply))
        if batch.running < CLICK_STATEMENTS_AT_ONCE:
            batch.running += 1
            task = loop.create_task(self._record_waiting(batch))
            batch.tasks.add(task)  # a reference until it is done: the loop keeps only a weak one
            task.add_done_callback(batch.tasks.discard)
        return await reply

    async def _record_waiting(self, batch: _Batch) -> None:
        """Record the waiting clicks, at most :data:`CLICKS_PER_STATEMENT` a statement, until none wait."""
        try:
            await asyncio.sleep(0)  # the requests that arrived in this turn of the loop go together
            while batch.waiting:
                taken, batch.waiting = batch.waiting[:CLICKS_PER_STATEMENT], batch.waiting[CLICKS_PER_STATEMENT:]
                try:
                    await self._record(taken)
                except Exception as error:  # a fault of ours: each request fails with it, none waits for ever
                    _answer(taken, error)
        finally:
            batch.running -= 1

    async def _record(self, taken: list[tuple[Click, asyncio.Future[Clicked]]]) -> None:
        """One statement for ``taken``, each request answered with its own row or the error. A statement
        refused for what it holds (not for the database being away) is tried again click by click, so that
        one click's error (or a deadlock with an erasure) is its own and not its neighbours'."""
        try:
            found = await self._statement([click for click, _ in taken])
        except Exception as error:  # handed to each request, which fails with it
            away = isinstance(error, psycopg.OperationalError) and not isinstance(
                error, psycopg.errors.TransactionRollback
            )  # the database went away (a restart), not refused what the statement holds
            if len(taken) > 1 and not away:
                for one in taken:
                    await self._record([one])
                return
            if away:
                await self._check_pool()
            _answer(taken, error)
        else:
            for (_, reply), row in zip(taken, found, strict=True):
                if not reply.done():  # its request may have gone (its client disconnected)
                    reply.set_result(row)

    async def _statement(self, clicks: list[Click]) -> list[Clicked]:
        pool = await self._pool()
        async with pool.connection() as connection:
            parameters = clicks_parameters(clicks, human_delay=HUMAN_DELAY_SECONDS)
            cursor = await connection.execute(self._compiled(CLICKS_AT_ONCE), parameters)
            return clicked(await cursor.fetchall())

    async def _check_pool(self) -> None:
        """This request's connection is dropped on its return. Before the requests fail, the idle ones are
        tried (a round trip each) and the dead among them replaced, so that the next requests do not each
        find another dead one."""
        if self._checking:
            return
        self._checking = True
        try:
            await (await self._pool()).check()
        finally:
            self._checking = False

    async def _pool(self) -> AsyncConnectionPool:
        """This event loop's pool (a server has one loop; a test client one per client). The first requests
        wait for its first connection, as with any pool."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            engine = self.sessions.kw["bind"]
            _, connect = engine.dialect.create_connect_args(engine.url)  # what the app's engine connects with
            settings = " ".join(f"-c {name}={value}" for name, value in CLICK_SETTINGS.items())
            options = f"{connect.get('options', '')} {settings}".strip()
            made = AsyncConnectionPool(
                kwargs={**connect, "autocommit": True, "application_name": LOOP_APPLICATION, "options": options},
                min_size=1, max_size=CLICK_STATEMENTS_AT_ONCE, timeout=LOOP_POOL_WAIT_SECONDS, open=False,
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
