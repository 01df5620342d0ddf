"""/healthz: is the database reachable, and the broker? For load balancers and docker compose."""

from __future__ import annotations

import functools

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from course.db import make_engine
from course.settings import Settings

router = APIRouter()


@functools.cache
def _engine(database_url: str) -> Engine:
    return (
        make_engine(database_url, pool_size=2) if not database_url.startswith("sqlite") else make_engine(database_url)
    )


def check(settings: Settings) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with _engine(settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unreachable: {type(error).__name__}"
    if settings.broker_url.startswith(("redis://", "rediss://")):
        try:
            redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2).ping()
            checks["broker"] = "ok"
        except redis.RedisError as error:
            checks["broker"] = f"unreachable: {type(error).__name__}"
    else:
        checks["broker"] = "ok (in process)"
    return checks


@router.get("/healthz", include_in_schema=False)
def healthz(request: Request) -> JSONResponse:
    checks = check(request.app.state.settings)
    healthy = all(value.startswith("ok") for value in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unhealthy", **checks}, status_code=200 if healthy else 503)
