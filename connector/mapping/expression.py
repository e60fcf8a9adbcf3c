"""A small, safe rule language over per-customer features: tokenizer, parser, type check, compiled to polars.

Grammar (keywords are lower case; ``#`` is not a comment here, YAML already has those)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [ CMP operand | "in" list | "not" "in" list ]      CMP: < <= > >= == !=
    operand    := NUMBER | STRING | "true" | "false" | "null" | NAME | "(" expr ")"
    list       := "[" [ literal ("," literal)* [","] ] "]"

Names are checked against a catalog (name -> kind: number | bool | str | date) when the rule is parsed, so an
unknown name or a type mismatch fails at config time with a did-you-mean and the column. User text is never
handed to ``eval``/``exec``/``ast``: the parser builds its own small AST and ``rule_expr`` turns it into one
polars expression evaluated over every customer's row of the feature frame at once.

Runtime ``None`` (a feature the customer has no value for): every comparison, ``in`` and ``not in`` with a
``None`` operand is false, and a bare name whose value is ``None`` is false; ``x == null`` / ``x != null`` are the
only ways to test for a missing value. ``not`` negates the outcome, so ``not (usage_frequency < 0.2)`` is true
when usage is unknown; write ``usage_frequency >= 0.2`` to require a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Union

import polars as pl

from connector.mapping.base import did_you_mean

KINDS = ("number", "bool", "str", "date")
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_ORDERED_KINDS = ("number", "date")  # kinds that allow < <= > >=
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
MAX_NESTING = 50


class ExpressionError(ValueError):
    """A rule that does not parse or type-check; ``column`` is 1-based within ``expression``."""

    def __init__(self, reason: str, expression: str, column: int):
        self.reason = reason
        self.expression = expression
        self.column = column
        super().__init__(f"column {column}: {reason} in rule `{expression}`")


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # number | string | name | op | keyword | end
    text: str
    value: Any
    column: int  # 1-based


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|<|>|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unescape(body: str, expression: str, column: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ExpressionError(f'unknown escape "\\{nxt}" in a string', expression, column + 1 + i)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def tokenize(expression: str) -> list[Token]:
    """Split a rule into tokens; anything unrecognised fails with its column."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN_RE.match(expression, pos)
        column = pos + 1
        if not match:
            ch = expression[pos]
            if ch in "\"'":
                raise ExpressionError("unterminated string", expression, column)
            if ch == "=":
                raise ExpressionError('unexpected "=" (use "==" to compare)', expression, column)
            raise ExpressionError(f'unexpected character "{ch}"', expression, column)
        kind = match.lastgroup
        text = match.group()
        pos = match.end()
        if kind == "space":
            continue
        if kind == "number":
            # "a-1" is not subtraction (there is no arithmetic): a minus sign glued to a previous operand is an error
            if text.startswith("-") and tokens and tokens[-1].kind in ("number", "string", "name"):
                raise ExpressionError('unexpected "-" (the rule language has no arithmetic)', expression, column)
            value: Any = float(text) if any(c in text for c in ".eE") else int(text)
            tokens.append(Token("number", text, value, column))
        elif kind == "string":
            tokens.append(Token("string", text, _unescape(text[1:-1], expression, column), column))
        elif kind == "name":
            if text not in _KEYWORDS and text.lower() in _KEYWORDS:
                raise ExpressionError(f'"{text}": keywords are lower case ("{text.lower()}")', expression, column)
            tokens.append(Token("keyword" if text in _KEYWORDS else "name", text, text, column))
        else:
            tokens.append(Token("op", text, text, column))
    tokens.append(Token("end", "", None, len(expression) + 1))
    return tokens


# ---------------------------------------------------------------- AST


@dataclass(frozen=True)
class Literal:
    value: Any  # int | float | str | bool | None | date (a string literal compared with a date feature)
    column: int


@dataclass(frozen=True)
class Name:
    name: str
    column: int


@dataclass(frozen=True)
class Compare:
    op: str  # < <= > >= == !=
    left: "Node"
    right: "Node"
    column: int


@dataclass(frozen=True)
class Membership:
    negated: bool  # "not in"
    item: "Node"
    choices: tuple[Literal, ...]
    column: int


@dataclass(frozen=True)
class Not:
    operand: "Node"
    column: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    operands: tuple["Node", ...]
    column: int


