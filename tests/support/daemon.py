"""`monitor run` as a real subprocess: its log lines, its signals, its exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.support.full_disk import monitor_module

REPO = Path(__file__).resolve().parents[2]


class Daemon:
    """Starts `monitor [options] run [run_args]` and collects its output as it comes."""

    def __init__(
        self,
        config: Path,
        *options: str,
        run_args: Sequence[str] = ("--reload-check", "0"),
        env: Mapping[str, str] | None = None,
        room: int | None = None,
    ) -> None:
        # `room`: on a disk full but for this many bytes (see tests/support/full_disk.py).
        self.command = [
            sys.executable,
            "-m",
            *monitor_module(room),
            "--config",
            str(config),
            "--log-format",
            "json",
            *options,
            "run",
            *run_args,
        ]
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None
        self.returncode: int | None = None
        self._readers: list[threading.Thread] = []

    def start(self) -> Daemon:
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=REPO,
        )
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            reader = threading.Thread(target=self._collect, args=(stream,), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def _collect(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    def output(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events printed so far, optionally only those called `name`."""
        with self._lock:
            lines = list(self._lines)
        found = []
        for line in lines:
            text = line[line.index("{") :] if "{" in line else ""
            try:
                event = json.loads(text)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def wait_for_log(self, name: str, timeout: float = 20, count: int = 1) -> dict[str, Any]:
        """Wait until the daemon has logged `count` events called `name`; return the last."""
        self.wait_until(lambda: len(self.events(name)) >= count, timeout, f"log event {name}")
        return self.events(name)[count - 1]

    def wait_until(self, condition: Any, timeout: float = 20, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"daemon exited waiting for {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM, then wait at most `timeout` seconds for the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.returncode = self.process.wait(timeout=timeout)
        self._drain_output()
        return self.returncode

    def _drain_output(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)
        assert self.process is not None
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        self.returncode = self.process.returncode
        self._drain_output()


class NotifySocket:
    """A stand-in for systemd's notify socket: collects what the service says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.extend(data.decode().splitlines())

    def said(self, message: str) -> int:
        """How many times the service sent this line (`READY=1`, `WATCHDOG=1`, ...)."""
        with self._lock:
            return self.messages.count(message)

    def wait_for(self, message: str, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.said(message) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {message} after {timeout}s; got {self.messages}")
            time.sleep(0.02)

    def __enter__(self) -> NotifySocket:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self._socket.close()


class SilentServer:
    """Accepts TCP connections and never says a word: a mail server that hangs."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self._socket.settimeout(0.1)
        self.port = int(self._socket.getsockname()[1])
        self.connections: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(connection)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        for connection in self.connections:
            connection.close()
        self._socket.close()
