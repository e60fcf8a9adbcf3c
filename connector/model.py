"""Canonical model: frozen dataclasses built from stored HubSpot records through the mappings.

CONTRACT (shared by mapping, metrics, health, segments): the dataclasses below are the only shape the pure
core sees. ``build_portfolio`` turns stored records into a ``Portfolio``. Times are timezone-aware UTC
``datetime``; calendar dates are ``date``; money is ``Decimal`` in the portal's reporting currency
(already converted, at constant FX). A value that could not be read is ``None`` and is reported once in
``Portfolio.issues``; it never stops the run.
"""

from __future__ import annotations

import gc
import sys
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields as dataclass_fields
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from itertools import chain, compress, repeat
from operator import attrgetter, is_not, itemgetter
from typing import Any, Callable, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from connector.mapping.sources import CANONICAL_FIELDS, FREQUENCY_ALIASES as _FREQUENCY_ALIASES, TIMELINES

# A property's past: (effective_at, value) pairs in ascending time order.
Timeline = tuple[tuple[datetime, Any], ...]
_first = itemgetter(0)
_second = itemgetter(1)


def value_at(timeline: Timeline, at: datetime, default: Any = None) -> Any:
    """Value in effect at instant ``at`` (the last change at or before it), else ``default``."""
    if not timeline:
        return default
    index = bisect_right(timeline, at, key=_first)  # O(log n), no list of times built per call
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


# Statuses in which a subscription still earns MRR (past-due counts until churn is recognised, METRICS §1.1).
LIVE_STATUSES = frozenset({"active", "past_due", "unpaid"})
OVERDUE_STATUSES = frozenset({"past_due", "unpaid"})
# Months per billing interval inverted: monthly amount = amount × factor (METRICS §1.3: weekly 52/12).
MONTHLY_FACTOR: dict[str, Decimal] = {
    "weekly": Decimal(52) / Decimal(12),
    "biweekly": Decimal(26) / Decimal(12),
    "monthly": Decimal(1),
    "quarterly": Decimal(1) / Decimal(3),
    "per_six_months": Decimal(1) / Decimal(6),
    "annually": Decimal(1) / Decimal(12),
    "per_two_years": Decimal(1) / Decimal(24),
    "per_three_years": Decimal(1) / Decimal(36),
    "per_four_years": Decimal(1) / Decimal(48),
    "per_five_years": Decimal(1) / Decimal(60),
}


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
        """Recurring revenue in effect at ``at``: 0 unless the subscription counts as live then."""
        status = self.status_at(at)
        if status not in self.live_statuses:
            return Decimal(0)
        if self.past_due_grace_days is not None and status in OVERDUE_STATUSES:
            since = self._overdue_since(at)
            if since is not None and (at - since).days > self.past_due_grace_days:
                return Decimal(0)
        if self.mrr_history:
            value = value_at(self.mrr_history, at)
            return value if value is not None else Decimal(0)
        return self.mrr or Decimal(0)

    def _overdue_since(self, at: datetime) -> datetime | None:
        """Start of the unbroken past_due/unpaid run that contains ``at`` (None without a status history)."""
        index = bisect_right(self.status_history, at, key=_first) - 1
        since = None
        while index >= 0 and self.status_history[index][1] in OVERDUE_STATUSES:
            since = self.status_history[index][0]
            index -= 1
        return since


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


# ---------------------------------------------------------------- columns: the hand-off to the metrics

_NAN = float("nan")


def _datetime_of(seconds: float) -> datetime | None:
    # float64 epoch seconds keep HubSpot's milliseconds (and microseconds) exactly: fromtimestamp rounds to the µs
    return None if seconds != seconds else datetime.fromtimestamp(seconds, _UTC)


def _date_of(ordinal: float) -> date | None:
    return None if ordinal != ordinal else date.fromordinal(int(ordinal))


def epoch_seconds(values: Sequence[datetime | None]) -> np.ndarray:
    """Epoch seconds of aware datetimes, NaN for None; every loop runs in C (map, compress)."""
    present = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=len(values))
    out = np.full(len(values), _NAN)
    count = int(present.sum())
    if count:
        out[present] = np.fromiter(map(datetime.timestamp, compress(values, present.tolist())), dtype=np.float64,
                                   count=count)
    return out


def date_ordinals(values: Sequence[date | None]) -> np.ndarray:
    """Proleptic ordinals of dates, NaN for None (C loops)."""
    present = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=len(values))
    out = np.full(len(values), _NAN)
    count = int(present.sum())
    if count:
        out[present] = np.fromiter(map(date.toordinal, compress(values, present.tolist())), dtype=np.float64,
                                   count=count)
    return out


