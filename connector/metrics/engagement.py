"""Engagement and onboarding: usage frequency, DAU/MAU stickiness, forgettable zone, seats, time to value."""

from __future__ import annotations

from datetime import date, datetime
from typing import Sequence

from connector.metrics.revenue import ratio


def usage_frequency(active_days: int | None, days_in_period: int = 30) -> float | None:
    """Active days / days in the period (E10: 12 of 30 → 0.40)."""
    if active_days is None:
        return None
    return ratio(active_days, days_in_period)


def stickiness(mean_dau: float | None, mau: int | None) -> float | None:
    """Mean DAU over the period / MAU (distinct actives in it); ``None`` when MAU is 0 or unknown."""
    if mean_dau is None or mau is None:
        return None
    return ratio(mean_dau, mau)


def stickiness_from_daily(daily_actives: Sequence[int], mau: int) -> float | None:
    """From each day's active-user count: (Σ daily actives / days) / MAU (E10: 3,000 over 30 days, MAU 400 → 0.25)."""
    if not daily_actives:
        return None
    return stickiness(sum(daily_actives) / len(daily_actives), mau)


def is_forgettable(active_days_30d: int | None, *, min_active_days: int = 1) -> bool | None:
    """In the 'forgettable zone': used on fewer than ``min_active_days`` days of the trailing month."""
    if active_days_30d is None:
        return None
    return active_days_30d < min_active_days


def seat_utilisation(seats_used: int | None, seats_purchased: int | None) -> float | None:
    if seats_used is None or seats_purchased is None:
        return None
    return ratio(seats_used, seats_purchased)


def onboarding_progress(done: int, total: int | None) -> float | None:
    """Milestones done / milestones planned, at most 1."""
    if total is None:
        return None
    share = ratio(done, total)
    return None if share is None else min(share, 1.0)


def whole_days(earlier: datetime | date | None, later: datetime | date | None) -> int | None:
    """Whole days from ``earlier`` to ``later`` (negative if ``later`` comes first)."""
    if earlier is None or later is None:
        return None
    if isinstance(earlier, datetime) != isinstance(later, datetime):
        earlier = earlier.date() if isinstance(earlier, datetime) else earlier
        later = later.date() if isinstance(later, datetime) else later
    delta = later - earlier
    return delta.days


def days_to_first_value(customer_since: date | None, first_value_at: datetime | None) -> int | None:
    if customer_since is None or first_value_at is None:
        return None
    return (first_value_at.date() - customer_since).days
