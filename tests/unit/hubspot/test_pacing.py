"""The client-side limiter on a fake clock: burst window, search's per-second budget, learnt limits, daily stop."""

from __future__ import annotations

import pytest

from connector.errors import RateLimitedError
from connector.hubspot.pacing import PROBE_S, WINDOW_SLACK_S, Pacer, header


def _pacer(t, **kw) -> Pacer:
    return Pacer(sleep=t.sleep, clock=t.clock, **kw)


def _headers(max_: int = 100, remaining: int = 99, daily: int | None = 250_000, daily_remaining: int | None = 249_000):
    h = {"x-hubspot-ratelimit-max": str(max_), "x-hubspot-ratelimit-remaining": str(remaining),
         "x-hubspot-ratelimit-interval-milliseconds": "10000"}
    if daily is not None:
        h["x-hubspot-ratelimit-daily"] = str(daily)
        h["x-hubspot-ratelimit-daily-remaining"] = str(daily_remaining)
    return h


def test_acquire_burst_never_exceeds_limit_in_any_window(fake_time):
    t = fake_time
    pacer = _pacer(t, burst_limit=100)
    stamps = []
    for _ in range(350):
        pacer.acquire()
        stamps.append(t.now)
        t.now += 0.001  # a fast server
    window = 10.0 + WINDOW_SLACK_S
    worst = max(sum(1 for s in stamps if start <= s < start + window) for start in stamps)
    assert worst <= 100


def test_acquire_burst_uses_at_least_90_percent_of_the_allowance(fake_time):
    t = fake_time
    pacer = _pacer(t, burst_limit=100)
    for _ in range(1_000):
        pacer.acquire()
        t.now += 0.001
    rate = 1_000 / t.now  # requests per second achieved
    assert rate >= 0.9 * 100 / 10.0


def test_acquire_search_limited_per_second_and_exempt_from_burst(fake_time):
    t = fake_time
    pacer = _pacer(t, burst_limit=10, search_per_second=4)
    for _ in range(10):
        pacer.acquire()
    # The burst window is full, yet search goes on at its own pace.
    stamps = []
    for _ in range(40):
        pacer.acquire("search")
        stamps.append(t.now)
    assert max(sum(1 for s in stamps if a <= s < a + 1.0) for a in stamps) <= 4
    assert stamps[-1] <= 40 / 4 * 1.1  # ~4/s, not slower


def test_observe_learns_burst_max_from_lower_case_headers(fake_time):
    t = fake_time
    pacer = _pacer(t)
    assert pacer.burst.limit == 100  # cold start: the smallest current limit
    pacer.acquire()
    pacer.observe(_headers(max_=190, remaining=189))
    assert pacer.burst.limit == 190
    assert not pacer.shared
    assert pacer.headroom.burst_remaining == 189


def test_observe_fixed_setting_only_lowers_the_limit(fake_time):
    pacer = _pacer(fake_time, burst_limit=50)
    pacer.acquire()
    pacer.observe(_headers(max_=190, remaining=189))
    assert pacer.burst.limit == 50


def test_header_lookup_is_case_insensitive():
    assert header({"X-HubSpot-RateLimit-Max": "110"}, "x-hubspot-ratelimit-max") == "110"
    assert header({"x-hubspot-ratelimit-max": "110"}, "X-HubSpot-RateLimit-Max") == "110"
    assert header({}, "x") is None


def test_observe_books_calls_of_other_processes_sharing_the_app(fake_time):
    t = fake_time
    pacer = _pacer(t, burst_limit=100)
    pacer.acquire()
    # HubSpot says 60 calls were made in the window; we made one: the other 59 count against us too.
    pacer.observe(_headers(max_=100, remaining=40))
    assert pacer.burst.used(t.now) == 60
    # ... and from now on it leaves 10 % of the burst free, so two pacers seeing the same count never race.
    assert pacer.shared and pacer.burst.limit == 90


def test_penalize_after_a_burst_429_leaves_room_for_others(fake_time):
    t = fake_time
    pacer = _pacer(t, burst_limit=100)
    pacer.acquire()
    pacer.observe(_headers(max_=100, remaining=99))
    assert pacer.burst.limit == 100
    pacer.penalize("TEN_SECONDLY_ROLLING")
    assert pacer.burst.limit == 90


def test_acquire_daily_stops_before_spending_the_reserve(fake_time):
    t = fake_time
    pacer = _pacer(t, daily_reserve=1000)
    pacer.observe(_headers(daily=250_000, daily_remaining=1003))
    pacer.acquire()
    pacer.acquire()
    with pytest.raises(RateLimitedError) as info:
        for _ in range(5):
            pacer.acquire()
    assert info.value.policy == "DAILY"
    assert pacer.headroom.daily_remaining == 1000  # counted down locally between headers
    assert pacer.headroom.daily_used == 249_000


def test_acquire_without_daily_headers_never_stops(fake_time):
    t = fake_time
    pacer = _pacer(t, daily_reserve=10**9)
    pacer.observe(_headers(max_=110, remaining=100, daily=None))  # OAuth apps get no daily headers
    pacer.acquire()
    assert pacer.headroom.daily_max is None


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("TEN_SECONDLY_ROLLING", PROBE_S, id="burst-probes-again-soon"),
        pytest.param("SECONDLY", 1.05, id="search-waits-a-second"),
        pytest.param(None, PROBE_S, id="unknown-policy-treated-as-burst"),
    ],
)
def test_penalize_first_429_waits_briefly(fake_time, policy, expected):
    t = fake_time
    pacer = _pacer(t, search_per_second=4)
    assert pacer.penalize(policy) == pytest.approx(expected)


def test_penalize_burst_429s_in_a_row_double_up_to_a_window(fake_time):
    t = fake_time
    pacer = _pacer(t, burst_limit=100)
    waits = [pacer.penalize("TEN_SECONDLY_ROLLING") for _ in range(6)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0 + WINDOW_SLACK_S, 10.0 + WINDOW_SLACK_S]
    # an ordinary answer with room left ends the run of refusals: the next 429 probes soon again
    pacer.observe(_headers(max_=100, remaining=50))
    assert pacer.penalize("TEN_SECONDLY_ROLLING") == 1.0


def test_penalize_burst_429_with_our_window_full_waits_for_our_oldest_call(fake_time):
    t = fake_time
    pacer = _pacer(t, burst_limit=100)
    for _ in range(100):
        pacer.acquire()
        t.now += 0.01  # 100 calls in one second: the window is ours
    # the limit drops to 90 (room for others): the 11th oldest call must leave the 10.25 s window first
    assert pacer.penalize("TEN_SECONDLY_ROLLING") == pytest.approx(0.10 + 10.25 - 1.0)
