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


def _numbers(values: Sequence[Any], to_number: Callable[[Any], float]) -> np.ndarray:
    """``to_number`` of every value that is not None, NaN for None; every loop runs in C (map, compress)."""
    present = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=len(values))
    out = np.full(len(values), _NAN)
    count = int(present.sum())
    if count:
        out[present] = np.fromiter(map(to_number, compress(values, present.tolist())), dtype=np.float64, count=count)
    return out


def epoch_seconds(values: Sequence[datetime | None]) -> np.ndarray:
    """Epoch seconds of aware datetimes, NaN for None."""
    return _numbers(values, datetime.timestamp)


def date_ordinals(values: Sequence[date | None]) -> np.ndarray:
    """Proleptic ordinals of dates, NaN for None."""
    return _numbers(values, date.toordinal)


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
    """Map stored records through the mapping pack into a Portfolio held as columns.

    One pass over the associations (only the pairs the pack needs, each stored in the direction it is looked up),
    then the records in batches per object type: each mapped property is read as a column and converted once per
    distinct value (timestamps in one vectorised parse), so the cost per record is a few C-level list operations,
    not a Python call per field. Then the links are resolved column by column. Records and associations may be
    streamed. Archived records are skipped; a malformed value leaves its field None and adds one DataIssue.
    """
    # The builder allocates many small acyclic objects; the cycle collector would re-scan them all again and again
    # and find nothing: pause it for the build, restore it after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(records, associations, pack)
    finally:
        if collecting:
            gc.enable()


_BATCH = 8192  # records of one type converted together: large enough for C loops, small enough to stream


def _build(records: Any, associations: Any, pack: Any) -> Portfolio:
    plan = _Plan(pack)
    links = _Links(plan)
    add = links.add
    for assoc in associations:
        add(assoc.from_type, str(assoc.from_id), assoc.to_type, str(assoc.to_id), assoc.type_id)

    built = _Built(plan, links)
    pending: dict[str, list[Any]] = {}
    dispatch = plan.dispatch
    for record in records:
        if record.archived:
            continue
        batch = pending.get(record.object_type)
        if batch is None:
            if not dispatch.get(record.object_type):
                continue
            batch = pending[record.object_type] = []
        batch.append(record)
        if len(batch) >= _BATCH:
            built.take(record.object_type, batch)
            pending[record.object_type] = []
    for object_type, batch in pending.items():
        if batch:
            built.take(object_type, batch)
    return _assemble(plan, links, built)


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


class _FieldPlan:
    """How one canonical field is read from a batch of records."""

    __slots__ = ("attr", "prop", "convert", "currency_prop", "reader", "fast", "out")

    def __init__(self, attr: str, prop: str | None, convert: Callable[..., Any] | None, currency_prop: str | None,
                 reader: Callable[[dict], Any] | None, fast: str | None, out: str):
        self.attr, self.prop, self.convert, self.currency_prop = attr, prop, convert, currency_prop
        self.reader, self.fast, self.out = reader, fast, out


def _field(attr: str, spec: Any, kind: str, pack: Any, out: str) -> _FieldPlan:
    """One property read as a column and converted once per distinct value (``prop``; money with a currency
    property per (amount, currency) pair), or a ``reader(props)`` per record for constants, joins and lists of
    properties. ``fast``: HubSpot's own timestamps, parsed in one vectorised call. ``out``: the column's kind."""
    convert, needs_props = _converter(spec, kind, pack)
    if spec.constant is not None:
        raw = str(spec.constant).lower() if isinstance(spec.constant, bool) else str(spec.constant)
        constant = raw if convert is None else (convert(raw, {}) if needs_props else convert(raw))
        return _FieldPlan(attr, None, None, None, lambda props: constant, None, out)
    if spec.transform == "join":
        names = spec.property

        def read_join(props: dict) -> Any:
            parts = [props.get(name) for name in names]
            text = " ".join(p.strip() for p in parts if p and p.strip())
            return text or None
        return _FieldPlan(attr, None, None, None, read_join, None, out)
    if isinstance(spec.property, str):
        fast = None
        if spec.transform == "datetime" and spec.range is None:
            if kind == "datetime":
                fast = "epoch"
            elif kind == "date" and pack.portal.periods.time_zone == "UTC":
                fast = "utc_date"
        return _FieldPlan(attr, spec.property, convert, spec.currency_property if needs_props else None, None, fast,
                          out)
    names = spec.property

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
    return _FieldPlan(attr, None, None, None, read_first, None, out)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HUBSPOT_STAMP_LENGTHS = frozenset({20, 24})  # 2024-01-02T03:04:05Z, 2024-01-02T03:04:05.678Z


