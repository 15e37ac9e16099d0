"""`prune`: forget what is older than the retention, now rather than at the daily job.

What stays is the store's rule (`monitor.store.retention`); this command only says
what went, or with `--dry-run` what would go.
"""

from __future__ import annotations

import argparse

from monitor.cli.output import EXIT_OK
from monitor.service.app import App


def prune(args: argparse.Namespace, app: App) -> int:
    retention = app.config.retention
    if retention is None:
        print("retention is off: nothing pruned")
        return EXIT_OK
    report = app.store.prune(app.clock() - retention, dry_run=args.dry_run)
    verb = "would remove" if report.dry_run else "removed"
    print(
        f"{verb} {report.items} items, {report.bands} cluster bands and "
        f"{report.deliveries} deliveries older than {report.before.isoformat()} "
        f"(kept {report.kept} older items still needed)"
    )
    return EXIT_OK
