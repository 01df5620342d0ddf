"""The composition root: what one process of the ``course`` command is made of, built once.

Each process (``course web``'s, ``course worker``'s, ``course beat``'s, ``course demo``'s one) makes one
:class:`Root` from its settings and takes from it what it runs: the web app, the Celery app with its task,
the beat's :class:`~workers.engine.Runtime`. The rooms below build nothing on import and read no
environment: they are handed the settings, the database, the clock, the signer, the sender, the throttle
and the queue from here.

Each resource is made on first use. A prefork worker forks before its first task, so the database pool
and the sender's connection are made in each child, never shared across a fork.
"""

from __future__ import annotations

import gc
from functools import cached_property
from typing import TYPE_CHECKING

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from course.clock import DatabaseClock
from course.db import make_engine, make_sessionmaker
from course.links import LinkSigner
from course.settings import Settings, get_settings
from emails.senders import Sender, sender_from_url
from workers import tasks
from workers.app import create_app as create_celery_app
from workers.engine import Runtime, make_throttle
from workers.throttle import Throttle

if TYPE_CHECKING:
    from fastapi import FastAPI

# Connections of the web app's pool per process: a request takes one for its transaction.
WEB_POOL_SIZE = 20


class Root:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._web_engines: list[Engine] = []

    @classmethod
    def from_environment(cls) -> Root:
        return cls(get_settings())

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connections it made (a command that ends; a demo that stops)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        while self._web_engines:
            self._web_engines.pop().dispose()

    # --- What the rooms share -----------------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
        """The workers' and the beat's database: each connection tested as it is taken from the pool, each
        statement planned as it runs (course/db.py)."""
        return make_engine(self.settings.database_url, plan_each_time=True)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def clock(self) -> DatabaseClock:
        return DatabaseClock(self.engine, self.settings.clock_check_seconds)

    @cached_property
    def signer(self) -> LinkSigner:
        return LinkSigner(self.settings.secret_key, str(self.settings.base_url))

    @cached_property
    def throttle(self) -> Throttle:
        return make_throttle(self.settings)

    @cached_property
    def sender(self) -> Sender:
        return sender_from_url(self.settings.smtp_url, self.settings.smtp_timeout_seconds)

    @cached_property
    def celery(self) -> Celery:
        """The Celery app, with the send_next task: the workers run it, the web and the beat queue it."""
        app = create_celery_app(self.settings)
        tasks.register(app, lambda: self.runtime)
        return app

    def enqueue(self, wakeups: int) -> None:
        """Wake ``wakeups`` workers: a send_next task for each batch queued (workers/tasks.py)."""
        tasks.wake(self.celery, wakeups)

    def waiting_wakeups(self) -> int:
        """The send_next tasks waiting in the broker's queue."""
        return tasks.waiting(self.celery, self.settings.celery_queue)

    # --- What a process runs ------------------------------------------------------------------------

    @cached_property
    def runtime(self) -> Runtime:
        """What the beat's tick and the send_next task work with."""
        return Runtime(
            self.settings,
            sessions=self.sessions,
            sender=self.sender,
            throttle=self.throttle,
            clock=self.clock,
            enqueue=self.enqueue,
            waiting_wakeups=self.waiting_wakeups,
        )

    def web(self) -> FastAPI:
        """The web app. Its database pool is its own (no pre-ping, a connection per request; see
        course/db.py's make_engine); the clock, the signer and the queue are the process's.

        The web room is imported here, by the processes that serve it: a worker or the beat that loaded
        FastAPI and every page would carry them (50 MB each) and their garbage collector would walk them."""
        from web.app import create_app as create_web_app

        engine = make_engine(self.settings.database_url, pre_ping=False, pool_size=WEB_POOL_SIZE)
        self._web_engines.append(engine)
        return create_web_app(
            self.settings,
            sessions=make_sessionmaker(engine),
            enqueue=self.enqueue,
            clock=DatabaseClock(engine, self.settings.clock_check_seconds),
            signer=self.signer,
        )

    def after_fork(self) -> None:
        """In a prefork worker's child: forget any connection the parent made (the parent keeps using its
        own); the child makes its own on first use."""
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)
        for made in ("runtime", "sender", "throttle", "clock", "sessions", "engine"):
            self.__dict__.pop(made, None)

    def pool_process_started(self, **_: object) -> None:
        """A worker's pool process, as it starts: its parent's connections forgotten (:meth:`after_fork`), and
        what it inherited (the modules, the Celery app) out of its garbage collector's walks
        (:func:`keep_for_good`)."""
        self.after_fork()
        keep_for_good()

    def worker(self, argv: list[str]) -> None:
        """Run a Celery worker of this deployment (``course worker``, ``course demo``)."""
        worker_process_init.connect(self.pool_process_started, weak=False)
        self.celery.worker_main(argv)


def web_app() -> FastAPI:
    """The web app as ``course web`` serves it: uvicorn calls this in each of its processes."""
    app = Root.from_environment().web()
    keep_for_good()
    return app


def keep_for_good() -> None:
    """Take what the process has built so far (its modules and what they made at start: in a web process the
    app, its routes and templates, about 190,000 objects, alive as long as the process) out of the garbage
    collector's walks. Without it each full collection walked all of them: in the web, 80-200 ms in which
    the process answered nothing, a few times a second under a scanner's burst of clicks (their p99 was
    130-170 ms; 28 ms with this). What a request or a task makes is collected as before."""
    gc.collect()
    gc.freeze()
