"""`serve`: the page and the Atom feed of events, served read-only until stopped.

The same page `monitor run` serves on `http.listen`, for a look without the daemon (or
beside one, on another port). It reads the store and writes nothing.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from monitor.cli.output import EXIT_CONFIG, EXIT_OK
from monitor.config.settings import HttpSettings
from monitor.service.app import App
from monitor.service.http import HttpServer, routes
from monitor.service.page import Page

DEFAULT_LISTEN = "127.0.0.1:9108"
"""Where `serve` listens when neither `--listen` nor `http.listen` says."""


def serve(args: argparse.Namespace, app: App) -> int:
    listen = args.listen or (app.config.http.listen if app.config.http else DEFAULT_LISTEN)
    host, port = _address(listen)
    page = Page(app.store, lambda: app.config, redact=args.redactor, clock=app.clock)
    try:
        server = HttpServer(routes(page), host, port)
    except OSError as exc:
        print(f"monitor: cannot listen on {listen}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()

    def stopping(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stopping)
    server.start()
    print(f"serving {server.url} (read-only; Ctrl-C stops)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return EXIT_OK


def _address(listen: str) -> tuple[str, int]:
    settings = HttpSettings(listen=listen)
    return settings.host, settings.port
