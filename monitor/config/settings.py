"""Load `config.yaml` into a frozen, validated `Config`.

Everything that can be wrong with a config is found here, at load time, and reported
as a `ConfigError` naming the key and its line: unknown keys, bad durations, invalid
apprise URLs, missing environment variables, invalid rules, rules that judge one of a
story's `examples` wrong. A running service keeps its old config when a reload fails
this validation.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import threading
from collections.abc import Collection, Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from cssselect import HTMLTranslator, SelectorError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor.config.yamlsrc import Located, join_key, load_yaml
from monitor.core import hours
from monitor.core.errors import ConfigError
from monitor.match.evaluate import check_examples
from monitor.match.rules import Story, compile_stories
from monitor.templates.render import KINDS, PARTS, Format, compile_template

DEFAULT_PATH = Path("config.yaml")
ENV_VAR = "MONITOR_CONFIG"
PROJECT_URL = "https://github.com/monitor-news/monitor"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> object:
    """`90`, `"90s"`, `"15m"`, `"1h30m"`, `"2d"` → timedelta; anything else is left to fail."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return timedelta(seconds=float(text))
        if text and _DURATION.sub("", text) == "":
            seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))
            return timedelta(seconds=seconds)
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 2h, 1d)")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

MIN_RETENTION = timedelta(days=1)
MIN_INTERVAL = timedelta(seconds=60)
"""The shortest polling interval of a source on another machine: a check a minute,
within the per-host limit, is polite to any server. A source on this machine (a
mirror, a test server: localhost, 127.0.0.1, ::1) may be polled more often."""


