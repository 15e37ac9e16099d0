"""The service commands: `run` (the daemon) and `once` (one full cycle).

They poll feeds, so they are the only commands that open a fetcher and a parse worker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

from monitor.cli.output import EXIT_CONFIG, EXIT_OK
from monitor.core.errors import ConfigError, StoreError
from monitor.delivery.outbox import DeliveryReport
from monitor.service.app import App
from monitor.service.pipeline import UNRECORDED, CycleReport, polling

T = TypeVar("T")


def run(args: argparse.Namespace, app: App) -> int:
    # The daemon's own libraries (APScheduler, prometheus_client) load only for `run`:
    # every `monitor once` from cron would pay for them otherwise.
    from monitor.service.daemon import Service, serve, systemd_notifier, watchdog_period  # noqa: PLC0415
    from monitor.service.metrics import Metrics  # noqa: PLC0415

    service = Service(
        app.config,
        app.store,
        app=app,
        notifier=systemd_notifier(),
        watchdog=watchdog_period(),
        metrics=Metrics(app.store),
        redactor=args.redactor,
        reload_check=args.reload_check or None,
    )
    try:
        return serve(service)
    except ConfigError as exc:
        print(f"monitor: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def once(args: argparse.Namespace, app: App) -> int:
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
        async with polling(app) as pipeline:
            started = app.clock()
            report = await attempt("feeds", pipeline.run_cycle(force=args.force), CycleReport())
            unrecorded = [f for f in report.feeds if f.outcome == UNRECORDED]
            if unrecorded:
                failures.insert(
                    0,
                    f"{len(unrecorded)} of {len(report.feeds)} feeds not recorded: "
                    f"{unrecorded[0].error}",
                )
            await attempt("health", app.check_health(), None)
            digests = await attempt("digests", app.prepare(), 0)
            # What is already queued goes out even when this cycle's feeds could not be
            # recorded: a full disk must not also hold back the alerts stored before it.
            delivery = await attempt("delivery", app.outbox.deliver(), DeliveryReport())
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
                seconds=round((app.clock() - started).total_seconds(), 3),
            )

    asyncio.run(cycle())
    if failures:
        print(f"monitor: database error: {failures[0]}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK
