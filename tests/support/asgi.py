"""An HTTP client that calls the web app in process, for runs of thousands of requests: one event loop
on one thread of its own for the whole run (TestClient starts a portal for each request, which here
costs about as much again as the request itself). The loop's thread is not the test's: a test's thread
may already have a loop running on it (Playwright's sync API keeps one for the session's browser)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import FastAPI
from httpx2 import ASGITransport, AsyncClient, Response

T = TypeVar("T")


class DirectClient:
    """The app's answers as TestClient gives them (following redirects unless told not to), but a server
    error is an answer (a 500) rather than an exception, so that a run can count it and go on."""

    def __init__(self, app: FastAPI, *, base_url: str, headers: dict[str, str], client: str = "192.0.2.10") -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="direct-client")
        transport = ASGITransport(app=app, raise_app_exceptions=False, client=(client, 50000))
        self.client = AsyncClient(transport=transport, base_url=base_url, headers=headers, follow_redirects=True)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.thread.submit(self.loop.run_until_complete, work).result()

    def request(self, method: str, url: str, **options: Any) -> Response:
        return self.run(self.client.request(method, url, **options))

    def get(self, url: str, **options: Any) -> Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> Response:
        return self.request("POST", url, **options)

    def close(self) -> None:
        """Close the client, and the database connections the app opened on this client's event loop."""
        self.run(self.client.aclose())
        self.run(self.app.state.context.dispose())
        self.thread.submit(self.loop.close).result()
        self.thread.shutdown()
