"""The outbox's rules as values: when a delivery waits, is folded, is retried or dies.

The outbox (`monitor.delivery.outbox`) reads the facts (the claim, the target's config,
its sends in the last hour, the result of a send) and applies what these functions
decide; nothing here touches the store, the network or the clock, so every rule is
tested on plain values.

- **quiet hours**: a target in its quiet window gets nothing now; the delivery waits,
  untried, until the window ends. Milestone alerts listed in `break_through` do not.
- **hourly cap**: a target that had `max_per_hour` sends in the last hour gets no more
  alerts or updates; they are folded into one summary, sent when the window frees up.
  A summary over the cap waits for that moment too.
- **retries**: a failed send is retried with exponential backoff and jitter, waiting at
  least `delivery.rate_limited_wait` after a 429 or 503; after `max_attempts` attempts,
  or once the delivery is `max_age` old, it is dead.
- **dead letters**: the deaths of a target are told once per set of dead rows; the
  death of such a warning is not itself told (that would never end).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from monitor.config.settings import DeliverySettings, TargetConfig
from monitor.core.backoff import retry_delay
from monitor.store.views import OutboxRow

CAP_WINDOW = timedelta(hours=1)
"""The window `max_per_hour` counts sends over."""
CAPPED_KINDS = frozenset({"alert", "update", "summary"})
"""The kinds the hourly cap holds back; digests and notices are never capped."""
RATE_LIMITED = frozenset({429, 503})
"""HTTP statuses after which a retry waits at least `delivery.rate_limited_wait`."""
DEAD_WARNING = "dead:"
"""The dedup key prefix of dead-letter warnings."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Wait untried until `until`: in quiet hours, or a summary over the cap."""

    until: datetime
    reason: Literal["quiet", "cap"]


@dataclass(frozen=True, slots=True)
class Fold:
    """Over the cap: carried by the target's summary, which is sent at `send_at`."""

    send_at: datetime


@dataclass(frozen=True, slots=True)
class Retry:
    """A failed send to try again at `at` (`delay` after now)."""

    at: datetime
    delay: timedelta


@dataclass(frozen=True, slots=True)
class Dead:
    """A failed send given up: too many attempts, or too old."""


def quiet_hold(
    target: TargetConfig,
    default_tz: ZoneInfo,
    kind: str,
    milestone: str | None,
    now: datetime,
) -> Hold | None:
    """The hold for a delivery of `kind` (an alert for `milestone`) in quiet hours."""
    quiet = target.quiet(default_tz)
    until = quiet.until(now) if quiet else None
    if until is None:
        return None
    if kind == "alert" and milestone is not None and target.breaks_through(milestone):
        return None
    return Hold(until, "quiet")


def capped(target: TargetConfig, kind: str) -> bool:
    """Whether the hourly cap applies (and the sends of the last hour must be counted)."""
    return target.max_per_hour is not None and kind in CAPPED_KINDS


def over_cap(target: TargetConfig, kind: str, recent: Sequence[datetime]) -> Hold | Fold | None:
    """What the cap does to a delivery of `kind`, given the target's send times in the
    last `CAP_WINDOW`, oldest first: nothing under the cap; above it a summary waits and
    anything else is folded, until the oldest send that counts leaves the window."""
    cap = target.max_per_hour
    if cap is None or kind not in CAPPED_KINDS or len(recent) < cap:
        return None
    free_at = recent[len(recent) - cap] + CAP_WINDOW
    if kind == "summary":
        return Hold(free_at, "cap")
    return Fold(free_at)


def after_failure(
    settings: DeliverySettings,
    *,
    attempts: int,
    created_at: datetime,
    http_status: int | None,
    now: datetime,
    rng: random.Random,
) -> Retry | Dead:
    """What becomes of a delivery whose `attempts`-th send just failed."""
    if attempts >= settings.max_attempts or now - created_at >= settings.max_age:
        return Dead()
    wait = settings.rate_limited_wait if http_status in RATE_LIMITED else None
    delay = retry_delay(attempts, settings.backoff_base, settings.backoff_max, rng, wait)
    return Retry(now + delay, delay)


def worth_warning(row: OutboxRow) -> bool:
    """Whether a dead delivery is told about: all but the dead-letter warnings."""
    return not row.dedup_key.startswith(DEAD_WARNING)


def warning_key(target: str, rows: Sequence[OutboxRow]) -> str:
    """Names the warning about this set of deaths: the same rows dying again after a
    retry get a new name, so they are told again."""
    text = ",".join(f"{r.id}.{r.attempts}" for r in rows)
    return f"{DEAD_WARNING}{target}:{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}"