class Flat:
    """Many short timelines in flat arrays: row ``i``'s entries are ``offsets[i]:offsets[i+1]``, ascending in time.

    ``times`` are float64 epoch seconds; ``values`` a list of the canonical values (Decimal, str, int or None).
    """

    __slots__ = ("offsets", "times", "values")

    def __init__(self, offsets: np.ndarray, times: np.ndarray, values: list[Any]):
        self.offsets, self.times, self.values = offsets, times, values

    @classmethod
    def empty(cls, rows: int) -> "Flat":
        return cls(np.zeros(rows + 1, dtype=np.int64), np.zeros(0, dtype=np.float64), [])

    @classmethod
    def of(cls, timelines: Sequence[Timeline]) -> "Flat":
        counts = np.fromiter(map(len, timelines), dtype=np.int64, count=len(timelines))
        offsets = np.zeros(len(timelines) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        pairs = list(chain.from_iterable(timelines))
        return cls(offsets, epoch_seconds(list(map(_first, pairs))), list(map(_second, pairs)))

    def __len__(self) -> int:
        return self.offsets.size - 1

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def owners(self) -> np.ndarray:
        """The row of every entry."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.counts())

    def row(self, i: int) -> Timeline:
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        if lo == hi:
            return ()
        return tuple(zip(map(_datetime_of, self.times[lo:hi].tolist()), self.values[lo:hi]))

    def take(self, rows: np.ndarray) -> "Flat":
        """The timelines of ``rows`` (row indices), in that order."""
        counts = self.counts()[rows]
        offsets = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        entries = np.repeat(self.offsets[:-1][rows] - offsets[:-1], counts) + np.arange(offsets[-1], dtype=np.int64)
        return Flat(offsets, self.times[entries], list(map(self.values.__getitem__, entries.tolist())))


def _kind(annotation: str) -> str:
    if annotation == "Timeline":
        return "timeline"
    if annotation.startswith("datetime"):
        return "time"
    if annotation.startswith("date"):
        return "date"
    if annotation == "bool":
        return "bool"
    return "value"


class Table(Sequence[Any]):
    """Records of one dataclass kept as columns: a million records as a few dozen arrays and lists, not a million
    objects. The frozen dataclass of a row is built on access (``table[i]``, iteration).

    Column by field kind: datetime → float64 epoch seconds (NaN for None); date → float64 proleptic ordinal (NaN);
    Timeline → ``Flat``; bool → numpy bool; anything else → a list of the values.
    """

    def __init__(self, cls: type, columns: dict[str, Any], size: int):
        self.cls, self.columns, self.size = cls, columns, size
        self.kinds = _KINDS[cls]
        missing = set(self.kinds) - set(columns)
        if missing:
            raise ValueError(f"{cls.__name__} table without columns {sorted(missing)}")

    @classmethod
    def of(cls, record_type: type, rows: Sequence[Any]) -> "Table":
        """The columns of dataclass objects (the slow, general way in: tests and small portfolios)."""
        rows = list(rows)
        columns: dict[str, Any] = {}
        for name, kind in _KINDS[record_type].items():
            values = list(map(attrgetter(name), rows))
            if kind == "time":
                columns[name] = epoch_seconds(values)
            elif kind == "date":
                columns[name] = date_ordinals(values)
            elif kind == "timeline":
                columns[name] = Flat.of(values)
            elif kind == "bool":
                columns[name] = np.fromiter(map(bool, values), dtype=bool, count=len(values))
            else:
                columns[name] = values
        return cls(record_type, columns, len(rows))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.size))]
        if i < 0:
            i += self.size
        if not 0 <= i < self.size:
            raise IndexError("table row out of range")
        kw: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            column = self.columns[name]
            if kind == "time":
                kw[name] = _datetime_of(float(column[i]))
            elif kind == "date":
                kw[name] = _date_of(float(column[i]))
            elif kind == "timeline":
                kw[name] = column.row(i)
            elif kind == "bool":
                kw[name] = bool(column[i])
            else:
                kw[name] = column[i]
        return self.cls(**kw)

    def __iter__(self) -> Iterator[Any]:
        return map(self.__getitem__, range(self.size))

    def column(self, name: str) -> Any:
        return self.columns[name]

    def owners(self, index: Mapping[str, int], key: str = "customer_id") -> np.ndarray:
        """Per row, the position of its ``key`` in ``index`` (a customer's row), -1 where it has none."""
        return np.fromiter(map(index.get, self.columns[key], repeat(-1)), dtype=np.int64, count=self.size)


_KINDS: dict[type, dict[str, str]] = {
    cls: {f.name: _kind(str(f.type)) for f in dataclass_fields(cls)}
    for cls in (Customer, Subscription, Deal, LineItem, FeedbackResponse, Usage)
}


class _Keyed(Mapping[str, Any]):
    """``{id: record}`` over a table: rows are built on access, so a million customers are never all objects."""

    def __init__(self, table: Table, key: str):
        self.table, self.key = table, key
        self.ids: list[str] = table.columns[key]
        self._index: dict[str, int] | None = None

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.ids)}
        return self._index

    def __getitem__(self, key: str) -> Any:
        return self.table[self.index[key]]

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return self.table.size


