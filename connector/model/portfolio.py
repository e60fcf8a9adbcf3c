"""Portfolio: one portal's model as polars frames, with row views where a person looks at one record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from connector.model.columns import Flat, Table, Tables, _Keyed
from connector.model.frames import HISTORIES, IDS, ROW_CLASS, TIME, Frames, frames_of_rows
from connector.model.rows import Customer, DataIssue, Deal, FeedbackResponse, LineItem, Subscription, Usage

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Portfolio:
    """Everything the pure core needs, for one portal.

    Built by ``build_portfolio`` as frames (``frames``); given as row objects (tests, small examples) its frames are
    derived on first use. Either way ``customers`` / ``usage`` read as ``{id: row}`` and ``subscriptions`` / ``deals``
    / ``line_items`` / ``feedback`` as sequences of the frozen dataclasses (row views). ``tables`` is the numpy
    form the metrics not yet moved onto the frames read (transitional)."""

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
        self._tables: Tables | None = None
        if frames is not None:
            tables = self.tables
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
    def frames(self) -> Frames:
        if self._frames is None:
            self._frames = frames_of_rows(self.customers, self.subscriptions, self.deals, self.line_items,
                                          self.feedback, self.usage)
        return self._frames

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            if self._frames is not None:
                self._tables = tables_of_frames(self._frames)
            else:
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
        """A copy with some parts replaced (as ``dataclasses.replace``): built from row objects anew."""
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


# ---------------------------------------------------------------- frames -> the numpy columns (transitional)


def _seconds(column: pl.Series) -> np.ndarray:
    return (column.dt.epoch("us").cast(pl.Float64) / 1e6).fill_null(float("nan")).to_numpy().copy()


def _ordinals(column: pl.Series) -> np.ndarray:
    return (column.cast(pl.Int64) + _EPOCH_ORDINAL).cast(pl.Float64).fill_null(float("nan")).to_numpy().copy()


def _flat(frame: pl.DataFrame, key: str, history: pl.DataFrame) -> Flat:
    rows = frame.select(pl.col(key).alias("owner")).with_row_index("row")
    entries = history.join(rows, on="owner", how="inner").sort(["row", "at"], maintain_order=True)
    counts = np.bincount(entries["row"].to_numpy(), minlength=frame.height) if entries.height else np.zeros(
        frame.height, dtype=np.int64)
    offsets = np.zeros(frame.height + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Flat(offsets, _seconds(entries["at"]), entries["value"].to_list())


def _table(name: str, frame: pl.DataFrame, frames: Frames) -> Table:
    cls = ROW_CLASS[name]
    columns: dict[str, Any] = {}
    for column, dtype in frame.schema.items():
        series = frame[column]
        if dtype == TIME:
            columns[column] = _seconds(series)
        elif dtype == pl.Date:
            columns[column] = _ordinals(series)
        elif dtype == pl.Boolean:
            columns[column] = series.fill_null(False).to_numpy().copy()
        elif column == "live_statuses":
            shared: dict[tuple[str, ...], frozenset[str]] = {}
            columns[column] = [shared.setdefault(tuple(v), frozenset(v)) for v in series.to_list()]
        elif dtype == IDS:
            columns[column] = [tuple(v) if v is not None else () for v in series.to_list()]
        else:
            columns[column] = series.to_list()
    key = "id" if name == "subscriptions" else "customer_id"
    for history, (part, _, _) in HISTORIES.items():
        if part == name:
            columns[history] = _flat(frame, key, frames.histories[history])
    if name == "customers":
        columns["extra"] = _extra(frame, frames.extras)
    return Table(cls, columns, frame.height)


def _extra(customers: pl.DataFrame, extras: pl.DataFrame) -> list[Any]:
    names = [c for c in extras.columns if c != "customer_id"]
    if not names:
        return [()] * customers.height
    joined = customers.select("id").join(extras, left_on="id", right_on="customer_id", how="left",
                                         maintain_order="left")
    shared: dict[tuple[Any, ...], tuple[tuple[str, Any], ...]] = {}
    return [shared.setdefault(row, tuple(zip(names, row))) for row in joined.select(names).iter_rows()]


def tables_of_frames(frames: Frames) -> Tables:
    """The numpy columns the metrics not yet on frames read, with each row's customer row resolved once."""
    customers = _table("customers", frames.customers, frames)
    index = frames.customers.select("id").with_row_index("row")
    out = {"customers": customers}
    for name in ("subscriptions", "deals", "line_items", "feedback", "usage"):
        frame = getattr(frames, name)
        table = _table(name, frame, frames)
        if "customer_id" in frame.columns:
            rows = frame.select("customer_id").join(index, left_on="customer_id", right_on="id", how="left",
                                                    maintain_order="left")["row"]
            owner = rows.cast(pl.Int64).fill_null(-1).to_numpy().copy()
            owner.flags.writeable = False
            table.owner_rows["customer_id"] = owner
            table.owner_table = customers
        out[name] = table
    return Tables(**out)
