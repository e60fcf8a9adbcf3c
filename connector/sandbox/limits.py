"""Rate profiles and budgets of the sandbox: HubSpot's 10-second burst, daily and search limits (API-NOTES §5, §11)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

WINDOW_MS = 10_000
SEARCH_PER_SECOND = 5


@dataclass(frozen=True)
class RateProfile:
    name: str
    burst: int  # calls per rolling 10 s, per app (token)
    daily: int | None  # calls per day, per account; None = no daily budget and no daily headers (OAuth apps)
    enforced: bool = True  # False: "unlimited", headers still sane but nothing is ever refused

    @property
    def secondly(self) -> int:
        return max(1, self.burst // 10)


# Current figures of the usage-guidelines page (API-NOTES §5 table).
PROFILES: dict[str, RateProfile] = {
    "free": RateProfile("free", 100, 250_000),
    "starter": RateProfile("starter", 100, 250_000),
    "professional": RateProfile("professional", 190, 625_000),
    "enterprise": RateProfile("enterprise", 190, 1_000_000),
    "oauth": RateProfile("oauth", 110, None),
    "unlimited": RateProfile("unlimited", 1_000_000, 1_000_000_000, enforced=False),
}


def profile_named(name: str) -> RateProfile:
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown rate profile {name!r}; choose one of {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class Refusal:
    """Why a call is refused with 429: HubSpot's policy name and message (§11: no category on 429)."""

    policy: str  # TEN_SECONDLY_ROLLING | DAILY | SECONDLY
    message: str
    group: str


class Budget:
    """Counts calls per app in a rolling 10-second window, per account per day, and search calls per second.

    Refused calls are not counted: HubSpot answers them without doing the work, and counting them would lock a
    client that does not pace out for good. Thread-safe because tests read it from another thread.
    """

    def __init__(self, profile: RateProfile, portal_id: int, app_id: int = 1,
                 clock: Callable[[], float] = time.monotonic):
        self.profile = profile
        self.clock = clock  # seconds; tests may stop it so a burst is "at once" whatever the machine's load
        self.portal_id = portal_id
        self.app_id = app_id
        self._lock = threading.Lock()
        self._burst: dict[str, deque[float]] = {}
        self._second: dict[str, deque[float]] = {}  # the last second's calls, for the secondly headers
        self._search: deque[float] = deque()
        self._day = self._today()
        self.daily_used = 0
        self.refused = 0

    @staticmethod
    def _today() -> int:
        return int(time.time() // 86_400)

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:  # HubSpot resets at midnight account time; the sandbox's account lives in UTC
            self._day, self.daily_used = today, 0

    def spend(self, app: str) -> tuple[Refusal | None, dict[str, str]]:
        """Spend one ordinary call for ``app``; return a refusal, or the rate-limit headers to send."""
        now = self.clock()
        p = self.profile
        with self._lock:
            self._roll_day()
            window = self._burst.setdefault(app, deque())
            while window and now - window[0] >= WINDOW_MS / 1000:
                window.popleft()
            if p.enforced and p.daily is not None and self.daily_used >= p.daily:
                self.refused += 1
                return Refusal("DAILY", "You have reached your daily limit.",
                               f"publicapi:private_app-api-calls-daily:{self.portal_id}"), {}
            if p.enforced and len(window) >= p.burst:
                self.refused += 1
                return Refusal("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.",
                               f"publicapi:private_app-api-calls-ten-secondly:{self.app_id}:{self.portal_id}"), {}
            window.append(now)
            second = self._second.setdefault(app, deque())
            while second and now - second[0] >= 1.0:
                second.popleft()
            second.append(now)
            in_last_second = len(second)
            self.daily_used += 1
            headers = {
                "x-hubspot-ratelimit-interval-milliseconds": str(WINDOW_MS),
                "x-hubspot-ratelimit-max": str(p.burst),
                "x-hubspot-ratelimit-remaining": str(max(0, p.burst - len(window))),
                "x-hubspot-ratelimit-secondly": str(p.secondly),
                "x-hubspot-ratelimit-secondly-remaining": str(max(0, p.secondly - in_last_second)),
            }
            if p.daily is not None:  # OAuth apps get no daily headers (§11)
                headers["x-hubspot-ratelimit-daily"] = str(p.daily)
                headers["x-hubspot-ratelimit-daily-remaining"] = str(max(0, p.daily - self.daily_used))
            return None, headers

    def spend_search(self) -> Refusal | None:
        """Search has its own 5/s account budget and is exempt from the 10-second one (§1)."""
        now = self.clock()
        with self._lock:
            self._roll_day()
            while self._search and now - self._search[0] >= 1.0:
                self._search.popleft()
            if self.profile.enforced and len(self._search) >= SEARCH_PER_SECOND:
                self.refused += 1
                return Refusal("SECONDLY", "You have reached your secondly limit.",
                               f"publicapi:search-api-calls-secondly:{self.portal_id}")
            self._search.append(now)
            self.daily_used += 1
            return None