@dataclass(frozen=True, eq=False)
class Tables:
    """The portfolio as columns, one Table per record type: what the metrics read."""

    customers: Table
    subscriptions: Table
    deals: Table
    line_items: Table
    feedback: Table
    usage: Table  # one row per customer with usage data, keyed by customer_id


class Portfolio:
    """Everything the pure core needs, for one portal.

    Held as columns (``tables``, what the metrics read) when the model builds it; given as objects (tests, small
    examples) its columns are derived on first use. Either way ``customers`` / ``usage`` read as ``{id: object}``
    and ``subscriptions`` / ``deals`` / ``line_items`` / ``feedback`` as sequences of the frozen dataclasses.
    """

    def __init__(
        self,
        customers: Mapping[str, Customer] | None = None,
        subscriptions: Sequence[Subscription] = (),
        deals: Sequence[Deal] = (),
        line_items: Sequence[LineItem] = (),
        feedback: Sequence[FeedbackResponse] = (),
        usage: Mapping[str, Usage] | None = None,
        reporting_currency: str = "USD",
        issues: Sequence[DataIssue] = (),
        *,
        tables: Tables | None = None,
    ):
        self.reporting_currency = reporting_currency
        self.issues = tuple(issues)
        self._tables = tables
        if tables is not None:
            self.customers: Mapping[str, Customer] = _Keyed(tables.customers, "id")
            self.subscriptions: Sequence[Subscription] = tables.subscriptions
            self.deals: Sequence[Deal] = tables.deals
            self.line_items: Sequence[LineItem] = tables.line_items
            self.feedback: Sequence[FeedbackResponse] = tables.feedback
            self.usage: Mapping[str, Usage] = _Keyed(tables.usage, "customer_id")
        else:
            self.customers = customers if customers is not None else {}
            self.subscriptions = tuple(subscriptions)
            self.deals = tuple(deals)
            self.line_items = tuple(line_items)
            self.feedback = tuple(feedback)
            self.usage = usage if usage is not None else {}

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            self._tables = Tables(
                customers=Table.of(Customer, self.customers.values()),
                subscriptions=Table.of(Subscription, self.subscriptions),
                deals=Table.of(Deal, self.deals),
                line_items=Table.of(LineItem, self.line_items),
                feedback=Table.of(FeedbackResponse, self.feedback),
                usage=Table.of(Usage, self.usage.values()),
            )
        return self._tables

    def replace(self, **changes: Any) -> "Portfolio":
        """A copy with some parts replaced (as ``dataclasses.replace``): built from objects, columns derived anew."""
        parts = {name: getattr(self, name) for name in ("customers", "subscriptions", "deals", "line_items", "feedback",
                                                          "usage", "reporting_currency", "issues")}
        parts.update(changes)
        return Portfolio(**parts)

    def customer_index(self) -> dict[str, int]:
        """Customer id → row of the customers table."""
        customers = self.customers
        if isinstance(customers, _Keyed):
            return customers.index
        return {cid: i for i, cid in enumerate(self.tables.customers.columns["id"])}

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
    """Map stored records through the mapping pack into a Portfolio.

    One pass over the associations (only the pairs the pack needs, each stored in the direction it is looked up),
    one pass over the records (each converted by readers compiled from sources.yaml straight into its dataclass),
    then one pass over the built objects to fill in what depends on other records (customer ids, contacts,
    line items). Records and associations may be streamed. Archived records are skipped; a malformed value leaves
    its field None and adds one DataIssue.
    """
    # The builder allocates millions of small acyclic objects; the cycle collector would re-scan them all again and
    # again (a quarter of the run time) and finds nothing: pause it for the build, restore it after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(records, associations, pack)
    finally:
        if collecting:
            gc.enable()


