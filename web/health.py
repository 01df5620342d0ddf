"""/healthz: is the database reachable with the schema this code expects, and the broker? For load
balancers, uptime monitors (which send HEAD) and docker compose."""

from __future__ import annotations

import functools
import logging

import redis
from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kombu.connection import Connection
from kombu.exceptions import KombuError
from sqlalchemy import Engine

from course.db import make_engine, schema_state
from course.settings import Settings
from web.routing import get_and_head

router = APIRouter()
log = logging.getLogger(__name__)


@functools.cache
def _engine(database_url: str) -> Engine:
    # Two connections and no more: a load balancer's burst of checks waits its turn for them rather than
    # opening a dozen more per process (beside the pages' and the clicks' pools, that ran PostgreSQL out of
    # connections under wrk, and the checks answered 503).
    return make_engine(database_url, pool_size=2, max_overflow=0)


@functools.cache
def _broker(broker_url: str) -> redis.Redis:
    # One client (and its pool of connections) per process: a health check every few seconds, or a
    # load balancer's many, must not open a connection each.
    return redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)


def check(settings: Settings) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        checks["database"] = schema_state(_engine(settings.database_url)).describe()
    except Exception as error:
        checks["database"] = f"unreachable: {type(error).__name__}"
    if settings.broker_url.startswith(("redis://", "rediss://")):
        checks["broker"] = _ping_redis(settings.broker_url)
    elif settings.broker_url.startswith(("amqp://", "amqps://")):
        checks["broker"] = _ping_amqp(settings.broker_url)
        if settings.redis is not None:  # the send-rate bucket and the web's limits live there
            checks["redis"] = _ping_redis(settings.redis)
    else:
        checks["broker"] = "ok (in process)"
    return checks


def _ping_redis(url: str) -> str:
    try:
        _broker(url).ping()
    except redis.RedisError as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"


def _ping_amqp(url: str) -> str:
    """RabbitMQ: a connection opened and closed (kombu, as Celery speaks to it)."""
    try:
        with Connection(url, connect_timeout=2) as connection:  # type: ignore[no-untyped-call]
            connection.connect()
    except (OSError, AMQPError, KombuError) as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"


@get_and_head(router, "/healthz", include_in_schema=False)
def healthz(request: Request) -> JSONResponse:
    checks = check(request.app.state.settings)
    healthy = all(value.startswith("ok") for value in checks.values())
    if not healthy:  # what a load balancer only sees as a 503, in the log with its reason
        log.warning("healthz: unhealthy: %s", checks)
    return JSONResponse({"status": "ok" if healthy else "unhealthy", **checks}, status_code=200 if healthy else 503)
