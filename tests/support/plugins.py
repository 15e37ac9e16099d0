"""An apprise plugin factory for tests: no throttling, Slack posted to a loopback server."""

from __future__ import annotations

from typing import Any

import apprise
from apprise.plugins.slack import NotifySlack

from monitor.config.settings import TargetConfig
from monitor.delivery.notify import PluginFactory


def loopback_plugins(slack_base: str | None = None) -> PluginFactory:
    """Plugins as monitor builds them, with two instance settings changed for tests.

    `request_rate_per_sec = 0` drops apprise's pause between two sends to one target
    (5.5 s for email). `webhook_url` is where apprise's Slack plugin posts a webhook
    (`{webhook_url}/{token_a}/{token_b}/{token_c}`); setting it on the instance sends the
    exact payload apprise builds to `slack_base` instead of hooks.slack.com.
    """

    def build(target: TargetConfig) -> Any:
        plugin = apprise.Apprise.instantiate(target.url)
        plugin.request_rate_per_sec = 0
        if slack_base is not None and isinstance(plugin, NotifySlack):
            plugin.webhook_url = f"{slack_base}/services"
        return plugin

    return build
