"""`course worker`: a Celery worker that sends the course's emails from its queue."""

from __future__ import annotations

import argparse
import os

from cli.common import require_schema
from emails.dkim import DkimSigner


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser("worker", help="run a Celery worker that sends the course")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    worker.add_argument("--loglevel", default="INFO")
    # Celery's node name. A node's control queue is exclusive on RabbitMQ: two workers of one name there
    # stop each other. The default, CELERY_QUEUE@host, is one per host and deployment; a second worker
    # of the same deployment on one host takes --name second@%%h (or more --concurrency instead).
    worker.add_argument("--name", help="the worker's node name (default: CELERY_QUEUE@%%h, %%h the host name)")
    worker.add_argument("--nice", type=int, default=10, choices=range(20), metavar="0-19",
                        help="how far below the machine's other processes the worker's CPU priority is (default "
                        "%(default)s: on a machine it shares with `course web`, the pages people and mail scanners "
                        "open go first, and the send, a matter of minutes, takes the rest; 0: the same)")  # fmt: skip
    worker.set_defaults(handler=_worker)


def _worker(arguments: argparse.Namespace) -> int:
    from cli.root import Root

    # Before the pool's processes fork: they inherit it. Only CPU the other processes want is given up:
    # alone on its cores (the benchmark's send, a worker machine of a fleet), the worker sends as fast.
    os.nice(arguments.nice)
    root = Root.from_environment()
    settings = root.settings
    require_schema(settings)
    DkimSigner.from_settings(settings)  # a key that cannot sign stops the worker now, not each batch
    root.worker(
        ["worker", "-Q", settings.celery_queue, f"--hostname={arguments.name or settings.celery_queue + '@%h'}",
         f"--concurrency={arguments.concurrency}",
         f"--pool={arguments.pool}", f"--loglevel={arguments.loglevel}", "--without-gossip", "--without-mingle"]
    )  # fmt: skip
    return 0
