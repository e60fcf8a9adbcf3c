"""Engagement: E10 stickiness and usage frequency, E5 MAU 0, forgettable zone, seats, onboarding."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from connector.metrics.engagement import (
    days_to_first_value,
    is_forgettable,
    onboarding_progress,
    seat_utilisation,
    stickiness,
    stickiness_from_daily,
    usage_frequency,
    whole_days,
)


def test_stickiness_e10():
    assert stickiness_from_daily([100] * 30, 400) == 0.25
    assert stickiness_from_daily([80, 120] * 15, 400) == 0.25
    assert stickiness(100.0, 400) == 0.25


def test_usage_frequency_e10():
    assert usage_frequency(12, 30) == pytest.approx(0.40)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(stickiness(3.0, 0), None, id="E5-mau-zero"),
        pytest.param(stickiness_from_daily([], 10), None, id="no-days"),
        pytest.param(usage_frequency(None), None, id="usage-unknown"),
        pytest.param(seat_utilisation(3, 0), None, id="no-seats-bought"),
        pytest.param(seat_utilisation(7, 10), 0.7, id="seats"),
        pytest.param(onboarding_progress(3, 4), 0.75, id="onboarding"),
        pytest.param(onboarding_progress(5, 4), 1.0, id="onboarding-capped"),
        pytest.param(onboarding_progress(0, None), None, id="no-plan"),
    ],
)
def test_ratios_and_none(value, expected):
    assert value == expected


@pytest.mark.parametrize(
    ("active_days", "expected"),
    [pytest.param(0, True, id="idle"), pytest.param(1, False, id="once"), pytest.param(None, None, id="unknown")],
)
def test_is_forgettable(active_days, expected):
    assert is_forgettable(active_days) is expected


def test_day_counts():
    as_of = datetime(2026, 3, 1, 8, tzinfo=timezone.utc)
    assert whole_days(datetime(2026, 2, 27, 9, tzinfo=timezone.utc), as_of) == 1
    assert whole_days(date(2026, 2, 1), as_of) == 28
    assert days_to_first_value(date(2026, 1, 1), datetime(2026, 1, 15, tzinfo=timezone.utc)) == 14
    assert days_to_first_value(None, as_of) is None
