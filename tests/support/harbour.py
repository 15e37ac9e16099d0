"""Two small stories of the tests' own, so that tests of `monitor eval` and of a story's
`examples` never depend on the shipped rules: a harbour bridge (two milestones, read with
the built-in language cues) and, tried after it, a harbour tunnel (whose texts the bridge
story can take)."""

from __future__ import annotations

_STORIES = """\
stories:
  - id: harbour-bridge
    name: The new harbour bridge
    watch:
      all:
        - [bridge*, мост*]
        - [harbour*, гаван*]
    milestones:
      design_shown:
        event: [presented, shown, unveiled]
        all: [[design*, sketch*]]
      opening:
        label: Bridge opened
        event: [opened, открыли]
        unless: [design*]
{bridge}
  - id: harbour-tunnel
    name: The harbour tunnel
    watch:
      all:
        - [tunnel*]
        - [harbour*]
    milestones:
      opening:
        event: [opened]
{tunnel}
"""


def harbour_stories(bridge: str = "", tunnel: str = "") -> str:
    """The `stories:` block, with these lines (an `examples:` block) ending each story."""
    return _STORIES.format(bridge=bridge, tunnel=tunnel)
