"""The desired values: what the computed stages want written, per customer and field, as columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from connector.mapping.writeback import OutputMapping, WritebackConfig
from connector.writeback.format import format_column

# Python types a dict of outputs may hold that make a typed column without changing any written string.
_TYPED = (str, int, float, bool, Decimal, date, datetime)


@dataclass(frozen=True)
class OutputColumns:
    """The computed outputs as columns aligned with ``ids`` (one row per customer). ``present``: for a field some
    customers lack, which rows have it; a customer without a field leaves its properties alone, a null value
    clears them."""

    ids: pl.Series
    values: Mapping[str, pl.Series]
    present: Mapping[str, pl.Series]

    @classmethod
    def of(cls, outputs: "OutputColumns | pl.DataFrame | Mapping[str, Mapping[str, Any]]") -> "OutputColumns":
        """From a frame (``customer_id`` + one column per field: every customer has every field) or from
        ``{customer_id: {field: value}}`` (a field missing from a customer's dict is absent for that customer)."""
        if isinstance(outputs, OutputColumns):
            return outputs
        if isinstance(outputs, pl.DataFrame):
            return cls(outputs["customer_id"], {name: outputs[name] for name in outputs.columns
                                                 if name != "customer_id"}, {})
        ids = list(outputs)
        names = list(dict.fromkeys(name for row in outputs.values() for name in row))
        rows = list(outputs.values())
        values = {name: _column([row.get(name) for row in rows]) for name in names}
        present = {}
        for name in names:
            mask = [name in row for row in rows]
            if not all(mask):
                present[name] = pl.Series(mask, dtype=pl.Boolean)
        return cls(pl.Series("customer_id", ids, dtype=pl.String), values, present)

    def get(self, name: str) -> pl.DataFrame | None:
        """(customer_id, value) of the customers that have the field."""
        if name not in self.values:
            return None
        frame = pl.DataFrame([self.ids.alias("customer_id"), self.values[name].alias("value")])
        return frame.filter(self.present[name]) if name in self.present else frame

    def text(self, output: OutputMapping) -> pl.Series | None:
        """``output``'s field in its property's format, aligned with ``ids``; null: no value."""
        if output.field not in self.values:
            return None
        return format_column(self.values[output.field], output.property, decimals=output.decimals)

    def formatted(self, output: OutputMapping) -> pl.DataFrame | None:
        """(customer_id, text) of the customers that have ``output``'s field."""
        text = self.text(output)
        if text is None:
            return None
        frame = pl.DataFrame([self.ids.alias("customer_id"), text.alias("text")])
        return frame.filter(self.present[output.field]) if output.field in self.present else frame


def _column(values: list[Any]) -> pl.Series:
    """A typed column where every value has one plain Python type (lists: of text); else Python objects, which are
    formatted one at a time exactly as before (an int beside a float must not become 1.0)."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {list, tuple, set, frozenset}:
        if all(isinstance(x, str) for v in values if v is not None for x in v):
            return pl.Series([None if v is None else list(v) for v in values], dtype=pl.List(pl.String))
    elif len(kinds) == 1 and next(iter(kinds)) in _TYPED:
        try:
            return pl.Series(values, strict=False)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            pass
    return pl.Series(values, dtype=pl.Object)


def output_frame(features: Any, health: Any, segments: Any, config: WritebackConfig | None) -> pl.DataFrame:
    """The outputs of a run: ``customer_id`` + each output field (and ``tags``, which enrollments read), from the
    features joined with the health and segment results on the customer id.

    Health and segment columns win over a feature of the same name. ``features``: a frame or a FeatureTable
    (``.frame``); ``health`` / ``segments``: frames keyed by ``customer_id`` (or, transitional, ``{customer_id:
    {field: value}}`` as ``health_features`` / ``segment_features`` give them).
    """
    wanted = {o.field for o in config.outputs} if config is not None else set()
    wanted.add("tags")
    base = features if isinstance(features, pl.DataFrame) else features.frame
    stages = [_stage_frame(health), _stage_frame(segments)]
    taken = {name for stage in stages for name in stage.columns if name != "customer_id"}
    out = base.select("customer_id", *sorted((wanted & set(base.columns)) - taken))
    for stage in stages:
        keep = sorted(wanted & set(stage.columns))
        out = out.join(stage.select("customer_id", *keep), on="customer_id", how="left", maintain_order="left")
    return out


def _stage_frame(rows: Any) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        return rows
    # TRANSITIONAL: until the health and segment stages hand over frames, their per-customer fields become columns.
    frame = pl.from_dicts(list(rows.values()), infer_schema_length=None) if rows else pl.DataFrame()
    return frame.with_columns(pl.Series("customer_id", list(rows), dtype=pl.String))
