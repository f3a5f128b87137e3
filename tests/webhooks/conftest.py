"""Real HTTP receivers on 127.0.0.1 for webhook tests, reachable through the allow-list."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from typing import Any

import pytest

from tests.conftest import make_settings

#: what the suite allows (PATRON_WEBHOOK_ALLOWED_NETWORKS); nothing else private is reachable
LOOPBACK = [ip_network("127.0.0.1/32")]


class Receiver:
    """Answers each POST with the next queued (status, body, headers); records what came."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, str, dict[str, str]]] = []
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
                code, text, extra = receiver.replies.pop(0) if receiver.replies else (200, "ok", {})
                data = text.encode()
                self.send_response(code)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *replies: int | tuple[int, str] | tuple[int, str, dict[str, str]]) -> None:
        for r in replies:
            if isinstance(r, int):
                self.replies.append((r, "ok" if r < 300 else "try later", {}))
            elif len(r) == 2:
                self.replies.append((r[0], r[1], {}))
            else:
                self.replies.append(r)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def settings(database: Any) -> Any:
    """The suite's app allows 127.0.0.1 through the operator setting, as an ERP on the LAN
    would be allowed."""
    return make_settings(database, webhook_allowed_networks="127.0.0.1/32")
