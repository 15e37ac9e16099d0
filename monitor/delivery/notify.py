"""The notify stage: hand one rendered message to one target, and say how it went.

Each target gets its own `apprise.Apprise` holding one plugin, so the result read back
(apprise's `AppriseResult` → one `NotifyResult` → its attempts and their logs) is that
target's own. Nothing here retries or remembers: the outbox does both
(`monitor.delivery.outbox` decides, its rows live in the store), so a send that fails
here is tried again later, by this process or the next one.

A json:// or form:// target (and jsons://, forms://) receives an alert or update also as
one object, `alert` in the payload beside apprise's `title` and `message` (a JSON
object; for a form, a field holding its JSON text): apprise's payload extras (what the
URL's `:key=value` arguments set) are set on the target's plugin for each send, the
URL's own extras kept.

apprise does not hand back response headers, so a `Retry-After` cannot be read; what
it does log is the HTTP status (`error=429.`), which the outbox uses to wait longer
after a rate limit.

apprise is imported where it is used (here, in the config's URL checks and in the
redactor), not with the module: it and the plugins read here take about a tenth of a
second to import, which a config without targets (the shipped one) never needs, and
which otherwise held up every `monitor once` before its first fetch.
"""

from __future__ import annotations

import json
import re
import smtplib
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from monitor.config.settings import TargetConfig
from monitor.delivery.routing import STDOUT
from monitor.templates.render import Message

PluginFactory = Callable[[TargetConfig], Any]
"""Builds the apprise plugin for a target (tests tune throttling or endpoints here)."""

STRUCTURED_KEY = "alert"
"""The payload key under which a json:// or form:// target receives the structured alert."""

_HTTP_STATUS = re.compile(r"error=(\d{3})\b")


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """One target's result for one message."""

    ok: bool
    error: str | None = None
    status: int | None = None
    """The HTTP status apprise logged for the failure, when it logged one."""


class Sender(Protocol):
    """Something that can deliver a message to a target label."""

    def send(self, target: str, message: Message) -> SendOutcome: ...


EMAIL_PAUSE = 0.0
"""Seconds apprise waits between two emails to one target. Its default, 5.5 s, made the
three alerts of one cycle take 11 s; the outbox paces sends itself (`max_per_hour`)."""


def default_plugin(target: TargetConfig) -> Any:
    import apprise  # noqa: PLC0415 (see the module)
    from apprise.plugins.email import NotifyEmail  # noqa: PLC0415

    plugin = apprise.Apprise.instantiate(target.url)
    if isinstance(plugin, NotifyEmail):
        plugin.request_rate_per_sec = EMAIL_PAUSE
    return plugin


def smtp_trouble(url: str, timeout: float = 10.0) -> str | None:
    """Why the SMTP server of an email target refuses what its URL asks, when a plain
    look at the server tells: nothing answering, no STARTTLS for `mailtos://`, or no AUTH
    for a URL with a user and password. apprise reports all of these as one "Connection
    error" (the reason goes to a debug line), so `test-notify` asks the server itself.
    None for another kind of target, SSL on connect, or a server that looks fine."""
    import apprise  # noqa: PLC0415 (see the module)
    from apprise.plugins.email import NotifyEmail  # noqa: PLC0415

    plugin: Any = apprise.Apprise.instantiate(url)
    if not isinstance(plugin, NotifyEmail) or plugin.secure_mode == "ssl":
        return None
    where = f"{plugin.smtp_host}:{plugin.port}"
    try:
        with smtplib.SMTP(plugin.smtp_host, plugin.port or 0, timeout=timeout) as smtp:
            smtp.ehlo()
            if plugin.secure_mode == "starttls":
                if not smtp.has_extn("starttls"):
                    return (
                        f"the SMTP server at {where} does not offer STARTTLS: use mailto:// "
                        "for a server without TLS"
                    )
                context = ssl.create_default_context()
                if not plugin.verify_certificate:
                    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                smtp.starttls(context=context)
                smtp.ehlo()
            if plugin.user and not smtp.has_extn("auth"):
                return (
                    f"the SMTP server at {where} does not offer AUTH: leave the user name and "
                    "password out of the URL (or use mailtos:// if it offers AUTH over TLS only)"
                )
    except (OSError, smtplib.SMTPException) as exc:
        return f"no SMTP conversation with {where}: {exc}"
    return None