def _build(records: Any, associations: Any, pack: Any) -> Portfolio:
    plan = _Plan(pack)
    links = _Links(plan)
    for assoc in associations:
        links.add(assoc.from_type, str(assoc.from_id), assoc.to_type, str(assoc.to_id), assoc.type_id)

    built = _Built()
    issues: list[DataIssue] = []
    dispatch = plan.dispatch
    lite_contacts, contacts_type, customer_type = plan.lite_contacts, plan.contacts_type, plan.customer_type
    for record in records:
        if record.archived:
            continue
        entities = dispatch.get(record.object_type)
        if not entities:
            continue
        record_id = str(record.id)
        props = record.properties or {}
        history = record.history
        for entity, fields, historical in entities:
            if entity == "contacts" and lite_contacts is not None and links.has_any(contacts_type, record_id, customer_type):
                fields = lite_contacts  # a contact with a company only lends its birthday: read nothing else
            values: dict[str, Any] = {}  # absent = None
            for attr, name, convert in fields:
                if name is None:  # constant, join, list of properties
                    try:
                        values[attr] = convert(props)
                    except _Bad as bad:
                        issues.append(DataIssue(record.object_type, record_id, bad.prop, bad.raw, bad.reason))
                    continue
                raw = props.get(name)
                if raw is None or raw == "":  # HubSpot's "no value"
                    continue
                if convert is None:
                    values[attr] = raw
                    continue
                try:
                    values[attr] = convert(raw)
                except _MALFORMED as exc:
                    issues.append(DataIssue(record.object_type, record_id, name, raw, str(exc) or "malformed value"))
            if history:
                for attr, prop, read_history in historical:
                    entries = history.get(prop)
                    if entries:
                        values[attr] = read_history(entries, props, record.object_type, record_id, issues)
            built.add(plan, links, entity, record_id, values, record.created_at)
    return _assemble(plan, links, built, issues)


# ---------------------------------------------------------------- reading values (compiled once per pack)


class _Bad(Exception):
    """A value that could not be read: becomes a DataIssue."""

    def __init__(self, prop: str, raw: Any, reason: str):
        self.prop, self.raw, self.reason = prop, raw, reason


_UTC = timezone.utc
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


def _converter(spec: Any, kind: str, pack: Any) -> tuple[Callable[..., Any] | None, bool]:
    """(convert, needs_props): raw string → canonical value, raising ValueError if malformed; None = keep as is.

    ``needs_props``: the converter also takes the record's properties (money reads its currency from them).
    """
    transform = spec.transform
    tz = ZoneInfo(pack.portal.periods.time_zone)
    base: Callable[..., Any] | None
    needs_props = False
    if transform == "money":
        currency = pack.portal.currency
        fixed = spec.currency
        currency_prop = spec.currency_property
        needs_props = currency_prop is not None

        rates: dict[str | None, Decimal] = {**currency.rates, currency.reporting: Decimal(1), None: Decimal(1), "": Decimal(1)}
        one = Decimal(1)

        converted: dict[tuple[str, str | None], Decimal] = {}  # amounts repeat (plan prices): share the result

        def base(raw: str, props: dict | None = None) -> Any:
            code = fixed or (props.get(currency_prop) if currency_prop and props else None)
            key = (raw, code)
            value = converted.get(key)
            if value is None:
                rate = rates.get(code)
                if rate is None:
                    raise ValueError(f'no FX rate for currency "{code}" in portal.yaml')
                amount = parse_decimal(raw)
                value = amount if rate == one else amount * rate
                if len(converted) >= 8192:
                    converted.clear()
                converted[key] = value
            return value
    elif transform in _PARSERS:
        base = _memo(_PARSERS[transform]) if transform in _MEMO else _PARSERS[transform]
    elif transform == "multi_select":
        def base(raw: str) -> Any:
            return tuple(map(sys.intern, filter(None, raw.split(";"))))  # option names repeat: one object each
    elif transform == "frequency":
        mapping = dict(spec.values or {})
        aliases = {**_FREQUENCY_ALIASES, **{k.lower(): v for k, v in pack.sources.frequency_aliases.items()}}

        def base(raw: str) -> Any:
            found = mapping.get(raw) or aliases.get(raw)
            if found is not None:
                return found
            found = aliases.get(raw.strip().lower().replace(" ", "_").replace("-", "_"))
            if found is None:
                raise ValueError("unknown billing frequency")
            return found
    elif transform == "enumeration" and (spec.values is not None or spec.default is not None):
        mapping = dict(spec.values or {})
        default = spec.default

        def base(raw: str) -> Any:
            found = mapping.get(raw, default)
            if found is None:
                raise ValueError("unknown enumeration value")
            return found
    elif transform == "enumeration":  # passed through unchanged: few distinct values, one string object each
        base = sys.intern
    else:  # string
        base = None
    if spec.range is not None and base is not None:
        low, high = Decimal(str(spec.range[0])), Decimal(str(spec.range[1]))
        unchecked = base

        def base(raw: str, props: dict | None = None) -> Any:
            value = unchecked(raw, props) if needs_props else unchecked(raw)
            if not low <= value <= high:
                raise ValueError(f"out of range [{spec.range[0]:g}, {spec.range[1]:g}]")
            return value
    # Bring the transform's value to the canonical field's type.
    inner = base if base is not None else (lambda raw: raw)
    if kind == "date" and transform == "datetime":
        if pack.portal.periods.time_zone == "UTC":  # parsed datetimes are UTC already
            return (lambda raw: inner(raw).date()), needs_props
        return (lambda raw: inner(raw).astimezone(tz).date()), needs_props
    if kind == "datetime" and transform == "date":
        return (lambda raw: datetime.combine(inner(raw), datetime.min.time(), _UTC)), needs_props
    if kind == "int" and transform in ("number", "enumeration"):
        return (lambda raw: parse_int(str(inner(raw)))), needs_props
    if kind == "float":
        return (lambda raw: float(inner(raw))), needs_props
    if kind == "bool" and transform == "enumeration":
        return (lambda raw: parse_bool(str(inner(raw)))), needs_props
    return base, needs_props


