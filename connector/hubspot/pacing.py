"""Client-side rate budgets: the 10-second burst window, search's per-second limit and the daily budget."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from connector.errors import RateLimitedError

# HubSpot's documented figures (API-NOTES §5); the burst max is learnt from the headers of every ordinary call.
DEFAULT_BURST = 100  # Free/Starter private app: the smallest current limit, so a cold start never overshoots
DEFAULT_INTERVAL_S = 10.0
# The server counts a request when it arrives, we count it when we send it; a little slack on the window keeps
# latency jitter from pushing the 101st request into the server's window of the first (costs < 3 % of the burst).
WINDOW_SLACK_S = 0.25
# Once another process is seen spending the same app's burst (HubSpot counts more calls than we sent, or a 429
# arrives), keep 10 % of the burst free: two pacers that see the same count then never race into the last slots.
SHARED_FRACTION = 0.9
# A 429 while our own calls leave the window room says nothing of how long the others' calls stay in it: probe
# again soon and double the wait on each 429 in a row, up to a whole window (a blip costs a second, not ten).
PROBE_S = 1.0


def header(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None, name: str) -> str | None:
    """A response header by name, case-insensitively (HubSpot sends them lower-case on the wire, API-NOTES §11).

    Accepts a mapping or a list of (name, value) pairs (what some transports' ``getheaders()`` return).
    """
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lowered = name.lower()
    for key, candidate in pairs:
        if key.lower() == lowered:
            return candidate
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class Headroom:
    """What the latest headers said: burst remaining/max, daily used/max (None when not sent, e.g. OAuth daily)."""

    burst_max: int
    burst_remaining: int | None = None
    interval_s: float = DEFAULT_INTERVAL_S
    daily_max: int | None = None
    daily_remaining: int | None = None

    @property
    def daily_used(self) -> int | None:
        if self.daily_max is None or self.daily_remaining is None:
            return None
        return self.daily_max - self.daily_remaining


class RollingWindow:
    """At most ``limit`` events in any ``window`` seconds, by the injected clock."""

    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self.events: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self.events and self.events[0] <= now - self.window:
            self.events.popleft()

    def wait_time(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        self._expire(now)
        if len(self.events) < self.limit:
            return 0.0
        # The (len - limit + 1)-th oldest event must leave the window first.
        return max(0.0, self.events[len(self.events) - self.limit] + self.window - now)

    def add(self, now: float, count: int = 1) -> None:
        self.events.extend([now] * count)

    def used(self, now: float) -> int:
        self._expire(now)
        return len(self.events)


class Pacer:
    """Keeps requests under HubSpot's limits before HubSpot has to say no.

    Ordinary calls share the rolling burst window (10 s); search has its own per-second window and is exempt from
    the burst (spec ``x-hubspot-rate-limit-exemptions: ten-secondly``). The burst max and the daily budget are learnt
    from ``x-hubspot-ratelimit-*`` headers; the run stops (``RateLimitedError`` policy ``DAILY``) before spending the
    ``daily_reserve`` left for other integrations of the account.
    """

    def __init__(
        self,
        *,
        burst_limit: int | None = None,
        search_per_second: float = 4.0,
        daily_reserve: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fixed_burst = burst_limit
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        burst = burst_limit or DEFAULT_BURST
        self.headroom = Headroom(burst_max=burst)
        self.burst = RollingWindow(burst, DEFAULT_INTERVAL_S + WINDOW_SLACK_S)
        # search_per_second may be fractional (e.g. 2.5/s): express it as N requests per N/rate seconds.
        per = max(1, math.floor(search_per_second)) if search_per_second >= 1 else 1
        self.search = RollingWindow(per, per / search_per_second + 0.05)
        self.daily_reserve = daily_reserve
        self.waited_s = 0.0
        self.shared = False  # another consumer spends this app's burst too
        self.strikes = 0  # burst 429s in a row, without an ordinary answer between them

    # -- before a request ---------------------------------------------------------------------------------
    def acquire(self, kind: str = "call") -> float:
        """Block until one request of ``kind`` ("search" or anything else) fits; return the seconds waited."""
        with self._lock:
            self._check_daily()
            window = self.search if kind == "search" else self.burst
            now = self._clock()
            delay = window.wait_time(now)
            if delay > 0:
                self._sleep(delay)
                # wait_time is exact: after it a slot is free. Book the call at the later of the clock and the
                # planned moment, so an injected sleep that does not advance the clock cannot make us spin.
                now = max(self._clock(), now + delay)
                self.waited_s += delay
            window.add(now)
            if kind != "search" and self.headroom.daily_remaining is not None:
                # Count our own calls between headers so the reserve holds even when headers are missing.
                self.headroom.daily_remaining -= 1
            return delay

    def _check_daily(self) -> None:
        remaining = self.headroom.daily_remaining
        if remaining is not None and remaining <= self.daily_reserve:
            raise RateLimitedError(
                f"Daily API budget reached: {remaining} calls left, {self.daily_reserve} kept in reserve",
                policy="DAILY",
                status=None,
                category="RATE_LIMIT",
            )

    # -- after a response ---------------------------------------------------------------------------------
    def observe(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> None:
        """Learn the real limits from a response's ``x-hubspot-ratelimit-*`` headers (absent on search/errors)."""
        if not headers:
            return
        burst_max = _int(header(headers, "x-hubspot-ratelimit-max"))
        remaining = _int(header(headers, "x-hubspot-ratelimit-remaining"))
        interval_ms = _int(header(headers, "x-hubspot-ratelimit-interval-milliseconds"))
        daily = _int(header(headers, "x-hubspot-ratelimit-daily"))
        daily_remaining = _int(header(headers, "x-hubspot-ratelimit-daily-remaining"))
        with self._lock:
            now = self._clock()
            if interval_ms:
                self.headroom.interval_s = interval_ms / 1000
                self.burst.window = interval_ms / 1000 + WINDOW_SLACK_S
            if burst_max:
                self.headroom.burst_max = burst_max
            if remaining is not None:
                self.headroom.burst_remaining = remaining
                if remaining > 0:
                    self.strikes = 0  # an ordinary answer with room left: the burst window is open again
                # Other processes with the same app token share the burst: if HubSpot counts more calls in the
                # window than we sent, book the difference now so we slow down instead of meeting a 429.
                server_used = (burst_max or self.headroom.burst_max) - remaining
                ours = self.burst.used(now)
                if server_used > ours:
                    self.burst.add(now, server_used - ours)
                    self.shared = True
            self._apply_limit()
            if daily is not None:
                self.headroom.daily_max = daily
            if daily_remaining is not None:
                self.headroom.daily_remaining = daily_remaining

    def _apply_limit(self) -> None:
        limit = self.headroom.burst_max
        if self._fixed_burst:
            # A fixed setting may only lower what HubSpot allows, never raise it.
            limit = min(limit, self._fixed_burst)
        if self.shared:
            limit = max(1, math.floor(limit * SHARED_FRACTION))
        self.burst.limit = limit

    def penalize(self, policy: str | None) -> float:
        """After a 429: the seconds to wait before trying again.

        Search's window is one second: book it full and wait it out. For the burst, a 429 while our own calls fill
        the window means waiting for our oldest to leave it; otherwise the calls that filled it are someone else's
        (or HubSpot's blip), whose times we cannot know: probe after ``PROBE_S``, doubling with each 429 in a row
        up to a whole window, rather than sit out ten seconds for every refusal.
        """
        with self._lock:
            now = self._clock()
            if policy == "SECONDLY":
                self.search.add(now, max(0, self.search.limit - self.search.used(now)))
                return self.search.window
            # We paced, yet HubSpot said no: someone else spends this burst. Leave them room from now on.
            self.shared = True
            self._apply_limit()
            self.strikes += 1
            probe = min(self.burst.window, PROBE_S * 2 ** (self.strikes - 1))
            return max(self.burst.wait_time(now), probe)
