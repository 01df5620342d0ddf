"""/healthz: is the database reachable with the schema this code expects, and the broker? For load
balancers, uptime monitors (which send HEAD) and docker compose."""

from __future__ import annotations

import functools
import logging

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from course.db import UPGRADE_HINT, make_engine, schema_state, sqlite_file_missing
from course.settings import Settings
from web.routing import get_and_head

router = APIRouter()
log = logging.getLogger(__name__)


@functools.cache
def _engine(database_url: str) -> Engine:
    # A health check never creates a database (nor its folder): it reports that there is none.
    if database_url.startswith("sqlite"):
        return make_engine(database_url, create_folder=False)
    return make_engine(database_url, pool_size=2)


@functools.cache
def _broker(broker_url: str) -> redis.Redis:
    # One client (and its pool of connections) per process: a health check every few seconds, or a
    # load balancer's many, must not open a connection each.
    return redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)


def check(settings: Settings) -> dict[str, str]:
    checks: dict[str, str] = {}
    if sqlite_file_missing(settings.database_url):
        checks["database"] = f"missing: no database file yet: {UPGRADE_HINT}"
    else:
        try:
            checks["database"] = schema_state(_engine(settings.database_url)).describe()
        except Exception as error:
            checks["database"] = f"unreachable: {type(error).__name__}"
    if settings.broker_url.startswith(("redis://", "rediss://")):
        try:
            _broker(settings.broker_url).ping()
            checks["broker"] = "ok"
        except redis.RedisError as error:
            checks["broker"] = f"unreachable: {type(error).__name__}"
    else:
        checks["broker"] = "ok (in process)"
    return checks


@get_and_head(router, "/healthz", include_in_schema=False)
def healthz(request: Request) -> JSONResponse:
    checks = check(request.app.state.settings)
    healthy = all(value.startswith("ok") for value in checks.values())
    if not healthy:  # what a load balancer only sees as a 503, in the log with its reason
        log.warning("healthz: unhealthy: %s", checks)
    return JSONResponse({"status": "ok" if healthy else "unhealthy", **checks}, status_code=200 if healthy else 503)
