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
    """The computed outputs as one (customer_id, value) frame per field. A customer absent from a field's frame
    leaves that field's properties alone; a null value clears them."""

    fields: Mapping[str, pl.DataFrame]

    @classmethod
    def of(cls, outputs: "OutputColumns | pl.DataFrame | Mapping[str, Mapping[str, Any]]") -> "OutputColumns":
        """From a frame (``customer_id`` + one column per field: every customer has every field) or from
        ``{customer_id: {field: value}}`` (a field missing from a customer's dict is absent for that customer)."""
        if isinstance(outputs, OutputColumns):
            return outputs
        if isinstance(outputs, pl.DataFrame):
            return cls({name: outputs.select("customer_id", pl.col(name).alias("value"))
                        for name in outputs.columns if name != "customer_id"})
        ids: dict[str, list[str]] = {}
        values: dict[str, list[Any]] = {}
        for customer_id, row in outputs.items():
            for name, value in row.items():
                ids.setdefault(name, []).append(customer_id)
                values.setdefault(name, []).append(value)
        return cls({name: pl.DataFrame({"customer_id": pl.Series(ids[name], dtype=pl.String),
                                        "value": _column(values[name])}) for name in ids})

    def get(self, name: str) -> pl.DataFrame | None:
        return self.fields.get(name)

    def formatted(self, output: OutputMapping) -> pl.DataFrame | None:
        """(customer_id, text) of ``output``'s field in its property's format; null text: no value."""
        frame = self.fields.get(output.field)
        if frame is None:
            return None
        text = format_column(frame["value"], output.property, decimals=output.decimals)
        return frame.select("customer_id").with_columns(text.alias("text"))


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
