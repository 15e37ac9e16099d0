"""Who receives what: every routing question, answered in one place from the config.

A target (`notify[]` in the config) is addressed by its label: its name, or its URL
masked, fixed when the config loads (masking needs the values taken from the
environment, which only the loader knows). What it receives is decided here:

- **alerts**: targets with `alerts` in `receive` that follow the story (`stories`
  unset or naming it) and want the milestone (`milestones` unset or naming it); at
  once, or, for a target with `confirm: N`, once N distinct outlets or one official or
  agency source have reported the milestone (`confirming`);
- **updates**: targets with `updates` that follow the story (`milestones` limits
  milestone alerts only: an update has none);
- **digests**: targets with `digest` that follow the story;
- **health notices**: targets with `health`;
- **dead-letter warnings**: the first health target, else the first other target, that
  is not the one whose deliveries died (a broken target cannot tell about itself).

With no targets configured every message goes to the built-in `stdout` target, printed.
Pure: the config in, labels out; nothing here reads the store or the clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config.settings import Config, Receives, TargetConfig

STDOUT = "stdout"
"""The built-in target used when `notify` is empty: every message is printed."""


def addresses(config: Config) -> list[str]:
    """Every label a delivery under this config may be addressed to."""
    return [t.label for t in config.notify] or [STDOUT]


def target(config: Config, label: str) -> TargetConfig | None:
    """The configured target behind `label`; None for stdout or a target since removed."""
    return next((t for t in config.notify if t.label == label), None)


def receives(target: TargetConfig, kind: Receives) -> bool:
    """Whether `target` takes `kind` of message at all (its `receive` list)."""
    return kind in target.receive


def follows(target: TargetConfig, story: str) -> bool:
    """Whether messages about `story` (alerts, updates, digests) are for `target`."""
    return target.stories is None or story in target.stories


def alert_targets(config: Config, story: str, milestone: str) -> list[str]:
    """The targets alerted at once when `story` reaches `milestone`."""
    if not config.notify:
        return [STDOUT]
    return [t.label for t in _alerted(config, story, milestone) if t.confirm is None]


def confirming(config: Config, story: str, milestone: str) -> dict[str, int]:
    """The targets alerted when `story` reaches `milestone` only once it is confirmed,
    each with the number of distinct outlets it waits for."""
    return {t.label: t.confirm for t in _alerted(config, story, milestone) if t.confirm is not None}


def _alerted(config: Config, story: str, milestone: str) -> list[TargetConfig]:
    return [
        t
        for t in config.notify
        if receives(t, "alerts")
        and follows(t, story)
        and (t.milestones is None or milestone in t.milestones)
    ]


def update_targets(config: Config, story: str) -> list[str]:
    """The targets told at once of each new development of `story` that is no milestone."""
    if not config.notify:
        return [STDOUT]
    return [t.label for t in config.notify if receives(t, "updates") and follows(t, story)]


def route(config: Config, story: str, milestone: str | None) -> Sequence[str]:
    """The targets of an immediate message about `story`: an alert for `milestone`, or
    an update when `milestone` is None. The ingest takes this as its router."""
    if milestone is None:
        return update_targets(config, story)
    return alert_targets(config, story, milestone)


def digest_targets(config: Config, story: str) -> list[str]:
    """The targets that receive the daily digest of `story`."""
    if not config.notify:
        return [STDOUT]
    return [t.label for t in config.notify if receives(t, "digest") and follows(t, story)]


def health_targets(config: Config) -> list[str]:
    """The targets told when a feed fails, goes silent, is gone or recovers."""
    if not config.notify:
        return [STDOUT]
    return [t.label for t in config.notify if receives(t, "health")]


def dead_letter_target(config: Config, dead: str) -> str | None:
    """Who is warned that deliveries to `dead` died: a health target first, else any
    other target; None when `dead` is the only way out (the warning is then logged)."""
    health = [t.label for t in config.notify if receives(t, "health")]
    others = [t.label for t in config.notify]
    return next((label for label in [*health, *others] if label != dead), None)
