"""The `monitor` command line.

Exit codes: 0 success; 1 the command ran but something it had to do failed (a test
notification, an undelivered alert); 2 the config or the database is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog
from rich.console import Console

from monitor import status
from monitor.config import Config, config_path, load_config, parse_duration
from monitor.daemon import RELOAD_CHECK, Service, serve, systemd_notifier, watchdog_period
from monitor.errors import ConfigError, StoreError
from monitor.fetch import Fetcher
from monitor.logs import configure_logging
from monitor.messages import milestone_label, render_test
from monitor.metrics import Metrics
from monitor.notify import AppriseSender, target_labels
from monitor.pipeline import Pipeline, utcnow
from monitor.redact import Redactor
from monitor.store import Store

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

Command = Callable[[argparse.Namespace, Config, Store], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # Everything any command prints passes the redactor: secrets never reach a terminal,
    # a pipe or the journal, whichever code path printed them.
    args.redactor = redactor = Redactor()
    stdout, stderr = redactor.stream(sys.stdout), redactor.stream(sys.stderr)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        return _main(args, redactor)


def _main(args: argparse.Namespace, redactor: Redactor) -> int:
    quiet = args.command not in ("run", "once", "deliver")
    # Query commands keep stdout for their output; the service commands log there.
    configure_logging(
        args.log_level,
        stream=sys.stderr if quiet else sys.stdout,
        fmt=args.log_format,
        redactor=redactor,
    )
    try:
        config = load_config(config_path(args.config))
        redactor.learn(config)
        if args.command == "check-config":
            return _check_config(config)
        store = Store.open(config.database_url())
    except ConfigError as exc:
        print(f"monitor: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"monitor: database error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        command: Command = args.handler
        return command(args, config, store)
    except StoreError as exc:
        print(f"monitor: database error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        store.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Follow a developing news story and alert on its milestones."
    )
    parser.add_argument(
        "--config", metavar="PATH", help="config file (default: $MONITOR_CONFIG or ./config.yaml)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--log-format", default="auto", choices=["auto", "json", "console"], help="log style"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command | None, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    run = add("run", _run, "run the daemon: poll feeds on their schedules and deliver alerts")
    run.add_argument(
        "--reload-check",
        type=_duration,
        default=RELOAD_CHECK,
        metavar="DURATION",
        help="how often to check the config file for changes (default 5s; 0 = only on SIGHUP)",
    )
    once = add("once", _once, "run one full cycle (every feed, then delivery) and exit")
    once.add_argument("--force", action="store_true", help="also poll feeds in backoff")
    add("check-config", None, "validate the config and exit (2 when invalid)")
    add("test-notify", _test_notify, "send a test message to every target and report each")
    history = add("history", _history, "list alert events, newest first")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.add_argument("--limit", type=int, default=None, help="at most this many events")
    status_command = add(
        "status", _status, "show each feed's health and the deliveries not yet sent"
    )
    status_command.add_argument("--json", action="store_true", help="one JSON document")
    add("deliver", _deliver, "send every pending or failed delivery now, ignoring backoff")
    return parser


# -- commands -------------------------------------------------------------------


def _check_config(config: Config) -> int:
    print(
        f"config OK: {len(config.feeds)} feeds, {len(config.notify)} targets, "
        f"{len(config.stories)} stories ({config.path})"
    )
    return EXIT_OK


def _duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(value, timedelta):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    return value


def _run(args: argparse.Namespace, config: Config, store: Store) -> int:
    service = Service(
        config,
        store,
        notifier=systemd_notifier(),
        watchdog=watchdog_period(),
        metrics=Metrics(store),
        redactor=args.redactor,
        reload_check=args.reload_check or None,
    )
    return serve(service)


def _once(args: argparse.Namespace, config: Config, store: Store) -> int:
    async def cycle() -> None:
        async with Fetcher(config.fetch) as fetcher:
            pipeline = Pipeline(config, store, fetcher, AppriseSender(config.notify))
            started = utcnow()
            report = await pipeline.run_cycle(force=args.force)
            delivery = await pipeline.deliver()
            structlog.get_logger("monitor").info(
                "cycle.done",
                feeds=len(report.feeds),
                ok=report.count("ok"),
                unchanged=report.count("unchanged"),
                failed=report.count("failed"),
                skipped=report.count("backoff") + report.count("gone"),
                new=sum(f.new for f in report.feeds),
                events=sum(len(f.events) for f in report.feeds),
                sent=delivery.sent,
                send_failed=delivery.failed,
                dead=delivery.dead,
                seconds=round((utcnow() - started).total_seconds(), 3),
            )

    asyncio.run(cycle())
    return EXIT_OK


def _deliver(args: argparse.Namespace, config: Config, store: Store) -> int:
    async def drain() -> None:
        async with Fetcher(config.fetch) as fetcher:
            pipeline = Pipeline(config, store, fetcher, AppriseSender(config.notify))
            await pipeline.deliver(ignore_backoff=True)

    asyncio.run(drain())
    waiting = store.undelivered(target_labels(config))
    if waiting:
        print(f"monitor: {waiting} deliveries remain undelivered", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _test_notify(args: argparse.Namespace, config: Config, store: Store) -> int:
    sender = AppriseSender(config.notify)
    failed = 0
    for label in target_labels(config):
        outcome = sender.send(label, render_test(label))
        if outcome.ok:
            print(f"ok      {label}")
        else:
            failed += 1
            print(f"FAILED  {label}: {outcome.error}")
    return EXIT_FAILED if failed else EXIT_OK


def _history(args: argparse.Namespace, config: Config, store: Store) -> int:
    stories = {s.id: s for s in config.stories}
    for event in store.events(limit=args.limit):
        label = milestone_label(stories.get(event.story), event.milestone)
        if args.json:
            record = {
                "story": event.story,
                "milestone": event.milestone,
                "label": label,
                "title": event.title,
                "created_at": _iso(event.created_at),
                "url": event.url,
                "outlet": event.outlet,
                "silent": event.silent,
                "sources": [s.url for s in event.sources if s.url],
                "outlets": event.outlets,
                "languages": event.languages,
                "deliveries": [
                    {
                        "target": d.target,
                        "status": d.status,
                        "attempts": d.attempts,
                        "last_error": d.last_error,
                    }
                    for d in event.deliveries
                ],
            }
            print(json.dumps(record, ensure_ascii=False))
            continue
        print(f"{_iso(event.created_at)}  {label} — {event.story}")
        print(f"    {event.title}")
        if event.url:
            print(f"    {event.url}")
        others = len(event.sources) - 1
        if others > 0:
            print(f"    + {others} more report(s): {', '.join(event.outlets[1:])}")
        if event.silent:
            print("    (recorded without alerting: first fetch of its feed, or too old)")
        for d in event.deliveries:
            error = f" — {d.last_error}" if d.last_error else ""
            print(f"    → {d.target}: {d.status} after {d.attempts} attempt(s){error}")
    return EXIT_OK


def _status(args: argparse.Namespace, config: Config, store: Store) -> int:
    report = status.collect(config, store, utcnow(), redact=args.redactor)
    if args.json:
        print(json.dumps(status.as_json(report), ensure_ascii=False, indent=2))
    else:
        status.render(report, Console())
    return EXIT_OK


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


if __name__ == "__main__":
    raise SystemExit(main())
