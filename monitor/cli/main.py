"""The `monitor` command line: its arguments, and which command runs with what.

Each command's code lives in `monitor.cli.commands` by what it touches (the service,
the config, delivery, the rules, the store's records) and is imported only when it runs, so the
help and the commands that need little start without the rest. Commands that open the
database get the assembled application (`monitor.service.app.App`); the others get the
config alone. Exit codes are in `monitor.cli.output`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.cli.output import EXIT_CONFIG
from monitor.config.settings import (
    Config,
    HttpSettings,
    config_path,
    load_config,
    parse_duration,
)
from monitor.core.errors import ConfigError, StoreError
from monitor.match import evaluate
from monitor.service.logs import configure_logging
from monitor.service.redact import Redactor
from monitor.templates.render import FORMATS


@dataclass(frozen=True, slots=True)
class Command:
    """Where a command's code is, and what it needs before it runs."""

    module: str
    """Its module under `monitor.cli.commands`."""
    function: str
    store: bool = True
    """It opens the database and gets the assembled application; else the config alone."""
    rules_tool: bool = False
    """It shows what the rules do, so it runs (with a warning) when an example fails."""
    logs_to_stdout: bool = False
    """A service command: stdout is its log. Query commands keep stdout for their output."""
    polls: bool = False
    """It fetches and reads feeds: its parse child (unless the config says none) is started
    as soon as the config is read (`monitor.ingest.worker.start_early`)."""

    def load(self) -> Callable[[argparse.Namespace, Any], int]:
        module = importlib.import_module(f"monitor.cli.commands.{self.module}")
        handler: Callable[[argparse.Namespace, Any], int] = getattr(module, self.function)
        return handler