def _fast_epochs(raw: list[str]) -> np.ndarray | None:
    """Epoch seconds of HubSpot's own timestamp strings (2024-01-02T03:04:05Z, 2024-01-02T03:04:05.678Z) in one
    numpy parse of their bytes; None where any is in another form (the caller then parses them one by one, with
    parse_datetime's rules and errors)."""
    if not raw:
        return None
    try:
        text = np.array(raw, dtype="S25")  # one byte more than the longest form: a longer string shows there
    except (UnicodeEncodeError, ValueError, TypeError):
        return None
    byte = text.view(np.uint8).reshape(len(raw), 25)
    millis = byte[:, 23] != 0
    shaped = (byte[:, 24] == 0) & (byte[:, 10] == ord("T")) & np.where(
        millis, byte[:, 23] == ord("Z"), (byte[:, 19] == ord("Z")) & (byte[:, 20] == 0))
    if not shaped.all():
        return None
    byte[millis, 23] = 0  # drop the "Z" (UTC is what numpy assumes)
    byte[~millis, 19] = 0
    try:
        parsed = text.astype("datetime64[ms]")
    except ValueError:  # e.g. month 13
        return None
    if np.isnat(parsed).any():
        return None
    return parsed.astype(np.int64) / 1000.0


def _as_column(values: list[Any], out: str) -> Any:
    """Converted Python values → the Table column kind."""
    if out == "time":
        return epoch_seconds(values)
    if out == "date":
        return date_ordinals(values)
    if out == "bool":
        return np.fromiter(map(bool, values), dtype=bool, count=len(values))
    return values


def _read_column(f: _FieldPlan, props: list[dict], bad: list[tuple[int, str, Any, str]]) -> list[Any] | np.ndarray:
    """One field for a batch of records, as a Table column; malformed values → None and (row, property, raw,
    reason) in ``bad``."""
    if f.reader is not None:
        values = []
        for row, p in enumerate(props):
            try:
                values.append(f.reader(p))
            except _Bad as exc:
                bad.append((row, exc.prop, exc.raw, exc.reason))
                values.append(None)
        return _as_column(values, f.out)
    raw = list(map(dict.get, props, repeat(f.prop)))
    if "" in raw:  # HubSpot's "no value"
        raw = [None if r == "" else r for r in raw]
    convert = f.convert
    if convert is None:  # text kept as is; equal strings share one object (a million "Pro" are one string)
        shared: dict[Any, Any] = {}
        return _as_column(list(map(shared.setdefault, raw, raw)), f.out)
    if f.fast is not None:
        present = np.fromiter(map(is_not, raw, repeat(None)), dtype=bool, count=len(raw))
        epochs = _fast_epochs(list(compress(raw, present.tolist())))
        if epochs is not None:
            out = np.full(len(raw), _NAN)
            out[present] = epochs
            if f.fast == "utc_date":
                out = np.floor(out / 86400.0) + _EPOCH_ORDINAL
            return out
    if f.currency_prop is not None:
        codes = list(map(dict.get, props, repeat(f.currency_prop)))
        keys = list(zip(raw, codes))
        parsed: dict[Any, Any] = {}
        failed: dict[Any, str] = {}
        for key in set(keys):
            if key[0] is None:
                continue
            try:
                parsed[key] = convert(key[0], {f.currency_prop: key[1]})
            except _MALFORMED as exc:
                failed[key] = str(exc) or "malformed value"
    else:
        keys = raw
        parsed, failed = {}, {}
        for key in set(raw):
            if key is None:
                continue
            try:
                parsed[key] = convert(key)
            except _MALFORMED as exc:
                failed[key] = str(exc) or "malformed value"
    if failed:
        for row, key in enumerate(keys):
            if key in failed:
                bad.append((row, f.prop, raw[row], failed[key]))
    return _as_column(list(map(parsed.get, keys)), f.out)


