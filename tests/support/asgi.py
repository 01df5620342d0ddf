"""An HTTP client that calls the web app in process on the test's own thread, for runs of thousands of
requests: TestClient hands each request to the app on a thread of its own and waits for it there,
which here costs about as much again as the request itself."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from httpx2 import ASGITransport, AsyncClient, Response


class DirectClient:
    """The app's answers as TestClient gives them (following redirects unless told not to), but a server
    error is an answer (a 500) rather than an exception, so that a run can count it and go on."""

    def __init__(self, app: FastAPI, *, base_url: str, headers: dict[str, str]) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        transport = ASGITransport(app=app, raise_app_exceptions=False, client=("192.0.2.10", 50000))
        self.client = AsyncClient(transport=transport, base_url=base_url, headers=headers, follow_redirects=True)

    def request(self, method: str, url: str, **options: Any) -> Response:
        return self.loop.run_until_complete(self.client.request(method, url, **options))

    def get(self, url: str, **options: Any) -> Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> Response:
        return self.request("POST", url, **options)

    def close(self) -> None:
        """Close the client, and the database connections the app opened on this client's event loop."""
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.state.context.dispose())
        self.loop.close()
