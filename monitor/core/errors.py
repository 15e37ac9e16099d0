"""The exceptions monitor raises, in one small tree.

    MonitorError
    ├── ConfigError            the config file is unusable (names the key and line)
    ├── StoreError             the database cannot be opened, read or written (one line)
    ├── LabelsError            a labelled file for `monitor eval` is unreadable or has bad lines
    └── FeedError              one feed could not be read (recorded and backed off per feed)
        ├── TransientFeedError     worth retrying: timeouts, 5xx, connection resets
        │   └── RateLimited         the server asked us to wait (429/503 with Retry-After)
        └── PermanentFeedError     retrying soon will not help: 4xx, oversized body
            ├── FeedGone            410: polling this feed stops
            ├── NotAFeed            the body parsed as neither RSS, Atom nor JSON Feed
            └── NoMatches           a page source's `items` selector matched nothing

Expected outcomes (a 304, an empty feed, a duplicate entry) are values, not exceptions.
"""

from __future__ import annotations

from datetime import timedelta


class MonitorError(Exception):
    """Base class of every error monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid; `key` is the dotted path of the offending field."""

    def __init__(self, message: str, key: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.key = key
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.key:
            where = f"{self.key}: "
        suffix = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{self.message}{suffix}"

    def at(self, key: str | None = None, line: int | None = None) -> ConfigError:
        """Return a copy located at `key`/`line`, keeping what is already known."""
        return ConfigError(self.message, key=self.key or key, line=self.line or line)


class StoreError(MonitorError):
    """The database cannot be opened, migrated, read or written: a missing driver, a
    read-only or full disk, a corrupt file, a lost server. Its message is one line; the
    store raises it for every database failure, never SQLAlchemy's own exceptions."""


class LabelsError(MonitorError):
    """A labelled JSON-lines file cannot be scored; `problems` says why, a line each."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        super().__init__(problems[0] if problems else "bad labelled file")


class FeedError(MonitorError):
    """A feed could not be fetched or read; caught per feed, never fatal to a cycle."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class TransientFeedError(FeedError):
    """A failure that may go away by itself: back off and try again."""


class RateLimited(TransientFeedError):
    """The server answered 429 or 503, possibly with a Retry-After we must honour."""

    def __init__(self, message: str, status: int, retry_after: timedelta | None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status)


class PermanentFeedError(FeedError):
    """A failure that will not fix itself soon; still retried, at the longest backoff."""


class FeedGone(PermanentFeedError):
    """The server says the feed is gone for good (410): polling stops."""


class NotAFeed(PermanentFeedError):
    """The body is not RSS, Atom or JSON Feed (an HTML login page, random bytes)."""


class NoMatches(PermanentFeedError):
    """A page source's `items` selector matched nothing: the site's markup changed.

    Its message always starts with `PREFIX`, which is how feed health tells it, in the
    stored `last_error`, from other failures (`monitor.service.health`).
    """

    PREFIX = "no item matched"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.PREFIX} {detail}")