_PARSERS: dict[str, Callable[[str], Any]] = {
    "number": parse_decimal, "integer": parse_int, "date": parse_date, "datetime": parse_datetime, "bool": parse_bool,
}
_MALFORMED = (ValueError, TypeError, ArithmeticError)
# Prices, MRR amounts and dates repeat across records: parsing each distinct string once saves time, and sharing the
# (immutable) result saves memory at a million records. Timestamps carry milliseconds and rarely repeat: not cached.
_MEMO = frozenset({"number", "date"})
_MISSING = object()


def _memo(parse: Callable[[str], Any], limit: int = 8192) -> Callable[[str], Any]:
    cache: dict[str, Any] = {}

    def run(raw: str) -> Any:
        value = cache.get(raw, _MISSING)
        if value is _MISSING:
            value = parse(raw)  # a malformed value raises and is not cached
            if len(cache) >= limit:
                cache.clear()
            cache[raw] = value
        return value
    return run


def _field(attr: str, spec: Any, kind: str, pack: Any) -> tuple[str, str | None, Callable[..., Any] | None]:
    """(attr, property, convert) for the build loop's fast path (one property read inline, convert(raw)), or
    (attr, None, reader(props)) for constants, joins, lists of properties and money with a currency property."""
    convert, needs_props = _converter(spec, kind, pack)
    if spec.constant is not None:
        raw = str(spec.constant).lower() if isinstance(spec.constant, bool) else str(spec.constant)
        constant = raw if convert is None else (convert(raw, {}) if needs_props else convert(raw))
        return attr, None, lambda props: constant
    if spec.transform == "join":
        names = spec.property

        def read_join(props: dict) -> Any:
            parts = [props.get(name) for name in names]
            text = " ".join(p.strip() for p in parts if p and p.strip())
            return text or None
        return attr, None, read_join
    if isinstance(spec.property, str) and not needs_props:
        return attr, spec.property, convert
    names = spec.property if isinstance(spec.property, tuple) else (spec.property,)

    def read_first(props: dict) -> Any:
        for name in names:
            raw = props.get(name)
            if raw is not None and raw != "":
                if convert is None:
                    return raw
                try:
                    return convert(raw, props) if needs_props else convert(raw)
                except _MALFORMED as exc:
                    raise _Bad(name, raw, str(exc) or "malformed value") from None
        return None
    return attr, None, read_first


def _history_reader(spec: Any, kind: str, pack: Any) -> Callable[..., Timeline]:
    """HubSpot's newest-first [{value, timestamp}] → ascending Timeline; bad entries dropped, reported once."""
    convert, needs_props = _converter(spec, kind, pack)
    prop = spec.properties[0]

    def read(entries: list[dict], props: dict, object_type: str, record_id: str, issues: list[DataIssue]) -> Timeline:
        points = []
        reported = False
        for entry in entries:
            raw = entry.get("value")
            try:
                at = parse_datetime(entry.get("timestamp"))
                if raw is None or raw == "":
                    value = None
                elif convert is None:
                    value = raw
                else:
                    value = convert(raw, props) if needs_props else convert(raw)
            except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                if not reported:
                    issues.append(DataIssue(object_type, record_id, prop, raw, f"history: {exc or 'malformed value'}"))
                    reported = True
                continue
            points.append((at, value))
        if len(points) > 1:
            points.reverse()  # HubSpot gives newest first; the sort below is then one linear check
            points.sort(key=_first)
        return tuple(points)
    return read