Node = Union[Literal, Name, Compare, Membership, Not, BoolOp]


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(self, expression: str, names: Mapping[str, str]):
        self.expression = expression
        self.names = names
        self.tokens = tokenize(expression)
        self.pos = 0
        self.depth = 0  # open parentheses: recursion stays far from Python's limit
        self.nots = 0

    # helpers
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        return token.kind == kind and (text is None or token.text == text)

    def fail(self, reason: str, token: Token) -> ExpressionError:
        return ExpressionError(reason, self.expression, token.column)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise self.fail(f"expected {what}, found {_describe(self.peek())}", self.peek())
        return self.advance()

    # grammar
    def parse(self) -> Node:
        if self.at("end"):
            raise self.fail("empty rule", self.peek())
        node = self.or_expr()
        if not self.at("end"):
            token = self.peek()
            hint = ""
            if token.kind in ("name", "number", "string") or token.text in ("(", "true", "false", "null"):
                hint = ' (missing "and"/"or"?)'
            elif token.kind == "op" and token.text in _COMPARISONS:
                hint = " (comparisons do not chain: write `a < b and b < c`)"
            raise self.fail(f"unexpected {_describe(token)}{hint}", token)
        return node

    def or_expr(self) -> Node:
        first = self.peek()
        operands = [self.and_expr()]
        while self.at("keyword", "or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands), first.column)

    def and_expr(self) -> Node:
        first = self.peek()
        operands = [self.not_expr()]
        while self.at("keyword", "and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands), first.column)

    def not_expr(self) -> Node:
        if self.at("keyword", "not"):
            token = self.advance()
            self.nots += 1
            if self.nots > MAX_NESTING:
                raise self.fail(f'more than {MAX_NESTING} "not" in a row', token)
            node = Not(self.not_expr(), token.column)
            self.nots -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            right = self.operand()
            return Compare(token.text, left, right, token.column)
        if self.at("keyword", "in"):
            self.advance()
            return Membership(False, left, self.literal_list(), token.column)
        if self.at("keyword", "not"):
            self.advance()
            self.expect("keyword", "in", '"in" after "not"')
            return Membership(True, left, self.literal_list(), token.column)
        return left

    def operand(self) -> Node:
        token = self.peek()
        if token.kind == "op" and token.text == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail(f"parentheses nested deeper than {MAX_NESTING}", token)
            self.advance()
            node = self.or_expr()
            self.expect("op", ")", 'a closing ")"')
            self.depth -= 1
            return node
        if token.kind == "name":
            self.advance()
            return Name(token.text, token.column)
        if token.kind in ("number", "string") or token.text in ("true", "false", "null"):
            return self.literal()
        if token.kind == "end":
            raise self.fail("rule ends too early: expected a value or a feature name", token)
        raise self.fail(f"expected a value or a feature name, found {_describe(token)}", token)

    def literal(self) -> Literal:
        token = self.advance()
        if token.kind in ("number", "string"):
            return Literal(token.value, token.column)
        if token.text in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[token.text], token.column)
        raise self.fail(f"expected a number, string, true, false or null, found {_describe(token)}", token)

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect("op", "[", 'a list "[...]" after "in"')
        items: list[Literal] = []
        while not self.at("op", "]"):
            if self.at("end"):
                raise self.fail('unterminated list: expected "]"', self.peek())
            items.append(self.literal())
            if self.at("op", ","):
                self.advance()
            elif not self.at("op", "]"):
                raise self.fail(f'expected "," or "]" in a list, found {_describe(self.peek())}', self.peek())
        self.advance()
        return tuple(items)


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the rule"
    return f'"{token.text}"'


# ---------------------------------------------------------------- type check


def _literal_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, date):
        return "date"
    return "str"


