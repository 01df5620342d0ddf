"""/metrics and the OpenAPI schema: in production, /metrics only behind its bearer token (compared in
constant time; not served at all without one) and no schema; the hostile cases are wrong, partial,
odd and non-ASCII credentials."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from web import metrics
from web.app import create_app

from ..conftest import make_settings
from .conftest import BROWSER

METRICS_TOKEN = "scrape-0123456789-abcdefghij"


def production_client(database_url: str, **overrides: object) -> TestClient:
    settings = make_settings(environment="production", database_url=database_url, broker_url="memory://",
                             smtp_url="smtp://127.0.0.1:1", **overrides)  # fmt: skip
    return TestClient(create_app(settings), base_url="https://course.example.org", headers={"User-Agent": BROWSER})


def test_production_without_a_metrics_token_serves_neither_metrics_nor_the_schema(database_url: str) -> None:
    with production_client(database_url) as client:
        for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
            response = client.get(path, headers={"Authorization": "Bearer anything"})
            assert response.status_code == 404, path
        assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong-token-0123456789", f"Basic {METRICS_TOKEN}",
     f"Bearer {METRICS_TOKEN}x", f"Bearer {METRICS_TOKEN[:-1]}", "Bearer ünïcödé-token-0123456789",
     f"Bearer  {METRICS_TOKEN} extra"],
)  # fmt: skip
def test_metrics_refuse_any_other_credentials(database_url: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {b"Authorization": authorization.encode()}
    with production_client(database_url, metrics_token=METRICS_TOKEN) as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "course_subscribers" not in response.text and "<h1>" in response.text


def test_metrics_answer_their_token_compared_in_constant_time(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(metrics, "compare_digest", spy)
    with production_client(database_url, metrics_token=METRICS_TOKEN) as client:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        lowercase = client.get("/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"})
    assert response.status_code == 200 and "course_sending_paused 0.0" in response.text
    assert lowercase.status_code == 200  # the scheme is case-insensitive (RFC 9110)
    assert compared == [(METRICS_TOKEN.encode(), METRICS_TOKEN.encode())] * 2


def test_outside_production_a_set_token_is_required_too(database_url: str) -> None:
    settings = make_settings(database_url=database_url, broker_url="memory://", metrics_token=METRICS_TOKEN)
    with TestClient(create_app(settings), base_url="https://course.example.org") as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
        assert client.get("/openapi.json").status_code == 200  # the schema outside production