class _HistoryPlan:
    """A historical field: HubSpot's newest-first [{value, timestamp}] per record → a Flat column, ascending."""

    __slots__ = ("attr", "prop", "convert", "needs_props")

    def __init__(self, attr: str, spec: Any, kind: str, pack: Any):
        self.attr, self.prop = attr, spec.properties[0]
        self.convert, self.needs_props = _converter(spec, kind, pack)


def _read_history(h: _HistoryPlan, props: list[dict], histories: list[Any],
                  bad: list[tuple[int, str, Any, str]]) -> Flat:
    """Bad entries are dropped, each record's first reported once (as the per-record reader did)."""
    rows = len(histories)
    found = [history.get(h.prop) if history else None for history in histories]
    if None in found:
        found = [f or () for f in found]
    counts = np.fromiter(map(len, found), dtype=np.int64, count=rows)
    entries: list[dict] = list(chain.from_iterable(found))
    prop = h.prop
    owner = np.repeat(np.arange(rows, dtype=np.int64), counts)
    raw = list(map(dict.get, entries, repeat("value")))
    stamps = list(map(dict.get, entries, repeat("timestamp")))
    keep = np.ones(len(entries), dtype=bool)
    reason: dict[int, str] = {}  # entry -> why it was dropped
    times = _fast_epochs(stamps) if None not in stamps else None
    if times is None:
        times = np.full(len(entries), _NAN)
        for k, stamp in enumerate(stamps):
            try:
                times[k] = parse_datetime(stamp).timestamp()
            except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                reason[k] = str(exc) or "malformed value"
    convert = h.convert
    if convert is None:
        values = [None if r == "" else r for r in raw]
    else:
        parsed: dict[Any, Any] = {}
        if h.needs_props:
            values = []
            for k, (r, o) in enumerate(zip(raw, owner.tolist())):
                if r is None or r == "":
                    values.append(None)
                    continue
                try:
                    values.append(convert(r, props[o]))
                except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                    reason.setdefault(k, str(exc) or "malformed value")
                    values.append(None)
        else:
            failed: dict[Any, str] = {}
            for key in set(raw):
                if key is None or key == "":
                    continue
                try:
                    parsed[key] = convert(key)
                except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                    failed[key] = str(exc) or "malformed value"
            if failed:
                for k, r in enumerate(raw):
                    if r in failed:
                        reason.setdefault(k, failed[r])
            values = list(map(parsed.get, raw))
    if reason:
        reported: set[int] = set()
        for k in sorted(reason):
            keep[k] = False
            row = int(owner[k])
            if row not in reported:
                reported.add(row)
                bad.append((row, prop, raw[k], f"history: {reason[k]}"))
    # HubSpot gives newest first: reversed, a stable sort by (record, time) keeps equal instants in HubSpot's order.
    order = np.flatnonzero(keep)[::-1]
    order = order[np.lexsort((times[order], owner[order]))]
    kept_counts = np.bincount(owner[order], minlength=rows) if order.size else np.zeros(rows, dtype=np.int64)
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(kept_counts, out=offsets[1:])
    return Flat(offsets, times[order], list(map(values.__getitem__, order.tolist())))