class AppriseSender:
    """Sends through apprise, one `Apprise` per target; prints for the stdout target."""

    def __init__(
        self,
        targets: Sequence[TargetConfig],
        stdout: TextIO | None = None,
        *,
        plugin_factory: PluginFactory = default_plugin,
    ) -> None:
        self._targets = {t.label: t for t in targets}
        self._clients: dict[str, Any] = {}
        self._extras: dict[str, tuple[Any, dict[str, Any]]] = {}
        """For a target with payload extras: its plugin and the extras its URL set."""
        self._stdout = stdout
        self._factory = plugin_factory

    def send(self, target: str, message: Message) -> SendOutcome:
        import apprise  # noqa: PLC0415 (see the module)
        from apprise.plugins.custom_form import NotifyForm  # noqa: PLC0415
        from apprise.plugins.custom_json import NotifyJSON  # noqa: PLC0415

        if target == STDOUT and target not in self._targets:
            return self._print(message)
        config = self._targets.get(target)
        if config is None:
            return SendOutcome(False, f"target {target!r} is not configured")
        client = self._clients.get(target)
        if client is None:
            plugin = self._factory(config)
            client = apprise.Apprise()
            if plugin is None or not client.add(plugin):
                return SendOutcome(False, "apprise rejected the URL")
            self._clients[target] = client
            if isinstance(plugin, NotifyJSON | NotifyForm):
                self._extras[target] = (plugin, dict(plugin.payload_extras))
        carrier = self._extras.get(target)
        if carrier is not None:
            plugin, own = carrier
            plugin.payload_extras = {**own, **_structured(plugin, message.data)}
        try:
            result = client.notify(
                title=message.title,
                body=message.body,
                body_format=apprise.NotifyFormat(message.format),
            )
        except Exception as exc:  # a plugin bug must cost one send, not the run
            return SendOutcome(False, f"apprise raised {type(exc).__name__}: {exc}")
        return _outcome(result)

    def _print(self, message: Message) -> SendOutcome:
        stream = self._stdout or sys.stdout
        print(f"=== {message.title} ===\n{message.body}", file=stream, flush=True)
        return SendOutcome(True)


def _structured(plugin: Any, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The payload extra carrying `data`: a nested object for JSON, its JSON text for a
    form (a form field holds text); none for a message without data."""
    from apprise.plugins.custom_json import NotifyJSON  # noqa: PLC0415 (see the module)

    if data is None:
        return {}
    if isinstance(plugin, NotifyJSON):
        return {STRUCTURED_KEY: dict(data)}
    return {STRUCTURED_KEY: json.dumps(data, ensure_ascii=False)}


def _outcome(result: Any) -> SendOutcome:
    """This target's result, read from apprise's result object."""
    import apprise  # noqa: PLC0415 (see the module)

    services = list(result)
    if not services:
        return SendOutcome(False, f"apprise sent nothing (status {result.status.name})")
    service = services[0]
    if service.status == apprise.AppriseResultStatus.SUCCESS:
        return SendOutcome(True)
    lines = [
        str(entry.message)
        for attempt in service.attempts
        for entry in attempt.logs
        if getattr(entry, "message", None)
    ]
    failures = [line for line in lines if _HTTP_STATUS.search(line)] or lines
    error = failures[-1] if failures else f"apprise status {service.status.name}"
    found = _HTTP_STATUS.search(error)
    return SendOutcome(False, error, int(found.group(1)) if found else None)
