"""Generated rules used as a scorecard condition and as a tag rule: the stages follow the row oracle per customer."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings

from connector.health import health_scores
from connector.mapping.health import HealthConfig
from connector.mapping.segments import TAG_KINDS, SegmentsConfig
from connector.segments import customer_segments
from tests.rule_oracle import oracle_rule
from tests.unit.mapping.test_expression_compiled import conditions, rows

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # long reprs of rules

# The generator's names as catalog features of the same kind.
FEATURE_OF = {"n1": "usage_frequency", "n2": "tenure_days", "b1": "is_active", "b2": "payment_overdue",
              "s1": "industry", "s2": "country", "d1": "customer_since", "d2": "customer_since"}
_NAME = re.compile(r"\b(" + "|".join(FEATURE_OF) + r")\b")


def as_features(text: str) -> str:
    # a word inside a string literal may be replaced too: still a string literal, and both sides read the same rule
    return _NAME.sub(lambda m: FEATURE_OF[m.group(1)], text)


def customers(data: list[dict]) -> dict[str, dict]:
    out = {}
    for i, row in enumerate(data):
        features = {}
        for name, value in row.items():
            if name == "d2" and "d1" in row:
                continue  # both map to customer_since: the first one stands
            features[FEATURE_OF[name]] = value
        out[str(1000 + i)] = features
    return out


@settings(max_examples=60, deadline=None)
@given(text=conditions(), data=rows())
def test_tag_rule_and_scorecard_condition_follow_the_oracle(text, data):
    rule = as_features(text)
    features = customers(data)
    oracle = oracle_rule(rule, TAG_KINDS)
    expected = {cid: oracle(row) for cid, row in features.items()}

    segments = SegmentsConfig.model_validate({
        "lifecycle": {"stages": [{"name": "held", "when": rule}, {"name": "other"}]},
        "rfm": {"grid": [{"name": "all", "label": "All", "r": [1, 5], "f": [1, 5]}]},
        "custom": [{"name": "x", "when": rule}]})
    result = customer_segments(features, segments, date(2026, 11, 1))
    assert {cid: r["tags"] == ["x"] for cid, r in result.items()} == expected, rule
    assert {cid: r["lifecycle"] == "held" for cid, r in result.items()} == expected, rule

    health = HealthConfig.model_validate({"scorecards": [
        {"name": "a", "when": rule, "components": [
            {"name": "u", "feature": "usage_frequency", "method": "target_ratio", "target": 1, "weight": 1}]},
        {"name": "b", "components": [
            {"name": "u", "feature": "usage_frequency", "method": "target_ratio", "target": 1, "weight": 1}]}]})
    scored = health_scores(features, health)
    assert {cid: r["scorecard"] == "a" for cid, r in scored.items()} == expected, rule
