"""Other people's websites, as the browser tests need them: a page served on loopback."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


class ForeignPage(BaseHTTPRequestHandler):
    """A site that is not ours; a subclass says what its page holds for the path asked."""

    def page(self, path: str) -> str:
        raise NotImplementedError

    def do_GET(self) -> None:
        body = self.page(self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *arguments: object) -> None:
        pass