def _positive(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError(f"must be more than 0s (got {value.total_seconds():g}s)")
    return value


def _retention(value: object) -> object:
    """A duration of at least a day, or `off` (YAML also reads an unquoted off as false)."""
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    value = parse_duration(value)
    if isinstance(value, timedelta) and value < MIN_RETENTION:
        raise ValueError(f"at least 1d, or off to keep everything (got {value})")
    return value


Retention = Annotated[timedelta | None, BeforeValidator(_retention)]
"""How long items are kept; None keeps everything."""


def _time_of_day(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 08:30 as the base-60 integer 510.
        value = f"{value // 60:02d}:{value % 60:02d}"
    return hours.parse_clock(value) if isinstance(value, str) else value


def _zone_name(value: object) -> object:
    if isinstance(value, str):
        hours.zone(value)
    return value


TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
ZoneName = Annotated[str, BeforeValidator(_zone_name)]
"""An IANA time zone name, checked against the zoneinfo database at load time."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchSettings(_Section):
    """How feeds are polled; every feed may override `interval`."""

    interval: Duration = timedelta(minutes=15)
    jitter: Duration = timedelta(seconds=60)
    timeout: Duration = timedelta(seconds=30)
    connect_timeout: Duration = timedelta(seconds=10)
    max_bytes: ByteSize = ByteSize(10 * 1024 * 1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    _interval = field_validator("interval")(_positive)
    concurrency: int = Field(default=16, ge=1, le=256)
    per_host: int = Field(default=4, ge=1, le=64)
    backoff_max: Duration = timedelta(hours=4)
    user_agent: str = f"monitor/0.1 (+{PROJECT_URL})"
    parse_worker: bool = True
    """Parse and match feeds in a child process (a second core; a parser crash or hang
    costs one feed, not the service). False: in a thread of the service process."""


class AlertSettings(_Section):
    """When an item may alert at all."""

    max_age: Duration = timedelta(days=3)
    """Items published longer ago than this are recorded but never alerted."""


class DeliverySettings(_Section):
    """How the outbox is drained."""

    interval: Duration = timedelta(seconds=30)
    max_attempts: int = Field(default=12, ge=1)
    max_age: Duration = timedelta(days=2)
    backoff_base: Duration = timedelta(seconds=30)
    backoff_max: Duration = timedelta(hours=1)
    lease: Duration = timedelta(minutes=5)
    """How long a claimed send may be in flight before another run may retry it."""
    rate_limited_wait: Duration = timedelta(seconds=60)
    """The least wait after a target answers 429/503 (apprise does not pass Retry-After on)."""


class DigestSettings(_Section):
    """When the daily digest of each story is due."""

    time: TimeOfDay = time(8, 0)
    timezone: ZoneName = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return hours.zone(self.timezone)


class HealthSettings(_Section):
    """When a feed's trouble is worth telling the health targets about."""

    failing_after: Duration = timedelta(hours=6)
    """A feed failing for this long (every attempt) raises one alert."""
    silent_factor: float = Field(default=5.0, ge=1.0)
    """A feed with no new items for this many times its usual gap raises one alert ..."""
    silent_min: Duration = timedelta(days=2)
    """... but never before this long without new items."""


class TemplateSet(_Section):
    """Overrides of one kind of message; a part left out keeps the shipped template."""

    title: str | None = None
    text: str | None = None
    markdown: str | None = None
    html: str | None = None


class TemplatesConfig(_Section):
    """Jinja2 templates (sandboxed, autoescaped) that replace the shipped ones."""

    alert: TemplateSet = TemplateSet()
    update: TemplateSet = TemplateSet()
    digest: TemplateSet = TemplateSet()
    summary: TemplateSet = TemplateSet()
    notice: TemplateSet = TemplateSet()
    health: TemplateSet = TemplateSet()
    """A feed failing, gone, silent or recovered (`change`), told to the health targets."""
    dead_letter: TemplateSet = TemplateSet()
    """The warning that deliveries to a target were given up."""

    def overrides(self) -> dict[str, dict[str, str | None]]:
        return {kind: getattr(self, kind).model_dump() for kind in KINDS}


SourceKind = Literal["feed", "telegram", "page"]
Tier = Literal["official", "agency", "press", "aggregator"]
"""Who a source is: `official` (a government body's own channel or site), `agency` (a
news agency), `press` (any other outlet), `aggregator` (a feed of others' reports)."""
TIERS: tuple[Tier, ...] = get_args(Tier)
TELEGRAM_PREVIEW = "https://t.me/s/{channel}"
_TELEGRAM_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
"""A public username: 5 to 32 letters, digits and underscores, from a letter (a few
old channels have 4)."""


class FeedConfig(_Section):
    """One source to poll: a feed (`url:`), a public Telegram channel (`telegram:`), or a
    news page without a feed (`page:` with CSS selectors: `items:`, and optionally
    `title:`, `date:`, `summary:`). A Telegram channel is read from its web preview,
    `https://t.me/s/CHANNEL`, unless `url:` gives another address for that page."""

    name: str = Field(min_length=1)
    url: str
    interval: Duration | None = None
    lang: str | None = None
    tier: Tier = "press"
    """Who the source is (`TIERS`); alerts name it, and `confirm:` trusts `official` and
    `agency` sources alone."""
    telegram: str | None = None
    page: str | None = None
    items: str | None = None
    title: str | None = None
    date: str | None = None
    summary: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _source_url(cls, data: Any) -> Any:
        """`page:` is the URL to poll; `telegram:` implies its preview's URL."""
        if not isinstance(data, dict):
            return data
        page, channel = data.get("page"), data.get("telegram")
        if page is not None and channel is not None:
            raise ValueError("give one of `page`, `telegram` (or a feed `url`), not both")
        if page is not None:
            if "url" in data:
                raise ValueError("a page source's URL is its `page`: leave out `url`")
            return {**data, "url": page}
        if isinstance(channel, str) and "url" not in data:
            return {**data, "url": TELEGRAM_PREVIEW.format(channel=channel)}
        return data

    _interval = field_validator("interval")(_positive)

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, tier: object) -> object:
        if isinstance(tier, str) and tier not in TIERS:
            close = difflib.get_close_matches(tier, TIERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"not a tier: {tier!r} (one of {', '.join(TIERS)}{hint})")
        return tier

    @field_validator("url", "page")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"(?i)^https?://[^/\s]+", url):
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url

    @field_validator("lang")
    @classmethod
    def _language(cls, lang: str | None) -> str | None:
        if lang is not None:
            check_language(lang)
        return lang

    @field_validator("telegram")
    @classmethod
    def _channel(cls, channel: str | None) -> str | None:
        if channel is not None and not _TELEGRAM_CHANNEL.fullmatch(channel):
            raise ValueError(
                f"not a public Telegram channel name: {channel!r} (the CHANNEL of "
                "t.me/CHANNEL: 5-32 letters, digits or underscores, starting with a letter)"
            )
        return channel

    @field_validator("items", "title", "date", "summary")
    @classmethod
    def _selector(cls, css: str | None) -> str | None:
        if css is None:
            return None
        try:
            HTMLTranslator().css_to_xpath(css)
        except SelectorError as exc:
            raise ValueError(f"not a CSS selector cssselect can use: {css!r} ({exc})") from None
        return css

    @model_validator(mode="after")
    def _selectors_for_pages(self) -> FeedConfig:
        given = [key for key in ("items", "title", "date", "summary") if getattr(self, key)]
        if self.page is None and given:
            raise ValueError(f"`{given[0]}` is a page source's selector: add `page: URL`")
        if self.page is not None and self.items is None:
            raise ValueError("a page source needs `items`: the CSS selector of each item's link")
        return self

    @property
    def kind(self) -> SourceKind:
        if self.telegram is not None:
            return "telegram"
        return "page" if self.page is not None else "feed"


