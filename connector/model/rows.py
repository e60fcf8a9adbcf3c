"""The canonical records as frozen dataclasses: row views where a person (or a test) looks at one record.

The model itself is a set of polars frames (``connector.model.portfolio``); these dataclasses are what one row of
them reads as. Times are timezone-aware UTC ``datetime``; calendar dates are ``date``; money is ``Decimal`` in the
portal's reporting currency (already converted, at constant FX). A value that could not be read is ``None``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any

from connector.vocabulary import LIVE_STATUSES, MONTHLY_FACTOR, OVERDUE_STATUSES

# A property's past: (effective_at, value) pairs in ascending time order.
Timeline = tuple[tuple[datetime, Any], ...]
_first = itemgetter(0)
_UTC = timezone.utc

__all__ = ["Customer", "DataIssue", "Deal", "FeedbackResponse", "LIVE_STATUSES", "LineItem", "MONTHLY_FACTOR",
           "OVERDUE_STATUSES", "Subscription", "Timeline", "Usage", "parse_bool", "parse_date", "parse_datetime",
           "parse_decimal", "parse_int", "value_at"]

def value_at(timeline: Timeline, at: datetime, default: Any = None) -> Any:
    """Value in effect at instant ``at`` (the last change at or before it), else ``default``."""
    if not timeline:
        return default
    index = bisect_right(timeline, at, key=_first)  # O(log n), no list of times built per call
    return timeline[index - 1][1] if index else default



@dataclass(frozen=True)
class DataIssue:
    """A malformed value: the field is left empty and the run goes on."""

    object_type: str
    record_id: str
    property: str
    raw_value: str | None
    reason: str





@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str | None
    name: str | None
    status: str | None  # canonical: active | past_due | unpaid | paused | canceled | expired | scheduled
    mrr: Decimal | None  # current normalised monthly amount (reporting currency)
    currency: str | None
    billing_frequency: str | None  # canonical: weekly | biweekly | monthly | quarterly | per_six_months | annually | ...
    start_date: date | None
    next_payment_due: date | None
    last_payment_status: str | None  # e.g. succeeded | failed | pending
    cancel_requested_at: datetime | None
    created_at: datetime | None
    mrr_history: Timeline = ()  # (effective_at, Decimal MRR) ascending
    status_history: Timeline = ()  # (effective_at, canonical status) ascending
    # From portal.yaml active_customer (defaults: METRICS §1.1): statuses that earn MRR, and after how many days
    # in past_due/unpaid churn is recognised (None: only when the status leaves the live statuses).
    live_statuses: frozenset[str] = LIVE_STATUSES
    past_due_grace_days: int | None = None

    def status_at(self, at: datetime) -> str | None:
        if self.status_history:
            return value_at(self.status_history, at)
        if self.created_at is not None and at < self.created_at:
            return None
        return self.status

    def mrr_at(self, at: datetime) -> Decimal:
        """Recurring revenue in effect at ``at``: the MRR rule (``connector.model.mrr``) read for this subscription."""
        from connector.model.mrr import steps_of  # the rule reads frames, which are made of these rows

        try:
            steps = _mrr_steps(self)
        except TypeError:  # a hand-made row with a list for a history: not hashable, so not kept
            steps = steps_of(self)
        value = value_at(steps, at)
        return value if value is not None else Decimal(0)


@lru_cache(maxsize=65536)
def _mrr_steps(sub: Subscription) -> Timeline:
    """A subscription's MRR steps, kept for the next instants a person asks about (each made with polars)."""
    from connector.model.mrr import steps_of

    return steps_of(sub)


@dataclass(frozen=True)
class LineItem:
    id: str
    deal_id: str | None
    subscription_id: str | None
    name: str | None
    quantity: Decimal | None
    price: Decimal | None
    amount: Decimal | None
    discount_percentage: Decimal | None
    billing_frequency: str | None  # canonical, None for one-time
    mrr: Decimal | None  # normalised monthly amount for recurring items, None for one-time


@dataclass(frozen=True)
class Deal:
    id: str
    customer_id: str | None
    name: str | None
    amount: Decimal | None  # reporting currency
    currency: str | None
    close_date: datetime | None
    stage: str | None
    is_won: bool
    is_closed: bool
    created_at: datetime | None
    line_item_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackResponse:
    id: str
    customer_id: str | None
    contact_id: str | None
    survey_type: str  # NPS | CSAT | CES | other (upper case)
    value: int | None  # the rating on the survey's own scale
    response_group: str | None  # HubSpot's group as given: PROMOTER | PASSIVE | DETRACTOR
    submitted_at: datetime | None
    channel: str | None = None


@dataclass(frozen=True)
class Usage:
    """Product usage and service signals of one customer, as of the last pull, with their pasts."""

    customer_id: str
    last_login_at: datetime | None = None
    logins_30d: int | None = None
    active_days_30d: int | None = None  # days with activity in the trailing 30 (0-30)
    active_users_30d: int | None = None  # MAU
    avg_daily_active_users_30d: float | None = None  # mean DAU
    seats_purchased: int | None = None
    seats_used: int | None = None
    onboarding_milestones_done: tuple[str, ...] = ()
    onboarding_milestones_total: int | None = None
    first_value_at: datetime | None = None
    open_tickets: int | None = None
    tickets_90d: int | None = None
    last_engagement_at: datetime | None = None
    active_days_history: Timeline = ()  # (effective_at, int) ascending
    logins_history: Timeline = ()
    seats_used_history: Timeline = ()


@dataclass(frozen=True)
class Customer:
    """The retention unit: a company, or a contact where there is no company (portal.yaml decides)."""

    id: str
    object_type: str  # companies | contacts
    name: str | None
    created_at: datetime | None
    customer_since: date | None
    acquisition_source: str | None
    industry: str | None
    country: str | None = None
    birthday: date | None = None  # the primary contact's
    contact_ids: tuple[str, ...] = ()
    primary_contact_id: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # mapped custom fields (name, value) for custom rules


# ---------------------------------------------------------------- HubSpot's strings, one value at a time (tests, row views)

_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off"})


def parse_decimal(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise ValueError("not a number") from None
    if not value.is_finite():
        raise ValueError("not a finite number")
    return value


def parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        value = parse_decimal(raw)
        if value != value.to_integral_value():
            raise ValueError("not a whole number") from None
        return int(value)


def parse_datetime(raw: str | int) -> datetime:
    """ISO-8601 (HubSpot's ms and Z), a plain date (midnight UTC) or epoch milliseconds → aware UTC datetime."""
    if isinstance(raw, int) or raw.isdigit():
        try:
            return datetime.fromtimestamp(int(raw) / 1000, _UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("not a valid epoch-milliseconds time") from None
    # HubSpot sends ISO 8601 with a zone ("…T…Z") or a plain date; a time without a zone is ambiguous: refused.
    if len(raw) != 10 and ("T" not in raw or not (raw.endswith("Z") or "+" in raw[10:] or "-" in raw[10:])):
        raise ValueError("not an ISO 8601 date-time with a time zone")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("not a valid date-time") from None
    tz = value.tzinfo
    if tz is _UTC:  # HubSpot's own "…Z" form: nothing to do
        return value
    if tz is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def parse_date(raw: str) -> date:
    if len(raw) == 10 and not raw.isdigit():
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError("not a valid date") from None
    return parse_datetime(raw).date()


def parse_bool(raw: str) -> bool:
    key = raw.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError("not a boolean (true/false)")

