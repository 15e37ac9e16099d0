"""The rule tools: `classify`, `eval`, `explain` and `replay` show what the rules do.

They run even when the rules judge one of their own examples wrong (that is when they
are needed): `monitor.cli.main` warns, where check-config and the service refuse. Only
`replay` reads the database, and it sends nothing.
"""

from __future__ import annotations

import argparse
import sys
import time

from monitor.cli.output import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, iso, say
from monitor.cli.replay import MilestoneGroup, replay
from monitor.config.settings import Config, load_config
from monitor.core.errors import LabelsError
from monitor.core.safetext import json_line, shown
from monitor.delivery.messages import milestone_label
from monitor.match import evaluate
from monitor.match.classify import classify_stream, explain
from monitor.match.rules import Story
from monitor.service.app import App


def classify_lines(args: argparse.Namespace, config: Config) -> int:
    for result in classify_stream(sys.stdin, config.stories):
        print(json_line(result), flush=True)
    return EXIT_OK


def score(args: argparse.Namespace, config: Config) -> int:
    try:
        rows, foreign = evaluate.read_rows(args.file, config.stories)
    except LabelsError as exc:
        for problem in exc.problems:
            say(f"monitor: {problem}", file=sys.stderr)
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


def explain_headline(args: argparse.Namespace, config: Config) -> int:
    print(shown(explain(args.title, args.summary, config.stories), None, lines=True))
    return EXIT_OK


def replay_stored(args: argparse.Namespace, app: App) -> int:
    config, store = app.config, app.store
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
                        "recorded_at": iso(group.recorded_at),
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
            say(f"  {was} → {now}: [{change.item.feed}] {change.item.title}")
    return EXIT_OK


def _print_group(group: MilestoneGroup, stories: dict[str, Story]) -> None:
    label = milestone_label(stories.get(group.story), group.milestone)
    first = group.first
    when = f" (event since {iso(group.recorded_at)})" if group.recorded_at else ""
    silent = " (first report came in a feed's first fetch: silent)" if first.silent else ""
    say(f"  {label} — {group.story}{when}{silent}")
    say(f"    first: [{first.feed}] {first.title}")
    if first.url:
        say(f"           {first.url}")
    if len(group.reports) > 1:
        print(f"    + {len(group.reports) - 1} later report(s)")
