"""Canonical model: frozen dataclasses built from stored HubSpot records through the mappings.

CONTRACT (shared by mapping, metrics, health, segments): the dataclasses below are the only shape the pure
core sees. ``build_portfolio`` turns stored records into a ``Portfolio``. Times are timezone-aware UTC
``datetime``; calendar dates are ``date``; money is ``Decimal`` in the portal's reporting currency
(already converted, at constant FX). A value that could not be read is ``None`` and is reported once in
``Portfolio.issues``; it never stops the run.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, Sequence

# A property's past: (effective_at, value) pairs in ascending time order.
Timeline = tuple[tuple[datetime, Any], ...]


def value_at(timeline: Timeline, at: datetime, default: Any = None) -> Any:
    """Value in effect at instant ``at`` (the last change at or before it), else ``default``."""
    if not timeline:
        return default
    index = bisect_right([t for t, _ in timeline], at)
    return timeline[index - 1][1] if index else default


class RecordLike(Protocol):
    """What the model reads of a stored record (``connector.state.StoredRecord`` satisfies it)."""

    object_type: str  # contacts | companies | deals | line_items | subscriptions | feedback_submissions
    id: str
    properties: dict[str, str | None]
    history: dict[str, list[dict[str, Any]]]  # name -> [{value, timestamp (ISO str), sourceType}], newest first
    archived: bool
    created_at: datetime | None
    updated_at: datetime | None


class AssociationLike(Protocol):
    """One stored association (``connector.state.StoredAssociation`` satisfies it)."""

    from_type: str
    from_id: str
    to_type: str
    to_id: str
    type_id: int | None


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

    def status_at(self, at: datetime) -> str | None:
        if self.status_history:
            return value_at(self.status_history, at)
        if self.created_at is not None and at < self.created_at:
            return None
        return self.status

    def mrr_at(self, at: datetime) -> Decimal:
        """Recurring revenue in effect at ``at``: 0 unless the subscription counts as live then."""
        status = self.status_at(at)
        if status not in LIVE_STATUSES:
            return Decimal(0)
        if self.mrr_history:
            value = value_at(self.mrr_history, at)
            return value if value is not None else Decimal(0)
        return self.mrr or Decimal(0)


# Statuses in which a subscription still earns MRR (past-due counts until churn is recognised, METRICS §1.1).
LIVE_STATUSES = frozenset({"active", "past_due", "unpaid"})


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


@dataclass(frozen=True)
class Portfolio:
    """Everything the pure core needs, for one portal, keyed by id."""

    customers: dict[str, Customer]
    subscriptions: tuple[Subscription, ...]
    deals: tuple[Deal, ...]
    line_items: tuple[LineItem, ...]
    feedback: tuple[FeedbackResponse, ...]
    usage: dict[str, Usage]  # by customer id
    reporting_currency: str = "USD"
    issues: tuple[DataIssue, ...] = field(default=())

    def subscriptions_by_customer(self) -> dict[str, list[Subscription]]:
        out: dict[str, list[Subscription]] = {}
        for sub in self.subscriptions:
            if sub.customer_id is not None:
                out.setdefault(sub.customer_id, []).append(sub)
        return out


def build_portfolio(
    records: Sequence[RecordLike] | Any,
    associations: Sequence[AssociationLike] | Any,
    pack: Any,
) -> Portfolio:
    """Map stored records through the mapping pack into a Portfolio (implemented with the mappings issue)."""
    raise NotImplementedError("build_portfolio is implemented by the mappings/model work")