class _Plan:
    """Everything compiled from the pack that the builder needs."""

    def __init__(self, pack: Any):
        self.pack = pack
        sources = pack.sources
        self.object_of: dict[str, str] = {}
        self.lite_contacts: list | None = None
        self.extras: dict[str, tuple[tuple[str, str], ...]] = {}  # entity -> (attr, extra name)
        self.dispatch: dict[str, list[tuple[str, list, list]]] = {}
        for entity, source in sources.entities():
            catalog = CANONICAL_FIELDS[entity]
            timelines = TIMELINES.get(entity, {})
            fields = [_field(name, spec, catalog[name], pack) for name, spec in source.fields.items()]
            fields += [_field(f"extra:{name}", spec, _extra_kind(spec), pack) for name, spec in source.extra.items()]
            historical = [(timelines[name], spec.properties[0], _history_reader(spec, catalog[name], pack))
                          for name, spec in source.fields.items() if spec.historical and name in timelines]
            self.extras[entity] = tuple((f"extra:{name}", name) for name in source.extra)
            if entity == "contacts":
                self.lite_contacts = [f for f in fields if f[0] == "birthday"]
            self.object_of[entity] = source.object
            self.dispatch.setdefault(source.object, []).append((entity, fields, historical))
        customer = pack.portal.customer
        if customer.object != "companies":
            self.lite_contacts = None  # contacts are the customers: read whole
        self.customer_entity = customer.object
        self.customer_type = self.object_of.get(customer.object, customer.object)
        self.contacts_type = self.object_of.get("contacts")
        self.primary_ids = frozenset(customer.primary_association_type_ids)
        self.live = frozenset(pack.portal.active_customer.live_statuses)
        self.grace = pack.portal.active_customer.past_due_grace_days


def _extra_kind(spec: Any) -> str:
    return {"number": "decimal", "integer": "int", "money": "money", "date": "date", "datetime": "datetime",
            "bool": "bool", "multi_select": "tags"}.get(spec.transform, "text")


# ---------------------------------------------------------------- associations


def _id_order(value: str) -> tuple[int, str]:
    # HubSpot ids are numeric strings: order 9 before 10
    return (len(value), value)


class _Links:
    """The associations the builder looks up, each stored once, in its lookup direction.

    (from type, to type) -> from id -> to id, or a list of them when there are several (most records have one, and
    a bare string is far smaller than a list of tuples at a million records). Primary associations (portal.yaml
    primary_association_type_ids) are kept apart so they win.
    """

    def __init__(self, plan: _Plan):
        o = plan.object_of
        wanted = [
            (o.get("contacts"), plan.customer_type),
            (o.get("subscriptions"), plan.customer_type), (o.get("subscriptions"), o.get("contacts")),
            (o.get("deals"), plan.customer_type), (o.get("deals"), o.get("contacts")),
            (o.get("feedback"), plan.customer_type), (o.get("feedback"), o.get("contacts")),
            (o.get("line_items"), o.get("deals")), (o.get("line_items"), o.get("subscriptions")),
        ]
        pairs = [pair for pair in dict.fromkeys(wanted) if pair[0] and pair[1] and pair[0] != pair[1]]
        self.other: dict[tuple[str, str], dict[str, str | list[str]]] = {pair: {} for pair in pairs}
        self.primary: dict[tuple[str, str], dict[str, str | list[str]]] = {pair: {} for pair in pairs}
        self.primary_ids = plan.primary_ids

    def add(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None) -> None:
        pair = (from_type, to_type)
        if pair not in self.other:
            pair = (to_type, from_type)
            if pair not in self.other:
                return
            from_id, to_id = to_id, from_id
        target = (self.primary if type_id in self.primary_ids else self.other)[pair]
        known = target.get(from_id)
        if known is None:
            target[from_id] = to_id
        elif isinstance(known, list):
            if to_id not in known:
                known.append(to_id)
        elif known != to_id:
            target[from_id] = [known, to_id]

    def has_any(self, from_type: str | None, from_id: str, to_type: str | None) -> bool:
        pair = (from_type, to_type)
        return from_id in self.primary.get(pair, ()) or from_id in self.other.get(pair, ())  # type: ignore[arg-type]

    def pick(self, from_type: str | None, from_id: str, to_type: str | None, exists: Any) -> str | None:
        """The associated id to use: a primary association first, then the lowest id; only ids in ``exists``."""
        pair = (from_type, to_type)
        for table in (self.primary.get(pair), self.other.get(pair)):
            if not table:
                continue
            found = table.get(from_id)
            if found is None:
                continue
            if isinstance(found, str):
                if found in exists:
                    return found
                continue
            present = [candidate for candidate in found if candidate in exists]
            if present:
                return min(present, key=_id_order)
        return None

    def is_primary(self, from_type: str | None, from_id: str, to_type: str | None, to_id: str) -> bool:
        found = self.primary.get((from_type, to_type), {}).get(from_id)  # type: ignore[arg-type]
        return found == to_id if isinstance(found, str) else bool(found and to_id in found)


# ---------------------------------------------------------------- building


