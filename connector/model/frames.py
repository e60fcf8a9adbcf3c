"""The model's frames: their columns and dtypes, defined once, and the frames of hand-made row objects (tests).

One frame per record type, one row per record; each past a long table (owner id, instant, value) ascending in time.
Ids are strings; times ``Datetime("us", "UTC")``; calendar dates ``Date``; money ``Decimal(38, 6)`` in the
reporting currency; a value that could not be read is null. Row order is the store's (ids as text), customers that
are contacts without a company after the companies (see ``build``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields as dataclass_fields
from typing import Any

import polars as pl

from connector.model.rows import Customer, Deal, FeedbackResponse, LineItem, Subscription, Usage

TIME = pl.Datetime("us", "UTC")
DATE = pl.Date
MONEY = pl.Decimal(38, 6)
DECIMAL = pl.Decimal(38, 6)
IDS = pl.List(pl.String)

# kind of a dataclass field (its annotation) -> dtype of its column
_DTYPES: dict[str, pl.DataType] = {
    "str": pl.String, "str | None": pl.String, "datetime | None": TIME, "date | None": DATE, "Decimal | None": MONEY,
    "int | None": pl.Int64, "float | None": pl.Float64, "bool": pl.Boolean, "tuple[str, ...]": IDS,
}

# The past of a field: (frame name, owner column, field, value dtype); "owner" is the subscription or customer id.
HISTORIES: dict[str, tuple[str, str, pl.DataType]] = {
    "mrr_history": ("subscriptions", "mrr", MONEY),
    "status_history": ("subscriptions", "status", pl.String),
    "active_days_history": ("usage", "active_days_30d", pl.Int64),
    "logins_history": ("usage", "logins_30d", pl.Int64),
    "seats_used_history": ("usage", "seats_used", pl.Int64),
}
HISTORY_SCHEMA = {"owner": pl.String, "at": TIME}
_LIVE = pl.List(pl.String)


def _schema(cls: type, skip: Iterable[str] = ()) -> dict[str, pl.DataType]:
    out: dict[str, pl.DataType] = {}
    for f in dataclass_fields(cls):
        if f.name in skip or f.name in HISTORIES:
            continue
        out[f.name] = _DTYPES.get(str(f.type), pl.Object)
    return out


SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "customers": _schema(Customer, skip=("extra",)),
    "subscriptions": {**_schema(Subscription, skip=("live_statuses",)), "live_statuses": _LIVE,
                      "past_due_grace_days": pl.Int64},
    "deals": _schema(Deal),
    "line_items": _schema(LineItem),
    "feedback": _schema(FeedbackResponse),
    "usage": _schema(Usage),
}
ROW_CLASS: dict[str, type] = {"customers": Customer, "subscriptions": Subscription, "deals": Deal,
                              "line_items": LineItem, "feedback": FeedbackResponse, "usage": Usage}


@dataclass(frozen=True, eq=False)
class Frames:
    """The portfolio as polars frames (see the module docstring). ``extras``: customer id + one column per mapped
    custom field (name as in sources.yaml), for custom rules. ``histories``: name (``HISTORIES``) -> frame of
    (owner, at, value) sorted by owner then time."""

    customers: pl.DataFrame
    subscriptions: pl.DataFrame
    deals: pl.DataFrame
    line_items: pl.DataFrame
    feedback: pl.DataFrame
    usage: pl.DataFrame
    histories: Mapping[str, pl.DataFrame]
    extras: pl.DataFrame


def empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[name])


def empty_history(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema={**HISTORY_SCHEMA, "value": HISTORIES[name][2]})


def frames_of_rows(customers: Mapping[str, Customer], subscriptions: Sequence[Subscription], deals: Sequence[Deal],
                   line_items: Sequence[LineItem], feedback: Sequence[FeedbackResponse],
                   usage: Mapping[str, Usage]) -> Frames:
    """The frames of hand-made row objects (tests, small examples): the slow, general way in."""
    parts = {"customers": list(customers.values()), "subscriptions": list(subscriptions), "deals": list(deals),
             "line_items": list(line_items), "feedback": list(feedback), "usage": list(usage.values())}
    frames = {name: _frame(name, rows) for name, rows in parts.items()}
    histories = {}
    for name, (part, _, dtype) in HISTORIES.items():
        key = "id" if part == "subscriptions" else "customer_id"
        owners, ats, values = [], [], []
        for row in parts[part]:
            for at, value in getattr(row, name):
                owners.append(getattr(row, key))
                ats.append(at)
                values.append(value)
        histories[name] = pl.DataFrame({"owner": owners, "at": ats, "value": values},
                                       schema={**HISTORY_SCHEMA, "value": dtype}, strict=False)
    names = sorted({name for c in parts["customers"] for name, _ in c.extra})
    extras = pl.DataFrame(
        {"customer_id": [c.id for c in parts["customers"]],
         **{name: [dict(c.extra).get(name) for c in parts["customers"]] for name in names}},
        schema_overrides={"customer_id": pl.String}, strict=False,
    )
    return Frames(**frames, histories=histories, extras=extras)


def _frame(name: str, rows: list[Any]) -> pl.DataFrame:
    schema = SCHEMAS[name]
    columns: dict[str, list[Any]] = {}
    for column in schema:
        values = [getattr(row, column) for row in rows]
        if column == "live_statuses":
            values = [sorted(v) for v in values]
        elif schema[column] == IDS:
            values = [list(v) for v in values]
        columns[column] = values
    return pl.DataFrame(columns, schema=schema, strict=False)
