"""Half-open reporting periods [start, end) on a calendar in one time zone (METRICS §1.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

UNITS = ("month", "quarter", "year")


@dataclass(frozen=True)
class Period:
    """States are snapshots at ``start`` and ``end``; movements are the changes in [start, end).

    A snapshot at instant t is the state just before t (its left limit), so a subscription starting at
    00:00 on the 1st is new in the month it opens, and a change at ``end`` belongs to the next period.
    """

    start: datetime
    end: datetime
    label: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware")
        if self.end < self.start:
            raise ValueError(f"period ends before it starts: {self.start.isoformat()} .. {self.end.isoformat()}")

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        return self.end.timestamp()

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400.0

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def clip(self, as_of: datetime) -> Period:
        """The period to date: a period still running at ``as_of`` ends at ``as_of`` (empty at its first instant)."""
        if as_of >= self.end:
            return self
        if as_of < self.start:
            raise ValueError(f"period {self.label or self.start.isoformat()} has not started at {as_of.isoformat()}")
        return Period(self.start, as_of, self.label)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _midnight(day: date, tz: str | ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=_zone(tz)).astimezone(timezone.utc)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def month(year: int, month_: int, tz: str | ZoneInfo = "UTC") -> Period:
    """Calendar month (ChartMogul style) in ``tz``."""
    ny, nm = _add_months(year, month_, 1)
    return Period(_midnight(date(year, month_, 1), tz), _midnight(date(ny, nm, 1), tz), f"{year:04d}-{month_:02d}")


def quarter(year: int, quarter_: int, tz: str | ZoneInfo = "UTC") -> Period:
    if quarter_ not in (1, 2, 3, 4):
        raise ValueError(f"quarter must be 1-4, got {quarter_}")
    first = 3 * (quarter_ - 1) + 1
    ny, nm = _add_months(year, first, 3)
    return Period(_midnight(date(year, first, 1), tz), _midnight(date(ny, nm, 1), tz), f"{year:04d}-Q{quarter_}")


def year(year_: int, tz: str | ZoneInfo = "UTC") -> Period:
    return Period(_midnight(date(year_, 1, 1), tz), _midnight(date(year_ + 1, 1, 1), tz), f"{year_:04d}")


def custom(first_day: date, end_day: date, tz: str | ZoneInfo = "UTC") -> Period:
    """Days ``first_day`` up to, not including, ``end_day`` (midnights in ``tz``)."""
    return Period(_midnight(first_day, tz), _midnight(end_day, tz), f"{first_day.isoformat()}..{end_day.isoformat()}")


def trailing(as_of: datetime, days: int = 30) -> Period:
    """The ``days`` before ``as_of`` (Baremetrics-style trailing window)."""
    return Period(as_of - timedelta(days=days), as_of, f"{days}d to {as_of.isoformat()}")


def containing(at: datetime, unit: str = "month", tz: str | ZoneInfo = "UTC") -> Period:
    """The calendar month / quarter / year of ``tz`` that contains instant ``at``."""
    local = at.astimezone(_zone(tz))
    if unit == "month":
        return month(local.year, local.month, tz)
    if unit == "quarter":
        return quarter(local.year, (local.month - 1) // 3 + 1, tz)
    if unit == "year":
        return year(local.year, tz)
    raise ValueError(f"unknown period unit {unit!r} (valid: {', '.join(UNITS)})")


def previous(period: Period, unit: str = "month", tz: str | ZoneInfo = "UTC") -> Period:
    """The calendar period of ``unit`` just before ``period`` starts."""
    return containing(period.start - timedelta(microseconds=1), unit, tz)


def iter_months(first: date, last: date, tz: str | ZoneInfo = "UTC") -> Iterator[Period]:
    """Calendar months from the one holding ``first`` to the one holding ``last``, inclusive."""
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        yield month(y, m, tz)
        y, m = _add_months(y, m, 1)