_LANGUAGE_TAG = re.compile(r"(?i)[a-z]{2}(?:[-_][a-z0-9]{2,8})*")
"""An ISO 639-1 code, optionally with a region or script (`ru`, `en-US`, `zh-Hant`)."""
LANGUAGE_NAMES = {
    "arabic": "ar", "chinese": "zh", "czech": "cs", "danish": "da", "dutch": "nl",
    "english": "en", "finnish": "fi", "french": "fr", "german": "de", "greek": "el",
    "hebrew": "he", "hindi": "hi", "hungarian": "hu", "indonesian": "id", "italian": "it",
    "japanese": "ja", "kazakh": "kk", "korean": "ko", "norwegian": "no", "persian": "fa",
    "polish": "pl", "portuguese": "pt", "romanian": "ro", "russian": "ru", "serbian": "sr",
    "spanish": "es", "swedish": "sv", "turkish": "tr", "ukrainian": "uk", "vietnamese": "vi",
    "belarusian": "be", "georgian": "ka", "armenian": "hy", "bulgarian": "bg",
}  # fmt: skip
"""English names of common languages, for the suggestion when a name is given for a code."""


def check_language(lang: str) -> None:
    """ValueError unless `lang` is an ISO 639-1 language tag; suggest the code of a name."""
    if _LANGUAGE_TAG.fullmatch(lang):
        return
    code = LANGUAGE_NAMES.get(lang.strip().lower())
    hint = f"did you mean {code!r}? " if code else ""
    raise ValueError(f"not an ISO 639-1 language code: {lang!r} ({hint}e.g. ru, en, ko, uk)")


Receives = Literal["alerts", "updates", "digest", "health"]
_SLACK_URL = re.compile(r"(?i)^(slack://|https://hooks\.slack(-gov)?\.com/)")
_EMAIL_URL = re.compile(r"(?i)^mailtos?://")


class TargetConfig(_Section):
    """One apprise notification target and what it receives (who receives each message
    is decided from these fields in `monitor.delivery.routing`)."""

    url: str = Field(min_length=1)
    name: str | None = None
    stories: tuple[str, ...] | None = None
    milestones: tuple[str, ...] | None = None
    receive: tuple[Receives, ...] = Field(default=("alerts",), min_length=1)
    """`alerts` (one message per milestone, at once), `updates` (the first report of each
    other new development, at once), `digest` (daily), `health` (ops)."""
    format: Format | None = None
    """How messages are written for it; by default markdown for Slack, html for email."""
    quiet_hours: str | None = None
    """`HH:MM-HH:MM` local time: messages wait until the window ends."""
    timezone: ZoneName | None = None
    """For quiet hours and the times shown in messages; default `digest.timezone`."""
    break_through: bool | tuple[str, ...] = False
    """Milestone alerts that ignore quiet hours: true for all, or a list of milestones."""
    max_per_hour: int | None = Field(default=None, ge=1)
    """At most this many messages an hour; the excess is folded into one summary."""
    confirm: int | None = Field(default=None, ge=2)
    """A milestone alert waits until this many distinct outlets, or one `official` or
    `agency` source, have reported the milestone (other targets are told at once)."""
    explain: bool = False
    """Its alerts and updates end with the terms that matched (`Matched: ...`)."""
    _label: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _masked_label(self, info: ValidationInfo) -> TargetConfig:
        # The label is stored with every delivery: no value from the environment in it.
        hidden: Collection[str] = (info.context or {}).get(ENVIRONMENT_VALUES, ())
        self._label = mask_values(self.name or mask_url(self.url), hidden)
        return self

    @field_validator("url")
    @classmethod
    def _apprise_url(cls, url: str) -> str:
        if _instantiate(url) is None:
            raise ValueError(f"apprise does not accept this URL: {mask_url(url)}")
        return url

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, text: str | None) -> str | None:
        if text is not None:
            hours.QuietHours.parse(text, ZoneInfo("UTC"))
        return text

    @field_validator("receive")
    @classmethod
    def _distinct(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(kinds)) != len(kinds):
            raise ValueError("lists a kind twice")
        return kinds

    @property
    def message_format(self) -> Format:
        """`format`, else what the URL's service reads best."""
        if self.format is not None:
            return self.format
        if _SLACK_URL.match(self.url):
            return "markdown"
        if _EMAIL_URL.match(self.url):
            return "html"
        return "text"

    def quiet(self, default_tz: ZoneInfo) -> hours.QuietHours | None:
        if self.quiet_hours is None:
            return None
        return hours.QuietHours.parse(self.quiet_hours, self.tz(default_tz))

    def tz(self, default_tz: ZoneInfo) -> ZoneInfo:
        return hours.zone(self.timezone) if self.timezone else default_tz

    def breaks_through(self, milestone: str) -> bool:
        if isinstance(self.break_through, bool):
            return self.break_through
        return milestone in self.break_through

    @property
    def label(self) -> str:
        """How the target is named in logs, history, status and the stored deliveries:
        its name or masked URL, with every value taken from the environment masked."""
        return self._label or self.former_label

    @property
    def former_label(self) -> str:
        """The label before values from the environment were masked in it (user names)."""
        return self.name or mask_url(self.url)


