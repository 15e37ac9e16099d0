"""The `monitor` command line.

Exit codes: 0 success; 1 the command ran but something it had to do failed (a test
notification, an undelivered alert, scores below the bar); 2 the config, the database
or the input is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

import structlog

from monitor.cli.replay import MilestoneGroup, replay
from monitor.config.settings import Config, config_path, load_config, parse_duration
from monitor.core.clock import utcnow
from monitor.core.errors import ConfigError, LabelsError, StoreError
from monitor.core.safetext import json_line, shown
from monitor.delivery import routing
from monitor.delivery.messages import UPDATE_LABEL, milestone_label, render_test
from monitor.delivery.notify import AppriseSender
from monitor.delivery.outbox import DeliveryReport
from monitor.ingest.decide import DERIVATIONS
from monitor.ingest.fetch import Fetcher
from monitor.ingest.worker import open_reader
from monitor.match import evaluate
from monitor.match.classify import classify_stream, explain
from monitor.match.rules import Story
from monitor.service.logs import configure_logging
from monitor.service.pipeline import UNRECORDED, CycleReport, Pipeline
from monitor.service.redact import Redactor
from monitor.store.store import Store
from monitor.templates.render import FORMATS, Format, Renderer

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
T = TypeVar("T")

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
    quiet = args.command not in ("run", "once", "deliver", "digest") or getattr(
        args, "dry_run", False
    )
    # Query commands keep stdout for their output; the service commands log there.
    configure_logging(
        args.log_level,
        stream=sys.stderr if quiet else sys.stdout,
        fmt=args.log_format,
        redactor=redactor,
    )
    try:
        rules_tool = args.command in _RULE_TOOLS
        config = load_config(config_path(args.config), examples=not rules_tool)
        redactor.learn(config)
        if rules_tool:
            _warn_of_examples(config)
        if args.command in _WITHOUT_STORE:
            return _WITHOUT_STORE[args.command](args, config)
        store = Store.open(config.database_url(), derive=DERIVATIONS)
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
            store.readdress(relabelled)
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
        default=timedelta(seconds=5),
        metavar="DURATION",
        help="how often to check the config file for changes (default 5s; 0 = only on SIGHUP)",
    )
    once = add("once", _once, "run one full cycle (every feed, then delivery) and exit")
    once.add_argument("--force", action="store_true", help="also poll feeds in backoff")
    add("check-config", None, "validate the config and exit (2 when invalid)")
    add(
        "classify",
        None,
        "classify JSON lines from stdin (title, summary, optional id and url) with the "
        "config's stories; one JSON line out per line in",
    )
    scoring = add(
        "eval",
        None,
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
    explain = add("explain", None, "say, for a person, why a headline matches or does not")
    explain.add_argument("title", help="the headline")
    explain.add_argument("summary", nargs="?", default="", help="the summary or lead, if any")
    replay = add(
        "replay", _replay, "re-run the current rules over stored items; show what would alert"
    )
    replay.add_argument(
        "--since", type=_date, default=None, help="only items seen on or after this date"
    )
    replay.add_argument("--json", action="store_true", help="one JSON object per line")
    add("test-notify", _test_notify, "send a test message to every target and report each")
    history = add("history", _history, "list milestone events and updates, newest first")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.add_argument("--limit", type=int, default=None, help="at most this many entries")
    status_command = add(
        "status", _status, "show each feed's health and the deliveries not yet sent"
    )
    status_command.add_argument(
        "--json", action="store_true", help="one JSON object per line: a row per configured feed"
    )
    status_command.add_argument(
        "--deliveries",
        action="store_true",
        help="with --json: the outbox instead (a row per target, then pending and dead rows)",
    )
    deliver = add(
        "deliver", _deliver, "send every pending or failed delivery now, ignoring backoff"
    )
    deliver.add_argument(
        "--retry-dead", action="store_true", help="also give dead deliveries one more try"
    )
    digest = add("digest", _digest, "send each story's digest now (or print it with --dry-run)")
    digest.add_argument("--dry-run", action="store_true", help="print it; send and record nothing")
    digest.add_argument("--story", help="only this story (its id)")
    digest.add_argument(
        "--format", default="text", choices=FORMATS, help="with --dry-run: how to print it"
    )
    return parser


# -- commands -------------------------------------------------------------------


def _classify(args: argparse.Namespace, config: Config) -> int:
    for result in classify_stream(sys.stdin, config.stories):
        print(json_line(result), flush=True)
    return EXIT_OK


def _eval(args: argparse.Namespace, config: Config) -> int:
    try:
        rows, foreign = evaluate.read_rows(args.file, config.stories)
    except LabelsError as exc:
        for problem in exc.problems:
            _say(f"monitor: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.bench:
        started = time.perf_counter()
        load_config(config.path)
        print(f"{'loading the config':28} {(time.perf_counter() - started) * 1e3:8.1f} ms")
        for name, micros in evaluate.bench(rows, config.stories):
            print(f"{name:28} {micros:8.1f} µs per item")
        return EXIT_OK
    report = evaluate.evaluate(rows, config.stories, str(args.file), foreign)
    bar = evaluate.Bar(args.min_precision, args.min_recall, args.min_f1, args.max_near_misses)
    shortfalls = bar.shortfalls(report.scores)
    if args.json:
        print(json_line(evaluate.as_json(report, shortfalls)))
    else:
        print(shown(evaluate.render(report), None, lines=True))
    if shortfalls:
        print(f"monitor: below the bar: {'; '.join(shortfalls)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _warn_of_examples(config: Config) -> None:
    try:
        evaluate.check_examples(config.stories)
    except ConfigError as exc:
        print(f"monitor: warning: {exc} (the service refuses this config)", file=sys.stderr)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"not a number from 0 to 1: {text!r}")
    return value


def _explain(args: argparse.Namespace, config: Config) -> int:
    print(shown(explain(args.title, args.summary, config.stories), None, lines=True))
    return EXIT_OK


def _replay(args: argparse.Namespace, config: Config, store: Store) -> int:
    report = replay(store.items(args.since), config.stories, store.event_keys())
    stories = {s.id: s for s in config.stories}
    if args.json:
        for group in report.milestones:
            first = group.first
            print(
                json_line(
                    {
                        "type": "milestone",
                        "story": group.story,
                        "milestone": group.milestone,
                        "would_alert": group.would_alert,
                        "recorded_at": _iso(group.recorded_at),
                        "title": first.title,
                        "url": first.url,
                        "feed": first.feed,
                        "sources": [item.url for item, _ in group.reports if item.url],
                    }
                )
            )
        for change in report.changes:
            print(
                json_line(
                    {
                        "type": "changed",
                        "title": change.item.title,
                        "url": change.item.url,
                        "feed": change.item.feed,
                        "was": {"story": change.item.story, "milestone": change.item.milestone},
                        "now": {
                            "story": change.verdict.story,
                            "milestone": change.verdict.milestone,
                        },
                        "why": change.verdict.why,
                    }
                )
            )
        return EXIT_OK
    since = f" seen since {args.since:%Y-%m-%d}" if args.since else ""
    print(f"Replayed {report.items} stored items{since}: {report.relevant} about a story.")
    print("Nothing was sent.\n")
    alerting = [g for g in report.milestones if g.would_alert]
    print("Would alert now:" if alerting else "Would alert now: nothing")
    for group in alerting:
        _print_group(group, stories)
    recorded = [g for g in report.milestones if not g.would_alert]
    if recorded:
        print("\nAlready recorded (no new alert; later reports would attach):")
        for group in recorded:
            _print_group(group, stories)
    if report.changes:
        print(f"\nItems whose verdict changed under the current rules ({len(report.changes)}):")
        for change in report.changes:
            was = change.item.milestone or change.item.story or "irrelevant"
            now = change.verdict.milestone or change.verdict.story or "irrelevant"
            _say(f"  {was} → {now}: [{change.item.feed}] {change.item.title}")
    return EXIT_OK


def _print_group(group: MilestoneGroup, stories: dict[str, Story]) -> None:
    label = milestone_label(stories.get(group.story), group.milestone)
    first = group.first
    when = f" (event since {_iso(group.recorded_at)})" if group.recorded_at else ""
    silent = " (first report came in a feed's first fetch: silent)" if first.silent else ""
    _say(f"  {label} — {group.story}{when}{silent}")
    _say(f"    first: [{first.feed}] {first.title}")
    if first.url:
        _say(f"           {first.url}")
    if len(group.reports) > 1:
        print(f"    + {len(group.reports) - 1} later report(s)")


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_config(config: Config) -> int:
    # The database's driver is loaded, nothing connects: a config naming a driver that is
    # not installed is refused here, before a service is started on it.
    Store.check(config.database_url())
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
    # The daemon's own libraries (APScheduler, prometheus_client) load only for `run`:
    # every `monitor once` from cron would pay for them otherwise.
    from monitor.service.daemon import Service, serve, systemd_notifier, watchdog_period  # noqa: PLC0415
    from monitor.service.metrics import Metrics  # noqa: PLC0415

    service = Service(
        config,
        store,
        notifier=systemd_notifier(),
        watchdog=watchdog_period(),
        metrics=Metrics(store),
        redactor=args.redactor,
        reload_check=args.reload_check or None,
    )
    try:
        return serve(service)
    except ConfigError as exc:
        print(f"monitor: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _once(args: argparse.Namespace, config: Config, store: Store) -> int:
    # What the store could not do, one line each; every later step is still tried.
    failures: list[str] = []

    async def attempt(step: str, work: Coroutine[Any, Any, T], default: T) -> T:
        try:
            return await work
        except StoreError as exc:
            structlog.get_logger("monitor").error("store.failed", step=step, error=str(exc))
            failures.append(str(exc))
            return default

    async def cycle() -> None:
        async with (
            Fetcher(config.fetch) as fetcher,
            open_reader(config.fetch.parse_worker, config.stories) as reader,
        ):
            sender = AppriseSender(config.notify)
            pipeline = Pipeline(config, store, fetcher, sender, reader=reader)
            started = utcnow()
            report = await attempt("feeds", pipeline.run_cycle(force=args.force), CycleReport())
            unrecorded = [f for f in report.feeds if f.outcome == UNRECORDED]
            if unrecorded:
                failures.insert(
                    0,
                    f"{len(unrecorded)} of {len(report.feeds)} feeds not recorded: "
                    f"{unrecorded[0].error}",
                )
            await attempt("health", pipeline.check_health(), None)
            digests = await attempt("digests", pipeline.prepare(), 0)
            # What is already queued goes out even when this cycle's feeds could not be
            # recorded: a full disk must not also hold back the alerts stored before it.
            delivery = await attempt("delivery", pipeline.deliver(), DeliveryReport())
            structlog.get_logger("monitor").info(
                "cycle.done",
                feeds=len(report.feeds),
                ok=report.count("ok"),
                unchanged=report.count("unchanged"),
                failed=report.count("failed"),
                unrecorded=len(unrecorded),
                skipped=report.count("backoff") + report.count("gone"),
                new=sum(f.new for f in report.feeds),
                events=sum(len(f.events) for f in report.feeds),
                digests=digests,
                sent=delivery.sent,
                send_failed=delivery.failed,
                dead=delivery.dead,
                held=delivery.held,
                folded=delivery.folded,
                seconds=round((utcnow() - started).total_seconds(), 3),
            )

    asyncio.run(cycle())
    if failures:
        print(f"monitor: database error: {failures[0]}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _deliver(args: argparse.Namespace, config: Config, store: Store) -> int:
    labels = routing.addresses(config)
    if args.retry_dead:
        revived = store.retry_dead(labels, now=utcnow())
        print(f"retrying {revived} dead deliveries")

    async def drain() -> DeliveryReport:
        async with Fetcher(config.fetch) as fetcher:
            pipeline = Pipeline(config, store, fetcher, AppriseSender(config.notify))
            return await pipeline.deliver(ignore_backoff=True)

    report = asyncio.run(drain())
    print(
        f"sent {report.sent}, failed {report.failed}, dead {report.dead}, "
        f"held {report.held}, folded {report.folded}"
    )
    return _undelivered_exit(store, labels)


def _undelivered_exit(store: Store, labels: list[str]) -> int:
    """Exit 1 when deliveries remain that failed (not those held by quiet hours or a cap)."""
    now = utcnow()
    waiting = store.undelivered(labels, now=now)
    held = store.undelivered(labels) - waiting
    if held:
        print(f"{held} deliveries wait for quiet hours or an hourly cap to end")
    if waiting:
        print(f"monitor: {waiting} deliveries remain undelivered", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _digest(args: argparse.Namespace, config: Config, store: Store) -> int:
    stories = [s.id for s in config.stories]
    if args.story and args.story not in stories:
        print(
            f"monitor: unknown story {args.story!r} (known: {', '.join(stories)})", file=sys.stderr
        )
        return EXIT_FAILED
    wanted = [args.story] if args.story else stories

    async def digest() -> int:
        async with Fetcher(config.fetch) as fetcher:
            pipeline = Pipeline(config, store, fetcher, AppriseSender(config.notify))
            if args.dry_run:
                _print_digests(pipeline, wanted, args.format)
                return EXIT_OK
            queued = await asyncio.to_thread(pipeline.digests.queue_now, wanted)
            if not queued:
                print("monitor: no target receives digests (add `digest` to a target's `receive`)")
                return EXIT_FAILED
            report = await pipeline.deliver(kinds={"digest"})
            print(
                f"digests: queued {queued}, sent {report.sent}, "
                f"failed {report.failed + report.dead}, held {report.held}"
            )
            return EXIT_FAILED if report.failed or report.dead else EXIT_OK

    return asyncio.run(digest())


def _print_digests(pipeline: Pipeline, stories: list[str], fmt: Format) -> None:
    now = pipeline.clock()
    for story in stories:
        targets = routing.digest_targets(pipeline.config, story)
        periods = [pipeline.digests.period(story, t, now) for t in targets]
        since = min((p.since for p in periods), default=now - timedelta(days=1))
        tz = pipeline.config.digest.tz
        message = pipeline.outbox.digest_message(story, since, now, fmt, tz)
        print(f"Subject: {message.title}\n")
        print(message.body)


def _test_notify(args: argparse.Namespace, config: Config, store: Store) -> int:
    sender = AppriseSender(config.notify)
    renderer = Renderer(config.templates.overrides())
    failed = 0
    for label in routing.addresses(config):
        target = routing.target(config, label)
        fmt: Format = target.message_format if target else "text"
        outcome = sender.send(label, render_test(renderer, label, fmt))
        if outcome.ok:
            _say(f"ok      {label}")
        else:
            failed += 1
            _say(f"FAILED  {label}: {outcome.error}")
    return EXIT_FAILED if failed else EXIT_OK


def _history(args: argparse.Namespace, config: Config, store: Store) -> int:
    stories = {s.id: s for s in config.stories}
    for event in store.history(limit=args.limit):
        label = (
            milestone_label(stories.get(event.story), event.milestone)
            if event.milestone
            else UPDATE_LABEL
        )
        if args.json:
            record = {
                "kind": "milestone" if event.milestone else "update",
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
            print(json_line(record))
            continue
        _say(f"{_iso(event.created_at)}  {label} — {event.story}")
        _say(f"    {event.title}")
        if event.url:
            _say(f"    {event.url}")
        others = len(event.sources) - 1
        if others > 0:
            _say(f"    + {others} more report(s): {', '.join(event.outlets[1:])}")
        if event.silent:
            print("    (recorded without alerting: first fetch of its feed, or too old)")
        for d in event.deliveries:
            error = f" — {d.last_error}" if d.last_error else ""
            _say(f"    → {d.target}: {d.status} after {d.attempts} attempt(s){error}")
    return EXIT_OK


def _status(args: argparse.Namespace, config: Config, store: Store) -> int:
    # rich loads only for the one command that draws tables.
    from rich.console import Console  # noqa: PLC0415

    from monitor.cli import status  # noqa: PLC0415

    report = status.collect(config, store, utcnow(), redact=args.redactor)
    if args.json:
        rows = status.delivery_rows(report) if args.deliveries else status.feed_rows(report)
        for row in rows:
            print(json_line(row))
    else:
        status.render(report, Console())
    return EXIT_OK


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _say(line: str, file: TextIO | None = None) -> None:
    """Print one line that carries text from feeds, servers or users: capped, escaped."""
    print(shown(line), file=file)


# The tools that show what the rules do run even when the rules judge an example wrong
# (that is when they are needed): they warn, where check-config and the service refuse.
_RULE_TOOLS = ("classify", "eval", "explain", "replay")

_WITHOUT_STORE: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "check-config": lambda args, config: _check_config(config),
    "classify": _classify,
    "eval": _eval,
    "explain": _explain,
}

if __name__ == "__main__":
    raise SystemExit(main())
