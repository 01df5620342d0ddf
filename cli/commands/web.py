"""`course web`: serve the web app with uvicorn, once the schema and the SNS settings are sound."""

from __future__ import annotations

import argparse
import os

from cli.common import CommandError, require_schema
from course.settings import get_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web = commands.add_parser("web", help="serve the web app (uvicorn)")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes serving requests (default: one per core, %(default)s here)",
    )
    web.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                     help="log a line per request (--no-access-log behind a proxy that logs them)")  # fmt: skip
    web.set_defaults(handler=_web)


def _web(arguments: argparse.Namespace) -> int:
    import uvicorn

    from web.webhooks.sns import SnsVerifier

    settings = get_settings()
    require_schema(settings)
    try:
        SnsVerifier.from_settings(settings)  # a pinned certificate that cannot be used stops it now
    except ValueError as error:
        raise CommandError(str(error)) from None
    # One process per core by default: a Python process serves one request's Python at a time, and
    # mail scanners open every link of every email within seconds of its delivery.
    # uvicorn's own X-Forwarded-For handling stays off: the app believes the header only from the
    # proxies in FORWARDED_ALLOW_IPS (web/clients.py), and keeps the peer's address otherwise.
    uvicorn.run("cli.root:web_app", factory=True, host=arguments.host, port=arguments.port,
                workers=arguments.workers, proxy_headers=False, access_log=arguments.access_log,
                log_level="info")  # fmt: skip
    return 0
