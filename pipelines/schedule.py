"""Pure deciders for when a feed is checked next: adaptive intervals, server hints, backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleSettings:
    min_interval_s: int = 15 * 60
    max_interval_s: int = 24 * 3600
    default_interval_s: int = 60 * 60
    backoff_base_s: int = 5 * 60
    backoff_cap_s: int = 24 * 3600
    jitter: float = 0.1  # +-10%: spreads feeds that failed together


def success_interval(
    settings: ScheduleSettings,
    *,
    entries_per_day: float | None,
    max_age_s: int | None = None,
    ttl_minutes: int | None = None,
) -> int:
    """Check about as often as the feed publishes, within bounds, never sooner than the server asks."""
    if entries_per_day and entries_per_day > 0:
        # Aim for about two new entries per check.
        interval = int(2 * 86400 / entries_per_day)
    else:
        interval = settings.default_interval_s
    interval = max(settings.min_interval_s, min(settings.max_interval_s, interval))
    floor = max(max_age_s or 0, (ttl_minutes or 0) * 60)
    return max(interval, min(floor, 7 * 86400))


def failure_interval(
    settings: ScheduleSettings,
    *,
    consecutive_failures: int,
    retry_after_s: int | None = None,
    rng: random.Random | None = None,
) -> int:
    """Exponential backoff with jitter, capped; Retry-After wins when it asks for longer."""
    exponent = max(0, consecutive_failures - 1)
    base = min(settings.backoff_cap_s, settings.backoff_base_s * (2 ** min(exponent, 20)))
    spread = (rng or random).uniform(-settings.jitter, settings.jitter)
    interval = int(base * (1 + spread))
    interval = max(60, min(settings.backoff_cap_s, interval))
    if retry_after_s is not None:
        interval = max(interval, min(retry_after_s, 7 * 86400))
    return interval