class _Plan:
    """Everything compiled from the pack that the builder needs."""

    def __init__(self, pack: Any):
        self.pack = pack
        sources = pack.sources
        self.object_of: dict[str, str] = {}
        self.extras: dict[str, tuple[tuple[str, str], ...]] = {}  # entity -> (attr, extra name)
        self.dispatch: dict[str, list[tuple[str, list[_FieldPlan], list[_HistoryPlan]]]] = {}
        self.birthday: _FieldPlan | None = None
        for entity, source in sources.entities():
            catalog = CANONICAL_FIELDS[entity]
            timelines = TIMELINES.get(entity, {})
            kinds = _KINDS[_ENTITY_CLASS[entity]]
            fields = [_field(name, spec, catalog[name], pack, kinds.get(name, "value"))
                      for name, spec in source.fields.items()]
            fields += [_field(f"extra:{name}", spec, _extra_kind(spec), pack, "value")
                       for name, spec in source.extra.items()]
            historical = [_HistoryPlan(timelines[name], spec, catalog[name], pack)
                          for name, spec in source.fields.items() if spec.historical and name in timelines]
            self.extras[entity] = tuple((f"extra:{name}", name) for name in source.extra)
            if entity == "contacts":
                self.birthday = next((f for f in fields if f.attr == "birthday"), None)
            self.object_of[entity] = source.object
            self.dispatch.setdefault(source.object, []).append((entity, fields, historical))
        customer = pack.portal.customer
        self.customer_entity = customer.object
        self.customer_type = self.object_of.get(customer.object, customer.object)
        self.contacts_type = self.object_of.get("contacts")
        self.primary_ids = frozenset(customer.primary_association_type_ids)
        self.live = frozenset(pack.portal.active_customer.live_statuses)
        self.grace = pack.portal.active_customer.past_due_grace_days


_ENTITY_CLASS: dict[str, type] = {
    "companies": Customer, "contacts": Customer, "subscriptions": Subscription, "deals": Deal,
    "line_items": LineItem, "feedback": FeedbackResponse, "usage": Usage,
}


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

    def pick_many(self, from_type: str | None, ids: list[str], to_type: str | None, exists: Any) -> list[str | None]:
        """``pick`` for many ids: the common case (one associated id, or a primary one, that exists) inline."""
        pair = (from_type, to_type)
        primary, other = self.primary.get(pair) or {}, self.other.get(pair) or {}
        if not primary and not other:
            return [None] * len(ids)
        out: list[str | None] = []
        append, first, second, pick = out.append, primary.get, other.get, self.pick
        for record_id in ids:
            found = first(record_id)
            if found is None:
                found = second(record_id)
                if found is None:
                    append(None)
                    continue
            if found.__class__ is str and found in exists:
                append(found)
            else:
                append(pick(from_type, record_id, to_type, exists))
        return out

    def is_primary(self, from_type: str | None, from_id: str, to_type: str | None, to_id: str) -> bool:
        found = self.primary.get((from_type, to_type), {}).get(from_id)  # type: ignore[arg-type]
        return found == to_id if isinstance(found, str) else bool(found and to_id in found)


# ---------------------------------------------------------------- building


_id_of, _props_of, _history_of, _created_of = (attrgetter(n) for n in ("id", "properties", "history", "created_at"))
_Chunk = tuple  # (ids, {attr: column}, record created_at epochs)