MASK = "****"
MIN_LENGTH = 4
"""Shorter secrets are not masked inside longer text (they would mangle ordinary words);
a shorter one that is a whole part of a URL (`json://bob@...`) still is."""
ENVIRONMENT_VALUES = "environment values"
"""The validation context key of the values `${VAR}` put into `notify` or `database`."""
_URL_SEPARATORS = re.compile(r"([/:@?&=#]+)")


def mask_values(text: str, values: Collection[str]) -> str:
    """`text` with each of `values` masked: inside any word when at least MIN_LENGTH long,
    and, whatever its length, where it is a whole part of a URL (a user name, a host)."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= MIN_LENGTH:
            for variant in dict.fromkeys((value, quote(value, safe=""))):
                text = text.replace(variant, MASK)
    short = {value for value in values if value and len(value) < MIN_LENGTH}
    if not short:
        return text
    parts = _URL_SEPARATORS.split(text)  # the separators are at the odd places
    return "".join(MASK if unquote(part) in short else part for part in parts)


def mask_url(url: str) -> str:
    """The apprise URL with its secrets (tokens, passwords) masked and no query string.

    apprise masks the secrets it knows of, but not custom headers or payload fields
    (`?+X-Api-Key=...`), and it spells out every default option: the query goes, so
    the label (a target's name when it has none, stored with its deliveries) carries
    neither a secret nor noise.
    """
    plugin: Any = _instantiate(url)
    if plugin is None:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        return f"{scheme}://***"
    return str(plugin.url(privacy=True)).split("?", 1)[0]


def _instantiate(url: str) -> Any:
    """apprise's plugin for `url`, or None, without apprise's log lines about a URL it
    refuses (they are raw, and the config error says it in one line)."""
    import apprise  # noqa: PLC0415 (see `monitor.delivery.notify`)

    logger = logging.getLogger("apprise")
    mine = _ThisThread()
    logger.addFilter(mine)
    try:
        return apprise.Apprise.instantiate(url)
    finally:
        logger.removeFilter(mine)


class _ThisThread(logging.Filter):
    """Drops the records of the thread that made it: a validation running beside
    deliveries (a reload) hides its own apprise lines, not the deliveries'."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


class HttpSettings(_Section):
    """The optional HTTP endpoint (the page, /events.atom, /healthz, Prometheus /metrics),
    on loopback only."""

    listen: str
    """`host:port` with a loopback host: `127.0.0.1:9108`, `[::1]:9108`, `localhost:9108`."""

    @field_validator("listen")
    @classmethod
    def _loopback(cls, listen: str) -> str:
        try:
            parts = urlsplit(f"//{listen.strip()}")
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host or port is None or not 0 < port < 65536:
            raise ValueError(f"not host:port: {listen!r} (e.g. 127.0.0.1:9108)")
        if host != "localhost" and not _is_loopback(host):
            raise ValueError(f"{host} is not a loopback address: metrics are served locally only")
        return listen.strip()

    @property
    def host(self) -> str:
        return str(urlsplit(f"//{self.listen}").hostname)

    @property
    def port(self) -> int:
        return int(urlsplit(f"//{self.listen}").port or 0)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Config(_Section):
    """The whole, validated configuration. Immutable: a reload builds a new one."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    database: str = "sqlite:///monitor.db"
    fetch: FetchSettings = FetchSettings()
    alerts: AlertSettings = AlertSettings()
    delivery: DeliverySettings = DeliverySettings()
    digest: DigestSettings = DigestSettings()
    health: HealthSettings = HealthSettings()
    templates: TemplatesConfig = TemplatesConfig()
    feeds: tuple[FeedConfig, ...] = Field(min_length=1)
    notify: tuple[TargetConfig, ...] = ()
    stories: tuple[Story, ...] = Field(min_length=1)
    http: HttpSettings | None = None
    """Off unless set: the page, /events.atom, /healthz and /metrics of `monitor run`."""
    retention: Retention = timedelta(days=90)
    """Items first seen longer ago are pruned daily (`monitor.store.retention` says which
    stay); `off` keeps everything."""
    path: Path = Field(default=DEFAULT_PATH, exclude=True)
    _secrets: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("database")
    @classmethod
    def _database_url(cls, url: str) -> str:
        check_database_url(url)
        return url

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        _reject_duplicates("feeds", [f.name for f in self.feeds], "name")
        _reject_duplicates("notify", [t.label for t in self.notify], "name")
        known = {s.id: {m.key for m in s.milestones} for s in self.stories}
        for i, target in enumerate(self.notify):
            for story in target.stories or ():
                if story not in known:
                    raise ConfigError(f"unknown story {story!r}", key=f"notify[{i}].stories")
            all_milestones = set().union(*known.values())
            for milestone in target.milestones or ():
                if milestone not in all_milestones:
                    raise ConfigError(
                        f"unknown milestone {milestone!r}", key=f"notify[{i}].milestones"
                    )
            if not isinstance(target.break_through, bool):
                for milestone in target.break_through:
                    if milestone not in all_milestones:
                        raise ConfigError(
                            f"unknown milestone {milestone!r}", key=f"notify[{i}].break_through"
                        )
        return self

    @model_validator(mode="after")
    def _polite_intervals(self) -> Config:
        """No source on another machine is polled more often than MIN_INTERVAL."""
        for i, feed in enumerate(self.feeds):
            interval = self.feed_interval(feed)
            host = urlsplit(feed.url).hostname or ""
            if interval >= MIN_INTERVAL or host == "localhost" or _is_loopback(host):
                continue
            shortest = f"at least {MIN_INTERVAL.total_seconds():g}s"
            got = f"got {interval.total_seconds():g}s"
            if feed.interval is not None:
                raise ConfigError(
                    f"{shortest} for a source on another machine ({host}; {got})",
                    key=f"feeds[{i}].interval",
                )
            raise ConfigError(
                f"{shortest} while a source on another machine uses it "
                f"(feeds[{i}] {feed.name!r} at {host}; {got}): give that source its own "
                "interval, or make this one longer",
                key="fetch.interval",
            )
        return self

    @model_validator(mode="after")
    def _templates_compile(self) -> Config:
        for kind in KINDS:
            overrides: TemplateSet = getattr(self.templates, kind)
            for part in PARTS:
                source: str | None = getattr(overrides, part)
                if source is None:
                    continue
                try:
                    compile_template(kind, part, source)
                except ValueError as exc:
                    raise ConfigError(str(exc), key=f"templates.{kind}.{part}") from None
        return self

    def relabelled(self) -> dict[str, str]:
        """Former label → label, for the targets whose label now masks a value from the
        environment that it showed before (a user name): their stored deliveries move."""
        return {t.former_label: t.label for t in self.notify if t.former_label != t.label}

    @property
    def tiers(self) -> dict[str, str]:
        """Each source's tier, by name: what the store keeps of it (`Store.sync_feeds`)."""
        return {f.name: f.tier for f in self.feeds}

    def feed_interval(self, feed: FeedConfig) -> timedelta:
        return feed.interval or self.fetch.interval

    def database_url(self) -> str:
        """`database`, with a relative SQLite path resolved against the config's folder."""
        url = make_url(self.database)
        if url.get_backend_name() != "sqlite" or not url.database:
            return self.database
        if url.database == ":memory:" or url.database.startswith("file:"):
            return self.database
        path = Path(url.database)
        if not path.is_absolute():
            path = self.path.resolve().parent / path
        return url.set(database=str(path)).render_as_string(hide_password=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed: what `${VAR}` put into `notify` or `database`."""
        return self._secrets


DATABASES = {"sqlite": "sqlite:///PATH", "postgresql": "postgresql+psycopg://USER@HOST/NAME"}
"""The databases the store is written for, each with the form of its URL."""


def check_database_url(url: str) -> None:
    """ValueError unless `url` is an SQLAlchemy URL of a database monitor runs on, with
    its port (if any) in range. Its driver is loaded later, by the store (`check-config`)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"not an SQLAlchemy URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend not in DATABASES:
        close = difflib.get_close_matches(backend, list(DATABASES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        forms = ", ".join(DATABASES.values())
        raise ValueError(
            f"monitor runs on SQLite or PostgreSQL, not {backend!r} ({hint}use {forms})"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"port {parsed.port} is out of range (1-65535)")


def _reject_duplicates(section: str, names: list[str], field: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            hint = " (give each a distinct `name`)" if section == "notify" else ""
            raise ConfigError(f"duplicate {field} {name!r}{hint}", key=f"{section}[{i}].{field}")
        seen.add(name)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--config`, else `$MONITOR_CONFIG`, else `./config.yaml`."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, examples: bool = True
) -> Config:
    """Read and validate the config at `path`; raise `ConfigError` naming the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    return parse_config(text, path, env, examples=examples)


def parse_config(
    text: str,
    path: Path = DEFAULT_PATH,
    env: Mapping[str, str] | None = None,
    *,
    examples: bool = True,
) -> Config:
    """Validate config text; `path` anchors relative paths and names the file.

    `examples=False` leaves the stories' examples unjudged (their shape is still checked):
    for the tools that show what the rules do, needed most when an example fails.
    """
    located = load_yaml(text, env)
    raw = located.value
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping of sections (database, feeds, ...)")
    secrets = _environment_values(located)
    try:
        stories = compile_stories(raw.get("stories", []), key="stories", cues=raw.get("cues"))
        rest = {k: v for k, v in raw.items() if k != "cues"}
        config = Config.model_validate(
            {**rest, "stories": stories, "path": path},
            context={ENVIRONMENT_VALUES: secrets},
        )
        if examples:  # last: the rules are sound, now do they judge right?
            check_examples(config.stories)
    except ConfigError as exc:
        raise exc.at(line=located.line_of(exc.key)) from None
    except ValidationError as exc:
        raise _first_error(exc, located) from None
    config._secrets = secrets
    return config


_SECRET_SECTIONS = {"notify", "database"}


def _environment_values(located: Located) -> tuple[str, ...]:
    """What `${VAR}` put into `notify` or `database`; of a whole URL, its user name too
    (apprise's masked form of a URL shows the user name)."""
    values = [
        value
        for key, found in located.substituted.items()
        if key.split(".")[0].split("[")[0] in _SECRET_SECTIONS
        for value in found
    ]
    users = [_user_name(value) for value in values if "://" in value]
    return tuple(dict.fromkeys([*values, *(user for user in users if user)]))


def _user_name(url: str) -> str:
    try:
        return unquote(urlsplit(url).username or "")
    except ValueError:
        return ""


def _first_error(exc: ValidationError, located: Located) -> ConfigError:
    """The most useful of pydantic's errors: an unknown key (a typo) explains the rest."""
    errors = exc.errors(include_url=False)
    keys = [_dotted(error["loc"]) for error in errors]
    missing = {key for key, error in zip(keys, errors, strict=True) if error["type"] == "missing"}
    order = sorted(range(len(errors)), key=lambda i: errors[i]["type"] != "extra_forbidden")
    error, key = errors[order[0]], keys[order[0]]
    message = _message(error)
    if error["type"] == "extra_forbidden":
        parent, _, name = key.rpartition(".")
        candidates = [m.rpartition(".")[2] for m in missing if m.rpartition(".")[0] == parent]
        candidates += _known_keys(error["loc"][:-1])
        close = difflib.get_close_matches(name, candidates, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return ConfigError(message, key=key or None, line=located.line_of(key))


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the section at `loc` (a pydantic error's location) may have."""
    model: type[BaseModel] | None = Config
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue  # an element of a list: the same model
        field = model.model_fields.get(part)
        model = _section_of(field.annotation) if field else None
    return [name for name in model.model_fields if name != "path"] if model else []


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, in a tuple or optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        if found := _section_of(argument):
            return found
    return None


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key = join_key(key, part if isinstance(part, int) else str(part))
    return key


def _message(error: Any) -> str:
    kind: str = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")
