"""The notify stage: hand one rendered message to one target, and say how it went.

Each target gets its own `apprise.Apprise` instance so its result is its own. Nothing
here retries or remembers: the outbox in the store does both, so a send that fails
here is tried again later, by this process or the next one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import apprise

from monitor.config import Config, TargetConfig
from monitor.messages import Message

STDOUT = "stdout"
"""The built-in target used when `notify` is empty: alerts are printed."""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """One target's result for one message."""

    ok: bool
    error: str | None = None


class Sender(Protocol):
    """Something that can deliver a message to a target label."""

    def send(self, target: str, message: Message) -> SendOutcome: ...


def target_labels(config: Config) -> list[str]:
    """The labels deliveries are addressed to under this config."""
    return [t.label for t in config.notify] or [STDOUT]


def notice_targets(config: Config) -> list[str]:
    """Where notices about the service itself go (a feed gone): every target, for now."""
    return target_labels(config)


def route(config: Config, story: str, milestone: str) -> Sequence[str]:
    """The targets that receive an alert for `milestone` of `story`."""
    if not config.notify:
        return [STDOUT]
    return [t.label for t in config.notify if t.receives(story, milestone)]


class AppriseSender:
    """Sends through apprise, one `Apprise` per target; prints for the stdout target."""

    def __init__(self, targets: Sequence[TargetConfig], stdout: TextIO | None = None) -> None:
        self._urls = {t.label: t.url for t in targets}
        self._clients: dict[str, Any] = {}
        self._stdout = stdout

    def send(self, target: str, message: Message) -> SendOutcome:
        if target == STDOUT and target not in self._urls:
            return self._print(message)
        url = self._urls.get(target)
        if url is None:
            return SendOutcome(False, f"target {target!r} is not configured")
        client = self._clients.get(target)
        if client is None:
            client = apprise.Apprise()
            if not client.add(url):
                return SendOutcome(False, "apprise rejected the URL")
            self._clients[target] = client
        result = client.notify(title=message.title, body=message.body)
        if result:
            return SendOutcome(True)
        return SendOutcome(False, _failure_reason(result))

    def _print(self, message: Message) -> SendOutcome:
        stream = self._stdout or sys.stdout
        print(f"=== {message.title} ===\n{message.body}\n", file=stream, flush=True)
        return SendOutcome(True)


def _failure_reason(result: Any) -> str:
    """The last log line apprise recorded for the failed target, or its status."""
    for service in result:
        for attempt in reversed(list(getattr(service, "attempts", ()))):
            for entry in reversed(list(getattr(attempt, "logs", ()))):
                text = getattr(entry, "message", None)
                if text:
                    return str(text)
        return f"apprise status {getattr(service, 'status', 'FAILURE')}"
    return "apprise reported failure"
