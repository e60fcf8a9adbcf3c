"""The one retry policy (tenacity): which failures are retried, how long to wait, when to give up."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity
import tenacity.stop
import tenacity.wait

from connector.errors import RateLimitedError, RetryableError

T = TypeVar("T")

BACKOFF_BASE_S = 0.5  # first back-off for 5xx/423/timeouts; doubles per attempt, full jitter
BACKOFF_MAX_S = 30.0
LOCKED_MIN_S = 2.0  # HubSpot: after a 423 wait at least 2 s (error-handling doc, API-NOTES §5)
RATE_LIMIT_JITTER = 0.2  # up to +20 % on a 429's window wait


def is_retryable(exc: BaseException) -> bool:
    """Retry 429 (except DAILY), 5xx, 423, timeouts and resets; never validation, auth or not-found errors."""
    if isinstance(exc, RateLimitedError):
        return exc.policy != "DAILY"
    return isinstance(exc, RetryableError)


class _Retry(tenacity.retry_base):  # type: ignore[name-defined]
    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        return exc is not None and is_retryable(exc)


class _Stop(tenacity.stop.stop_base):
    """Stop after ``attempts`` failures or once ``seconds`` have passed by the injected clock (tests fake time).

    A burst/secondly 429 is not a failure of the call but a wait for the window: only the time budget bounds them.
    """

    def __init__(self, attempts: int, seconds: float, clock: Callable[[], float]):
        self.attempts = attempts
        self.seconds = seconds
        self.clock = clock
        self.start = clock()
        self.failures = 0

    def remaining(self) -> float:
        return max(0.0, self.seconds - (self.clock() - self.start))

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if not isinstance(exc, RateLimitedError):
            self.failures += 1
        return self.failures >= self.attempts or self.remaining() <= 0


def backoff_seconds(attempt: int, *, rng: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential back-off: uniform in [0, min(max, base * 2**(attempt-1))]."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1))
    return ceiling * rng()


def wait_seconds(exc: BaseException, attempt: int, *, window_wait: Callable[[str | None], float],
                 rng: Callable[[], float] = random.random) -> float:
    """How long to wait before the next attempt after ``exc`` (the ``attempt``-th failure)."""
    if isinstance(exc, RateLimitedError):
        # A burst/secondly 429 means the window is full: wait for it to roll rather than hammer it, plus a little
        # jitter so processes sharing the app do not all come back in the same instant.
        base = max(window_wait(exc.policy), exc.retry_after or 0.0)
        return base * (1 + RATE_LIMIT_JITTER * rng())
    if isinstance(exc, RetryableError) and exc.status == 423:
        return LOCKED_MIN_S + backoff_seconds(attempt, rng=rng)
    return backoff_seconds(attempt, rng=rng)


class _Wait(tenacity.wait.wait_base):
    def __init__(self, window_wait: Callable[[str | None], float], stop: _Stop, rng: Callable[[], float]):
        self.window_wait = window_wait
        self.stop = stop
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = wait_seconds(exc, retry_state.attempt_number, window_wait=self.window_wait, rng=self.rng) if exc else 0.0
        # Never sleep past the call's time budget: the attempt after the sleep is the last one then.
        return min(wait, self.stop.remaining())


def call_with_retry(
    fn: Callable[[], T],
    *,
    max_attempts: int,
    max_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    window_wait: Callable[[str | None], float] = lambda policy: 10.0,
    on_retry: Callable[[BaseException, float], None] | None = None,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run ``fn`` under the policy; the last error propagates unchanged when retries are exhausted."""
    stop = _Stop(max(1, max_attempts), max_seconds, clock)

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        if on_retry and retry_state.outcome is not None:
            sleep_for = retry_state.next_action.sleep if retry_state.next_action else 0.0
            on_retry(retry_state.outcome.exception(), sleep_for)

    retrying = tenacity.Retrying(
        sleep=sleep,
        stop=stop,
        wait=_Wait(window_wait, stop, rng),
        retry=_Retry(),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)
