"""The store reads: `history` (events and their deliveries) and `status` (feeds, outbox).

They read what the service recorded and change nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import UTC

from monitor.cli.output import EXIT_FAILED, EXIT_OK, iso, say
from monitor.core.safetext import json_line
from monitor.delivery.messages import (
    UPDATE_LABEL,
    corroboration,
    corroboration_line,
    first_reports,
    milestone_label,
)
from monitor.service.app import App
from monitor.store.views import WAITING


def history(args: argparse.Namespace, app: App) -> int:
    stories = {s.id: s for s in app.config.stories}
    for event in app.store.history(limit=args.limit):
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
                "created_at": iso(event.created_at),
                "url": event.url,
                "outlet": event.outlet,
                "silent": event.silent,
                "sources": [s.url for s in event.sources if s.url],
                "outlets": event.outlets,
                "languages": event.languages,
                "corroboration": [
                    {
                        "outlet": s.outlet or s.feed,
                        "feed": s.feed,
                        "url": s.url,
                        "lang": s.lang,
                        "tier": s.tier,
                        "seen_at": iso(s.seen_at),
                    }
                    for s in first_reports(event.sources)
                ],
                "deliveries": [
                    {
                        "target": d.target,
                        "status": d.status,
                        "attempts": d.attempts,
                        "last_error": d.last_error,
                        "confirm": d.confirm,
                    }
                    for d in event.deliveries
                ],
            }
            print(json_line(record))
            continue
        say(f"{iso(event.created_at)}  {label} — {event.story}")
        say(f"    {event.title}")
        if event.url:
            say(f"    {event.url}")
        found = corroboration(event.sources, UTC)
        if found is not None:
            say(f"    {corroboration_line(found)} (UTC)")
        if event.silent:
            print("    (recorded without alerting: first fetch of its feed, or too old)")
        for d in event.deliveries:
            error = f" — {d.last_error}" if d.last_error else ""
            if d.status == WAITING and d.confirm is not None:
                say(
                    f"    → {d.target}: waiting for {d.confirm} outlets or one official or "
                    f"agency source ({len(event.outlets)} so far)"
                )
                continue
            say(f"    → {d.target}: {d.status} after {d.attempts} attempt(s){error}")
    return EXIT_OK


def status(args: argparse.Namespace, app: App) -> int:
    # rich loads only for the one command that draws tables.
    from rich.console import Console  # noqa: PLC0415

    from monitor.cli import status as board  # noqa: PLC0415

    report = board.collect(app.config, app.store, app.clock(), redact=args.redactor)
    width = shutil.get_terminal_size().columns
    if args.json:
        rows = board.delivery_rows(report) if args.deliveries else board.feed_rows(report)
        for row in rows:
            print(json_line(row))
    elif args.feed is not None:
        lines = board.render_feed(report, args.feed, width)
        if lines is None:
            known = ", ".join(f.name for f in app.config.feeds)
            say(f"monitor: no feed named {args.feed!r} (feeds: {known})", file=sys.stderr)
            return EXIT_FAILED
        print("\n".join(lines))
    elif args.wide:
        board.render(report, Console())
    else:
        print("\n".join(board.render_compact(report, width)))
    return EXIT_OK
