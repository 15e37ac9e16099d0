"""Hostile feed servers: handlers and bodies that misbehave the way servers in the wild do.

Each handler plugs into `FeedServer.serve(path, handler=...)`. Every loop here is bounded
in bytes and time and stops as soon as the client hangs up.
"""

from __future__ import annotations

import contextlib
import random
import time
import zlib
from functools import cache
from http.server import BaseHTTPRequestHandler

from tests.support.servers import Handler

LOGIN_PAGE = b"""<!DOCTYPE html>
<html><head><title>Sign in</title></head>
<body><form method="post" action="/login">
<label>User <input name="user"></label><label>Password <input name="pw" type="password">
</label><button>Sign in</button></form></body></html>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><link>https://laughs.example/</link>
<description>&lol9;</description>
<item><title>&lol9;</title><link>https://laughs.example/1</link>
<description>&lol9;</description></item>
</channel></rss>
"""


def xxe(secret_path: str) -> bytes:
    """An RSS document whose entity points at a local file (and a loopback URL)."""
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY xxe SYSTEM "file://{secret_path}">
 <!ENTITY % remote SYSTEM "file://{secret_path}">
 %remote;
]>
<rss version="2.0"><channel><title>XXE &xxe;</title><link>https://xxe.example/</link>
<description>d</description>
<item><title>Leak &xxe;</title><link>https://xxe.example/1</link>
<description>&xxe;</description><guid>xxe-1</guid></item>
</channel></rss>
""".encode()


def random_bytes(size: int = 64 * 1024, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


@cache
def gzip_bomb(expanded: int = 256 * 1024 * 1024) -> bytes:
    """One gzip member of `expanded` zero bytes (about a thousandth of that on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros) for _ in range(expanded >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


def gzip_body(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return packer.compress(data) + packer.flush()


def _send_head(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.end_headers()


def redirect(location: str, status: int = 301) -> Handler:
    """Answer with a redirect to `location`."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        _send_head(request, status, {"Location": location, "Content-Length": "0"})

    return handle


def drip(every: float = 0.5, size: int = 240) -> Handler:
    """A 200 that sends one byte of a `size`-byte body every `every` seconds."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        headers = {"Content-Type": "application/rss+xml", "Content-Length": str(size)}
        _send_head(request, 200, headers)
        try:
            for _ in range(size):
                request.wfile.write(b" ")
                request.wfile.flush()
                time.sleep(every)
        except OSError:
            pass  # the client gave up, as it should
        request.close_connection = True

    return handle


def endless(size: int = 50 * 1024 * 1024, declare: bool = False) -> Handler:
    """A `size`-byte body streamed in 64 KB chunks, its length declared or not."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        headers = {"Content-Type": "application/rss+xml", "Connection": "close"}
        if declare:
            headers["Content-Length"] = str(size)
        _send_head(request, 200, headers)
        chunk = b"<!-- padding -->" * 4096
        sent = 0
        try:
            while sent < size:
                request.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        request.close_connection = True

    return handle


def encoded(body: bytes, encoding: str, content_type: str = "application/rss+xml") -> Handler:
    """A 200 whose body is sent as is with the given Content-Encoding."""

    def handle(request: BaseHTTPRequestHandler) -> None:
        headers = {
            "Content-Type": content_type,
            "Content-Encoding": encoding,
            "Content-Length": str(len(body)),
        }
        _send_head(request, 200, headers)
        with contextlib.suppress(OSError):
            request.wfile.write(body)

    return handle
