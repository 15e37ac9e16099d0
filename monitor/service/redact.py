"""Keep secrets out of everything monitor prints: logs, error messages, command output.

A `Redactor` learns the secrets of a config (each notification URL, the parts of it
that apprise itself treats as private, the values `${VAR}` put into `notify` or
`database`, the database password) and replaces them wherever they appear: a whole
target URL becomes its masked form, any other secret becomes `****`. It is applied to
every log event (structlog's and the stdlib's, so apprise's own lines too) and to the
streams the commands print on, so a secret cannot leak through a message nobody
thought to mask.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TextIO
from urllib.parse import quote, unquote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor.config.settings import MASK, MIN_LENGTH, Config, mask_url, mask_values

__all__ = ["MASK", "MIN_LENGTH", "Redactor", "config_secrets", "url_secrets"]

_URL_PARTS = re.compile(r"[/:@?&=#]+")


def url_secrets(url: str) -> set[str]:
    """The parts of an apprise URL that apprise masks when it prints it privately."""
    return _plugin_secrets(_plugin(url))


def _plugin(url: str) -> Any:
    """apprise's plugin for `url`, or None."""
    import apprise  # noqa: PLC0415 (see `monitor.delivery.notify`)

    return apprise.Apprise.instantiate(url)


def _plugin_secrets(plugin: Any) -> set[str]:
    if plugin is None:
        return set()
    plain = set(_URL_PARTS.split(str(plugin.url(privacy=False))))
    public = set(_URL_PARTS.split(str(plugin.url(privacy=True))))
    return {part for part in plain - public if part}


def config_secrets(config: Config) -> dict[str, str]:
    """Every secret of `config`, mapped to what replaces it."""
    replacements: dict[str, str] = {}
    # A user name from the environment too: apprise's own masked form shows it, but it
    # was put there to stay out of the file. (A user name written in the file is shown.)
    for value in config.secrets:
        _add(replacements, value, MASK)
    try:
        password = make_url(config.database).password
    except ArgumentError:
        password = None
    if password:
        _add(replacements, str(password), MASK)
    for target in config.notify:
        plugin = _plugin(target.url)
        secrets = _plugin_secrets(plugin)
        secrets.update(s for s in config.secrets if s and s in target.url)
        if not secrets:
            continue
        tokens: dict[str, str] = {}
        for secret in secrets:
            _add(tokens, secret, MASK)
        replacements.update(tokens)
        # The whole URL becomes its masked form, keeping the line readable. apprise
        # leaves some secrets in it (custom headers), so those are masked too: the
        # replacement holds no secret, and redacting twice changes nothing.
        masked = Redactor(tokens)(mask_values(mask_url(target.url), config.secrets))
        _add(replacements, target.url, masked)
        if plugin is not None:
            _add(replacements, str(plugin.url(privacy=False)), masked)
    return replacements


def _add(replacements: dict[str, str], secret: str, replacement: str) -> None:
    for variant in (secret, unquote(secret), quote(secret, safe=""), quote(secret)):
        if len(variant) >= MIN_LENGTH and variant != replacement:
            replacements.setdefault(variant, replacement)


class Redactor:
    """Replaces learned secrets in text. Thread-safe; secrets are only ever added."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._replacements: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        if secrets:
            self.add(secrets)

    def learn(self, config: Config) -> None:
        """Also mask the secrets of `config` (a reloaded config adds to the old ones)."""
        self.add(config_secrets(config))

    def add(self, secrets: Mapping[str, str]) -> None:
        with self._lock:
            merged = {**secrets, **self._replacements}
            if merged == self._replacements:
                return
            # Longest first, so a whole URL wins over a token inside it.
            ordered = sorted(merged, key=len, reverse=True)
            self._replacements = merged
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        pattern, replacements = self._pattern, self._replacements
        if pattern is None or not text:
            return text
        return pattern.sub(lambda match: replacements[match.group(0)], text)

    def value(self, value: Any) -> Any:
        """`value` with secrets replaced in every string inside it."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(item) for item in value)
        return value

    def processor(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """A structlog processor: redact every value of the event."""
        for key, value in event_dict.items():
            event_dict[key] = self.value(value)
        return event_dict

    def stream(self, inner: TextIO) -> TextIO:
        """`inner`, with secrets replaced in everything written to it."""
        return _RedactingStream(inner, self)  # type: ignore[return-value]


class _RedactingStream:
    """A text stream that redacts what is written and passes everything else through."""

    def __init__(self, inner: TextIO, redactor: Redactor) -> None:
        self._inner = inner
        self._redactor = redactor

    def write(self, text: str) -> int:
        self._inner.write(self._redactor(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
