"""A mapped field as polars expressions: HubSpot's raw strings → the canonical typed value, and why a value was refused.

Each field of sources.yaml becomes one ``Field``: ``value`` (typed, null when empty or malformed), ``problem``
(the reason a present value was refused, else null), ``raw`` and ``source`` (the value and property it came from,
for the data issue). The expressions read one String column per HubSpot property, as the store gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from connector.mapping.sources import FREQUENCY_ALIASES
from connector.model.frames import DATE, DECIMAL, IDS, MONEY, TIME

_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off")
_ISO = "%Y-%m-%dT%H:%M:%S%.f%#z"  # HubSpot's 2024-01-02T03:04:05.678Z, or an explicit offset
_NUMBER = r"^\s*[+-]?[0-9]{30,}(\.[0-9]*)?\s*$"  # more integer digits than Decimal(38, 6) holds
# canonical kind -> dtype of its column
KIND_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String, "money": MONEY, "decimal": DECIMAL, "int": pl.Int64, "float": pl.Float64, "date": DATE,
    "datetime": TIME, "bool": pl.Boolean, "tags": IDS, "status": pl.String, "frequency": pl.String,
    "group": pl.String,
}
EXTRA_KINDS = {"number": "decimal", "integer": "int", "money": "money", "date": "date", "datetime": "datetime",
               "bool": "bool", "multi_select": "tags"}


@dataclass(frozen=True)
class Field:
    """One canonical field compiled: expressions over a frame of raw property strings."""

    name: str
    value: pl.Expr
    problem: pl.Expr
    raw: pl.Expr
    source: pl.Expr
    properties: tuple[str, ...]
    checked: bool = True  # False: the field cannot be malformed (a constant, a join of texts)


def _present(name: str) -> pl.Expr:
    """A property's raw string, "" (HubSpot's "no value") read as null."""
    column = pl.col(name)
    return pl.when(column != "").then(column)


def parse_datetime(raw: pl.Expr) -> pl.Expr:
    """ISO 8601 with a zone, a plain date (midnight UTC) or epoch milliseconds → UTC datetime; null otherwise."""
    epoch = pl.from_epoch(raw.cast(pl.Int64, strict=False), time_unit="ms").dt.replace_time_zone("UTC")
    day = raw.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    iso = raw.str.to_datetime(_ISO, time_unit="us", time_zone="UTC", strict=False)
    digits = raw.str.contains(r"^[0-9]+$")
    return (pl.when(digits).then(epoch.cast(TIME))
            .when(raw.str.len_chars() == 10).then(day)
            .otherwise(iso))


def datetime_problem(raw: pl.Expr) -> pl.Expr:
    """Why ``parse_datetime`` gave no value for a present raw string."""
    zoned = raw.str.contains("T") & (raw.str.ends_with("Z") | raw.str.slice(10).str.contains(r"[+-]"))
    return (pl.when(raw.str.contains(r"^[0-9]+$")).then(pl.lit("not a valid epoch-milliseconds time"))
            .when((raw.str.len_chars() != 10) & ~zoned).then(pl.lit("not an ISO 8601 date-time with a time zone"))
            .otherwise(pl.lit("not a valid date-time")))


def parse_date(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A plain date, or the UTC date of a date-time: (value, reason when refused)."""
    plain = (raw.str.len_chars() == 10) & ~raw.str.contains(r"^[0-9]+$")
    value = pl.when(plain).then(raw.str.to_date("%Y-%m-%d", strict=False)).otherwise(parse_datetime(raw).dt.date())
    return value, pl.when(plain).then(pl.lit("not a valid date")).otherwise(datetime_problem(raw))


def _whole(number: pl.Expr) -> pl.Expr:
    """A decimal that is a whole number, as Int64 (null otherwise)."""
    return pl.when(number == number.floor()).then(number.cast(pl.Int64, strict=False))


