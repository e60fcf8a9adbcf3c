"""The portfolio as the metrics read it today: numpy columns per record type (``Table``), derived from the frames.

TRANSITIONAL: the metrics still read these columns; they move onto the polars frames one module at a time, and
this module goes with the last of them. Nothing here reads the store or builds the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields as dataclass_fields
from datetime import date, datetime, timezone
from itertools import chain, compress, repeat
from operator import attrgetter, is_not, itemgetter
from typing import Any, Callable

import numpy as np

from connector.model.rows import Customer, Deal, FeedbackResponse, LineItem, Subscription, Timeline, Usage

_UTC = timezone.utc
_NAN = float("nan")
_first, _second = itemgetter(0), itemgetter(1)


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