class _Built:
    """The converted columns of the records, in batches per entity; links are resolved by _assemble."""

    def __init__(self, plan: _Plan, links: _Links):
        self.plan, self.links = plan, links
        self.chunks: dict[str, list[_Chunk]] = {}
        self.loose: list[_Chunk] = []  # contacts with no company (they may become customers), read whole
        self.contact_ids: list[str] = []  # every contact, when companies are the customers
        self.birthdays: dict[str, float] = {}  # contact id -> birthday ordinal
        self.issues: list[tuple[int, int, DataIssue]] = []
        self.seen = 0

    def take(self, object_type: str, batch: list[Any]) -> None:
        ids = list(map(str, map(_id_of, batch)))
        props = list(map(_props_of, batch))
        if None in props:
            props = [p or {} for p in props]
        histories = list(map(_history_of, batch))
        created = epoch_seconds(list(map(_created_of, batch)))
        plan = self.plan
        for entity, fields, historical in plan.dispatch[object_type]:
            if entity == "contacts" and plan.customer_entity != "contacts":
                self._contacts(object_type, ids, props, histories, created, fields, historical)
            elif entity == plan.customer_entity or entity not in ("companies", "contacts"):
                columns = self._read(object_type, ids, props, histories, fields, historical, range(len(ids)))
                self.chunks.setdefault(entity, []).append((ids, columns, created))
                if entity == "contacts":
                    self._birthdays(ids, columns.get("birthday"))
            # companies mapped while customers are contacts: nothing reads them
        self.seen += len(batch)

    def _read(self, object_type: str, ids: list[str], props: list[dict], histories: list[Any],
              fields: list[_FieldPlan], historical: list[_HistoryPlan], rows: Any) -> dict[str, Any]:
        """``rows``: each record's position in its batch (for the order of the issues)."""
        columns: dict[str, Any] = {}
        for position, f in enumerate(fields):
            bad: list[tuple[int, str, Any, str]] = []
            columns[f.attr] = _read_column(f, props, bad)
            self._report(object_type, ids, bad, rows, position)
        for position, h in enumerate(historical, start=len(fields)):
            bad = []
            columns[h.attr] = _read_history(h, props, histories, bad)
            self._report(object_type, ids, bad, rows, position)
        return columns

    def _report(self, object_type: str, ids: list[str], bad: list[tuple[int, str, Any, str]], rows: Any,
                position: int) -> None:
        for row, prop, raw, reason in bad:
            self.issues.append((self.seen + rows[row], position, DataIssue(object_type, ids[row], prop, raw, reason)))

    def _birthdays(self, ids: list[str], column: np.ndarray | None) -> None:
        if column is not None:
            for k in np.flatnonzero(~np.isnan(column)).tolist():
                self.birthdays[ids[k]] = float(column[k])

    def _contacts(self, object_type: str, ids: list[str], props: list[dict], histories: list[Any],
                  created: np.ndarray, fields: list[_FieldPlan], historical: list[_HistoryPlan]) -> None:
        """A contact with a company only lends its birthday; one without may become a customer itself, so it is
        read whole. Millions of contacts are never all held."""
        plan, links = self.plan, self.links
        self.contact_ids.extend(ids)
        birthday = plan.birthday
        if birthday is not None:
            column = self._read(object_type, ids, props, histories, [birthday], [], range(len(ids)))["birthday"]
            self._birthdays(ids, column)
        has_any, contacts_type, customer_type = links.has_any, plan.contacts_type, plan.customer_type
        loose = [k for k, cid in enumerate(ids) if not has_any(contacts_type, cid, customer_type)]
        if not loose:
            return
        rest = [f for f in fields if f is not birthday]
        sub_ids = list(map(ids.__getitem__, loose))
        columns = self._read(object_type, sub_ids, list(map(props.__getitem__, loose)),
                             list(map(histories.__getitem__, loose)), rest, historical, loose)
        if birthday is not None:
            columns["birthday"] = column[loose]
        self.loose.append((sub_ids, columns, created[loose]))


