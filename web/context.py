"""What every request handler needs, built once per app: settings, course, database, links, queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from course.curriculum import Course
from course.deliveries import Timing
from course.links import LinkSigner
from course.settings import Settings
from web.ratelimit import RateLimiter


@dataclass
class WebContext:
    settings: Settings
    course: Course
    sessions: sessionmaker[Session]
    signer: LinkSigner
    templates: Jinja2Templates
    limiter: RateLimiter
    enqueue: Callable[[Iterable[int]], None]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def timing(self) -> Timing:
        return Timing(
            address_key=self.settings.address_key,
            day_seconds=self.settings.course_day_seconds,
            lease_seconds=self.settings.delivery_lease_seconds,
            sending_pause_seconds=self.settings.sending_pause_seconds,
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session


def context(request: Request) -> WebContext:
    found: WebContext = request.app.state.context
    return found
