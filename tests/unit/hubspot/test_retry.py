"""The retry policy: what is retried, how long it waits, when it gives up (fake clock, zero real waits)."""

from __future__ import annotations

import pytest

from connector.errors import (
    AuthError,
    HubSpotError,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetryableError,
)
from connector.hubspot.retry import BACKOFF_MAX_S, LOCKED_MIN_S, backoff_seconds, call_with_retry, is_retryable, wait_seconds


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        pytest.param(RateLimitedError("x", policy="TEN_SECONDLY_ROLLING", status=429), True, id="429-burst"),
        pytest.param(RateLimitedError("x", policy="SECONDLY", status=429), True, id="429-search-secondly"),
        pytest.param(RateLimitedError("x", policy="DAILY", status=429), False, id="429-daily-stops"),
        pytest.param(RetryableError("x", status=502), True, id="502"),
        pytest.param(RetryableError("x", status=423), True, id="423-locked"),
        pytest.param(RetryableError("timeout"), True, id="timeout-no-status"),
        pytest.param(RejectedError("bad value", status=400, category="VALIDATION_ERROR"), False, id="400-validation"),
        pytest.param(RejectedError("exists", status=409), False, id="409-conflict"),
        pytest.param(AuthError("x", status=401), False, id="401"),
        pytest.param(MissingScopesError("x", status=403, scopes=["a"]), False, id="403"),
        pytest.param(NotFoundError("x", status=404), False, id="404"),
        pytest.param(HubSpotError("x", status=418), False, id="other-4xx"),
        pytest.param(ValueError("bug"), False, id="programming-error"),
    ],
)
def test_is_retryable_classification(error, retried):
    assert is_retryable(error) is retried


def test_wait_seconds_429_waits_for_the_window_not_backoff():
    error = RateLimitedError("x", policy="TEN_SECONDLY_ROLLING")
    assert wait_seconds(error, 1, window_wait=lambda p: 10.25, rng=lambda: 0.0) == 10.25
    # Jitter only lengthens the wait (by at most 20 %), so processes sharing the app spread out.
    assert wait_seconds(error, 1, window_wait=lambda p: 10.25, rng=lambda: 1.0) == pytest.approx(12.3)


def test_wait_seconds_429_honours_a_longer_retry_after():
    error = RateLimitedError("x", policy="SECONDLY", retry_after=3.0)
    assert wait_seconds(error, 1, window_wait=lambda p: 1.0, rng=lambda: 0.0) == 3.0


def test_wait_seconds_423_waits_at_least_two_seconds():
    assert wait_seconds(RetryableError("x", status=423), 1, window_wait=lambda p: 0) >= LOCKED_MIN_S


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_backoff_seconds_bounded_and_jittered(attempt):
    assert backoff_seconds(attempt, rng=lambda: 0.0) == 0.0
    top = backoff_seconds(attempt, rng=lambda: 1.0)
    assert top == min(BACKOFF_MAX_S, 0.5 * 2 ** (attempt - 1))


def test_call_with_retry_retries_until_success(fake_time):
    t = fake_time
    answers = [RetryableError("503", status=503), RetryableError("reset"), "ok"]
    seen = []

    def fn():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = call_with_retry(fn, max_attempts=6, max_seconds=120, sleep=t.sleep, clock=t.clock,
                             on_retry=lambda e, s: seen.append(type(e).__name__))
    assert result == "ok"
    assert seen == ["RetryableError", "RetryableError"]


def test_call_with_retry_gives_up_after_max_attempts_with_the_last_error(fake_time):
    t = fake_time
    calls = []

    def fn():
        calls.append(1)
        raise RetryableError(f"503 #{len(calls)}", status=503)

    with pytest.raises(RetryableError, match="503 #4"):
        call_with_retry(fn, max_attempts=4, max_seconds=1_000, sleep=t.sleep, clock=t.clock)
    assert len(calls) == 4


def test_call_with_retry_gives_up_when_time_budget_spent(fake_time):
    t = fake_time
    calls = []

    def fn():
        calls.append(1)
        raise RateLimitedError("burst", policy="TEN_SECONDLY_ROLLING", status=429)

    with pytest.raises(RateLimitedError):
        call_with_retry(fn, max_attempts=100, max_seconds=25, sleep=t.sleep, clock=t.clock,
                        window_wait=lambda p: 10.0, rng=lambda: 0.0)
    # 10 s + 10 s + 5 s (clamped to the budget) of waiting, then no more.
    assert t.sleeps == [10.0, 10.0, 5.0]
    assert len(calls) == 4


def test_call_with_retry_never_retries_validation_or_daily(fake_time):
    t = fake_time
    for error in (RejectedError("bad", status=400), RateLimitedError("daily", policy="DAILY", status=429)):
        calls = []

        def fn(error=error):
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            call_with_retry(fn, max_attempts=6, max_seconds=100, sleep=t.sleep, clock=t.clock)
        assert len(calls) == 1
    assert t.sleeps == []


def test_call_with_retry_429s_bounded_by_time_not_attempts(fake_time):
    t = fake_time
    answers = [RateLimitedError("burst", policy="TEN_SECONDLY_ROLLING", status=429)] * 5 + ["ok"]

    def fn():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    # Five 429s in a row with max_attempts=3: each is a wait for the window, not a failed attempt.
    assert call_with_retry(fn, max_attempts=3, max_seconds=120, sleep=t.sleep, clock=t.clock,
                           window_wait=lambda p: 10.0, rng=lambda: 0.0) == "ok"
    assert t.sleeps == [10.0] * 5