def _merge(chunks: list[_Chunk]) -> tuple[list[str], dict[str, Any], np.ndarray]:
    """Batches of one entity joined into whole columns (ids, {attr: column}, created epochs)."""
    ids: list[str] = []
    for chunk_ids, _, _ in chunks:
        ids.extend(chunk_ids)
    created = np.concatenate([c for _, _, c in chunks]) if chunks else np.zeros(0)
    columns: dict[str, Any] = {}
    names = dict.fromkeys(name for _, cols, _ in chunks for name in cols)
    for name in names:
        parts = [cols[name] for _, cols, _ in chunks]
        first = parts[0]
        if isinstance(first, Flat):
            counts = np.concatenate([p.counts() for p in parts])
            offsets = np.zeros(counts.size + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            values: list[Any] = []
            for p in parts:
                values.extend(p.values)
            columns[name] = Flat(offsets, np.concatenate([p.times for p in parts]), values)
        elif isinstance(first, np.ndarray):
            columns[name] = np.concatenate(parts)
        else:
            merged: list[Any] = []
            for p in parts:
                merged.extend(p)
            columns[name] = merged
    return ids, columns, created


def _filled(cls: type, n: int, columns: dict[str, Any], given: dict[str, Any]) -> Table:
    """A Table of ``cls`` from the columns read (canonical names) and ``given`` ones; the rest empty."""
    out: dict[str, Any] = {}
    defaults = {f.name: f.default for f in dataclass_fields(cls)}
    for name, kind in _KINDS[cls].items():
        if name in given:
            out[name] = given[name]
        elif name in columns:
            column = columns[name]
            default = defaults[name]
            if isinstance(column, list) and default is not MISSING and default is not None and None in column:
                column = [default if value is None else value for value in column]  # e.g. no milestones: ()
            out[name] = column
        elif kind in ("time", "date"):
            out[name] = np.full(n, _NAN)
        elif kind == "timeline":
            out[name] = Flat.empty(n)
        elif kind == "bool":
            out[name] = np.zeros(n, dtype=bool)
        else:
            default = defaults[name]
            out[name] = [None if default is MISSING else default] * n
    return Table(cls, out, n)


def _or_created(columns: dict[str, Any], name: str, created: np.ndarray) -> np.ndarray:
    column = columns.get(name)
    if column is None:
        return created
    return np.where(np.isnan(column), created, column)


def _assemble(plan: _Plan, links: _Links, built: _Built) -> Portfolio:
    o = plan.object_of
    contacts_type, customer_type = plan.contacts_type, plan.customer_type
    by_company = plan.customer_entity == "companies"
    fallback = plan.pack.portal.customer.contacts_without_company
    ids, ccols, ccreated = _merge(built.chunks.get(plan.customer_entity, []))
    index = {cid: i for i, cid in enumerate(ids)}

    # contact -> customer id; contacts with no (live) company may become customers themselves
    contact_customer: dict[str, str] = {}
    loose: set[str] = set()
    if by_company:
        known_contacts: Any = dict.fromkeys(built.contact_ids)
        for contact_id, company in zip(built.contact_ids,
                                       links.pick_many(contacts_type, built.contact_ids, customer_type, index)):
            if company is not None:
                contact_customer[contact_id] = company
            elif fallback != "never":
                loose.add(contact_id)
    else:
        known_contacts = index
    promoted: set[str] = set(loose) if fallback == "always" else set()

    def customers_of(entity: str, record_ids: list[str]) -> tuple[list[str | None], list[str | None]]:
        """(customer ids, contact ids) of subscriptions, deals or survey answers."""
        direct = links.pick_many(o.get(entity), record_ids, customer_type, index)
        contacts = (links.pick_many(o.get(entity), record_ids, contacts_type, known_contacts) if contacts_type
                    else [None] * len(record_ids))
        out: list[str | None] = []
        for found, contact in zip(direct, contacts):
            if found is not None or contact is None:
                out.append(found)
            elif not by_company:
                out.append(contact)
            elif contact in contact_customer:
                out.append(contact_customer[contact])
            elif contact in loose:
                promoted.add(contact)
                out.append(contact)
            else:
                out.append(None)
        return out, contacts

    sub_ids, scols, screated = _merge(built.chunks.get("subscriptions", []))
    sub_customer, _ = customers_of("subscriptions", sub_ids)
    first_start: dict[str, float] = {}
    starts = scols.get("start_date")
    if starts is not None:
        for customer_id, start in zip(sub_customer, starts.tolist()):
            if customer_id is not None and start == start:
                known = first_start.get(customer_id)
                if known is None or start < known:
                    first_start[customer_id] = start
    n_subs = len(sub_ids)
    subscriptions = _filled(Subscription, n_subs, scols, {
        "id": sub_ids, "customer_id": sub_customer, "created_at": _or_created(scols, "created_at", screated),
        "live_statuses": [plan.live] * n_subs, "past_due_grace_days": [plan.grace] * n_subs,
    })

    deal_ids, dcols, dcreated = _merge(built.chunks.get("deals", []))
    item_ids, icols, _ = _merge(built.chunks.get("line_items", []))
    deal_index = {d: i for i, d in enumerate(deal_ids)}
    item_deal = links.pick_many(o.get("line_items"), item_ids, o.get("deals"), deal_index)
    item_sub = links.pick_many(o.get("line_items"), item_ids, o.get("subscriptions"), dict.fromkeys(sub_ids))
    items_by_deal: dict[str, list[str]] = {}
    for item_id, deal_id in zip(item_ids, item_deal):
        if deal_id is not None:
            items_by_deal.setdefault(deal_id, []).append(item_id)
    frequencies, amounts = icols.get("billing_frequency"), icols.get("amount")
    item_mrr: list[Any] = [None] * len(item_ids)
    if frequencies is not None and amounts is not None:
        for k, (frequency, amount) in enumerate(zip(frequencies, amounts)):
            factor = MONTHLY_FACTOR.get(frequency) if frequency else None
            if factor is not None and amount is not None:
                item_mrr[k] = amount * factor
    line_items = _filled(LineItem, len(item_ids), icols, {
        "id": item_ids, "deal_id": item_deal, "subscription_id": item_sub, "mrr": item_mrr})

    deal_customer, _ = customers_of("deals", deal_ids)
    get_items = items_by_deal.get
    deals = _filled(Deal, len(deal_ids), dcols, {
        "id": deal_ids, "customer_id": deal_customer, "created_at": _or_created(dcols, "created_at", dcreated),
        "line_item_ids": [tuple(sorted(items, key=_id_order)) if items else () for items in map(get_items, deal_ids)],
    })

    answer_ids, fcols, fcreated = _merge(built.chunks.get("feedback", []))
    answer_customer, answer_contact = customers_of("feedback", answer_ids)
    types = fcols.get("survey_type", [None] * len(answer_ids))
    upper = {t: (t.upper() if t else "OTHER") for t in set(types)}
    feedback = _filled(FeedbackResponse, len(answer_ids), fcols, {
        "id": answer_ids, "customer_id": answer_customer, "contact_id": answer_contact,
        "survey_type": list(map(upper.__getitem__, types)),
        "submitted_at": _or_created(fcols, "submitted_at", fcreated),
    })

    # Customers last: they need the contacts rolled up to them, the promoted contacts and the first subscription.
    extras = plan.extras.get(plan.customer_entity, ())
    n = len(ids)
    columns: dict[str, Any] = {
        "id": ids, "object_type": [plan.customer_entity] * n, "created_at": _or_created(ccols, "created_at", ccreated),
        "extra": _extra_column(ccols, extras, n),
    }
    for name, kind in _KINDS[Customer].items():
        if name not in columns:
            columns[name] = ccols[name] if name in ccols else (np.full(n, _NAN) if kind in ("time", "date")
                                                                 else [None] * n)
    if promoted:
        _promote(columns, sorted(promoted, key=_id_order), built, plan)
        ids = columns["id"]
        index = {cid: i for i, cid in enumerate(ids)}
    members_of: dict[str, list[str]] = {}
    for contact_id, customer_id in contact_customer.items():
        members_of.setdefault(customer_id, []).append(contact_id)
    contact_ids: list[tuple[str, ...]] = []
    primaries: list[str | None] = []
    birthday, since, kinds = columns["birthday"], columns["customer_since"], columns["object_type"]
    birthdays, is_primary = built.birthdays, links.is_primary
    for i, (customer_id, object_type) in enumerate(zip(ids, kinds)):
        members = members_of.get(customer_id)
        if by_company and object_type == "companies":
            primary = None
            if members:
                if len(members) > 1:
                    members.sort(key=_id_order)
                    primary = next((c for c in members if is_primary(contacts_type, c, customer_type, customer_id)),
                                   members[0])
                else:
                    primary = members[0]
                if birthday[i] != birthday[i] and primary in birthdays:
                    birthday[i] = birthdays[primary]
            contact_ids.append(tuple(members) if members else ())
            primaries.append(primary)
        else:
            contact_ids.append((customer_id,))
            primaries.append(customer_id)
        if since[i] != since[i] and customer_id in first_start:
            # Without a mapped "customer since" date, the first subscription's start stands in for it.
            since[i] = first_start[customer_id]
    columns["contact_ids"], columns["primary_contact_id"] = contact_ids, primaries
    customers = Table(Customer, {name: columns[name] for name in _KINDS[Customer]}, len(ids))

    usage_ids, ucols, _ = _merge(built.chunks.get("usage", []))
    keep = [k for k, cid in enumerate(usage_ids) if cid in index]
    if len(keep) < len(usage_ids):
        usage_ids, ucols = _rows(usage_ids, ucols, keep)
    usage = _filled(Usage, len(usage_ids), ucols, {"customer_id": usage_ids})

    built.issues.sort(key=_issue_order)
    return Portfolio(
        reporting_currency=plan.pack.portal.currency.reporting, issues=[issue for _, _, issue in built.issues],
        tables=Tables(customers=customers, subscriptions=subscriptions, deals=deals, line_items=line_items,
                      feedback=feedback, usage=usage),
    )


def _issue_order(item: tuple[int, int, DataIssue]) -> tuple[int, int]:
    return item[0], item[1]


def _extra_column(columns: dict[str, Any], extras: tuple[tuple[str, str], ...], n: int) -> list[Any]:
    """Mapped custom fields per row as ((name, value), …) for custom rules; () without any."""
    if not extras:
        return [()] * n
    parts = [list(columns[attr]) if attr in columns else [None] * n for attr, _ in extras]
    names = [name for _, name in extras]
    return [tuple(zip(names, row)) for row in zip(*parts)]


def _rows(ids: list[str], columns: dict[str, Any], keep: list[int]) -> tuple[list[str], dict[str, Any]]:
    rows = np.asarray(keep, dtype=np.int64)
    out: dict[str, Any] = {}
    for name, column in columns.items():
        if isinstance(column, Flat):
            out[name] = column.take(rows)
        elif isinstance(column, np.ndarray):
            out[name] = column[rows]
        else:
            out[name] = list(map(column.__getitem__, keep))
    return list(map(ids.__getitem__, keep)), out


def _promote(columns: dict[str, Any], contact_ids: list[str], built: _Built, plan: _Plan) -> None:
    """Append the contacts that become customers themselves (no company) as customer rows."""
    loose_ids, lcols, lcreated = _merge(built.loose)
    where = {cid: k for k, cid in enumerate(loose_ids)}
    extras = plan.extras.get("contacts", ())
    rows: list[dict[str, Any]] = []
    for contact_id in contact_ids:
        k = where.get(contact_id)
        row: dict[str, Any] = {"id": contact_id, "object_type": "contacts"}
        for name, kind in _KINDS[Customer].items():
            if name in row or name in ("contact_ids", "primary_contact_id", "extra"):
                continue
            column = lcols.get(name) if k is not None else None
            value = column[k] if column is not None else (_NAN if kind in ("time", "date") else None)
            if name == "birthday" and k is None:
                value = built.birthdays.get(contact_id, _NAN)
            if name == "created_at" and k is not None and value != value:
                value = lcreated[k]
            row[name] = value
        row["extra"] = tuple((name, lcols[attr][k] if k is not None and attr in lcols else None)
                             for attr, name in extras) if extras else ()
        rows.append(row)
    for name in _KINDS[Customer]:
        if name in ("contact_ids", "primary_contact_id"):
            continue
        column, values = columns[name], [row[name] for row in rows]
        if isinstance(column, np.ndarray):
            columns[name] = np.concatenate((column, np.asarray(values, dtype=np.float64)))
        else:
            column.extend(values)
