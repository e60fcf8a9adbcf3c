"""The rule language: parse results, evaluation (None semantics), errors with column and did-you-mean."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

import connector.mapping.expression as expression
from connector.mapping.expression import (
    BoolOp,
    Compare,
    ExpressionError,
    Literal,
    Membership,
    Name,
    Not,
    compile_rule,
    parse_rule,
    rule_names,
    tokenize,
)
from connector.mapping.segments import TAG_KINDS

NAMES = {"usage": "number", "tickets": "number", "overdue": "bool", "industry": "str", "since": "date",
         "band": "str", "churned": "bool"}


# ---------------------------------------------------------------- parse results


@pytest.mark.parametrize(
    "text, tree",
    [
        pytest.param("usage < 0.2", Compare("<", Name("usage", 1), Literal(0.2, 9), 7), id="compare"),
        pytest.param("overdue", Name("overdue", 1), id="bare-bool"),
        pytest.param("not overdue", Not(Name("overdue", 5), 1), id="not"),
        pytest.param(
            "usage < 1 or tickets >= 2 and overdue",
            BoolOp("or", (Compare("<", Name("usage", 1), Literal(1, 9), 7),
                          BoolOp("and", (Compare(">=", Name("tickets", 14), Literal(2, 25), 22),
                                         Name("overdue", 31)), 14)), 1),
            id="and-binds-tighter-than-or"),
        pytest.param(
            "(usage < 1 or overdue) and churned",
            BoolOp("and", (BoolOp("or", (Compare("<", Name("usage", 2), Literal(1, 10), 8), Name("overdue", 15)), 2),
                           Name("churned", 28)), 1),
            id="parentheses"),
        pytest.param("industry in ['RETAIL', \"HOSPITALITY\",]",
                     Membership(False, Name("industry", 1), (Literal("RETAIL", 14), Literal("HOSPITALITY", 24)), 10),
                     id="in-list-trailing-comma"),
        pytest.param("industry not in []", Membership(True, Name("industry", 1), (), 10), id="not-in-empty"),
        pytest.param("usage == null", Compare("==", Name("usage", 1), Literal(None, 10), 7), id="null"),
        pytest.param("usage > -1.5e1", Compare(">", Name("usage", 1), Literal(-15.0, 9), 7), id="negative-exponent"),
        pytest.param("since >= '2026-01-31'", Compare(">=", Name("since", 1), Literal(date(2026, 1, 31), 10), 7),
                     id="date-literal"),
        pytest.param("not not overdue == true", Not(Not(Compare("==", Name("overdue", 9), Literal(True, 20), 17), 5), 1),
                     id="double-not"),
        pytest.param("band == 'it\\'s'", Compare("==", Name("band", 1), Literal("it's", 9), 6), id="escaped-quote"),
    ],
)
def test_parse_rule_tree(text, tree):
    assert parse_rule(text, NAMES) == tree


def test_rule_names():
    assert rule_names(parse_rule("usage < 1 or (overdue and industry in ['X'])", NAMES)) == {
        "usage", "overdue", "industry"}


def test_tokenize_columns():
    tokens = tokenize("a<=  'x y' ")
    assert [(t.kind, t.text, t.column) for t in tokens] == [
        ("name", "a", 1), ("op", "<=", 2), ("string", "'x y'", 6), ("end", "", 12)]


# ---------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    "text, row, expected",
    [
        pytest.param("usage < 0.2", {"usage": 0.1}, True, id="lt-true"),
        pytest.param("usage < 0.2", {"usage": 0.2}, False, id="lt-boundary"),
        pytest.param("usage <= 0.2", {"usage": 0.2}, True, id="le-boundary"),
        pytest.param("usage < 0.2", {"usage": None}, False, id="none-compare-false"),
        pytest.param("usage < 0.2", {}, False, id="missing-compare-false"),
        pytest.param("usage != 0.2", {"usage": None}, False, id="none-not-equal-false"),
        pytest.param("not usage < 0.2", {"usage": None}, True, id="not-of-none-comparison"),
        pytest.param("usage == null", {"usage": None}, True, id="is-null"),
        pytest.param("usage == null", {"usage": 0}, False, id="zero-is-not-null"),
        pytest.param("usage != null", {"usage": 0}, True, id="not-null"),
        pytest.param("null == usage", {}, True, id="null-on-left"),
        pytest.param("overdue", {"overdue": True}, True, id="bare-true"),
        pytest.param("overdue", {"overdue": None}, False, id="bare-none"),
        pytest.param("overdue", {"overdue": 1}, False, id="bare-one-is-not-true"),
        pytest.param("not overdue", {"overdue": None}, True, id="not-bare-none"),
        pytest.param("overdue == false", {"overdue": False}, True, id="bool-equals"),
        pytest.param("industry in ['RETAIL', 'HOSPITALITY']", {"industry": "RETAIL"}, True, id="in"),
        pytest.param("industry in ['RETAIL']", {"industry": "retail"}, False, id="in-case-sensitive"),
        pytest.param("industry not in ['RETAIL']", {"industry": "FINANCE"}, True, id="not-in"),
        pytest.param("industry not in ['RETAIL']", {"industry": None}, False, id="not-in-none-false"),
        pytest.param("usage in [1, 2.5]", {"usage": 2.5}, True, id="in-numbers"),
        pytest.param("usage in [1]", {"usage": True}, False, id="bool-not-in-number-list"),
        pytest.param("usage < 1 or overdue", {"usage": None, "overdue": True}, True, id="or"),
        pytest.param("usage < 1 and overdue", {"usage": 0, "overdue": False}, False, id="and"),
        pytest.param("since < '2026-01-31'", {"since": date(2025, 12, 1)}, True, id="date-compare"),
        pytest.param("usage < 1", {"usage": "lots"}, False, id="runtime-type-mismatch-false"),
        pytest.param("true", {}, True, id="literal-true"),
        pytest.param("(usage < 1) == true", {"usage": 0}, True, id="compare-condition-with-bool"),
        pytest.param("usage < tickets", {"usage": 1, "tickets": 2}, True, id="feature-vs-feature"),
    ],
)
def test_compile_rule_evaluates(text, row, expected):
    assert compile_rule(text, NAMES)(row) is expected


def test_compile_rule_never_uses_eval(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec used on rule text")

    monkeypatch.setattr("builtins.eval", forbidden)
    monkeypatch.setattr("builtins.exec", forbidden)
    assert compile_rule("usage < 1 and industry in ['A']", NAMES)({"usage": 0, "industry": "A"}) is True
    source = Path(expression.__file__).read_text()
    for word in ("eval(", "exec(", "literal_eval", "import ast"):
        assert word not in source


@pytest.mark.parametrize(
    "text, reason",
    [
        pytest.param("__import__('os').system('true')", 'unexpected character "."', id="call"),
        pytest.param("__import__ == 'os'", 'unknown feature "__import__"', id="dunder-name"),
        pytest.param("usage.__class__ == 1", 'unexpected character "."', id="attribute"),
    ],
)
def test_parse_rule_python_is_not_a_rule(text, reason):
    with pytest.raises(ExpressionError, match=reason):
        parse_rule(text, NAMES)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, column, reason",
    [
        pytest.param("usgae < 1", 1, 'unknown feature "usgae" (did you mean "usage"?)', id="did-you-mean"),
        pytest.param("usage < 1 and ovredue", 15, 'unknown feature "ovredue" (did you mean "overdue"?)',
                     id="did-you-mean-later"),
        pytest.param("usage < 1 and", 14, "rule ends too early", id="ends-early"),
        pytest.param("usage < 1 usage", 11, 'unexpected "usage" (missing "and"/"or"?)', id="missing-and"),
        pytest.param("0 < usage < 1", 11, "comparisons do not chain", id="chained"),
        pytest.param("usage = 1", 7, 'unexpected "=" (use "==" to compare)', id="single-equals"),
        pytest.param("band == 'red", 9, "unterminated string", id="unterminated-string"),
        pytest.param("(usage < 1", 11, 'expected a closing ")", found the end of the rule', id="unclosed-paren"),
        pytest.param("usage < 1)", 10, 'unexpected ")"', id="stray-paren"),
        pytest.param("industry in 'RETAIL'", 13, 'expected a list "[...]" after "in"', id="in-without-list"),
        pytest.param("industry in ['A' 'B']", 18, 'expected "," or "]" in a list', id="list-missing-comma"),
        pytest.param("industry in ['A', usage]", 19, "expected a number, string, true, false or null", id="name-in-list"),
        pytest.param("industry in ['A', 1]", 19, "list item 1 (number) does not match \"industry\" (str)",
                     id="list-type"),
        pytest.param("industry in ['A', null]", 19, "null cannot be in a list", id="null-in-list"),
        pytest.param("industry not usage", 14, 'expected "in" after "not"', id="not-without-in"),
        pytest.param("usage", 1, 'expected a condition but "usage" is a number', id="number-as-condition"),
        pytest.param("usage < 1 and tickets", 15, 'expected a condition but "tickets" is a number',
                     id="number-in-and"),
        pytest.param("usage == 'high'", 7, "cannot compare \"usage\" (number) with 'high' (str)", id="type-mismatch"),
        pytest.param("overdue == 1", 9, 'cannot compare "overdue" (bool) with 1 (number)', id="bool-vs-number"),
        pytest.param("band < 'red'", 6, '"<" needs numbers or dates', id="ordering-strings"),
        pytest.param("usage < null", 7, 'null can only be compared with "==" or "!="', id="null-ordering"),
        pytest.param("since > '2026-02-30'", 9, '"2026-02-30" is not a date', id="bad-date"),
        pytest.param("usage < 1 $", 11, 'unexpected character "$"', id="bad-character"),
        pytest.param("usage <-1", 7, None, id="negative-after-op-is-fine"),
        pytest.param("usage -1 < 2", 7, "no arithmetic", id="minus-after-operand"),
        pytest.param("", 1, "empty rule", id="empty"),
        pytest.param("   ", 4, "empty rule", id="blank"),
        pytest.param("band == 'a\\q'", 11, 'unknown escape "\\q"', id="bad-escape"),
        pytest.param("usage < 1 AND overdue", 11, '"AND": keywords are lower case ("and")', id="upper-case-keyword"),
        pytest.param("NOT overdue", 1, '"NOT": keywords are lower case ("not")', id="upper-case-keyword-first"),
        pytest.param("overdue == True", 12, '"True": keywords are lower case ("true")', id="python-true"),
        pytest.param("(" * 51 + "overdue" + ")" * 51, 51, "parentheses nested deeper than 50", id="deep-nesting"),
        pytest.param("not " * 51 + "overdue", 201, 'more than 50 "not" in a row', id="many-nots"),
    ],
)
def test_parse_rule_errors(text, column, reason):
    if reason is None:
        parse_rule(text, NAMES)
        return
    with pytest.raises(ExpressionError) as info:
        parse_rule(text, NAMES)
    error = info.value
    assert reason in error.reason
    assert error.column == column
    assert str(error) == f"column {column}: {error.reason} in rule `{text}`"


def test_tag_kinds_cover_the_feature_catalog():
    from connector.mapping.features import FEATURES

    assert set(FEATURES) <= set(TAG_KINDS)
    assert TAG_KINDS["lifecycle"] == "str" and TAG_KINDS["previous_lifecycle_days"] == "number"


def test_parse_rule_random_text_fails_only_with_expression_error():
    import random

    rng = random.Random(11)
    pieces = ["usage", "overdue", "industry", "band", "since", "and", "or", "not", "in", "true", "null", "<", "<=",
              "==", "!=", "(", ")", "[", "]", ",", "1", "-2.5", "'RETAIL'", '"x', "=", "$", " ", "AND", "usgae"]
    parsed = 0
    for _ in range(3000):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        try:
            predicate = compile_rule(text, NAMES)
        except ExpressionError as exc:
            assert 1 <= exc.column <= len(text) + 1, text
        else:
            parsed += 1
            assert predicate({"usage": 1, "overdue": True, "industry": "RETAIL", "band": "red"}) in (True, False)
            assert predicate({}) in (True, False)
    assert parsed >= 20  # the generator also produces valid rules


@pytest.mark.parametrize("op, row, expected", [
    pytest.param("and", {"usage": 0}, True, id="long-and"), pytest.param("and", {"usage": 5}, False, id="long-and-false"),
    pytest.param("or", {"usage": 5}, False, id="long-or-false"), pytest.param("or", {"usage": 0}, True, id="long-or"),
])
def test_compile_rule_long_chains(op, row, expected):
    text = f" {op} ".join(["usage < 1"] * 1200)  # deeper than Python's default recursion limit
    assert compile_rule(text, NAMES)(row) is expected
