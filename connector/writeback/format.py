"""HubSpot's value formats: one computed value (or a column of them) as the string HubSpot returns, and comparison."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import polars as pl

from connector.mapping.writeback import PropertyDef

MAX_TEXT = 65_536  # a string property holds at most this many characters (API-NOTES §4); longer is refused


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # str() is the shortest repr, so 0.1 stays 0.1 rather than 0.1000000000000000055…
        return Decimal(str(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def format_number(value: Any, decimals: int | None = None) -> str | None:
    """A number as HubSpot returns it: no exponent, no trailing zeros or ".0", no "-0"."""
    number = _decimal(value)
    if number is None:
        return None
    if decimals is not None:
        number = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    number = number.normalize()
    if number == 0:
        return "0"
    return format(number, "f")


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken as UTC: the pure core only deals in UTC.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def format_datetime(moment: datetime) -> str:
    """ISO 8601 with milliseconds and Z, HubSpot's own timestamp format."""
    moment = _utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_instant(text: str) -> datetime | None:
    text = text.strip()
    if re.fullmatch(r"-?\d{9,}", text):  # epoch milliseconds, HubSpot's other timestamp format
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _utc(parsed)


def _parse_date(text: str) -> date | None:
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    moment = _parse_instant(text)
    return moment.date() if moment else None


