"""Canonical model: frozen dataclasses built from stored HubSpot records through the mappings.

CONTRACT (shared by mapping, metrics, health, segments): the dataclasses below are the shape of one record, and
``Portfolio.tables`` the same records as columns (what the metrics read: a million customers as a few dozen arrays
and sequences, see ``Table``). ``build_portfolio`` turns stored records into a ``Portfolio``. Times are
timezone-aware UTC ``datetime`` (float epoch seconds in columns); calendar dates are ``date`` (float ordinals);
money is ``Decimal`` in the portal's reporting currency (already converted, at constant FX). Id columns may be
``Ids`` / ``IdTuples`` / ``Picked`` sequences that make the strings on access. A value that could not be read is
``None`` and is reported once in ``Portfolio.issues``; it never stops the run.
"""

from __future__ import annotations

import gc
import sys
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, fields as dataclass_fields
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from itertools import chain, compress, filterfalse, groupby, islice, repeat
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


class AssociationColumnsLike(Protocol):
    """A page of one (from type, to type) pair's associations as columns (``connector.state`` reads them so): the
    builder takes them without an object per association."""

    from_type: str
    to_type: str
    from_ids: Sequence[str]
    to_ids: Sequence[str]
    type_ids: Sequence[int | None]


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


class Ids(Sequence[Any]):
    """A column of record ids held as their int64 numbers (see ``_Numbers``), each string made on access: a million
    ids are 8 MB, not 65 MB of strings. -1 reads as None (no id)."""

    __slots__ = ("numbers", "odd")

    def __init__(self, numbers: np.ndarray, odd: Mapping[int, str] | None = None):
        self.numbers, self.odd = numbers, odd

    def _one(self, number: int) -> str | None:
        if number < 0:
            return None
        return self.odd[number] if number >= _ODD_IDS and self.odd else str(number)

    def __len__(self) -> int:
        return self.numbers.size

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return list(map(self._one, self.numbers[i].tolist()))
        return self._one(int(self.numbers[i]))

    def __iter__(self) -> Iterator[str | None]:
        return map(self._one, self.numbers.tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class Picked(Sequence[Any]):
    """``strings[rows[i]]`` per row, None where the row is -1: a column of another table's ids (a subscription's
    customer id) held as the rows they are at, which the model has anyway; each value looked up on access."""

    __slots__ = ("strings", "rows")

    def __init__(self, strings: Sequence[Any], rows: np.ndarray):
        self.strings, self.rows = strings, rows

    def __len__(self) -> int:
        return self.rows.size

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        row = int(self.rows[i])
        return None if row < 0 else self.strings[row]

    def __iter__(self) -> Iterator[Any]:
        strings = self.strings
        return (None if row < 0 else strings[row] for row in self.rows.tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class IdTuples(Sequence[tuple[str, ...]]):
    """A column of id tuples (a customer's contacts, a deal's line items) as offsets into one int64 array of id
    numbers: row ``i`` is ``numbers[offsets[i]:offsets[i+1]]``, each tuple of strings made on access."""

    __slots__ = ("offsets", "numbers", "odd")

    def __init__(self, offsets: np.ndarray, numbers: np.ndarray, odd: Mapping[int, str] | None = None):
        self.offsets, self.numbers, self.odd = offsets, numbers, odd

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return tuple(Ids(self.numbers[lo:hi], self.odd)) if hi > lo else ()

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return map(self.__getitem__, range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def plus_singles(self, numbers: np.ndarray) -> "IdTuples":
        """These rows, then one row of a single id per number."""
        offsets = np.concatenate((self.offsets, self.offsets[-1] + 1 + np.arange(numbers.size, dtype=np.int64)))
        return IdTuples(offsets, np.concatenate((self.numbers, numbers)), self.odd)


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
        self.owner_rows: dict[str, np.ndarray] = {}  # key column -> rows in owner_table (set by the model)
        self.owner_table: Table | None = None
        self._owners: dict[str, tuple[Any, np.ndarray]] = {}
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
        """Per row, the position of its ``key`` in ``index`` (a customer's row), -1 where it has none. Read-only;
        the model hands these over with the table, and other answers are kept per index."""
        rows = self.owner_rows.get(key)
        if rows is not None and self.owner_table is not None and getattr(index, "table", None) is self.owner_table:
            return rows
        cached = self._owners.get(key)
        if cached is not None and cached[0] is index:
            return cached[1]
        rows = np.fromiter(map(index.get, self.columns[key], repeat(-1)), dtype=np.int64, count=self.size)
        rows.flags.writeable = False
        self._owners[key] = (index, rows)
        return rows


_KINDS: dict[type, dict[str, str]] = {
    cls: {f.name: _kind(str(f.type)) for f in dataclass_fields(cls)}
    for cls in (Customer, Subscription, Deal, LineItem, FeedbackResponse, Usage)
}


class _Index(Mapping[str, int]):
    """id -> row of one table (``table``), so the row lookups the model already made can be recognised; the
    dictionary itself is built on the first lookup (the metrics mostly hand it to ``Table.owners``, which then
    needs none). Once built, ``get`` and ``__getitem__`` read as the dictionary's own (C) methods."""

    def __init__(self, table: Table, ids: Sequence[str]):
        self.table, self.ids = table, ids
        self.rows: dict[str, int] | None = None

    def _built(self) -> dict[str, int]:
        if self.rows is None:
            self.rows = dict(zip(self.ids, range(len(self.ids))))
            self.get, self.__getitem__ = self.rows.get, self.rows.__getitem__  # type: ignore[method-assign]
        return self.rows

    def __getitem__(self, key: str) -> int:
        return self._built()[key]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._built().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._built()

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self.ids)


class _Keyed(Mapping[str, Any]):
    """``{id: record}`` over a table: rows are built on access, so a million customers are never all objects."""

    def __init__(self, table: Table, key: str):
        self.table, self.key = table, key
        self.ids: list[str] = table.columns[key]
        self._index: _Index | None = None

    @property
    def index(self) -> "_Index":
        if self._index is None:
            self._index = _Index(self.table, self.ids)
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

    def customer_index(self) -> Mapping[str, int]:
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


class Pages:
    """Records (or associations) handed over a page (a list) at a time, as the state store reads them: the builder
    then takes whole pages in C-level list operations instead of resuming a generator for every record."""

    def __init__(self, pages: Any):
        self.pages = pages

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.pages)


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
    with _collector_paused():
        return _build(records, associations, pack)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The builder allocates many small acyclic objects; the cycle collector would re-scan them all again and again
    and find nothing: paused while building, restored after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


_BATCH = 2048  # records of one type converted together: enough for C loops, few enough to stay in cache


def _runs(records: Any) -> Iterator[tuple[str, Iterator[Any]]]:
    """(object type, its records) for each run of one type, archived records left out."""
    if isinstance(records, Pages):
        for page in records:
            yield from groupby(filterfalse(_archived_of, page), key=_type_of)
    else:
        yield from groupby(filterfalse(_archived_of, records), key=_type_of)


def _build(records: Any, associations: Any, pack: Any) -> Portfolio:
    plan = _Plan(pack)
    numbers = _Numbers()
    links = _Links(plan, numbers)
    links.collect(associations)
    built = _Built(plan, links, numbers)
    _take_runs(built, _runs(records))
    return _assemble(plan, links, built)


def _take_runs(built: "_Built", runs: Iterator[tuple[str, Iterator[Any]]]) -> None:
    """Every record of ``runs`` into ``built``, in batches of one object type."""
    pending: dict[str, list[Any]] = {}
    dispatch = built.plan.dispatch
    # The store streams one object type at a time: runs of one type are taken whole, in C-level slices.
    for object_type, run in runs:
        if not dispatch.get(object_type):
            continue
        batch = pending.setdefault(object_type, [])
        while True:
            batch.extend(islice(run, _BATCH - len(batch)))
            if len(batch) < _BATCH:
                break
            built.take(object_type, batch)
            batch = pending[object_type] = []
    for object_type, batch in pending.items():
        if batch:
            built.take(object_type, batch)
    pending.clear()  # the last records are let go before the columns are assembled


@dataclass(slots=True)
class Part:
    """One object type's records read by ``PortfolioBuilder.read``: its converted columns in batches and its data
    issues, ready to be assembled (picklable: a worker process can send it back)."""

    object_type: str
    chunks: dict[str, list[Any]]
    loose: list[Any]
    contacts: list[Any]
    issues: list[tuple[int, int, DataIssue]]
    seen: int
    odd: dict[str, int]  # ids not in HubSpot's decimal form first numbered while reading this part


class PortfolioBuilder:
    """``build_portfolio`` in three steps, for a caller that reads object types apart (in worker processes, each
    from its own store connection): the associations once, when built; then ``read`` each object type's records on
    its own, into a ``Part``; then ``assemble`` the parts, in the order the types would have been streamed. The
    result is the one ``build_portfolio`` gives for the same records streamed in that order.

    ``read`` is pure computation on the records it is given and may run in a process forked from this one after
    the builder was made (it changes nothing the other parts see). Parts are assembled once; a builder is then
    spent."""

    def __init__(self, associations: Any, pack: Any):
        self.plan = _Plan(pack)
        self.numbers = _Numbers()
        self.links = _Links(self.plan, self.numbers)
        self.collected = associations is not None
        if associations is not None:
            self.links.collect(associations)

    def collect(self, associations: Any) -> None:
        """The associations, for a builder made without them (``None``): parts of types that do not need them
        (``needs_links``) may be read before, in workers forked then; the others only after."""
        self.links.collect(associations)
        self.collected = True

    def reads(self, object_type: str) -> bool:
        """Whether the pack maps ``object_type`` (records of any other type are ignored)."""
        return bool(self.plan.dispatch.get(object_type))

    def needs_links(self, object_type: str) -> bool:
        """Whether reading ``object_type`` looks at the associations: contacts do when companies are the customers
        (a contact without a company is read whole, as it may become a customer itself)."""
        plan = self.plan
        return any(entity == "contacts" and plan.customer_entity != "contacts"
                   for entity, _, _ in plan.dispatch.get(object_type, ()))

    def read(self, object_type: str, pages: Iterable[list[Any]]) -> Part:
        """The records of ``object_type`` (pages of records; archived ones are skipped) → a Part."""
        if not self.collected and self.needs_links(object_type):
            raise RuntimeError(f"{object_type} are read after the associations are collected")
        known = set(self.numbers.odd)
        built = _Built(self.plan, self.links, self.numbers)
        with _collector_paused():
            _take_runs(built, _runs(Pages(pages)))
        odd = {key: number for key, number in self.numbers.odd.items() if key not in known}
        return Part(object_type, built.chunks, built.loose, built.contacts, built.issues, built.seen, odd)

    def assemble(self, parts: Sequence[Part]) -> Portfolio:
        """The Portfolio of the parts, read in this order. Raises ``PartsDisagree`` when parts read in different
        processes numbered ids that are not HubSpot's decimal form differently (read them in one process then)."""
        if not self.collected:
            raise RuntimeError("parts are assembled after the associations are collected")
        odd = dict(self.numbers.odd)  # checked on a copy: a builder whose parts disagree is left as it was
        taken = {number: key for key, number in odd.items()}
        for part in parts:
            for key, number in part.odd.items():
                if odd.setdefault(key, number) != number or taken.setdefault(number, key) != key:
                    raise PartsDisagree(f"{part.object_type}: id {key!r} was numbered apart from the other parts")
        self.numbers.odd = odd
        built = _Built(self.plan, self.links, self.numbers)
        for part in parts:
            for entity, chunks in part.chunks.items():
                built.chunks.setdefault(entity, []).extend(chunks)
            built.loose.extend(part.loose)
            built.contacts.extend(part.contacts)
            built.issues.extend((built.seen + seq, position, issue) for seq, position, issue in part.issues)
            built.seen += part.seen
        with _collector_paused():
            return _assemble(self.plan, self.links, built)


class PartsDisagree(Exception):
    """Parts read in different processes gave one odd id different numbers: read them in one process."""


# ---------------------------------------------------------------- reading values (compiled once per pack)


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

    __slots__ = ("attr", "prop", "convert", "currency_prop", "reader", "fast", "out", "constant", "fallbacks")

    def __init__(self, attr: str, prop: str | None, convert: Callable[..., Any] | None, currency_prop: str | None,
                 reader: Callable[[dict], Any] | None, fast: str | None, out: str):
        self.attr, self.prop, self.convert, self.currency_prop = attr, prop, convert, currency_prop
        self.reader, self.fast, self.out = reader, fast, out
        self.constant: tuple[Any] | None = None  # (value,) of a constant field
        self.fallbacks: tuple[str, ...] = ()  # properties read, in order, where ``prop`` is empty


def _field(attr: str, spec: Any, kind: str, pack: Any, out: str) -> _FieldPlan:
    """A property (or the first not empty of a list of them) read as a column and converted once per distinct value
    (money once per distinct amount within each currency); a constant; or a ``reader(props)`` per record for joins.
    ``fast``: HubSpot's own timestamps, parsed in one vectorised call. ``out``: the column's kind."""
    convert, needs_props = _converter(spec, kind, pack)
    if spec.constant is not None:
        raw = str(spec.constant).lower() if isinstance(spec.constant, bool) else str(spec.constant)
        constant = raw if convert is None else (convert(raw, {}) if needs_props else convert(raw))
        plan = _FieldPlan(attr, None, None, None, lambda props: constant, None, out)
        plan.constant = (constant,)
        return plan
    if spec.transform == "join":
        names = spec.property

        def read_join(props: dict) -> Any:
            parts = (str(value).strip() for value in map(props.get, names) if value is not None)
            return " ".join(part for part in parts if part) or None
        return _FieldPlan(attr, None, None, None, read_join, None, out)
    # one property, or a list of them (the first that is not empty is the value)
    names = (spec.property,) if isinstance(spec.property, str) else tuple(spec.property)
    fast = None
    if spec.transform == "datetime" and spec.range is None:
        if kind == "datetime":
            fast = "epoch"
        elif kind == "date" and pack.portal.periods.time_zone == "UTC":
            fast = "utc_date"
    plan = _FieldPlan(attr, names[0], convert, spec.currency_property if needs_props else None, None, fast, out)
    plan.fallbacks = names[1:]
    return plan


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _fast_epochs(raw: list[str]) -> np.ndarray | None:
    """Epoch seconds of HubSpot's own timestamp strings (2024-01-02T03:04:05Z, 2024-01-02T03:04:05.678Z) in one
    numpy parse of their bytes; None where any is in another form (the caller then parses them one by one, with
    parse_datetime's rules and errors)."""
    if not raw:
        return None
    n = len(raw)
    try:
        joined = "".join(raw).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        return None
    width = len(joined) // n
    if width in (20, 24) and width * n == len(joined) and min(map(len, raw)) == width:
        # all of one form (the usual batch): read in place from the joined bytes, no per-string conversion
        buffer = bytearray(joined)
        byte = np.frombuffer(buffer, dtype=np.uint8).reshape(n, width)
        if not ((byte[:, 10] == ord("T")) & (byte[:, width - 1] == ord("Z"))).all():
            return None
        byte[:, width - 1] = 0  # drop the "Z" (UTC is what numpy assumes)
        return _epochs_of(np.frombuffer(buffer, dtype=f"S{width}"))
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
    return _epochs_of(text)


def _epochs_of(text: np.ndarray) -> np.ndarray | None:
    """Epoch seconds of ISO date-times without a zone (bytes), None if numpy cannot read every one."""
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
    if f.constant is not None:
        return _as_column(list(f.constant) * len(props), f.out)
    if f.reader is not None:  # a join of several properties: text, it cannot be malformed
        values = list(map(f.reader, props))
        return _as_column(values, f.out)
    raw = list(map(dict.get, props, repeat(f.prop)))
    source: list[str] | None = None  # per row, the property its value came from (with fallbacks)
    if f.fallbacks and (None in raw or "" in raw):
        source = [f.prop] * len(raw)
        for name in f.fallbacks:
            gaps = [k for k, r in enumerate(raw) if r is None or r == ""]
            for k in gaps:
                value = props[k].get(name)
                if value is not None and value != "":
                    raw[k], source[k] = value, name
    if raw[0] is None and raw.count(None) == len(raw):  # a property no record of the batch has
        if f.out in ("time", "date"):
            return np.full(len(raw), _NAN)
        return _as_column(raw, f.out)
    # "" is HubSpot's "no value": each path below reads it as None (found among the distinct values, not by a scan)
    convert = f.convert
    if convert is None:  # text kept as is; equal strings share one object (a million "Pro" are one string)
        shared: dict[Any, Any] = {}
        values = list(map(shared.setdefault, raw, raw))
        if "" in shared:
            values = [None if v == "" else v for v in values]
        return _as_column(values, f.out)
    if f.fast is not None:
        out = _fast_epochs(raw)  # every record has one (the usual case): read as is
        if out is None:
            present = np.fromiter(map(is_not, raw, repeat(None)), dtype=bool, count=len(raw))
            epochs = _fast_epochs(list(compress(raw, present.tolist())))
            if epochs is not None:
                out = np.full(len(raw), _NAN)
                out[present] = epochs
        if out is not None:
            if f.fast == "utc_date":
                out = np.floor(out / 86400.0) + _EPOCH_ORDINAL
            return out
    if f.currency_prop is not None:
        codes = list(map(dict.get, props, repeat(f.currency_prop)))
        values, failed = _converted(raw, convert, _MALFORMED, f.currency_prop, codes)
        column = _as_column(values, f.out)
    elif f.out in ("time", "date"):  # the number of each distinct value, then one C pass over the rows
        parsed, failed = _parsed(raw, convert, _MALFORMED)
        to_number = datetime.timestamp if f.out == "time" else date.toordinal
        numbers = {value: to_number(parsed[value]) for value in parsed if parsed[value] is not None}
        column = np.fromiter(map(numbers.get, raw, repeat(_NAN)), dtype=np.float64, count=len(raw))
    else:
        values, failed = _converted(raw, convert, _MALFORMED)
        column = _as_column(values, f.out)
    for row, reason in sorted(failed.items()):
        bad.append((row, source[row] if source else f.prop, raw[row], reason))
    return column


def _converted(raw: list[Any], convert: Callable[..., Any], errors: tuple[type, ...], currency_prop: str | None = None,
               codes: list[Any] | None = None, owner: np.ndarray | None = None) -> tuple[list[Any], dict[int, str]]:
    """(values, {position: why it could not be read}): each distinct value converted once; money once per distinct
    amount within each currency (the values grouped by currency code in numpy: no tuple per value). ``codes``: per
    value, or per record with ``owner`` giving each value's record. None and "" (HubSpot's "no value") are None."""
    if currency_prop is None or codes is None:
        return _converted_one(raw, convert, errors)
    currencies = dict.fromkeys(codes)
    if len(currencies) == 1:
        (code,) = currencies
        return _converted_one(raw, lambda r: convert(r, {currency_prop: code}), errors)
    number = {code: k for k, code in enumerate(currencies)}
    code_of = np.fromiter(map(number.__getitem__, codes), dtype=np.int64, count=len(codes))
    if owner is not None:
        code_of = code_of[owner]
    out = np.empty(len(raw), dtype=object)
    failed: dict[int, str] = {}
    for code, k in number.items():
        rows = np.flatnonzero(code_of == k)
        part = list(map(raw.__getitem__, rows.tolist()))
        values, bad = _converted_one(part, lambda r, c=code: convert(r, {currency_prop: c}), errors)
        out[rows] = np.fromiter(values, dtype=object, count=len(values))
        for position, reason in bad.items():
            failed[int(rows[position])] = reason
    return out.tolist(), failed


def _converted_one(raw: list[Any], convert: Callable[[Any], Any],
                   errors: tuple[type, ...]) -> tuple[list[Any], dict[int, str]]:
    parsed, failed = _parsed(raw, convert, errors)
    return list(map(parsed.get, raw)), failed


def _parsed(raw: list[Any], convert: Callable[[Any], Any],
            errors: tuple[type, ...]) -> tuple[dict[Any, Any], dict[int, str]]:
    """({distinct raw value: converted}, {position: why it could not be read}); None and "" are left out."""
    parsed: dict[Any, Any] = {}
    failed_values: dict[Any, str] = {}
    for value in set(raw):
        if value is None or value == "":
            continue
        try:
            parsed[value] = convert(value)
        except errors as exc:
            failed_values[value] = str(exc) or "malformed value"
    failed: dict[int, str] = {}
    if failed_values:
        for k, value in enumerate(raw):
            if value in failed_values:
                failed[k] = failed_values[value]
    return parsed, failed


class _HistoryPlan:
    """A historical field: HubSpot's newest-first [{value, timestamp}] per record → a Flat column, ascending."""

    __slots__ = ("attr", "prop", "convert", "currency_prop", "allow_empty")

    def __init__(self, attr: str, spec: Any, kind: str, pack: Any):
        self.attr, self.prop = attr, spec.properties[0]
        self.convert, needs_props = _converter(spec, kind, pack)
        self.currency_prop = spec.currency_property if needs_props else None  # money: the record's currency
        self.allow_empty = spec.allow_empty


def _read_history(h: _HistoryPlan, props: list[dict], histories: list[Any],
                  bad: list[tuple[int, str, Any, str]]) -> Flat:
    """Bad entries are dropped, each record's first reported once (as the per-record reader did)."""
    rows = len(histories)
    found = list(map(dict.get, histories, repeat(h.prop), repeat(())))  # histories: dicts ({} without any)
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
    times = _fast_epochs(stamps)
    if times is None:
        times = np.full(len(entries), _NAN)
        for k, stamp in enumerate(stamps):
            try:
                times[k] = parse_datetime(stamp).timestamp()
            except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                reason[k] = str(exc) or "malformed value"
    convert = h.convert
    if convert is None:
        values = [None if r == "" else r for r in raw] if "" in raw else raw
    else:
        # converted once per distinct value (money: per distinct amount within each currency)
        errors = (ValueError, TypeError, ArithmeticError, AttributeError)
        if h.currency_prop is not None:
            values, failed = _converted(raw, convert, errors, h.currency_prop,
                                        list(map(dict.get, props, repeat(h.currency_prop))), owner)
        else:
            values, failed = _converted(raw, convert, errors)
        for k, why in failed.items():
            reason.setdefault(k, why)
    if not h.allow_empty and (None in raw or "" in raw):
        for k, value in enumerate(raw):
            if value is None or value == "":
                reason.setdefault(k, "empty value (allow_empty: false)")
    if reason:
        reported: set[int] = set()
        for k in sorted(reason):  # a record's first bad entry in HubSpot's order (its newest) is the one reported
            keep[k] = False
            row = int(owner[k])
            if row not in reported:
                reported.add(row)
                bad.append((row, prop, raw[k], f"history: {reason[k]}"))
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if not reason and counts.max(initial=0) <= 1:
        return Flat(offsets, times, values)  # at most one entry a record: nothing to order
    same = owner[1:] == owner[:-1]
    if not reason and not (times[1:][same] > times[:-1][same]).any():
        # HubSpot's own order, newest first in every record: reversing each record's entries sorts it (equal
        # instants end up in reversed HubSpot order, as the stable sort below leaves them)
        order = offsets[:-1][owner] + offsets[1:][owner] - 1 - np.arange(owner.size, dtype=np.int64)
        return Flat(offsets, times[order], list(map(values.__getitem__, order.tolist())))
    # Otherwise reversed, a stable sort by (record, time) keeps equal instants in HubSpot's order.
    order = np.flatnonzero(keep)[::-1]
    order = order[np.lexsort((times[order], owner[order]))]
    kept_counts = np.bincount(owner[order], minlength=rows) if order.size else np.zeros(rows, dtype=np.int64)
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


# ---------------------------------------------------------------- record ids as numbers, associations


_ID_DIGITS = 18  # HubSpot's ids have at most 18 digits here (int64 holds every one)
_ODD_IDS = 1 << 62  # numbers of ids that are not HubSpot's decimal form start here (above every 18-digit number)


class _Numbers:
    """Record ids as int64 keys, so the joins run in numpy: a HubSpot id (1 to 18 decimal digits, no leading zero) is
    its own number, so numeric order is HubSpot's id order; any other id gets a number from 2**62 up, in the order
    first seen (ordered after every HubSpot id). Equal ids get equal numbers, different ids different ones.

    A batch of HubSpot ids is checked and read in a few C passes over the ids joined by commas (about 60 ns an id);
    a batch with any other id is read one id at a time."""

    def __init__(self) -> None:
        self.odd: dict[str, int] = {}
        self.non_str = False

    def __call__(self, ids: Sequence[Any]) -> np.ndarray:
        n = len(ids)
        self.non_str = False  # some of the last ids were not strings (str() of them stands in)
        if not n:
            return np.zeros(0, dtype=np.int64)
        try:
            text = ",".join(ids).encode("ascii")
        except TypeError:
            self.non_str = True
            return self._one_by_one(ids)
        except UnicodeEncodeError:
            return self._one_by_one(ids)
        if text.translate(None, b"0123456789,"):  # anything but digits and the commas
            return self._one_by_one(ids)
        byte = np.frombuffer(text, dtype=np.uint8)
        commas = np.flatnonzero(byte == 44)
        if commas.size != n - 1:  # an id with a comma in it
            return self._one_by_one(ids)
        starts = np.empty(n, dtype=np.int64)
        starts[0] = 0
        starts[1:] = commas + 1
        lengths = np.empty(n, dtype=np.int64)
        lengths[:-1] = commas
        lengths[-1] = byte.size
        lengths -= starts
        if lengths.min() < 1 or lengths.max() > _ID_DIGITS or (
                (byte[np.minimum(starts, byte.size - 1)] == 48) & (lengths > 1)).any():  # empty, too long, 0-led
            return self._one_by_one(ids)
        return np.fromstring(text, dtype=np.int64, sep=",")

    def names(self) -> dict[int, str] | None:
        """Number -> id of the ids that are not HubSpot's decimal form (None when there are none)."""
        return {number: key for key, number in self.odd.items()} or None

    def _one_by_one(self, ids: Sequence[Any]) -> np.ndarray:
        odd = self.odd
        out = np.empty(len(ids), dtype=np.int64)
        for k, value in enumerate(ids):
            key = str(value)
            if key.isascii() and key.isdigit() and len(key) <= _ID_DIGITS and (key[0] != "0" or key == "0"):
                out[k] = int(key)
                continue
            number = odd.get(key)
            if number is None:
                number = odd[key] = _ODD_IDS + len(odd)
            out[k] = number
        return out


def _among(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Per value: is it one of ``sorted_keys`` (ascending)?"""
    if not sorted_keys.size or not values.size:
        return np.zeros(values.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), sorted_keys.size - 1)
    return sorted_keys[at] == values


class _Rows:
    """Where each record number sits in one merged entity."""

    def __init__(self, numbers: np.ndarray):
        self.order = np.argsort(numbers, kind="stable")
        self.sorted = numbers[self.order]

    def __len__(self) -> int:
        return self.sorted.size

    def of(self, numbers: np.ndarray) -> np.ndarray:
        """The row of each number, -1 where it is not here (or is -1)."""
        if not self.sorted.size or not numbers.size:
            return np.full(numbers.size, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.sorted, numbers), self.sorted.size - 1)
        return np.where(self.sorted[at] == numbers, self.order[at], -1)


_NO_ROWS = _Rows(np.zeros(0, dtype=np.int64))
_from_id, _to_id, _type_id = (attrgetter(n) for n in ("from_id", "to_id", "type_id"))
_types_of = attrgetter("from_type", "to_type")


class _Links:
    """The associations the builder looks up, as int64 arrays per (from type, to type) pair, each in its lookup
    direction, sorted by (from, primary first, to): a record's first association to an existing record is the one to
    use, a primary one (portal.yaml primary_association_type_ids) first, then the lowest id. Six million
    associations are three arrays, not six million dictionary entries."""

    _CHUNK = 65_536

    def __init__(self, plan: _Plan, numbers: _Numbers):
        o = plan.object_of
        wanted = [
            (o.get("contacts"), plan.customer_type),
            (o.get("subscriptions"), plan.customer_type), (o.get("subscriptions"), o.get("contacts")),
            (o.get("deals"), plan.customer_type), (o.get("deals"), o.get("contacts")),
            (o.get("feedback"), plan.customer_type), (o.get("feedback"), o.get("contacts")),
            (o.get("line_items"), o.get("deals")), (o.get("line_items"), o.get("subscriptions")),
        ]
        self.pairs = [pair for pair in dict.fromkeys(wanted) if pair[0] and pair[1] and pair[0] != pair[1]]
        self.code: dict[tuple[str, str], int] = {}  # 2 × pair index, + 1 when stored the other way round
        for k, (a, b) in enumerate(self.pairs):
            self.code[(a, b)] = 2 * k
        for k, (a, b) in enumerate(self.pairs):
            self.code.setdefault((b, a), 2 * k + 1)
        self.primary_ids = plan.primary_ids
        self.numbers = numbers
        empty = np.zeros(0, dtype=np.int64)
        self.arrays: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {
            pair: (empty, empty, np.zeros(0, dtype=bool)) for pair in self.pairs}

    def collect(self, associations: Any) -> None:
        """Take every association: objects (one at a time or in ``Pages``), or ``AssociationColumnsLike`` pages."""
        parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in self.pairs]
        if isinstance(associations, Pages):
            stream = chain.from_iterable(associations)
        else:
            stream = iter(associations)
            first = next(stream, None)
            if first is not None and hasattr(first, "from_ids"):
                for columns in chain((first,), stream):
                    self._take_columns(columns, parts)
                self._finish(parts)
                return
            stream = chain((first,), stream) if first is not None else stream
        while chunk := list(islice(stream, self._CHUNK)):
            codes = np.fromiter(map(self.code.get, map(_types_of, chunk), repeat(-1)), dtype=np.int64,
                                count=len(chunk))
            wanted = codes >= 0
            if not wanted.all():
                if not wanted.any():
                    continue
                chunk = list(compress(chunk, wanted.tolist()))
                codes = codes[wanted]
            froms = self.numbers(list(map(_from_id, chunk)))
            tos = self.numbers(list(map(_to_id, chunk)))
            primary = self._primary(list(map(_type_id, chunk)))
            for code in np.unique(codes).tolist():
                picked = codes == code
                a, b = froms[picked], tos[picked]
                parts[code >> 1].append((b, a, primary[picked]) if code & 1 else (a, b, primary[picked]))
        self._finish(parts)

    def _take_columns(self, columns: Any, parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]) -> None:
        """One page of one pair's associations given as columns: no per-association object or type lookup."""
        code = self.code.get((columns.from_type, columns.to_type))
        if code is None or not len(columns.from_ids):
            return
        froms, tos = self.numbers(columns.from_ids), self.numbers(columns.to_ids)
        primary = self._primary(columns.type_ids)
        parts[code >> 1].append((tos, froms, primary) if code & 1 else (froms, tos, primary))

    def _primary(self, type_ids: Sequence[int | None]) -> np.ndarray:
        """Per association: is its type one of portal.yaml's primary association types?"""
        try:
            types = np.array(type_ids, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):  # None (no type), or not numbers
            return np.fromiter(map(self.primary_ids.__contains__, type_ids), dtype=bool, count=len(type_ids))
        return np.isin(types, np.fromiter(self.primary_ids, dtype=np.int64, count=len(self.primary_ids)))

    def _finish(self, parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]) -> None:
        for pair, chunks in zip(self.pairs, parts):
            if not chunks:
                continue
            f, t, p = (np.concatenate([c[i] for c in chunks]) for i in range(3))
            if f.size > 1 and not (f[1:] > f[:-1]).all():  # unless each record has one, in id order already
                order = np.lexsort((t, ~p, f))
                f, t, p = f[order], t[order], p[order]
            self.arrays[pair] = (f, t, p)

    def has_any(self, from_type: str | None, to_type: str | None, numbers: np.ndarray) -> np.ndarray:
        """Per record number: has it any association of this pair?"""
        f = self.arrays.get((from_type, to_type))  # type: ignore[arg-type]
        if f is None:
            return np.zeros(numbers.size, dtype=bool)
        return _among(numbers, f[0])

    def pick(self, from_type: str | None, to_type: str | None, numbers: np.ndarray, exists: _Rows) -> np.ndarray:
        """Per record number, the row in ``exists`` of the associated record to use, -1 where there is none."""
        arrays = self.arrays.get((from_type, to_type))  # type: ignore[arg-type]
        if arrays is None or not arrays[0].size or not numbers.size:
            return np.full(numbers.size, -1, dtype=np.int64)
        f, t, _ = arrays
        kept = _among(t, exists.sorted)
        f, t = f[kept], t[kept]
        if not f.size:
            return np.full(numbers.size, -1, dtype=np.int64)
        first = np.ones(f.size, dtype=bool)
        np.not_equal(f[1:], f[:-1], out=first[1:])
        f, t = f[first], t[first]
        at = np.minimum(np.searchsorted(f, numbers), f.size - 1)
        return exists.of(np.where(f[at] == numbers, t[at], -1))

    def primary_pairs(self, from_type: str | None, to_type: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(from, to) numbers of the primary associations of a pair."""
        f, t, p = self.arrays.get((from_type, to_type), (np.zeros(0, np.int64),) * 2 + (np.zeros(0, bool),))  # type: ignore[arg-type]
        return f[p], t[p]


# ---------------------------------------------------------------- building


_id_of, _props_of, _history_of, _created_of = (attrgetter(n) for n in ("id", "properties", "history", "created_at"))
_type_of, _archived_of = attrgetter("object_type"), attrgetter("archived")
_Chunk = tuple  # (ids, id numbers, {attr: column})
# The time a record's own creation stands in for when the mapped property is empty.
_CREATED_FIELD = {"subscriptions": "created_at", "deals": "created_at", "feedback": "submitted_at",
                  "companies": "created_at", "contacts": "created_at"}


def _with_created(columns: dict[str, Any], name: str, records: Sequence[Any]) -> None:
    """Fill the empty values of the time column ``name`` from the records' own creation times."""
    column = columns.get(name)
    if column is None:
        columns[name] = epoch_seconds(list(map(_created_of, records)))
        return
    missing = np.isnan(column)
    if missing.all():
        columns[name] = epoch_seconds(list(map(_created_of, records)))
    elif missing.any():
        rows = np.flatnonzero(missing).tolist()
        column[rows] = epoch_seconds(list(map(_created_of, map(records.__getitem__, rows))))


class _Built:
    """The converted columns of the records, in batches per entity; links are resolved by _assemble."""

    def __init__(self, plan: _Plan, links: _Links, numbers: _Numbers):
        self.plan, self.links, self.numbers = plan, links, numbers
        self.chunks: dict[str, list[_Chunk]] = {}
        self.loose: list[_Chunk] = []  # contacts with no company (they may become customers), read whole
        self.contacts: list[_Chunk] = []  # every contact when companies are the customers: (ids, numbers, birthday)
        self.issues: list[tuple[int, int, DataIssue]] = []
        self.seen = 0

    def drain(self, name: str) -> list[_Chunk]:
        """The batches kept under ``name`` ("contacts" or "loose"), let go here so they die once merged."""
        chunks = getattr(self, name)
        setattr(self, name, [])
        return chunks

    def take(self, object_type: str, batch: list[Any]) -> None:
        ids = list(map(_id_of, batch))
        numbers = self.numbers(ids)
        if self.numbers.non_str:
            ids = list(map(str, ids))
        props = list(map(_props_of, batch))
        if None in props:
            props = [p or {} for p in props]
        plan = self.plan
        histories: list[Any] = []  # read only for types with historical fields
        if any(historical for _, _, historical in plan.dispatch[object_type]):
            histories = list(map(_history_of, batch))
            if None in histories:
                histories = [h or {} for h in histories]
        for entity, fields, historical in plan.dispatch[object_type]:
            if entity == "contacts" and plan.customer_entity != "contacts":
                self._contacts(object_type, batch, ids, numbers, props, histories, fields, historical)
            elif entity == plan.customer_entity or entity not in ("companies", "contacts"):
                columns = self._read(object_type, ids, props, histories, fields, historical, range(len(ids)))
                if entity in _CREATED_FIELD:
                    _with_created(columns, _CREATED_FIELD[entity], batch)
                # only the customers' and usage's id strings are kept; the other ids live on as their numbers
                kept = ids if entity in (plan.customer_entity, "usage") else None
                self.chunks.setdefault(entity, []).append((kept, numbers, columns))
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

    def _contacts(self, object_type: str, batch: list[Any], ids: list[str], numbers: np.ndarray, props: list[dict],
                  histories: list[Any], fields: list[_FieldPlan], historical: list[_HistoryPlan]) -> None:
        """A contact with a company only lends its birthday; one without may become a customer itself, so it is
        read whole. Millions of contacts are never all held."""
        plan = self.plan
        birthday = plan.birthday
        if birthday is not None:
            column = self._read(object_type, ids, props, histories, [birthday], [], range(len(ids)))["birthday"]
        else:
            column = np.full(len(ids), _NAN)
        self.contacts.append((None, numbers, column))
        alone = ~self.links.has_any(plan.contacts_type, plan.customer_type, numbers)
        if not alone.any():
            return
        loose = np.flatnonzero(alone).tolist()
        rest = [f for f in fields if f is not birthday]
        sub_ids = list(map(ids.__getitem__, loose))
        columns = self._read(object_type, sub_ids, list(map(props.__getitem__, loose)),
                             list(map(histories.__getitem__, loose)) if histories else [], rest, historical, loose)
        if birthday is not None:
            columns["birthday"] = column[loose]
        _with_created(columns, "created_at", list(map(batch.__getitem__, loose)))
        self.loose.append((None, numbers[loose], columns))


def _merge(chunks: list[_Chunk]) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Batches of one entity joined into whole columns (ids where kept, id numbers, {attr: column})."""
    ids: list[str] = []
    for chunk in chunks:
        if chunk[0] is not None:
            ids.extend(chunk[0])
    numbers = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
    columns: dict[str, Any] = {}
    names = dict.fromkeys(name for _, _, cols in chunks for name in cols)
    for name in names:
        parts = [cols.pop(name) for _, _, cols in chunks]  # each batch's column let go once merged
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
    return ids, numbers, columns


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


_SPAN = 65_536  # rows turned into Python objects at a time where a million at once would cost a peak


def _spans(size: int) -> range:
    return range(0, size, _SPAN)


def _groups(rows: np.ndarray, keys: np.ndarray, n: int, odd: Mapping[int, str] | None) -> IdTuples:
    """Per row 0..n-1, the ids ``keys[k]`` of the entries k with ``rows[k] == row``, in id order; () for a row
    without any. Entries with row -1 are left out. No Python object per entry: offsets into the sorted ids."""
    entries = np.flatnonzero(rows >= 0)
    owner, key = rows[entries], keys[entries]
    if owner.size > 1:
        step, later = np.diff(owner), np.diff(key)
        if not ((step > 0) | ((step == 0) & (later > 0))).all():  # not yet in (row, id) order
            order = np.lexsort((key, owner))
            owner, key = owner[order], key[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=offsets[1:])
    return IdTuples(offsets, key, odd)


def _first_per(rows: np.ndarray, keys: tuple[np.ndarray, ...], n: int) -> np.ndarray:
    """Per row 0..n-1, the entry with ``rows[k] == row`` that sorts first by ``keys`` (np.lexsort order, last key
    first), -1 for a row without any."""
    out = np.full(n, -1, dtype=np.int64)
    entries = np.flatnonzero(rows >= 0)
    if entries.size:
        entries = entries[np.lexsort(tuple(k[entries] for k in keys) + (rows[entries],))]
        owner = rows[entries]
        first = np.r_[True, owner[1:] != owner[:-1]]
        out[owner[first]] = entries[first]
    return out


def _assemble(plan: _Plan, links: _Links, built: _Built) -> Portfolio:
    o = plan.object_of
    contacts_type, customer_type = plan.contacts_type, plan.customer_type
    by_company = plan.customer_entity == "companies"
    fallback = plan.pack.portal.customer.contacts_without_company
    ids, numbers, ccols = _merge(built.chunks.pop(plan.customer_entity, []))
    n = len(ids)
    customers = _Rows(numbers)
    odd = built.numbers.names()  # the ids that are not HubSpot numbers, by number

    # Contacts when companies are the customers: each one's company row (-1: none live); those without one may
    # become customers themselves ("promoted"), at rows n.. (provisionally n + contact row, renumbered below).
    if by_company:
        contact_numbers, contact_birthdays = _merge_contacts(built.drain("contacts"))
        contacts = _Rows(contact_numbers)
        company_of = links.pick(contacts_type, customer_type, contact_numbers, customers)
        loose = (company_of < 0) if fallback != "never" else np.zeros(contact_numbers.size, dtype=bool)
        promoted = loose.copy() if fallback == "always" else np.zeros(contact_numbers.size, dtype=bool)
    else:
        contact_numbers, contacts = numbers, customers
        company_of = loose = promoted = np.zeros(0, dtype=np.int64)

    def customers_of(entity: str, record_numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(customer row, contact row) of subscriptions, deals or survey answers; -1 where none."""
        direct = links.pick(o.get(entity), customer_type, record_numbers, customers)
        contact = (links.pick(o.get(entity), contacts_type, record_numbers, contacts) if contacts_type
                   else np.full(record_numbers.size, -1, dtype=np.int64))
        if not by_company:
            return np.where(direct >= 0, direct, contact), contact
        has = contact >= 0
        safe = np.where(has, contact, 0)
        via = np.where(has, company_of[safe] if company_of.size else -1, -1)
        found = np.where(direct >= 0, direct, via)
        needs = (found < 0) & has & (loose[safe] if loose.size else False)
        if needs.any():
            promoted[contact[needs]] = True
            found = np.where(needs, n + contact, found)
        return found, contact

    _, sub_numbers, scols = _merge(built.chunks.pop("subscriptions", []))
    sub_customer, _ = customers_of("subscriptions", sub_numbers)
    _, deal_numbers, dcols = _merge(built.chunks.pop("deals", []))
    deal_customer, _ = customers_of("deals", deal_numbers)
    _, answer_numbers, fcols = _merge(built.chunks.pop("feedback", []))
    answer_customer, answer_contact = customers_of("feedback", answer_numbers)

    # The promoted contacts, in id order, become customer rows n, n+1, …
    promoted_rows = contacts.order[promoted[contacts.order]] if by_company else np.zeros(0, dtype=np.int64)
    if promoted_rows.size:
        renumber = np.full(contact_numbers.size, -1, dtype=np.int64)
        renumber[promoted_rows] = n + np.arange(promoted_rows.size)

        def final(rows: np.ndarray) -> np.ndarray:
            return np.where(rows >= n, renumber[np.maximum(rows - n, 0)], rows)
        sub_customer, deal_customer, answer_customer = map(final, (sub_customer, deal_customer, answer_customer))
    promoted_ids = _id_strings(contact_numbers[promoted_rows], odd) if promoted_rows.size else []
    all_ids = ids + promoted_ids if promoted_ids else ids
    total = len(all_ids)

    n_subs = sub_numbers.size
    subscriptions = _filled(Subscription, n_subs, scols, {
        "id": Ids(sub_numbers, odd), "customer_id": Picked(all_ids, sub_customer),
        "live_statuses": [plan.live] * n_subs, "past_due_grace_days": [plan.grace] * n_subs,
    })
    subscriptions.owner_rows["customer_id"] = sub_customer

    _, item_numbers, icols = _merge(built.chunks.pop("line_items", []))
    n_items, n_deals, n_answers = item_numbers.size, deal_numbers.size, answer_numbers.size
    item_deal = links.pick(o.get("line_items"), o.get("deals"), item_numbers, _Rows(deal_numbers))
    item_sub = links.pick(o.get("line_items"), o.get("subscriptions"), item_numbers, _Rows(sub_numbers))
    primary_pairs = links.primary_pairs(contacts_type, customer_type)
    links.arrays.clear()  # every link is resolved: the association arrays are let go
    line_items = _filled(LineItem, n_items, icols, {
        "id": Ids(item_numbers, odd), "deal_id": Ids(_at(deal_numbers, item_deal), odd),
        "subscription_id": Ids(_at(sub_numbers, item_sub), odd), "mrr": _item_mrr(icols, n_items)})

    deals = _filled(Deal, n_deals, dcols, {
        "id": Ids(deal_numbers, odd), "customer_id": Picked(all_ids, deal_customer),
        "line_item_ids": _groups(item_deal, item_numbers, n_deals, odd),
    })
    deals.owner_rows["customer_id"] = deal_customer

    types = fcols.get("survey_type", [None] * n_answers)
    upper = {t: (t.upper() if t else "OTHER") for t in set(types)}
    feedback = _filled(FeedbackResponse, n_answers, fcols, {
        "id": Ids(answer_numbers, odd), "customer_id": Picked(all_ids, answer_customer),
        "contact_id": Ids(_at(contact_numbers, answer_contact), odd),
        "survey_type": list(map(upper.__getitem__, types)),
    })
    feedback.owner_rows["customer_id"] = answer_customer

    # Customers last: they need the contacts rolled up to them, the promoted contacts and the first subscription.
    extras = plan.extras.get(plan.customer_entity, ())
    columns: dict[str, Any] = {
        "id": ids, "object_type": [plan.customer_entity] * n, "extra": _extra_column(ccols, extras, n),
    }
    for name, kind in _KINDS[Customer].items():
        if name not in columns:
            columns[name] = ccols[name] if name in ccols else (np.full(n, _NAN) if kind in ("time", "date")
                                                                 else [None] * n)
    if by_company:
        members = np.where(company_of >= 0, company_of, -1) if company_of.size else company_of
        contact_tuples = _groups(members, contact_numbers, n, odd)
        # the primary contact: a member with a primary association to the company, else the lowest id
        pf, pt = primary_pairs
        pc, pk = contacts.of(pf), customers.of(pt)
        width = n + 1
        marked = np.sort((pc * width + pk)[(pc >= 0) & (pk >= 0)], kind="stable")  # radix sort: linear
        is_primary = _among(np.arange(members.size, dtype=np.int64) * width + members, marked)
        primary = _first_per(members, (contact_numbers, ~is_primary), n)
        has = primary >= 0
        primaries = _at(contact_numbers, primary)
        birthday = columns["birthday"]
        lend = has & np.isnan(birthday)
        birthday[lend] = contact_birthdays[primary[lend]]
        if promoted_rows.size:  # a contact that is a customer itself is its own (primary) contact
            promoted_numbers = contact_numbers[promoted_rows]
            contact_tuples = contact_tuples.plus_singles(promoted_numbers)
            primaries = np.concatenate((primaries, promoted_numbers))
            _promote(columns, promoted_rows, promoted_ids, contact_numbers, contact_birthdays, built, plan)
        columns["contact_ids"], columns["primary_contact_id"] = contact_tuples, Ids(primaries, odd)
    else:
        columns["contact_ids"] = list(zip(ids))
        columns["primary_contact_id"] = ids
    since = columns["customer_since"]
    starts = scols.get("start_date")
    if starts is not None:
        # Without a mapped "customer since" date, the first subscription's start stands in for it.
        dated = (sub_customer >= 0) & ~np.isnan(starts)
        first = np.full(total, np.inf)
        np.minimum.at(first, sub_customer[dated], starts[dated])
        fill = np.isnan(since) & np.isfinite(first)
        since[fill] = first[fill]
    customers_table = Table(Customer, {name: columns[name] for name in _KINDS[Customer]}, total)

    usage_ids, usage_numbers, ucols = _merge(built.chunks.pop("usage", []))
    usage_type = o.get("usage")
    if usage_type == customer_type:
        usage_rows = customers.of(usage_numbers)
    elif promoted_rows.size and usage_type == contacts_type:
        usage_rows = _Rows(contact_numbers[promoted_rows]).of(usage_numbers)
        usage_rows = np.where(usage_rows >= 0, usage_rows + n, -1)
    else:
        usage_rows = np.full(len(usage_ids), -1, dtype=np.int64)
    if (usage_rows < 0).any():
        keep = np.flatnonzero(usage_rows >= 0)
        usage_ids, ucols = _rows(usage_ids, ucols, keep)
        usage_rows = usage_rows[keep]
    usage = _filled(Usage, len(usage_ids), ucols, {"customer_id": usage_ids})
    usage.owner_rows["customer_id"] = usage_rows

    built.issues.sort(key=_issue_order)
    tables = Tables(customers=customers_table, subscriptions=subscriptions, deals=deals, line_items=line_items,
                    feedback=feedback, usage=usage)
    for table in (subscriptions, deals, feedback, usage):
        table.owner_table = customers_table
        table.owner_rows["customer_id"].flags.writeable = False
    return Portfolio(reporting_currency=plan.pack.portal.currency.reporting,
                     issues=[issue for _, _, issue in built.issues], tables=tables)


def _merge_contacts(chunks: list[_Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """(id numbers, birthday ordinals) of every contact."""
    if not chunks:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate([c[1] for c in chunks]), np.concatenate([c[2] for c in chunks])


def _at(numbers: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``numbers[row]`` per row, -1 where the row is -1."""
    if not numbers.size:
        return np.full(rows.size, -1, dtype=np.int64)
    return np.where(rows >= 0, numbers[np.maximum(rows, 0)], -1)


def _id_strings(numbers: np.ndarray, odd: Mapping[int, str] | None) -> list[str]:
    return list(Ids(numbers, odd))


def _item_mrr(columns: dict[str, Any], n: int) -> list[Any]:
    """Monthly amount of recurring line items (amount × the frequency's factor), None for one-time ones; computed
    once per distinct (frequency, amount)."""
    frequencies, amounts = columns.get("billing_frequency"), columns.get("amount")
    if frequencies is None or amounts is None:
        return [None] * n
    def monthly(amount: Decimal, frequency: dict[str, Any]) -> Decimal | None:
        factor = MONTHLY_FACTOR.get(frequency["frequency"]) if frequency["frequency"] else None
        return amount * factor if factor is not None else None
    # grouped by frequency like money by currency: one product per distinct amount and frequency
    return _converted(amounts, monthly, (ArithmeticError,), "frequency", frequencies)[0]


def _issue_order(item: tuple[int, int, DataIssue]) -> tuple[int, int]:
    return item[0], item[1]


def _extra_column(columns: dict[str, Any], extras: tuple[tuple[str, str], ...], n: int) -> list[Any]:
    """Mapped custom fields per row as ((name, value), …) for custom rules; () without any. Rows with the same
    values share one tuple."""
    if not extras:
        return [()] * n
    parts = [columns[attr] if attr in columns else [None] * n for attr, _ in extras]
    names = [name for _, name in extras]
    if all(part.count(None) == n for part in parts):  # no record has any: one shared row
        return [tuple((name, None) for name in names)] * n
    shared: dict[tuple[Any, ...], tuple[tuple[str, Any], ...]] = {}
    out: list[Any] = []
    for start in _spans(n):
        rows = list(zip(*(part[start:start + _SPAN] for part in parts)))
        for row in set(rows).difference(shared):
            shared[row] = tuple(zip(names, row))
        out += map(shared.__getitem__, rows)
    return out


def _rows(ids: list[str], columns: dict[str, Any], keep: np.ndarray) -> tuple[list[str], dict[str, Any]]:
    picked = keep.tolist()
    out: dict[str, Any] = {}
    for name, column in columns.items():
        if isinstance(column, Flat):
            out[name] = column.take(keep)
        elif isinstance(column, np.ndarray):
            out[name] = column[keep]
        else:
            out[name] = list(map(column.__getitem__, picked))
    return list(map(ids.__getitem__, picked)), out


def _promote(columns: dict[str, Any], promoted_rows: np.ndarray, own_ids: list[str], contact_numbers: np.ndarray,
             contact_birthdays: np.ndarray, built: _Built, plan: _Plan) -> None:
    """Append the contacts that become customers themselves (no company) as customer rows, in id order."""
    loose_ids, loose_numbers, lcols = _merge(built.drain("loose"))
    where = _Rows(loose_numbers).of(contact_numbers[promoted_rows])  # row among the contacts read whole, or -1
    found = where >= 0
    safe = np.where(found, where, 0)
    extras = plan.extras.get("contacts", ())
    for name, kind in _KINDS[Customer].items():
        if name == "id":
            values: Any = own_ids
        elif name == "object_type":
            values = ["contacts"] * len(own_ids)
        elif name in ("contact_ids", "primary_contact_id"):
            continue  # the caller's
        elif name == "extra":
            values = [tuple((extra, lcols[attr][k] if attr in lcols else None) for attr, extra in extras)
                      if ok else tuple((extra, None) for _, extra in extras)
                      for k, ok in zip(safe.tolist(), found.tolist())] if extras else [()] * len(own_ids)
        elif name == "birthday":
            read = lcols.get("birthday")
            values = np.where(found, read[safe] if read is not None and read.size else _NAN,
                              contact_birthdays[promoted_rows])
        elif kind in ("time", "date"):
            read = lcols.get(name)
            values = np.where(found, read[safe], _NAN) if read is not None and read.size else np.full(len(own_ids), _NAN)
        else:
            read = lcols.get(name)
            values = [read[k] if ok else None for k, ok in zip(safe.tolist(), found.tolist())] if read is not None \
                else [None] * len(own_ids)
        column = columns[name]
        if isinstance(column, np.ndarray):
            columns[name] = np.concatenate((column, np.asarray(values, dtype=np.float64)))
        else:
            column.extend(values)
