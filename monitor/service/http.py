"""The optional loopback HTTP endpoint: one small WSGI app served from a thread.

`routes` puts together what is served: the page and the Atom feed of events
(`monitor.service.page`), and, under `monitor run`, `/metrics` and `/healthz`
(`monitor.service.metrics`). Everything is read-only: a method other than GET or HEAD
is refused. `HttpServer` serves the app on a loopback address (`http.listen`; the
config refuses any other) from a daemon thread, one thread per request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PAGE_PATHS = ("/", "/story/ID", "/events.atom")
METRICS_PATHS = ("/metrics", "/healthz")


def routes(page: WSGIApp | None = None, metrics: WSGIApp | None = None) -> WSGIApp:
    """`/`, `/story/ID`, `/events.atom` to `page`; `/metrics`, `/healthz` to `metrics`."""
    served = [
        *(PAGE_PATHS if page else []),
        *(METRICS_PATHS if metrics else []),
    ]
    missing = f"not found: try {', '.join(served)}\n".encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")]
            )
            return [b"read-only: GET or HEAD\n"]
        path = environ.get("PATH_INFO", "") or "/"
        if metrics is not None and path in METRICS_PATHS:
            return metrics(environ, start_response)
        if page is not None and (path in ("/", "/events.atom") or path.startswith("/story/")):
            return page(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [missing]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not events worth a log line."""


class HttpServer:
    """Serves `app` on a loopback address, from a daemon thread; raises OSError when the
    address cannot be bound."""

    def __init__(self, app: WSGIApp, host: str, port: int) -> None:
        address = "127.0.0.1" if host == "localhost" else host
        server_class = _Server6 if ":" in address else _Server
        self._server = make_server(
            address, port, app, server_class=server_class, handler_class=_QuietHandler
        )
        self.host, self.port = address, int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-http", daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> HttpServer:
        self._thread.start()
        structlog.get_logger("monitor.http").info("http.listening", host=self.host, port=self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