class _Checker:
    """Resolves names, infers kinds and rewrites ISO-date string literals compared with date features."""

    def __init__(self, expression: str, names: Mapping[str, str]):
        self.expression = expression
        self.names = names

    def fail(self, reason: str, column: int) -> ExpressionError:
        return ExpressionError(reason, self.expression, column)

    def kind_of(self, node: Node) -> str | None:
        if isinstance(node, Literal):
            return _literal_kind(node.value)
        if isinstance(node, Name):
            kind = self.names.get(node.name)
            if kind is None:
                raise self.fail(f'unknown feature "{node.name}"{did_you_mean(node.name, self.names)}', node.column)
            return kind
        return "bool"

    def check_bool(self, node: Node) -> Node:
        """A node used as a condition: it must be boolean."""
        node = self.check(node)
        kind = self.kind_of(node)
        if kind != "bool":
            where = f'"{node.name}" is a {kind}' if isinstance(node, Name) else f"this is a {kind or 'null'} value"
            raise self.fail(f"expected a condition but {where}; compare it with something", node.column)
        return node

    def coerce_literal(self, literal: Literal, kind: str) -> Literal:
        if kind == "date" and isinstance(literal.value, str):
            try:
                return Literal(date.fromisoformat(literal.value), literal.column)
            except ValueError:
                raise self.fail(f'"{literal.value}" is not a date (YYYY-MM-DD)', literal.column) from None
        return literal

    def check(self, node: Node) -> Node:
        if isinstance(node, (Literal, Name)):
            self.kind_of(node)
            return node
        if isinstance(node, Not):
            return Not(self.check_bool(node.operand), node.column)
        if isinstance(node, BoolOp):
            return BoolOp(node.op, tuple(self.check_bool(o) for o in node.operands), node.column)
        if isinstance(node, Compare):
            left, right = self.check(node.left), self.check(node.right)
            lkind, rkind = self.kind_of(left), self.kind_of(right)
            if isinstance(left, Literal) and rkind:
                left = self.coerce_literal(left, rkind)
                lkind = self.kind_of(left)
            if isinstance(right, Literal) and lkind:
                right = self.coerce_literal(right, lkind)
                rkind = self.kind_of(right)
            if lkind is None or rkind is None:
                if node.op not in ("==", "!="):
                    raise self.fail(f'null can only be compared with "==" or "!=", not "{node.op}"', node.column)
            elif lkind != rkind:
                raise self.fail(f"cannot compare {_what(left, lkind)} with {_what(right, rkind)}", node.column)
            elif node.op not in ("==", "!=") and lkind not in _ORDERED_KINDS:
                raise self.fail(f'"{node.op}" needs numbers or dates; {_what(left, lkind)} allows only == and !=',
                                node.column)
            return Compare(node.op, left, right, node.column)
        if isinstance(node, Membership):
            item = self.check(node.item)
            kind = self.kind_of(item)
            choices = []
            for choice in node.choices:
                if choice.value is None:
                    raise self.fail("null cannot be in a list (use == null)", choice.column)
                choice = self.coerce_literal(choice, kind) if kind else choice
                ckind = _literal_kind(choice.value)
                if kind is not None and ckind != kind:
                    raise self.fail(f"list item {_what(choice, ckind)} does not match {_what(item, kind)}",
                                    choice.column)
                choices.append(choice)
            return Membership(node.negated, item, tuple(choices), node.column)
        raise AssertionError(node)  # pragma: no cover


def _what(node: Node, kind: str | None) -> str:
    if isinstance(node, Name):
        return f'"{node.name}" ({kind})'
    if isinstance(node, Literal):
        return f"{node.value!r} ({kind or 'null'})" if not isinstance(node.value, date) else f"{node.value} (date)"
    return f"a {kind} expression"


def parse_rule(expression: str, names: Mapping[str, str]) -> Node:
    """Parse and type-check ``expression`` against ``names`` (name -> kind); raises ExpressionError."""
    if not isinstance(expression, str):
        raise ExpressionError("a rule must be a string", str(expression), 1)
    tree = _Parser(expression, names).parse()
    return _Checker(expression, names).check_bool(tree)


def rule_names(node: Node) -> set[str]:
    """Every feature name a parsed rule reads."""
    if isinstance(node, Name):
        return {node.name}
    if isinstance(node, Literal):
        return set()
    if isinstance(node, Not):
        return rule_names(node.operand)
    if isinstance(node, BoolOp):
        return set().union(*(rule_names(o) for o in node.operands))
    if isinstance(node, Compare):
        return rule_names(node.left) | rule_names(node.right)
    if isinstance(node, Membership):
        return rule_names(node.item)
    raise AssertionError(node)  # pragma: no cover


# ---------------------------------------------------------------- compiled to polars

# The column type of each kind; a feature frame holds its columns in these (whole numbers may be Int64).
DTYPES: dict[str, pl.DataType] = {"number": pl.Float64(), "bool": pl.Boolean(), "str": pl.String(), "date": pl.Date()}
_OPS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "<": pl.Expr.lt, "<=": pl.Expr.le, ">": pl.Expr.gt, ">=": pl.Expr.ge, "==": pl.Expr.eq, "!=": pl.Expr.ne,
}


