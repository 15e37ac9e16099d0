"""The delivery commands: `deliver`, `digest` and `test-notify`.

They work on what is already stored and send it: no feed is polled, so none of them
opens an HTTP fetcher or a parse worker (tests/cli/test_commands.py holds them to it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from monitor.cli.output import EXIT_FAILED, EXIT_OK, say
from monitor.delivery import routing
from monitor.delivery.messages import render_test
from monitor.delivery.notify import smtp_trouble
from monitor.service.app import App
from monitor.templates.render import Format


def deliver(args: argparse.Namespace, app: App) -> int:
    labels = routing.addresses(app.config)
    if args.retry_dead:
        revived = app.store.retry_dead(labels, now=app.clock())
        print(f"retrying {revived} dead deliveries")
    report = asyncio.run(app.outbox.deliver(ignore_backoff=True))
    print(
        f"sent {report.sent}, failed {report.failed}, dead {report.dead}, "
        f"held {report.held}, folded {report.folded}"
    )
    return _undelivered_exit(app, labels, died=report.dead)


def _undelivered_exit(app: App, labels: list[str], *, died: int) -> int:
    """Exit 1 when deliveries remain that failed, or died in this run (given up: they
    remain undelivered too); not for those held by quiet hours or a cap."""
    waiting = app.store.undelivered(labels, now=app.clock())
    held = app.store.undelivered(labels) - waiting
    if held:
        print(
            f"{_deliveries(held)} {_verb(held, 'waits', 'wait')} "
            "for quiet hours or an hourly cap to end"
        )
    if died:
        print(
            f"monitor: {_deliveries(died)} given up after the last attempt "
            "(`monitor status` lists them; `monitor deliver --retry-dead` tries again)",
            file=sys.stderr,
        )
    if waiting:
        print(
            f"monitor: {_deliveries(waiting)} {_verb(waiting, 'remains', 'remain')} undelivered",
            file=sys.stderr,
        )
    return EXIT_FAILED if waiting or died else EXIT_OK


def _deliveries(count: int) -> str:
    return f"{count} {'delivery' if count == 1 else 'deliveries'}"


def _verb(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def digest(args: argparse.Namespace, app: App) -> int:
    stories = [s.id for s in app.config.stories]
    if args.story and args.story not in stories:
        print(
            f"monitor: unknown story {args.story!r} (known: {', '.join(stories)})", file=sys.stderr
        )
        return EXIT_FAILED
    wanted = [args.story] if args.story else stories
    if args.dry_run:
        _print_digests(app, wanted, args.format)
        return EXIT_OK
    queued = app.digests.queue_now(wanted)
    if not queued:
        print("monitor: no target receives digests (add `digest` to a target's `receive`)")
        return EXIT_FAILED
    report = asyncio.run(app.outbox.deliver(kinds={"digest"}))
    print(
        f"digests: queued {queued}, sent {report.sent}, "
        f"failed {report.failed + report.dead}, held {report.held}"
    )
    return EXIT_FAILED if report.failed or report.dead else EXIT_OK


def _print_digests(app: App, stories: list[str], fmt: Format) -> None:
    now = app.clock()
    for story in stories:
        targets = routing.digest_targets(app.config, story)
        periods = [app.digests.period(story, t, now) for t in targets]
        since = min((p.since for p in periods), default=now - timedelta(days=1))
        message = app.outbox.digest_message(story, since, now, fmt, app.config.digest.tz)
        print(f"Subject: {message.title}\n")
        print(message.body)


def test_notify(args: argparse.Namespace, app: App) -> int:
    failed = 0
    for label in routing.addresses(app.config):
        target = routing.target(app.config, label)
        fmt: Format = target.message_format if target else "text"
        outcome = app.sender.send(label, render_test(app.renderer, label, fmt))
        if outcome.ok:
            say(f"ok      {label}")
        else:
            failed += 1
            why = smtp_trouble(target.url) if target else None
            say(f"FAILED  {label}: {outcome.error}" + (f" ({why})" if why else ""))
    return EXIT_FAILED if failed else EXIT_OK
