"""What every request handler needs, built once per app: settings, courses, database, links, queue."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from course.catalog import course_at
from course.curriculum import Course
from course.deliveries.timing import Timing
from course.links import LinkSigner
from course.settings import Settings
from emails.store import current_release
from web.ratelimit import RateLimiter


@dataclass
class WebContext:
    settings: Settings
    sessions: sessionmaker[Session]
    signer: LinkSigner
    templates: Jinja2Templates
    limiter: RateLimiter
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _wording: dict[str, tuple[int, Course]] = field(default_factory=dict)
    _engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = field(
        default_factory=weakref.WeakKeyDictionary
    )

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

    def async_engine(self) -> AsyncEngine:
        """The database for the handlers that run on the event loop (the click redirects): each of their
        statements is its own transaction (AUTOCOMMIT: one round trip, no BEGIN and COMMIT around it). One
        engine per event loop: a server has one, a test client one per client."""
        bind = self.sessions.kw["bind"]
        loop = asyncio.get_running_loop()
        engine = self._engines.get(loop)
        if engine is None:
            # No ping per connection taken (see course.db.make_engine); as many connections as the
            # thread pool's sessions may use besides.
            engine = self._engines[loop] = create_async_engine(
                bind.url, pool_size=20, pool_pre_ping=False, isolation_level="AUTOCOMMIT"
            )
        return engine

    async def dispose(self) -> None:
        """At shutdown: close this event loop's connections."""
        engine = self._engines.pop(asyncio.get_running_loop(), None)
        if engine is not None:
            await engine.dispose()


def context(request: Request) -> WebContext:
    found: WebContext = request.app.state.context
    return found