def parse_int(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(Int64 value, reason when refused)."""
    number = raw.cast(DECIMAL, strict=False)
    value = pl.coalesce(raw.cast(pl.Int64, strict=False), _whole(number))
    return value, pl.when(number.is_null()).then(pl.lit("not a number")).otherwise(pl.lit("not a whole number"))


def parse_bool(raw: pl.Expr) -> pl.Expr:
    key = raw.str.strip_chars().str.to_lowercase()
    return pl.when(key.is_in(_TRUE)).then(True).when(key.is_in(_FALSE)).then(False).otherwise(None)


def _lookup(raw: pl.Expr, table: dict[str, str]) -> pl.Expr:
    if not table:
        return pl.lit(None, dtype=pl.String)
    return raw.replace_strict(table, default=None, return_dtype=pl.String)


def _transform(spec: Any, pack: Any, raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(value, reason when a present raw value gives no value) of the field's transform."""
    transform = spec.transform
    if transform == "money":
        currency = pack.portal.currency
        amount = raw.cast(MONEY, strict=False)
        code = pl.lit(spec.currency) if spec.currency else (
            pl.col(spec.currency_property) if spec.currency_property else pl.lit(None, dtype=pl.String))
        rates = {str(k): str(v) for k, v in currency.rates.items()}
        rates.update({currency.reporting: "1", "": "1"})
        rate = pl.when(code.is_null()).then(pl.lit("1")).otherwise(_lookup(code, rates)).cast(MONEY)
        value = amount * rate
        reason = (pl.when(rate.is_null())
                  .then(pl.format('no FX rate for currency "{}" in portal.yaml', code))
                  .otherwise(pl.lit("not a number")))
        return value, reason
    if transform == "number":
        return raw.cast(DECIMAL, strict=False), pl.lit("not a number")
    if transform == "integer":
        return parse_int(raw)
    if transform == "date":
        return parse_date(raw)
    if transform == "datetime":
        return parse_datetime(raw), datetime_problem(raw)
    if transform == "bool":
        return parse_bool(raw), pl.lit("not a boolean (true/false)")
    if transform == "multi_select":
        return raw.str.split(";").list.eval(pl.element().filter(pl.element() != "")), pl.lit(None, dtype=pl.String)
    if transform == "frequency":
        aliases = {**FREQUENCY_ALIASES, **{k.lower(): v for k, v in pack.sources.frequency_aliases.items()}}
        exact = {**aliases, **dict(spec.values or {})}
        spelled = raw.str.strip_chars().str.to_lowercase().str.replace_all(" ", "_").str.replace_all("-", "_")
        return pl.coalesce(_lookup(raw, exact), _lookup(spelled, aliases)), pl.lit("unknown billing frequency")
    if transform == "enumeration" and (spec.values is not None or spec.default is not None):
        table = dict(spec.values or {})
        value = raw.replace_strict(table, default=spec.default, return_dtype=pl.String)
        return value, pl.lit("unknown enumeration value")
    return raw, pl.lit(None, dtype=pl.String)  # string, enumeration passed through


def _to_kind(value: pl.Expr, reason: pl.Expr, transform: str, kind: str, pack: Any) -> tuple[pl.Expr, pl.Expr]:
    """The transform's value brought to the canonical kind's type."""
    if kind == "date" and transform == "datetime":
        return value.dt.convert_time_zone(pack.portal.periods.time_zone).dt.date(), reason
    if kind == "datetime" and transform == "date":
        return value.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), reason
    if kind == "int" and transform == "number":
        return _whole(value), pl.when(value.is_null()).then(reason).otherwise(pl.lit("not a whole number"))
    if kind == "int" and transform == "enumeration":
        return parse_int(value)
    if kind == "bool" and transform == "enumeration":
        return parse_bool(value), pl.lit("not a boolean (true/false)")
    return value.cast(KIND_DTYPES[kind], strict=False), reason


def _in_range(value: pl.Expr, spec: Any, kind: str) -> tuple[pl.Expr, pl.Expr]:
    low, high = spec.range
    dtype = KIND_DTYPES[kind]
    bound = (lambda x: pl.lit(str(Decimal(str(x)))).cast(dtype)) if dtype in (MONEY, DECIMAL) else (
        lambda x: pl.lit(x).cast(pl.Float64))
    subject = value if dtype in (MONEY, DECIMAL) else value.cast(pl.Float64)
    inside = (subject >= bound(low)) & (subject <= bound(high))
    return inside, pl.lit(f"out of range [{low:g}, {high:g}]")


def compile_field(name: str, spec: Any, kind: str, pack: Any) -> Field:
    """One field of sources.yaml (``kind``: its canonical kind) compiled into expressions."""
    dtype = KIND_DTYPES[kind]
    if spec.constant is not None:
        text = str(spec.constant).lower() if isinstance(spec.constant, bool) else str(spec.constant)
        frame = pl.DataFrame({"constant": [text]})
        inner = compile_field(name, spec.model_copy(update={"constant": None, "property": "constant"}), kind, pack)
        value = frame.select(inner.value).to_series()
        nothing = pl.lit(None, dtype=pl.String)
        return Field(name, pl.lit(value[0], dtype=dtype), nothing, nothing, nothing, (), checked=False)
    names = (spec.property,) if isinstance(spec.property, str) else tuple(spec.property)
    if spec.transform == "join":
        parts = [pl.col(p).str.strip_chars() for p in names]
        joined = pl.concat_str([pl.when(p != "").then(p) for p in parts], separator=" ", ignore_nulls=True)
        value = pl.when(joined != "").then(joined)
        nothing = pl.lit(None, dtype=pl.String)
        return Field(name, value, nothing, nothing, nothing, names + _currency(spec), checked=False)
    raw = pl.coalesce([_present(p) for p in names]) if len(names) > 1 else _present(names[0])
    source = pl.coalesce([pl.when(_present(p).is_not_null()).then(pl.lit(p)) for p in names])
    value, reason = _transform(spec, pack, raw)
    value, reason = _to_kind(value, reason, spec.transform, kind, pack)
    problem = pl.when(raw.is_not_null() & value.is_null()).then(reason)
    if spec.transform in ("number", "integer", "money"):
        # a number too large for the model's decimals (38 digits) is out of any plausible range
        huge = pl.lit(f"out of range [{spec.range[0]:g}, {spec.range[1]:g}]" if spec.range else "out of range")
        problem = pl.when(raw.is_not_null() & value.is_null() & raw.str.contains(_NUMBER)
                          & ~reason.str.starts_with("no FX rate")).then(huge).otherwise(problem)
    if spec.range is not None:
        inside, why = _in_range(value, spec, kind)
        problem = pl.when(value.is_not_null() & ~inside).then(why).otherwise(problem)
        value = pl.when(inside).then(value)
    return Field(name, value.cast(dtype), problem.cast(pl.String), raw, source, names + _currency(spec))


def _currency(spec: Any) -> tuple[str, ...]:
    return (spec.currency_property,) if spec.transform == "money" and spec.currency_property else ()
