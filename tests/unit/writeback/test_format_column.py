"""format_column (the column form of HubSpot's formats) writes exactly the strings format_value writes."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from connector.mapping.writeback import PropertyDef
from connector.writeback.format import format_column, format_value

TYPES = ["string", "number", "enumeration", "date", "datetime", "bool"]


def prop(type_: str, field_type: str | None = None) -> PropertyDef:
    return PropertyDef(name="p", label="P", type=type_, fieldType=field_type)


def both(values: list, series: pl.Series, type_: str, decimals: int | None = None,
         field_type: str | None = None) -> tuple[list, list]:
    p = prop(type_, field_type)
    return format_column(series, p, decimals=decimals).to_list(), [format_value(v, p, decimals=decimals)
                                                                    for v in values]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=40),
       st.sampled_from(["number", "string", "enumeration", "bool"]))
def test_floats_format_as_format_value(values, type_):
    got, want = both(values, pl.Series(values, dtype=pl.Float64), type_)
    assert got == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e15, 1e15), st.floats(-1e-3, 1e-3)), max_size=40),
       st.sampled_from([0, 2, 4]))
def test_rounded_floats_format_as_format_value(values, decimals):
    # (format_value itself cannot round beyond Decimal's 28 digits: money stays far below)
    got, want = both(values, pl.Series(values, dtype=pl.Float64), "number", decimals)
    assert got == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([None, -0.0, 0.0, math.nan, math.inf, 12.345, 99.995, 1e20, 1.5e-7, 2.675]),
                min_size=8, max_size=40), st.sampled_from([None, 2]))
def test_repeated_numbers_format_once_per_value_as_format_value(values, decimals):
    # (many repeats: the column is formatted per distinct value and joined back)
    got, want = both(values, pl.Series(values, dtype=pl.Float64), "number", decimals)
    assert got == want
    exact = [None if v is None or not math.isfinite(v) else Decimal(str(v)) for v in values]
    got, want = both(exact, pl.Series(exact, dtype=pl.Decimal(38, 8)), "number", decimals)
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False, places=6,
                                                  min_value=-10**12, max_value=10**12)), max_size=30),
       st.sampled_from([None, 0, 2]))
def test_decimals_format_as_format_value(values, decimals):
    got, want = both(values, pl.Series(values, dtype=pl.Decimal(38, 6)), "number", decimals)
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2**62, 2**62)), max_size=30),
       st.sampled_from(["number", "string", "bool", "enumeration"]))
def test_integers_format_as_format_value(values, type_):
    got, want = both(values, pl.Series(values, dtype=pl.Int64), type_)
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                                   timezones=st.just(timezone.utc))), max_size=20),
       st.sampled_from(TYPES))
def test_datetimes_format_as_format_value(values, type_):
    got, want = both(values, pl.Series(values, dtype=pl.Datetime("us", "UTC")), type_)
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dates(min_value=date(1, 1, 1))), max_size=20), st.sampled_from(TYPES))
def test_dates_format_as_format_value(values, type_):
    got, want = both(values, pl.Series(values, dtype=pl.Date), type_)
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=20), st.sampled_from(TYPES))
def test_texts_format_as_format_value(values, type_):
    got, want = both(values, pl.Series(values, dtype=pl.String), type_)
    assert got == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.one_of(st.none(), st.sampled_from(["b", "a", "", "c d", "é"])),
                                              max_size=5)), max_size=20))
def test_multi_selects_format_as_format_value(values):
    got, want = both(values, pl.Series(values, dtype=pl.List(pl.String)), "enumeration", field_type="checkbox")
    assert got == want


@pytest.mark.parametrize(
    ("values", "dtype", "type_", "decimals", "expected"),
    [
        pytest.param([68.0, 0.1, -0.0, 1e20, 1.5e-7], pl.Float64, "number", None,
                     ["68", "0.1", "0", "100000000000000000000", "0.00000015"], id="floats-plain-and-exponent"),
        pytest.param([12.345, 99.995, 2.675, -0.001], pl.Float64, "number", 2, ["12.35", "100", "2.68", "0"],
                     id="floats-half-up-on-the-shortest-digits"),
        pytest.param([Decimal("100.004"), Decimal("50.505"), None], pl.Decimal(38, 6), "number", 2,
                     ["100", "50.51", None], id="decimals-to-cents"),
        pytest.param([datetime(2026, 11, 23, 4, 15, 0, 123999, tzinfo=timezone(timedelta(hours=2)))],
                     pl.Datetime("us", "Europe/Berlin"), "datetime", None, ["2026-11-23T02:15:00.123Z"],
                     id="datetime-in-utc-truncated-ms"),
        pytest.param([datetime(999, 1, 1, tzinfo=timezone.utc)], pl.Datetime("us", "UTC"), "string", None,
                     ["999-01-01T00:00:00.000Z"], id="year-before-1000-as-python-writes-it"),
        pytest.param(["x" * 70_000, ""], pl.String, "string", None, ["x" * 65_536, None], id="text-capped"),
        pytest.param([True, False, None], pl.Boolean, "enumeration", None, ["true", "false", None], id="bools"),
    ],
)
def test_format_column_cases(values, dtype, type_, decimals, expected):
    series = pl.Series(values, dtype=dtype)
    assert format_column(series, prop(type_), decimals=decimals).to_list() == expected
    assert [format_value(v, prop(type_), decimals=decimals) for v in values] == expected
