"""The rule language compiled to polars agrees with today's row evaluator (tests/rule_oracle.py) on generated rules
and features: every operator, nulls and edge values."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from connector.mapping.expression import compile_rule, parse_rule, rows_frame, rule_expr
from tests.rule_oracle import compile_node, oracle_rule

NAMES = {"n1": "number", "n2": "number", "b1": "bool", "b2": "bool", "s1": "str", "s2": "str", "d1": "date",
         "d2": "date"}
BY_KIND = {kind: [n for n, k in NAMES.items() if k == kind] for kind in ("number", "bool", "str", "date")}

# Edge values: zero and minus zero, fractions, the ends of exact float integers, infinities. NaN is left out: a
# feature frame never holds it (conform turns it into null, as the feature table always has).
NUMBERS = st.one_of(
    st.sampled_from([0, -0.0, 0.0, 1, -1, 0.2, 0.25, 0.3, 2.5, 90, 2**53, -(2**53), float("inf"), float("-inf")]),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, width=64),
)
STRINGS = st.one_of(st.sampled_from(["", "RETAIL", "retail", "it's", "a b", "green", "ü"]), st.text(max_size=4))
DATES = st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 12, 31))
BOOLS = st.booleans()
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # long reprs of rules
VALUES = {"number": NUMBERS, "str": STRINGS, "date": DATES, "bool": BOOLS}


def _literal(kind: str, value: object) -> str:
    if kind == "bool":
        return "true" if value else "false"
    if kind == "str":
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
    if kind == "date":
        return f"'{value}'"
    number = float(value)  # type: ignore[arg-type]
    if number != number or number in (float("inf"), float("-inf")):
        return "0"  # the language has no literal for these
    return repr(value) if isinstance(value, int) else repr(number)


@st.composite
def literal(draw, kind: str) -> str:
    return _literal(kind, draw(VALUES[kind]))


@st.composite
def comparison(draw) -> str:
    kind = draw(st.sampled_from(list(BY_KIND)))
    name = draw(st.sampled_from(BY_KIND[kind]))
    ops = ["<", "<=", ">", ">=", "==", "!="] if kind in ("number", "date") else ["==", "!="]
    op = draw(st.sampled_from(ops))
    shape = draw(st.sampled_from(["literal", "name", "null", "literal-first"]))
    if shape == "null":
        op = draw(st.sampled_from(["==", "!="]))
        return draw(st.sampled_from([f"{name} {op} null", f"null {op} {name}"]))
    other = draw(st.sampled_from(BY_KIND[kind])) if shape == "name" else draw(literal(kind))
    return f"{other} {op} {name}" if shape == "literal-first" else f"{name} {op} {other}"


@st.composite
def membership(draw) -> str:
    kind = draw(st.sampled_from(list(BY_KIND)))
    name = draw(st.sampled_from(BY_KIND[kind]))
    items = draw(st.lists(literal(kind), max_size=4))
    negated = draw(st.booleans())
    return f"{name} {'not in' if negated else 'in'} [{', '.join(items)}]"


def conditions() -> st.SearchStrategy[str]:
    leaves = st.one_of(comparison(), membership(), st.sampled_from(BY_KIND["bool"] + ["true", "false"]))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            inner.map(lambda c: f"not {c}"),
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.lists(inner, min_size=3, max_size=6).map(lambda cs: "(" + " and ".join(cs) + ")"),
            st.tuples(inner, st.sampled_from(["==", "!="]), st.sampled_from(["true", "false", "b1"]))
            .map(lambda t: f"({t[0]}) {t[1]} {t[2]}"),
            inner.map(lambda c: f"({c}) in [true]"),
        )

    return st.recursive(leaves, extend, max_leaves=8)


def rows() -> st.SearchStrategy[list[dict]]:
    row = st.fixed_dictionaries({}, optional={name: st.one_of(st.none(), VALUES[kind]) for name, kind in NAMES.items()})
    return st.lists(row, min_size=1, max_size=12)


def _compiled(text: str, data: list[dict]) -> list[bool]:
    frame = rows_frame(data, NAMES)
    # with_columns: a rule of literals alone is one value, spread over every row as the stages use it
    return frame.with_columns(rule_expr(parse_rule(text, NAMES)).alias("holds"))["holds"].to_list()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=conditions(), data=rows())
def test_compiled_rule_agrees_with_row_oracle(text, data):
    oracle = oracle_rule(text, NAMES)
    assert _compiled(text, data) == [oracle(row) for row in data], text


@settings(max_examples=150, deadline=None)
@given(text=conditions(), row=rows().map(lambda rs: rs[0]))
def test_compile_rule_row_view_agrees_with_oracle(text, row):
    assert compile_rule(text, NAMES)(row) is oracle_rule(text, NAMES)(row)


def test_compiled_rule_is_never_null():
    frame = rows_frame([{}, {"n1": 1, "s1": "x", "b1": True, "d1": date(2026, 1, 1)}], NAMES)
    for text in ("n1 < 2", "not n1 < 2", "s1 in ['x']", "s1 not in ['x']", "b1", "not b1", "d1 > '2025-01-01'",
                 "n1 < n2 or b2", "n1 == null", "(n1 < 2) == true"):
        result = frame.with_columns(rule_expr(parse_rule(text, NAMES)).alias("holds"))["holds"]
        assert result.dtype == pl.Boolean and result.null_count() == 0, text


@pytest.mark.parametrize("text, expected", [
    pytest.param("n1 < 1", [False, True, False], id="compare-missing-false"),
    pytest.param("not n1 < 1", [True, False, True], id="not-of-missing-true"),
    pytest.param("n1 in [0, 2.5]", [False, True, True], id="int-column-float-list"),
    pytest.param("n1 not in [0]", [False, False, True], id="not-in-missing-false"),
])
def test_compiled_rule_cases(text, expected):
    data = [{"n1": None}, {"n1": 0}, {"n1": 2.5}]
    assert _compiled(text, data) == expected
    assert [compile_node(parse_rule(text, NAMES))(row) for row in data] == expected
