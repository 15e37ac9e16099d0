"""Real servers on loopback for tests: feeds over HTTP, a JSON alert receiver, SMTP."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiosmtpd.controller import Controller

Handler = Callable[[BaseHTTPRequestHandler], None]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Route:
    """What the feed server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: bool = True
    handler: Handler | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-reply (timeouts, size caps) are part of the tests."""
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


class _QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no access log, replies sent without Nagle's delay."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without this, Nagle and delayed ACKs add
    # 40 ms to every keep-alive reply.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass


class FeedServer:
    """Serves feeds from memory, with ETags and 304s; records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, httpx.Headers]] = []
        self.arrivals: list[tuple[str, float]] = []
        """Each request's path and `time.monotonic()` when it came."""
        self._lock = threading.Lock()
        outer = self

        class _Handler(_QuietHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    # Header names are case-insensitive; clients differ in the case they send.
                    outer.requests.append((self.path, httpx.Headers(self.headers.items())))
                    outer.arrivals.append((self.path, time.monotonic()))
                    route = outer.routes.get(self.path)
                if route is None:
                    self._reply(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.handler is not None:
                    route.handler(self)
                    return
                headers = {"Content-Type": route.content_type, **route.headers}
                if route.etag and route.status == 200:
                    tag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                    headers["ETag"] = tag
                    if self.headers.get("If-None-Match") == tag:
                        self._reply(304, b"", {"ETag": tag})
                        return
                self._reply(route.status, route.body, headers)

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes | str, **options: Any) -> str:
        """Serve `body` at `path` (replacing what was there) and return its URL."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self.routes[path] = Route(body=data, **options)
        return self.url(path)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for p, _ in self.requests if p == path)

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class AlertReceiver:
    """Receives apprise `json://` (or Slack webhook) posts; can be switched down.

    `down` answers `fail_status` (500 by default) and keeps nothing; `reply` is the body
    of a success (Slack's webhook answers `ok`). `on_request`, when set, is called with
    each parsed payload before the answer is written (a test may kill the sender there).
    """

    def __init__(self, reply: bytes = b"{}") -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.down = False
        self.fail_status = 500
        self.attempts = 0
        self.reply = reply
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self._lock = threading.Lock()
        outer = self

        class _Handler(_QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length))
                with outer._lock:
                    outer.attempts += 1
                    down = outer.down
                    if not down:
                        outer.received.append(payload)
                        outer.paths.append(self.path)
                    hook = outer.on_request
                if hook is not None:
                    hook(payload)
                body = b"{}" if down else outer.reply
                try:
                    self.send_response(outer.fail_status if down else 200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the sender was killed while we answered
                    self.close_connection = True

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/alerts"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    def start(self) -> AlertReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class MailSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        outer = self

        class _Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self._controller = Controller(_Handler(), hostname="127.0.0.1", port=free_port())

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def url(self, to: str = "desk@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=monitor@example.org&to={to}"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)