def rule_expr(node: Node) -> pl.Expr:
    """A checked rule as one polars expression: a Boolean that is never null (two-valued, as the docstring above
    says: a comparison or ``in`` with a missing operand is false, a bare name holds only when it is true)."""
    if isinstance(node, Literal):
        return pl.lit(bool(node.value))
    if isinstance(node, Name):
        return pl.col(node.name).eq_missing(True)
    if isinstance(node, Not):
        return ~rule_expr(node.operand)
    if isinstance(node, BoolOp):
        parts = [rule_expr(o) for o in node.operands]  # never null, so Kleene logic is plain logic here
        return pl.all_horizontal(parts) if node.op == "and" else pl.any_horizontal(parts)
    if isinstance(node, Compare):
        for this, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(this, Literal) and this.value is None:
                missing = _value(other).is_null()
                return missing if node.op == "==" else ~missing
        return _OPS[node.op](_value(node.left), _value(node.right)).fill_null(False)
    if isinstance(node, Membership):
        item = _value(node.item)
        if not rule_names(node.item):  # literals alone: one value per row, as is_in does not spread a scalar
            item = pl.repeat(item.first(), pl.len())
        values = [c.value for c in node.choices]
        kind = _literal_kind(values[0]) if values else None
        if kind == "number":  # 1 and 2.5 in one list: compare as floats
            item, values = item.cast(pl.Float64), [float(v) for v in values]
        choices = pl.Series(values, dtype=DTYPES[kind] if kind else None)
        found = item.is_in(choices.implode()) if values else pl.lit(False)
        return pl.when(item.is_null()).then(False).otherwise(found != node.negated)
    raise AssertionError(node)  # pragma: no cover


def _value(node: Node) -> pl.Expr:
    if isinstance(node, Literal):
        return pl.lit(node.value)
    if isinstance(node, Name):
        return pl.col(node.name)
    return rule_expr(node)


def conform(frame: pl.DataFrame, kinds: Mapping[str, str]) -> pl.DataFrame:
    """``frame`` with every name of ``kinds`` as a column of its kind: a missing one null, a column of nothing but
    nulls typed, NaN null (a feature never holds NaN; Python's NaN would compare false where polars' compares)."""
    exprs = []
    for name, kind in kinds.items():
        dtype = frame.schema.get(name)
        if dtype is None or dtype == pl.Null:
            exprs.append(pl.lit(None, dtype=DTYPES[kind]).alias(name) if dtype is None
                         else pl.col(name).cast(DTYPES[kind]))
        elif dtype.is_float():
            exprs.append(pl.col(name).fill_nan(None))
    return frame.with_columns(exprs) if exprs else frame


def _typed(value: Any, kind: str) -> Any:
    """A Python value as the kind's column holds it; a value of another kind is unknown (None)."""
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return None
        return float(value) if isinstance(value, Decimal) else None if value != value else value
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind == "date":
        return value.date() if isinstance(value, datetime) else value if isinstance(value, date) else None
    return value if isinstance(value, str) else None


def rows_frame(rows: Iterable[Mapping[str, Any]], kinds: Mapping[str, str]) -> pl.DataFrame:
    """Rows (dicts of feature -> value) as a frame with one typed column per name of ``kinds``."""
    rows = list(rows)
    columns = []
    for name, kind in kinds.items():
        values = [_typed(row.get(name), kind) for row in rows]
        try:
            series = pl.Series(name, values, strict=False)
        except (OverflowError, TypeError, pl.exceptions.PolarsError):  # an int beyond 128 bits: a float will do
            series = pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
        columns.append(series)
    return conform(pl.DataFrame(columns), kinds)


def compile_rule(expression: str, names: Mapping[str, str]) -> Callable[[Mapping[str, Any]], bool]:
    """Parse, check and compile; the result holds or not for ONE row (a person looking at one customer): the same
    expression as over the whole frame, on a one-row frame."""
    node = parse_rule(expression, names)
    expr = rule_expr(node)
    kinds = {name: names[name] for name in sorted(rule_names(node))}

    def holds(row: Mapping[str, Any]) -> bool:
        frame = rows_frame([row], kinds) if kinds else pl.DataFrame({"row": [0]})
        return bool(frame.select(expr.alias("holds")).item())

    return holds
