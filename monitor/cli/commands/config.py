"""`check-config`: would the service start on this config?

It loads the config and the database's driver and connects to nothing: the store,
delivery and polling code stay unloaded.
"""

from __future__ import annotations

import argparse

from monitor.cli.output import EXIT_OK
from monitor.config.settings import Config
from monitor.store.store import Store


def check_config(args: argparse.Namespace, config: Config) -> int:
    # The database's driver is loaded, nothing connects: a config naming a driver that is
    # not installed is refused here, before a service is started on it.
    Store.check(config.database_url())
    print(
        f"config OK: {len(config.feeds)} feeds, {len(config.notify)} targets, "
        f"{len(config.stories)} stories ({config.path})"
    )
    return EXIT_OK