class _Built:
    """The objects of the first pass, by entity. Fields that depend on other records are filled in by _assemble."""

    def __init__(self) -> None:
        self.customers: dict[str, Customer] = {}
        self.contacts: dict[str, tuple[dict[str, Any], datetime | None] | None] = {}  # loose: kept whole; else None
        self.birthdays: dict[str, date] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.deals: dict[str, Deal] = {}
        self.line_items: dict[str, LineItem] = {}
        self.feedback: dict[str, FeedbackResponse] = {}
        self.usage: dict[str, Usage] = {}

    def add(self, plan: _Plan, links: _Links, entity: str, record_id: str, v: dict[str, Any],
            created_at: datetime | None) -> None:
        if entity == plan.customer_entity:
            self.customers[record_id] = _customer(record_id, entity, v, created_at, plan.extras[entity])
            if entity == "contacts" and v.get("birthday") is not None:
                self.birthdays[record_id] = v["birthday"]
        elif entity == "contacts":
            # A contact with a company only lends its birthday; one without may become a customer itself, so it is
            # kept whole. Millions of contacts must not all be held.
            if v.get("birthday") is not None:
                self.birthdays[record_id] = v["birthday"]
            loose = not links.has_any(plan.contacts_type, record_id, plan.customer_type)
            self.contacts[record_id] = (v, created_at) if loose else None
        elif entity == "subscriptions":
            kw = dict(_SUBSCRIPTION_BLANK)
            kw.update(v)  # canonical names are the dataclass's own; a dict update runs in C
            kw["id"] = record_id
            if kw["created_at"] is None:
                kw["created_at"] = created_at
            kw["live_statuses"], kw["past_due_grace_days"] = plan.live, plan.grace
            self.subscriptions[record_id] = _make(Subscription, kw)
        elif entity == "deals":
            kw = dict(_DEAL_BLANK)
            kw.update(v)
            kw["id"] = record_id
            if kw["created_at"] is None:
                kw["created_at"] = created_at
            kw["is_won"], kw["is_closed"] = bool(kw["is_won"]), bool(kw["is_closed"])
            self.deals[record_id] = _make(Deal, kw)
        elif entity == "line_items":
            kw = dict(_LINE_ITEM_BLANK)
            kw.update(v)
            kw["id"] = record_id
            frequency, amount = kw["billing_frequency"], kw["amount"]
            factor = MONTHLY_FACTOR.get(frequency) if frequency else None
            if factor is not None and amount is not None:
                kw["mrr"] = amount * factor
            self.line_items[record_id] = _make(LineItem, kw)
        elif entity == "feedback":
            kw = dict(_FEEDBACK_BLANK)
            kw.update(v)
            kw["id"] = record_id
            survey_type = kw["survey_type"]
            kw["survey_type"] = survey_type.upper() if survey_type else "OTHER"
            if kw["submitted_at"] is None:
                kw["submitted_at"] = created_at
            self.feedback[record_id] = _make(FeedbackResponse, kw)
        elif entity == "usage":
            kw = dict(_USAGE_BLANK)
            kw.update(v)
            kw["customer_id"] = record_id
            self.usage[record_id] = _make(Usage, kw)
        elif entity == "companies":  # companies mapped while customers are contacts: nothing reads them
            pass


def _blank(cls: type) -> dict[str, Any]:
    """Every field of a dataclass with its default (None where it has none)."""
    out: dict[str, Any] = {}
    for f in dataclass_fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: a default factory cannot be shared")
        else:
            out[f.name] = None
    return out


def _make(cls: type, values: dict[str, Any]) -> Any:
    # The generated __init__ keeps attribute values inline (no per-object __dict__ is materialised); bypassing it
    # with __dict__.update was faster but cost ~190 bytes per object, 1.8 GB at a million customers.
    return cls(**values)


_SUBSCRIPTION_BLANK = _blank(Subscription)
_DEAL_BLANK = _blank(Deal)
_LINE_ITEM_BLANK = _blank(LineItem)
_FEEDBACK_BLANK = _blank(FeedbackResponse)
_USAGE_BLANK = _blank(Usage)


def _customer(record_id: str, object_type: str, v: dict[str, Any], created_at: datetime | None,
              extras: tuple[tuple[str, str], ...] = ()) -> Customer:
    extra = tuple((name, v.get(attr)) for attr, name in extras) if extras else ()
    return Customer(
        id=record_id, object_type=object_type, name=v.get("name"), created_at=v.get("created_at") or created_at,
        customer_since=v.get("customer_since"), acquisition_source=v.get("acquisition_source"),
        industry=v.get("industry"), country=v.get("country"), birthday=v.get("birthday"), extra=extra,
    )


