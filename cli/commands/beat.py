"""`course beat`: the one loop per deployment that claims due emails and queues them for the workers."""

from __future__ import annotations

import argparse

from cli.common import require_schema


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    beat = commands.add_parser(
        "beat", help="run the beat: it claims due emails and queues them for the workers (one per deployment)"
    )
    beat.add_argument("--loglevel", default="INFO")
    beat.set_defaults(handler=_beat)


def _beat(arguments: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from cli.root import Root
    from workers.beat import run

    root = Root.from_environment()
    require_schema(root.settings)
    logging.basicConfig(level=arguments.loglevel.upper(), format="[%(asctime)s: %(levelname)s/beat] %(message)s")
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())  # the tick under way finishes, then the beat stops
    with root:
        run(root.runtime, stop)
    return 0