def format_value(value: Any, prop: PropertyDef, *, decimals: int | None = None) -> str | None:
    """A computed value in HubSpot's string form for ``prop``; None means "no value" (written as "")."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        # Multi-select: `;`-joined, sorted so the same set always gives the same string.
        items = sorted({str(v) for v in value if v is not None and str(v) != ""})
        return ";".join(items) if items else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if prop.type == "number":
        return format_number(value, decimals)
    if prop.type == "date":
        if isinstance(value, datetime):
            return _utc(value).date().isoformat()  # midnight UTC: HubSpot rejects any other time on a date
        if isinstance(value, date):
            return value.isoformat()
        parsed = _parse_date(str(value))
        return parsed.isoformat() if parsed else str(value)
    if prop.type == "datetime":
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, date):
            return format_datetime(datetime(value.year, value.month, value.day, tzinfo=timezone.utc))
        parsed = _parse_instant(str(value))
        return format_datetime(parsed) if parsed else str(value)
    if isinstance(value, (int, float, Decimal)):
        return format_number(value, decimals)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)[:MAX_TEXT]
    return text if text != "" else None


def same_value(prop: PropertyDef | None, current: str | None, desired: str | None) -> bool:
    """Whether the CRM's ``current`` string already holds ``desired`` in ``prop``'s format.

    None, "" and a missing value are all "empty". Without a property definition (rollback of old ledger
    rows), numbers compare by value and everything else exactly.
    """
    current = None if current is None or current == "" else current
    desired = None if desired is None or desired == "" else desired
    if current is None or desired is None:
        return current is desired
    if current == desired:
        return True
    kind = prop.type if prop is not None else None
    if kind == "enumeration" and prop is not None and prop.multi:
        return _multi(current) == _multi(desired)
    if kind == "bool":
        return current.strip().lower() == desired.strip().lower()
    if kind == "date":
        left, right = _parse_date(current), _parse_date(desired)
        return left is not None and left == right
    if kind == "datetime":
        left, right = _parse_instant(current), _parse_instant(desired)
        return left is not None and right is not None and _ms(left) == _ms(right)
    if kind in ("number", None):
        left, right = _decimal(current), _decimal(desired)
        return left is not None and right is not None and left == right
    return False


def _multi(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(";") if part.strip())


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)



# ---------------------------------------------------------------- the same formats over a column

# A float's shortest repr (polars and Python pick the same digits) parsed exactly: plain notation has at most 21
# decimals and 16 integer digits (polars switches to an exponent below 1e-5 and from 1e16), 37 of Decimal's 38.
_FLOAT_SCALE = 21
_DATE_TYPES = ("date", "datetime")


def format_column(values: pl.Series, prop: PropertyDef, *, decimals: int | None = None) -> pl.Series:
    """``format_value`` of every value of a column, as a String column (null: no value).

    The common dtypes are polars expressions; what they cannot say exactly (exponent floats, years before 1000, a
    text into a number or date property) goes through ``format_value`` once per distinct value, and Python objects
    or lists of non-text once per row. Tag sets, and numbers that repeat (prices, plans), are formatted once per
    distinct value and joined back.
    """
    dtype = values.dtype
    if dtype == pl.Null:
        return pl.Series(values.name, [None] * len(values), dtype=pl.String)
    if dtype.is_nested() or dtype.is_float() or isinstance(dtype, pl.Decimal):
        distinct = values.unique()
        if dtype.is_nested() or len(distinct) * 2 <= len(values):
            lookup = pl.DataFrame({"v": distinct, "text": _formatted(distinct, prop, decimals)})
            joined = values.rename("v").to_frame().join(lookup, on="v", how="left", maintain_order="left")
            return joined["text"].rename(values.name)
    return _formatted(values, prop, decimals).rename(values.name)


def _formatted(values: pl.Series, prop: PropertyDef, decimals: int | None) -> pl.Series:
    rule = _expression(values.dtype, prop, decimals)
    if rule is None:
        if values.dtype == pl.Object or values.dtype.is_nested():
            return pl.Series([format_value(v, prop, decimals=decimals) for v in values.to_list()], dtype=pl.String)
        return _per_value(values, prop, decimals)
    text, odd = rule
    out = values.rename("v").to_frame().select(text=text, odd=odd)
    if out["odd"].any():
        slow = _per_value(values.filter(out["odd"]), prop, decimals)
        out = out.with_columns(text=out["text"].scatter(out["odd"].arg_true(), slow))
    return out["text"]


def _expression(dtype: pl.DataType, prop: PropertyDef, decimals: int | None) -> tuple[pl.Expr, pl.Expr] | None:
    """(text, odd): format_value over column "v" in format_value's own order of checks, and the rows that the
    expression cannot format exactly; None where no expression applies."""
    v = pl.col("v")
    exact = pl.lit(False)
    if isinstance(dtype, pl.List) and dtype.inner in (pl.String, pl.Categorical, pl.Null):
        # a multi-select: the distinct non-empty labels, sorted, ";"-joined
        items = v.cast(pl.List(pl.String)).list.eval(pl.element().filter(pl.element() != ""))
        joined = items.list.unique().list.sort().list.join(";")
        return pl.when(joined != "").then(joined), exact
    if dtype == pl.Boolean:  # "true"/"false" whatever the property
        return pl.when(v).then(pl.lit("true")).when(~v).then(pl.lit("false")), exact
    moment = dtype == pl.Date or isinstance(dtype, pl.Datetime)
    if prop.type == "number" and moment:
        return pl.repeat(None, pl.len(), dtype=pl.String), exact  # format_number has no number for a date
    if prop.type in _DATE_TYPES and not moment:
        return None  # a text or number into a date: parsed per distinct value
    if dtype == pl.Date:
        if prop.type == "datetime":
            return v.dt.strftime("%Y-%m-%dT00:00:00.000Z"), v.dt.year() < 1000
        return v.cast(pl.String), exact
    if isinstance(dtype, pl.Datetime):
        utc = _as_utc(dtype)
        if prop.type == "date":  # midnight UTC: HubSpot rejects any other time on a date
            return utc.dt.date().cast(pl.String), exact
        # chrono's %.3f truncates to milliseconds as format_datetime does; %Y pads years before 1000, Python not
        return utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"), utc.dt.year() < 1000
    if dtype.is_integer():
        return v.cast(pl.String), exact
    if dtype.is_float():
        return _float_expression(decimals)
    if isinstance(dtype, pl.Decimal):
        rounded = v.round(decimals, mode="half_away_from_zero") if decimals is not None else v
        return _plain_number(rounded.cast(pl.String)), exact
    if prop.type != "number" and (dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)):
        text = v.cast(pl.String).str.slice(0, MAX_TEXT)
        return pl.when(text != "").then(text), exact
    return None


def _as_utc(dtype: pl.Datetime) -> pl.Expr:
    # A naive datetime is taken as UTC, as format_value does.
    v = pl.col("v")
    return v.dt.replace_time_zone("UTC") if dtype.time_zone is None else v.dt.convert_time_zone("UTC")


def _float_expression(decimals: int | None) -> tuple[pl.Expr, pl.Expr]:
    v = pl.col("v").cast(pl.Float64)
    shortest = v.cast(pl.String)
    fraction = shortest.str.len_bytes() - shortest.str.find(".", literal=True).fill_null(-1) - 1
    plain = ~shortest.str.contains("e", literal=True) & (fraction <= _FLOAT_SCALE)
    if decimals is None:
        text = _plain_number(shortest)
    else:  # half-up on the shortest repr's digits, as Decimal(str(x)).quantize(..., ROUND_HALF_UP)
        exact = shortest.str.to_decimal(scale=_FLOAT_SCALE)
        text = _plain_number(exact.round(decimals, mode="half_away_from_zero").cast(pl.String))
    finite = v.is_finite()
    return pl.when(finite & plain).then(text), (finite & ~plain).fill_null(False)


def _plain_number(text: pl.Expr) -> pl.Expr:
    """A plain decimal string normalised as format_number does: no trailing zeros or ".", no "-0"."""
    stripped = pl.when(text.str.contains(".", literal=True)).then(
        text.str.strip_chars_end("0").str.strip_chars_end(".")).otherwise(text)
    return pl.when(stripped == "-0").then(pl.lit("0")).otherwise(stripped)


def _per_value(values: pl.Series, prop: PropertyDef, decimals: int | None) -> pl.Series:
    """format_value once per distinct value, joined back (nulls stay null: format_value(None) is None)."""
    distinct = values.drop_nulls().unique()
    lookup = pl.DataFrame({"v": distinct, "text": [format_value(x, prop, decimals=decimals)
                                                   for x in distinct.to_list()]},
                          schema={"v": values.dtype, "text": pl.String})
    joined = values.rename("v").to_frame().join(lookup, on="v", how="left", maintain_order="left")
    return joined["text"].rename(values.name)
