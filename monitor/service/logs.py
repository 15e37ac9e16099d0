"""Structured logs: one event name plus fields per line.

JSON lines when the output is not a terminal (journald, files, pipes); a readable
coloured form on a terminal. The stdlib loggers (APScheduler, apprise, aiohttp) are
routed through the same formatter, so every line of output has one shape. Under
systemd (JOURNAL_STREAM set) each line starts with a `<N>` priority prefix, which
journald turns into the entry's priority. A `Redactor` replaces secrets in every
event and in every finished line, whichever logger it came from.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog

from monitor.service.redact import Redactor

Format = Literal["auto", "json", "console"]

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """Redact the finished line; under journald, prefix it with its syslog priority."""

    def __init__(self, *, journal: bool, redactor: Redactor | None, **options: Any) -> None:
        super().__init__(**options)
        self.journal = journal
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if self.redactor is not None:
            line = self.redactor(line)
        if self.journal:
            return f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>{line}"
        return line


def writes_to_journal(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `stream` is the journald stream systemd connected (`JOURNAL_STREAM`)."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


def configure_logging(
    level: str = "INFO",
    stream: TextIO | None = None,
    fmt: Format = "auto",
    redactor: Redactor | None = None,
) -> None:
    """Route structlog and stdlib logging to `stream` (stdout by default)."""
    stream = stream or sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    processors: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        processors.append(structlog.processors.format_exc_info)
    if redactor is not None:
        processors.append(redactor.processor)
    processors.append(renderer)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        _Formatter(
            journal=as_json and writes_to_journal(stream),
            redactor=redactor,
            foreign_pre_chain=shared,
            processors=processors,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Library chatter below WARNING is noise in a service log.
    for name in ("httpx", "httpcore", "aiohttp", "apscheduler", "apprise"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
