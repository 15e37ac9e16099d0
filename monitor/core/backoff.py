"""Exponential backoff with jitter, shared by failing feeds and failing targets."""

from __future__ import annotations

import random
from datetime import timedelta


def retry_delay(
    failures: int,
    interval: timedelta,
    cap: timedelta,
    rng: random.Random,
    retry_after: timedelta | None = None,
) -> timedelta:
    """Exponential backoff with jitter after `failures` failures, never below Retry-After."""
    exponent = min(max(failures - 1, 0), 20)
    base = min(interval * (2**exponent), cap)
    delay = base * rng.uniform(0.8, 1.0) if base < cap else cap * rng.uniform(0.9, 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