COMMANDS: dict[str, Command] = {
    "run": Command("service", "run", logs_to_stdout=True, polls=True),
    "once": Command("service", "once", logs_to_stdout=True, polls=True),
    "check-config": Command("config", "check_config", store=False),
    "classify": Command("rules", "classify_lines", store=False, rules_tool=True),
    "eval": Command("rules", "score", store=False, rules_tool=True),
    "explain": Command("rules", "explain_headline", store=False, rules_tool=True),
    "replay": Command("rules", "replay_stored", rules_tool=True),
    "test-notify": Command("delivery", "test_notify"),
    "history": Command("reads", "history"),
    "status": Command("reads", "status"),
    "serve": Command("page", "serve"),
    "deliver": Command("delivery", "deliver", logs_to_stdout=True),
    "digest": Command("delivery", "digest", logs_to_stdout=True),
    "prune": Command("maintenance", "prune"),
    "feeds": Command("feeds", "feeds", store=False),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.log_level = args.log_level or "INFO"
    args.log_format = args.log_format or "auto"
    # Everything any command prints passes the redactor: secrets never reach a terminal,
    # a pipe or the journal, whichever code path printed them.
    args.redactor = redactor = Redactor()
    stdout, stderr = redactor.stream(sys.stdout), redactor.stream(sys.stderr)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        return _main(args, COMMANDS[args.command], redactor)


def _main(args: argparse.Namespace, command: Command, redactor: Redactor) -> int:
    quiet = not command.logs_to_stdout or getattr(args, "dry_run", False)
    configure_logging(
        args.log_level,
        stream=sys.stderr if quiet else sys.stdout,
        fmt=args.log_format,
        redactor=redactor,
    )
    try:
        config = load_config(config_path(args.config), examples=not command.rules_tool)
        redactor.learn(config)
        if command.rules_tool:
            _warn_of_examples(config)
        if not command.store:
            return command.load()(args, config)
        if command.polls and config.fetch.parse_worker:
            # Its imports then overlap ours (the store's and delivery's, below).
            from monitor.ingest.worker import start_early  # noqa: PLC0415

            start_early()
        # The store and delivery load only for the commands that open the database.
        from monitor.service.app import App  # noqa: PLC0415

        app = App.open(config)
    except ConfigError as exc:
        print(f"monitor: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"monitor: database error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    # What is alive now (modules, the compiled rules, the engine) lives as long as the
    # process: out of the collector's generations, no collection re-scans it.
    gc.freeze()
    try:
        if relabelled := config.relabelled():
            # Deliveries queued under a label that showed a user name from the environment.
            app.store.readdress(relabelled)
        return command.load()(args, app)
    except StoreError as exc:
        print(f"monitor: database error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        app.close()


def _warn_of_examples(config: Config) -> None:
    try:
        evaluate.check_examples(config.stories)
    except ConfigError as exc:
        print(f"monitor: warning: {exc} (the service refuses this config)", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Follow a developing news story and alert on its milestones."
    )
    parser.add_argument("--version", action="version", version=f"monitor {_version()}")
    _global_options(parser, default=None)
    # The same options after the subcommand (`monitor status --config PATH`); there they
    # have no default, so one given before the subcommand is kept.
    given_after = argparse.ArgumentParser(add_help=False)
    _global_options(given_after, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help_text, description=help_text, parents=[given_after]
        )

    run = add("run", "run the daemon: poll feeds on their schedules and deliver alerts")
    run.add_argument(
        "--reload-check",
        type=_duration,
        default=timedelta(seconds=5),
        metavar="DURATION",
        help="how often to check the config file for changes (default 5s; 0 = only on SIGHUP)",
    )
    once = add("once", "run one full cycle (every feed, then delivery) and exit")
    once.add_argument("--force", action="store_true", help="also poll feeds in backoff")
    add("check-config", "validate the config and exit (2 when invalid)")
    add(
        "classify",
        "classify JSON lines from stdin (title, summary, optional id and url) with the "
        "config's stories; one JSON line out per line in",
    )
    scoring = add(
        "eval",
        "score the config's stories on labelled JSON lines (title, summary, label, optional "
        "story and id): confusion matrix, precision, recall, relevance F1, every error",
    )
    scoring.add_argument("file", type=Path, metavar="FILE", help="the labelled JSON lines")
    for option, what in [
        ("precision", "milestone precision"),
        ("recall", "milestone recall"),
        ("f1", "relevance F1"),
    ]:
        scoring.add_argument(
            f"--min-{option}", type=_fraction, metavar="X", help=f"exit 1 if {what} is below X"
        )
    scoring.add_argument(
        "--max-near-misses",
        type=int,
        metavar="N",
        help="exit 1 on more near misses given a milestone",
    )
    scoring.add_argument("--json", action="store_true", help="the scores as one JSON object")
    scoring.add_argument(
        "--bench", action="store_true", help="instead: µs per item of classify and prefilter"
    )
    explain = add("explain", "say, for a person, why a headline matches or does not")
    explain.add_argument("title", help="the headline")
    explain.add_argument("summary", nargs="?", default="", help="the summary or lead, if any")
    replay = add("replay", "re-run the current rules over stored items; show what would alert")
    replay.add_argument(
        "--since", type=_date, default=None, help="only items seen on or after this date"
    )
    replay.add_argument("--json", action="store_true", help="one JSON object per line")
    add("test-notify", "send a test message to every target and report each")
    history = add("history", "list milestone events and updates, newest first")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.add_argument("--limit", type=int, default=None, help="at most this many entries")
    status = add("status", "show each feed's health and the deliveries not yet sent")
    status.add_argument(
        "feed", nargs="?", metavar="FEED", help="everything about this feed (its name)"
    )
    status.add_argument(
        "--wide",
        action="store_true",
        help="every detail: full tables of feeds (with last items) and waiting deliveries",
    )
    status.add_argument(
        "--json", action="store_true", help="one JSON object per line: a row per configured feed"
    )
    status.add_argument(
        "--deliveries",
        action="store_true",
        help="with --json: the outbox instead (a row per target, then pending and dead rows)",
    )
    serve = add("serve", "serve the page and the Atom feed of events (read-only) until stopped")
    serve.add_argument(
        "--listen",
        type=_listen,
        metavar="HOST:PORT",
        help="a loopback address (default: http.listen, else 127.0.0.1:9108)",
    )
    deliver = add("deliver", "send every pending or failed delivery now, ignoring backoff")
    deliver.add_argument(
        "--retry-dead", action="store_true", help="also give dead deliveries one more try"
    )
    digest = add("digest", "send each story's digest now (or print it with --dry-run)")
    digest.add_argument("--dry-run", action="store_true", help="print it; send and record nothing")
    digest.add_argument("--story", help="only this story (its id)")
    digest.add_argument(
        "--format", default="text", choices=FORMATS, help="with --dry-run: how to print it"
    )
    prune = add("prune", "delete what is older than `retention` now (the service does it daily)")
    prune.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    _feeds_parser(add("feeds", "find, test, add, import and export feeds"), given_after)
    return parser


def _global_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """`--config`, `--log-level`, `--log-format`: before the subcommand, `default` is
    None (their real defaults are applied in `main`); after it, SUPPRESS."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $MONITOR_CONFIG or ./config.yaml)",
    )
    parser.add_argument(
        "--log-level", default=default, help="DEBUG, INFO, WARNING or ERROR (default INFO)"
    )
    parser.add_argument(
        "--log-format",
        default=default,
        choices=["auto", "json", "console"],
        help="log style (default auto)",
    )


def _version() -> str:
    try:
        return metadata.version("monitor")
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def _feeds_parser(feeds: argparse.ArgumentParser, given_after: argparse.ArgumentParser) -> None:
    actions = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name, help=help_text, description=help_text, parents=[given_after]
        )

    discover = add("discover", "list the feeds a page links to or serves at the usual paths")
    discover.add_argument("target", metavar="URL", help="a page or a feed")
    test = add("test", "fetch and read a feed once; show each entry, its date and verdicts")
    test.add_argument("target", metavar="URL|NAME", help="a feed's address or configured name")
    add_feed = add("add", "add a feed (or the one feed a page has) to the config file")
    add_feed.add_argument("target", metavar="URL", help="a feed, or a page that has one")
    add_feed.add_argument("--name", help="its name (default: made from the feed's title)")
    add_feed.add_argument("--lang", help="its language (default: what the feed declares)")
    add_feed.add_argument(
        "--interval", type=_duration_text, help="how often to poll it (default: fetch.interval)"
    )
    imported = add("import", "add every feed of an OPML file not yet in the config file")
    imported.add_argument("file", metavar="FILE.opml", help="the OPML file")
    export = add("export", "print the configured feeds as OPML 2.0")
    export.add_argument("--title", default="monitor feeds", help="the document's title")


# -- argument types -------------------------------------------------------------


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"not a number from 0 to 1: {text!r}")
    return value


def _date(text: str, now: datetime | None = None) -> datetime:
    """`2026-11-28` (or any ISO date and time, UTC unless it says), `today`,
    `yesterday` (from midnight UTC), or a span back from now: `3d`, `12h`, `1d12h`."""
    now = now or datetime.now(UTC)
    word = text.strip().lower()
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if word in {"today", "yesterday"}:
        return midnight - timedelta(days=word == "yesterday")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if word[-1:].isalpha():
        with contextlib.suppress(ValueError):
            span = parse_duration(word)
            if isinstance(span, timedelta):
                return now - span
    raise argparse.ArgumentTypeError(
        f"not a date: {text!r} (use YYYY-MM-DD, today, yesterday, or a span back: 3d, 12h)"
    )


def _listen(text: str) -> str:
    """A loopback `host:port`, as `http.listen` takes it."""
    try:
        return HttpSettings(listen=text).listen
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        ) from None


def _duration_text(text: str) -> str:
    """A duration as the user wrote it (it goes into the config file), once checked."""
    _duration(text)
    return text


def _duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(value, timedelta):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    return value


if __name__ == "__main__":
    raise SystemExit(main())