def _set(obj: Any, **fields: Any) -> None:
    # Second-pass fill-in of objects this module built and has not handed out yet; consumers see them frozen.
    for name, value in fields.items():
        object.__setattr__(obj, name, value)


def _assemble(plan: _Plan, links: _Links, built: _Built, issues: list[DataIssue]) -> Portfolio:
    o = plan.object_of
    customers = built.customers
    contacts_type, customer_type = plan.contacts_type, plan.customer_type
    by_company = plan.customer_entity == "companies"
    fallback = plan.pack.portal.customer.contacts_without_company

    # contact -> customer id; contacts with no (live) company may become customers themselves
    contact_customer: dict[str, str] = {}
    known_contacts: Any = built.contacts if by_company else customers
    loose: set[str] = set()
    if by_company:
        for contact_id in built.contacts:
            company = links.pick(contacts_type, contact_id, customer_type, customers)
            if company is not None:
                contact_customer[contact_id] = company
            elif fallback != "never":
                loose.add(contact_id)
    promoted: set[str] = set(loose) if fallback == "always" else set()

    def customer_of(entity: str, record_id: str) -> tuple[str | None, str | None]:
        """(customer id, contact id) of a subscription, deal or survey answer."""
        direct = links.pick(o.get(entity), record_id, customer_type, customers)
        contact = links.pick(o.get(entity), record_id, contacts_type, known_contacts) if contacts_type else None
        if direct is not None:
            return direct, contact
        if contact is None:
            return None, None
        if not by_company:
            return contact, contact
        if contact in contact_customer:
            return contact_customer[contact], contact
        if contact in loose:
            promoted.add(contact)
            return contact, contact
        return None, contact

    first_start: dict[str, date] = {}
    for sub in built.subscriptions.values():
        customer_id, _ = customer_of("subscriptions", sub.id)
        if customer_id is not None:
            _set(sub, customer_id=customer_id)
            if sub.start_date is not None:
                known = first_start.get(customer_id)
                if known is None or sub.start_date < known:
                    first_start[customer_id] = sub.start_date

    items_by_deal: dict[str, list[str]] = {}
    for item in built.line_items.values():
        deal_id = links.pick(o.get("line_items"), item.id, o.get("deals"), built.deals)
        sub_id = links.pick(o.get("line_items"), item.id, o.get("subscriptions"), built.subscriptions)
        if deal_id is not None or sub_id is not None:
            _set(item, deal_id=deal_id, subscription_id=sub_id)
        if deal_id is not None:
            items_by_deal.setdefault(deal_id, []).append(item.id)

    for deal in built.deals.values():
        customer_id, _ = customer_of("deals", deal.id)
        items = items_by_deal.get(deal.id)
        _set(deal, customer_id=customer_id, line_item_ids=tuple(sorted(items, key=_id_order)) if items else ())

    for answer in built.feedback.values():
        customer_id, contact_id = customer_of("feedback", answer.id)
        _set(answer, customer_id=customer_id, contact_id=contact_id)

    # Customers last: they need the contacts rolled up to them, the promoted contacts and the first subscription.
    members_of: dict[str, list[str]] = {}
    for contact_id, customer_id in contact_customer.items():
        members_of.setdefault(customer_id, []).append(contact_id)
    for contact_id in sorted(promoted, key=_id_order):
        kept = built.contacts.get(contact_id)
        values, created_at = kept if kept is not None else ({"birthday": built.birthdays.get(contact_id)}, None)
        customers[contact_id] = _customer(contact_id, "contacts", values, created_at, plan.extras.get("contacts", ()))
        members_of[contact_id] = [contact_id]
    for customer_id, customer in customers.items():
        members = members_of.get(customer_id)
        if by_company and customer.object_type == "companies":
            primary = None
            if members:
                members.sort(key=_id_order)
                primary = next((c for c in members if links.is_primary(contacts_type, c, customer_type, customer_id)),
                               members[0])
            birthday = customer.birthday or (built.birthdays.get(primary) if primary else None)
            _set(customer, contact_ids=tuple(members) if members else (), primary_contact_id=primary, birthday=birthday)
        else:
            _set(customer, contact_ids=(customer_id,), primary_contact_id=customer_id)
        if customer.customer_since is None and customer_id in first_start:
            # Without a mapped "customer since" date, the first subscription's start stands in for it.
            _set(customer, customer_since=first_start[customer_id])

    usage = {cid: u for cid, u in built.usage.items() if cid in customers} if built.usage else {}
    return Portfolio(
        customers=customers, subscriptions=tuple(built.subscriptions.values()), deals=tuple(built.deals.values()),
        line_items=tuple(built.line_items.values()), feedback=tuple(built.feedback.values()), usage=usage,
        reporting_currency=plan.pack.portal.currency.reporting, issues=tuple(issues),
    )
