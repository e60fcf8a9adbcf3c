"""Portfolio: one portal's model as polars frames, with row views where a person looks at one record."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, Sequence, ValuesView
from typing import Any

import polars as pl

from connector.model.frames import HISTORIES, IDS, ROW_CLASS, Frames, frames_of_rows
from connector.model.rows import Customer, DataIssue, Deal, FeedbackResponse, LineItem, Subscription, Usage

_CHUNK = 65_536  # rows made at a time when a view is iterated


class _Rows(Sequence[Any]):
    """The rows of one of the frames as its frozen dataclass, made on access (``rows[i]``; iteration a chunk of the
    frame at a time), with their pasts from the history frames and a customer's mapped custom fields."""

    def __init__(self, name: str, frames: Frames):
        self.name, self.frames, self.cls = name, frames, ROW_CLASS[name]
        self.frame: pl.DataFrame = getattr(frames, name)
        self.pasts = [history for history, (part, _, _) in HISTORIES.items() if part == name]
        self.key = "id" if name == "subscriptions" else "customer_id"  # the owner of a past

    def __len__(self) -> int:
        return self.frame.height

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("row out of range")
        return self._made(self.frame.slice(i, 1))[0]

    def __iter__(self) -> Iterator[Any]:
        for lo in range(0, len(self), _CHUNK):
            yield from self._made(self.frame.slice(lo, _CHUNK))

    def _made(self, part: pl.DataFrame) -> list[Any]:
        pasts: dict[str, dict[str, tuple[Any, ...]]] = {}
        for history in self.pasts:
            owners = part.select(pl.col(self.key).alias("owner"))
            grouped = (self.frames.histories[history].join(owners, on="owner", how="semi", maintain_order="left")
                       .group_by("owner", maintain_order=True).agg("at", "value"))
            pasts[history] = {owner: tuple(zip(ats, values)) for owner, ats, values in grouped.iter_rows()}
        extras: list[Any] = []
        if self.name == "customers":
            names = [c for c in self.frames.extras.columns if c != "customer_id"]
            joined = part.select("id").join(self.frames.extras, left_on="id", right_on="customer_id", how="left",
                                            maintain_order="left")
            extras = [tuple(zip(names, values)) for values in joined.select(names).iter_rows()] if names else []
        out = []
        for k, row in enumerate(part.iter_rows(named=True)):
            for column, dtype in part.schema.items():
                if column == "live_statuses":
                    row[column] = frozenset(row[column] or ())
                elif dtype == IDS:
                    row[column] = tuple(row[column] or ())
                elif dtype == pl.Boolean:
                    row[column] = bool(row[column])
            for history in self.pasts:
                row[history] = pasts[history].get(row[self.key], ())
            if self.name == "customers":
                row["extra"] = extras[k] if extras else ()
            out.append(self.cls(**row))
        return out


class _Keyed(Mapping[str, Any]):
    """``{id: row}`` over a frame's rows: rows are made on access, so a million customers are never all objects."""

    def __init__(self, rows: _Rows, key: str):
        self.rows, self.key = rows, key
        self._index: dict[str, int] | None = None

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.rows.frame.get_column(self.key).to_list())}
        return self._index

    def __getitem__(self, key: str) -> Any:
        return self.rows[self.index[key]]

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows.frame.get_column(self.key).to_list())

    def __len__(self) -> int:
        return len(self.rows)

    def values(self) -> ValuesView[Any]:
        return _Values(self)

    def items(self) -> ItemsView[str, Any]:
        return _Items(self)


class _Values(ValuesView):
    def __iter__(self):  # a chunk of rows at a time, not a lookup per key
        return iter(self._mapping.rows)


class _Items(ItemsView):
    def __iter__(self):
        return zip(self._mapping, self._mapping.rows)


class Portfolio:
    """Everything the pure core needs, for one portal.

    Built by ``build_portfolio`` as frames (``frames``); given as row objects (tests, small examples) its frames are
    derived on first use. Either way ``customers`` / ``usage`` read as ``{id: row}`` and ``subscriptions`` / ``deals``
    / ``line_items`` / ``feedback`` as sequences of the frozen dataclasses (row views)."""

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
        frames: Frames | None = None,
    ):
        self.reporting_currency = reporting_currency
        self.issues = tuple(issues)
        self._frames = frames
        if frames is not None:
            self.customers: Mapping[str, Customer] = _Keyed(_Rows("customers", frames), "id")
            self.subscriptions: Sequence[Subscription] = _Rows("subscriptions", frames)
            self.deals: Sequence[Deal] = _Rows("deals", frames)
            self.line_items: Sequence[LineItem] = _Rows("line_items", frames)
            self.feedback: Sequence[FeedbackResponse] = _Rows("feedback", frames)
            self.usage: Mapping[str, Usage] = _Keyed(_Rows("usage", frames), "customer_id")
        else:
            self.customers = customers if customers is not None else {}
            self.subscriptions = tuple(subscriptions)
            self.deals = tuple(deals)
            self.line_items = tuple(line_items)
            self.feedback = tuple(feedback)
            self.usage = usage if usage is not None else {}

    @property
    def frames(self) -> Frames:
        if self._frames is None:
            self._frames = frames_of_rows(self.customers, self.subscriptions, self.deals, self.line_items,
                                          self.feedback, self.usage)
        return self._frames

    def replace(self, **changes: Any) -> "Portfolio":
        """A copy with some parts replaced (as ``dataclasses.replace``): built from row objects anew."""
        parts = {name: getattr(self, name) for name in ("customers", "subscriptions", "deals", "line_items", "feedback",
                                                          "usage", "reporting_currency", "issues")}
        parts.update(changes)
        return Portfolio(**parts)

    def subscriptions_by_customer(self) -> dict[str, list[Subscription]]:
        out: dict[str, list[Subscription]] = {}
        for sub in self.subscriptions:
            if sub.customer_id is not None:
                out.setdefault(sub.customer_id, []).append(sub)
        return out
