"""`monitor feeds ...`: find, test, add, import and export feeds from the command line.

`discover` and `test` change nothing. `add` and `import` append to config.yaml as text
(comments and layout kept, `monitor.config.edit`), check the result as `check-config`
would, and only then replace the file, at once; a running service applies it through
its watch of the file. Every failure is one line on stderr and exit 2, with the file
untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.cli.feeds import Feed, discover, name_for, probe, unique_name
from monitor.cli.opml import OpmlError, Subscription, read_opml, write_opml
from monitor.cli.output import EXIT_CONFIG, EXIT_OK, say
from monitor.config.edit import append_feeds, write_atomically
from monitor.config.settings import Config, FeedConfig, parse_config
from monitor.core.errors import ConfigError, FeedError
from monitor.ingest.sources import source_of
from monitor.match.classify import classify

if TYPE_CHECKING:
    from monitor.ingest.entry import Entry
    from monitor.ingest.fetch import Fetcher

T = TypeVar("T")


class ToolError(Exception):
    """What stops a `feeds` command: said in one line, exit 2, nothing written."""


def feeds(args: argparse.Namespace, config: Config) -> int:
    actions: dict[str, Callable[[argparse.Namespace, Config], int]] = {
        "discover": _discover,
        "test": _test,
        "add": _add,
        "import": _import,
        "export": _export,
    }
    try:
        return actions[args.feeds_command](args, config)
    except (ToolError, OpmlError) as exc:
        say(f"monitor: {exc}", file=sys.stderr)
    except FeedError as exc:
        say(f"monitor: cannot read {getattr(args, 'target', '')}: {exc}", file=sys.stderr)
    except ConfigError as exc:
        say(f"monitor: the config would be invalid, nothing written: {exc}", file=sys.stderr)
    except OSError as exc:
        say(f"monitor: cannot write {config.path}, nothing written: {exc}", file=sys.stderr)
    return EXIT_CONFIG


def _fetching(config: Config, work: Callable[[Fetcher], Coroutine[Any, Any, T]]) -> T:
    # Imported here: import and export fetch nothing and load no HTTP client.
    from monitor.ingest.fetch import Fetcher  # noqa: PLC0415

    async def run() -> T:
        async with Fetcher(config.fetch) as fetcher:
            return await work(fetcher)

    return asyncio.run(run())


# -- discover and test: read only -------------------------------------------------


def _discover(args: argparse.Namespace, config: Config) -> int:
    found = _fetching(config, lambda fetcher: discover(fetcher, args.target))
    if not found:
        raise ToolError(f"no feeds found at {args.target}")
    for feed in found:
        say(_describe(feed))
    return EXIT_OK


def _describe(feed: Feed) -> str:
    parsed = feed.parsed
    details = [f"{len(parsed.entries)} entries"]
    if parsed.lang:
        details.append(f"lang {parsed.lang}")
    return f'{feed.url}  "{parsed.title or ""}"  ({", ".join(details)})'


def _test(args: argparse.Namespace, config: Config) -> int:
    named = {feed.name: feed for feed in config.feeds}
    feed = named.get(args.target)
    url = feed.url if feed is not None else args.target
    if feed is None and not url.lower().startswith(("http://", "https://")):
        raise ToolError(f"{args.target!r} is neither a configured feed's name nor an http(s) URL")
    # A configured Telegram channel or page is read as the service reads it.
    source = source_of(feed) if feed is not None else None
    found = _fetching(config, lambda fetcher: probe(fetcher, url, source))
    if not isinstance(found, Feed):
        hint = f" (monitor feeds discover {url} lists a page's feeds)"
        raise ToolError(f"{url} is not a usable feed: {found.problem}{hint}")
    say(_describe(found))
    relevant = milestones = 0
    for entry in found.parsed.entries:
        verdicts = [classify(entry.title, entry.summary, [story]) for story in config.stories]
        relevant += any(v.relevant for v in verdicts)
        milestones += any(v.milestone for v in verdicts)
        judged = ", ".join(
            f"{story.id}: {v.milestone or ('relevant' if v.relevant else 'not relevant')}"
            for story, v in zip(config.stories, verdicts, strict=True)
        )
        say(f"{_when(entry)}  [{judged}]  {entry.title}")
    say(
        f"{len(found.parsed.entries)} entries, {relevant} relevant, {milestones} with a "
        "milestone; nothing was recorded or sent"
    )
    return EXIT_OK


def _when(entry: Entry) -> str:
    return entry.published.strftime("%Y-%m-%dT%H:%MZ") if entry.published else "(no date)        "


# -- add and import: the config file changes ----------------------------------------


def _add(args: argparse.Namespace, config: Config) -> int:
    found = _fetching(config, lambda fetcher: discover(fetcher, args.target))
    if not found:
        raise ToolError(f"no feed found at {args.target}")
    if len(found) > 1:
        raise ToolError(
            f"{len(found)} feeds found at {args.target}: add one by its address "
            f"(monitor feeds discover {args.target} lists them)"
        )
    feed = found[0]
    configured = _by_url(config.feeds)
    for url in (feed.url, feed.final_url):
        if url in configured:
            raise ToolError(f"{url} is already configured, as {configured[url]!r}")
    names = {f.name for f in config.feeds}
    if args.name is not None and args.name in names:
        raise ToolError(f"a feed named {args.name!r} is already configured")
    name = args.name or unique_name(name_for(feed.parsed.title, feed.url), names)
    entry = {"name": name, "url": feed.url}
    lang = args.lang or feed.parsed.lang
    if lang:
        entry["lang"] = lang
    if args.interval:
        entry["interval"] = args.interval
    _append(config.path, [entry])
    say(f"added {name!r} to {config.path}: {_describe(feed)}")
    return EXIT_OK


def _import(args: argparse.Namespace, config: Config) -> int:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise ToolError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    configured = _by_url(config.feeds)
    names = {f.name for f in config.feeds}
    entries: list[dict[str, str]] = []
    skipped: list[str] = []
    for subscription in read_opml(data):
        if known := configured.get(subscription.url):
            skipped.append(f"skipped {subscription.url}: already configured, as {known!r}")
            continue
        name = unique_name(subscription.title or name_for(None, subscription.url), names, " ")
        names.add(name)
        configured[subscription.url] = name
        entries.append({"name": name, "url": subscription.url})
    if entries:
        _append(config.path, entries)
    # Only now: on an error, its one line is all that is printed.
    for note in skipped:
        say(note)
    say(f"added {_feeds(len(entries))} to {config.path}, skipped {len(skipped)} already there")
    return EXIT_OK


def _feeds(count: int) -> str:
    return f"{count} feed" if count == 1 else f"{count} feeds"


def _by_url(feeds: Sequence[FeedConfig]) -> dict[str, str]:
    return {feed.url: feed.name for feed in feeds}


def _append(path: Path, entries: Sequence[Mapping[str, str]]) -> None:
    """Add `entries` to the config file, if the result is a config the service accepts."""
    # Bytes, not text mode: line endings stay as the file has them.
    text = path.read_bytes().decode("utf-8")
    changed = append_feeds(text, entries)
    parse_config(changed, path)
    write_atomically(path, changed)


# -- export -----------------------------------------------------------------------


def _export(args: argparse.Namespace, config: Config) -> int:
    subscriptions = [
        Subscription(url=feed.url, title=feed.name)
        for feed in config.feeds
        if feed.telegram is None and feed.page is None
    ]
    others = len(config.feeds) - len(subscriptions)
    if others:  # OPML lists feeds: a channel or a page read by selectors is none
        print(f"left out {others} sources that are no feed (telegram:, page:)", file=sys.stderr)
    sys.stdout.write(write_opml(subscriptions, args.title, datetime.now(UTC)))
    return EXIT_OK
