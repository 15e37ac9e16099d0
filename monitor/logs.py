"""Structured logs: one event name plus fields per line.

JSON lines when the output is not a terminal (journald, files, pipes); a readable
coloured form on a terminal. The stdlib loggers (APScheduler, apprise, aiohttp) are
routed through the same formatter, so every line of output has one shape. Under
systemd (JOURNAL_STREAM set) each line starts with a `<N>` priority prefix, which
journald turns into the entry's priority.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Literal, TextIO

import structlog

Format = Literal["auto", "json", "console"]

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _JournalFormatter(structlog.stdlib.ProcessorFormatter):
    """Prefix each line with its syslog priority, which journald reads as `<N>`."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def configure_logging(
    level: str = "INFO", stream: TextIO | None = None, fmt: Format = "auto"
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
    processors = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    if as_json:
        processors.insert(1, structlog.processors.format_exc_info)
    formatter_class = (
        _JournalFormatter
        if as_json and os.environ.get("JOURNAL_STREAM")
        else structlog.stdlib.ProcessorFormatter
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_class(foreign_pre_chain=shared, processors=processors))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Library chatter below WARNING is noise in a service log.
    for name in ("aiohttp", "apscheduler.scheduler", "apprise"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
