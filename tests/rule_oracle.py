"""Today's row-by-row rule evaluator, kept only as the oracle the compiled polars rules are tested against.

It walks the checked AST of connector.mapping.expression per customer with Python closures: every comparison,
``in`` and ``not in`` with a ``None`` operand is false, a bare name is true only for ``True``.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping

from connector.mapping.expression import BoolOp, Compare, Literal, Membership, Name, Node, Not, parse_rule

Features = Mapping[str, Any]
Predicate = Callable[[Features], bool]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


def _value_getter(node: Node) -> Callable[[Features], Any]:
    if isinstance(node, Literal):
        value = node.value
        return lambda features: value
    if isinstance(node, Name):
        name = node.name
        return lambda features: features.get(name)
    predicate = compile_node(node)
    return predicate


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda features: a(features) and b(features)


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda features: a(features) or b(features)


def compile_node(node: Node) -> Predicate:
    """Turn a checked AST into a predicate over one customer's features (no eval of user text).

    The closures are specialised for the common shapes (a name against a literal, string lists) because
    rules run once per customer per run: a million customers times a dozen rules.
    """
    if isinstance(node, Literal):
        value = bool(node.value)
        return lambda features: value
    if isinstance(node, Name):
        name = node.name
        return lambda features: features.get(name) is True
    if isinstance(node, Not):
        inner = compile_node(node.operand)
        return lambda features: not inner(features)
    if isinstance(node, BoolOp):
        parts = [compile_node(o) for o in node.operands]
        if len(parts) > 4:  # a long chain as a loop: nested closures would recurse once per operand
            if node.op == "and":
                return lambda features: all(p(features) for p in parts)
            return lambda features: any(p(features) for p in parts)
        join = _both if node.op == "and" else _either
        predicate = parts[-1]
        for part in reversed(parts[:-1]):  # right fold keeps left-to-right short-circuiting
            predicate = join(part, predicate)
        return predicate
    if isinstance(node, Compare):
        return _compile_compare(node)
    if isinstance(node, Membership):
        return _compile_membership(node)
    raise AssertionError(node)  # pragma: no cover


def _compile_compare(node: Compare) -> Predicate:
    op = _OPS[node.op]
    left_null = isinstance(node.left, Literal) and node.left.value is None
    right_null = isinstance(node.right, Literal) and node.right.value is None
    if left_null or right_null:
        other = _value_getter(node.right if left_null else node.left)
        if node.op == "==":
            return lambda features: other(features) is None
        return lambda features: other(features) is not None
    if isinstance(node.left, Name) and isinstance(node.right, Literal):
        name, constant = node.left.name, node.right.value

        def name_vs_literal(features: Features) -> bool:
            value = features.get(name)
            if value is None:
                return False
            try:
                return bool(op(value, constant))
            except TypeError:  # a feature of the wrong kind at runtime: the rule does not hold
                return False

        return name_vs_literal
    left, right = _value_getter(node.left), _value_getter(node.right)

    def compare(features: Features) -> bool:
        a, b = left(features), right(features)
        if a is None or b is None:
            return False
        try:
            return bool(op(a, b))
        except TypeError:
            return False

    return compare


def _compile_membership(node: Membership) -> Predicate:
    item = _value_getter(node.item)
    choices = [c.value for c in node.choices]
    negated = node.negated
    if all(isinstance(c, str) for c in choices):
        strings = frozenset(choices)

        def member_str(features: Features) -> bool:
            value = item(features)
            if value is None:
                return False
            return (value.__class__ is str and value in strings) != negated

        return member_str

    def member(features: Features) -> bool:
        value = item(features)
        if value is None:
            return False
        # 1 == True in Python; a number list must not match a yes/no value (and the other way round)
        found = any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices)
        return found != negated

    return member


def oracle_rule(expression: str, names: Mapping[str, str]) -> Predicate:
    """Parse, check and compile in one step."""
    return compile_node(parse_rule(expression, names))
