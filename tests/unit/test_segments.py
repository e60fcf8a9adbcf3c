"""Segments: METRICS E9 RFM, NPS groups, every lifecycle transition, playbook tags, hysteresis across runs."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from connector.errors import MappingError
from connector.mapping.loader import load_yaml_model
from connector.mapping.segments import SegmentsConfig
from connector.segments import (
    customer_segments,
    id_order,
    nps_group,
    quantile_bins,
    rfm_scores,
    segment_distribution,
    segment_features,
)

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def pack() -> SegmentsConfig:
    return load_yaml_model(ROOT / "mappings" / "segments.yaml", SegmentsConfig)


# ---------------------------------------------------------------- E9 RFM

E9 = "A 2/12/1500, B 5/3/220, C 9/8/900, D 14/1/60, E 20/5/480, F 33/1/45, G 45/7/1100, H 60/2/150, I 90/1/30, J 180/4/700"
E9_EXPECTED = {
    "A": ("555", "Champions"), "B": ("533", "Potential Loyalists"), "C": ("454", "Loyal"), "D": ("412", "Promising"),
    "E": ("343", "Loyal"), "F": ("311", "About to Sleep"), "G": ("245", "At Risk"), "H": ("222", "Hibernating"),
    "I": ("121", "Hibernating"), "J": ("134", "At Risk"),
}


def e9_features() -> dict[str, dict]:
    features = {}
    for part in E9.split(", "):
        customer_id, values = part.split(" ")
        recency, frequency, monetary = (int(v) for v in values.split("/"))
        features[customer_id] = {"recency_days": recency, "frequency": frequency, "monetary": monetary}
    return features


def test_rfm_scores_e9(pack):
    scores = rfm_scores(e9_features(), pack.rfm)
    assert {cid: (s["code"], s["segment"]) for cid, s in scores.items()} == E9_EXPECTED
    assert scores["G"] == {"r": 2, "f": 4, "m": 5, "code": "245", "segment": "At Risk", "segment_id": "at_risk"}


def test_rfm_scores_e9_independent_of_input_order(pack):
    items = list(e9_features().items())
    random.Random(3).shuffle(items)
    scores = rfm_scores(dict(items), pack.rfm)
    assert {cid: (s["code"], s["segment"]) for cid, s in scores.items()} == E9_EXPECTED


def test_customer_segments_e9_rfm_in_output(pack):
    result = customer_segments(e9_features(), pack, AS_OF)
    assert {cid: (r["rfm"]["code"], r["rfm"]["segment"]) for cid, r in result.items()} == E9_EXPECTED
    assert segment_features(result)["D"]["rfm_segment"] == "promising"


def test_rfm_scores_too_few_customers_or_missing_values(pack):
    features = e9_features()
    features["J"]["monetary"] = None  # 9 complete customers < min_customers 10
    assert rfm_scores(features, pack.rfm) == {}
    features["K"] = {"recency_days": 1, "frequency": 1, "monetary": 10}
    scores = rfm_scores(features, pack.rfm)
    assert "J" not in scores and len(scores) == 10


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(5)])
def test_quantile_bins_match_pandas_qcut(seed):
    import pandas as pd  # installed with lifetimes (test extra); used here only to cross-check
    rng = random.Random(seed)
    values = [float(rng.randint(0, 400)) for _ in range(rng.randint(10, 300))]
    expected = pd.qcut(pd.Series(values), 5, labels=False, duplicates="drop")
    if expected.max() == 4:  # pandas drops tied edges; compare where it keeps all five bins
        assert quantile_bins(values, 5) == expected.tolist()
    ranks = pd.Series(values).rank(method="first")
    assert quantile_bins(ranks.tolist(), 5) == pd.qcut(ranks, 5, labels=False).tolist()


def test_quantile_bins_tied_values_share_a_bin():
    # inner edges 1, 1, 1.4, 3.2: the tied ones leave bins 1 and 2 empty instead of failing like qcut
    assert quantile_bins([1, 1, 1, 1, 1, 1, 2, 3, 4, 5], 5) == [0, 0, 0, 0, 0, 0, 3, 3, 4, 4]


def test_id_order_numeric_ids_numerically():
    assert sorted(["101", "99", "b", "a", "1000"], key=id_order) == ["99", "101", "1000", "a", "b"]


# ---------------------------------------------------------------- NPS group


@pytest.mark.parametrize(
    "rating, group",
    [pytest.param(10, "promoter", id="10"), pytest.param(9, "promoter", id="9"), pytest.param(8, "passive", id="8"),
     pytest.param(7, "passive", id="7"), pytest.param(6, "detractor", id="6"), pytest.param(0, "detractor", id="0"),
     pytest.param(None, None, id="none")],
)
def test_nps_group(rating, group):
    assert nps_group(rating) == group


# ---------------------------------------------------------------- lifecycle

HEALTHY = {
    "is_active": True, "was_ever_active": True, "tenure_days": 400, "onboarding_complete": True,
    "days_since_reactivation": None, "health_score": 85, "health_band": "green", "health_trend": "flat",
    "health_change": 0, "usage_frequency": 0.5, "usage_trend": 0.0, "forgettable": False,
}


def previous_row(stage: str | None, days_in_stage: int = 10, pending=None, tags=None) -> dict | None:
    if stage is None:
        return None
    return {"lifecycle": stage, "tags": [], "memory": {
        "lifecycle": {"stage": stage, "since": (AS_OF - timedelta(days=days_in_stage)).isoformat(), "pending": pending},
        "tags": tags or {}}}


def run(pack, features, previous=None, as_of=AS_OF):
    return customer_segments({"c1": features}, pack, as_of, {"c1": previous} if previous else None)["c1"]


@pytest.mark.parametrize(
    "before, changes, after",
    [
        pytest.param(None, {}, "active", id="first-run-active"),
        pytest.param(None, {"tenure_days": 20, "onboarding_complete": False}, "onboarding", id="first-run-new"),
        pytest.param(None, {"is_active": False, "was_ever_active": False, "tenure_days": None}, "prospect",
                     id="not-paying-yet"),
        pytest.param("prospect", {"tenure_days": 5, "onboarding_complete": False}, "onboarding",
                     id="prospect-to-onboarding"),
        pytest.param("prospect", {"is_active": False, "was_ever_active": False}, "prospect", id="prospect-stays"),
        pytest.param("onboarding", {"is_active": False}, "churned", id="onboarding-to-churned"),
        pytest.param("onboarding", {"tenure_days": 120, "onboarding_complete": False, "health_band": "red"},
                     "at_risk", id="onboarding-over-to-at-risk"),
        pytest.param("reactivated", {"days_since_reactivation": 120, "health_band": "red"}, "at_risk",
                     id="reactivated-to-at-risk"),
        pytest.param("churned", {"days_since_reactivation": None}, "active", id="churned-back-without-history"),
        pytest.param("at_risk", {"days_since_reactivation": 2}, "reactivated", id="reactivation-outranks-health"),
        pytest.param("active", {"tenure_days": 10, "onboarding_complete": False, "days_since_reactivation": 10},
                     "reactivated", id="reactivated-outranks-onboarding"),
        pytest.param("onboarding", {"tenure_days": 40}, "active", id="onboarding-done-to-active"),
        pytest.param("onboarding", {"tenure_days": 95, "onboarding_complete": False}, "active",
                     id="onboarding-too-long-to-active"),
        pytest.param("onboarding", {"tenure_days": 60, "onboarding_complete": False, "health_band": "red"},
                     "onboarding", id="onboarding-before-at-risk"),
        pytest.param("active", {"health_band": "red", "health_trend": "down"}, "at_risk", id="active-red-to-at-risk"),
        pytest.param("active", {"health_band": "yellow", "health_change": -12, "health_trend": "down"}, "at_risk",
                     id="active-falling-to-at-risk"),
        pytest.param("active", {"health_band": "yellow", "health_change": -9, "health_trend": "down"}, "active",
                     id="small-drop-stays-active"),
        pytest.param("active", {"is_active": False}, "churned", id="active-to-churned"),
        pytest.param("at_risk", {"is_active": False, "health_band": "red"}, "churned", id="at-risk-to-churned"),
        pytest.param("churned", {"is_active": False}, "churned", id="churned-stays"),
        pytest.param("churned", {"days_since_reactivation": 3}, "reactivated", id="churned-to-reactivated"),
        pytest.param("reactivated", {"days_since_reactivation": 60, "health_band": "red"}, "reactivated",
                     id="reactivated-within-90-days"),
        pytest.param("reactivated", {"days_since_reactivation": 91}, "active", id="reactivated-to-active"),
        pytest.param("reactivated", {"is_active": False, "days_since_reactivation": 30}, "churned",
                     id="reactivated-to-churned"),
        pytest.param("at_risk", {"health_trend": "up", "health_change": 20}, "re_engaged", id="at-risk-to-re-engaged"),
        pytest.param("stagnating", {}, "re_engaged", id="stagnating-to-re-engaged"),
        pytest.param("at_risk", {"health_band": "yellow", "health_trend": "up", "health_change": 8}, "active",
                     id="at-risk-recovers-to-active"),
        pytest.param("at_risk", {"health_band": "red"}, "at_risk", id="at-risk-stays"),
        pytest.param("at_risk", {"health_change": -12, "health_trend": "down"}, "at_risk",
                     id="green-but-falling-stays-at-risk"),
        pytest.param("re_engaged", {}, "re_engaged", id="re-engaged-stays-30-days"),
        pytest.param("re_engaged", {"health_band": "red"}, "at_risk", id="re-engaged-to-at-risk"),
        pytest.param("stagnating", {"health_band": "red"}, "at_risk", id="stagnating-to-at-risk"),
        pytest.param("stagnating", {"usage_trend": -0.3, "health_band": "yellow"}, "stagnating",
                     id="stagnating-stays"),
        pytest.param("stagnating", {"health_band": "yellow"}, "active", id="stagnating-to-active"),
        pytest.param("active", {"usage_trend": -0.2, "health_band": "yellow"}, "active", id="small-usage-dip-is-noise"),
    ],
)
def test_customer_segments_lifecycle_transition(pack, before, changes, after):
    result = run(pack, {**HEALTHY, **changes}, previous_row(before))
    assert result["lifecycle"] == after
    assert result["previous_lifecycle"] == before
    since = result["lifecycle_since"]
    assert since == (AS_OF.isoformat() if after != before else (AS_OF - timedelta(days=10)).isoformat())


def test_customer_segments_re_engaged_ends_after_30_days(pack):
    assert run(pack, HEALTHY, previous_row("re_engaged", days_in_stage=29))["lifecycle"] == "re_engaged"
    assert run(pack, HEALTHY, previous_row("re_engaged", days_in_stage=30))["lifecycle"] == "active"


@pytest.mark.parametrize(
    "changes",
    [pytest.param({"usage_trend": -0.3}, id="usage-falling"), pytest.param({"forgettable": True}, id="forgettable")],
)
def test_customer_segments_stagnating_needs_two_runs(pack, changes):
    features = {**HEALTHY, "health_band": "yellow", **changes}
    first = run(pack, features, previous_row("active"))
    assert first["lifecycle"] == "active"
    assert first["memory"]["lifecycle"]["pending"] == {"stage": "stagnating", "runs": 1}
    second = run(pack, features, json.loads(json.dumps(first)), as_of=AS_OF + timedelta(days=1))
    assert second["lifecycle"] == "stagnating"
    assert second["lifecycle_since"] == (AS_OF + timedelta(days=1)).isoformat()
    assert second["memory"]["lifecycle"]["pending"] is None


def test_customer_segments_pending_stage_resets_when_outcome_returns(pack):
    stagnant = {**HEALTHY, "health_band": "yellow", "usage_trend": -0.3}
    first = run(pack, stagnant, previous_row("active"))
    back = run(pack, {**HEALTHY, "health_band": "yellow"}, first)
    assert back["lifecycle"] == "active" and back["memory"]["lifecycle"]["pending"] is None
    again = run(pack, stagnant, back)
    assert again["lifecycle"] == "active"  # the streak started over


def test_customer_segments_lifecycle_unknown_previous_stage_moves_at_once(pack):
    assert run(pack, HEALTHY, previous_row("renamed_stage"))["lifecycle"] == "active"


# ---------------------------------------------------------------- playbook tags (default pack)


@pytest.mark.parametrize(
    "changes, tag, on",
    [
        pytest.param({"tenure_days": 20, "onboarding_complete": True}, "welcome", True, id="welcome"),
        pytest.param({"tenure_days": 31}, "welcome", False, id="welcome-over"),
        pytest.param({"is_anniversary_month": True}, "anniversary", True, id="anniversary"),
        pytest.param({"is_anniversary_month": False}, "anniversary", False, id="anniversary-not-this-month"),
        pytest.param({"is_birthday_month": True}, "birthday", True, id="birthday"),
        pytest.param({"is_birthday_month": None}, "birthday", False, id="birthday-unknown"),
        pytest.param({"nps_latest": 9}, "review_request", True, id="review-request"),
        pytest.param({"nps_latest": 9, "health_band": "yellow"}, "review_request", False, id="review-not-healthy"),
        pytest.param({"nps_latest": 8}, "review_request", False, id="review-passive"),
        pytest.param({"nps_latest": 10}, "referral_candidate", True, id="referral"),
        pytest.param({"nps_latest": 10, "tenure_days": 200}, "referral_candidate", False, id="referral-too-new"),
        pytest.param({"payment_overdue": True}, "payment_overdue", True, id="payment-overdue"),
        pytest.param({"payment_overdue": False}, "payment_overdue", False, id="payment-ok"),
        pytest.param({"usage_frequency": 0.1}, "low_usage", True, id="low-usage"),
        pytest.param({"usage_frequency": None}, "low_usage", False, id="low-usage-unknown"),
        pytest.param({"cancel_requested": True}, "cancellation_save", True, id="cancellation-save"),
        pytest.param({"cancel_requested": True, "is_active": False}, "cancellation_save", False,
                     id="cancellation-period-over"),
        pytest.param({"seat_utilisation": 0.95}, "upsell", True, id="upsell"),
        pytest.param({"seat_utilisation": 0.95, "health_band": "yellow"}, "upsell", False, id="upsell-not-healthy"),
        pytest.param({"industry": "HOSPITALITY"}, "crisis_affected", True, id="crisis"),
        pytest.param({"industry": "HOSPITALITY", "is_active": False}, "crisis_affected", False,
                     id="crisis-not-a-customer-now"),
        pytest.param({"industry": "COMPUTER_SOFTWARE"}, "crisis_affected", False, id="crisis-other-industry"),
        pytest.param({"industry": None}, "crisis_affected", False, id="crisis-unknown-industry"),
        pytest.param({"health_band": "red"}, "at_risk", True, id="custom-at-risk-from-lifecycle"),
    ],
)
def test_customer_segments_playbook_tag(pack, changes, tag, on):
    result = run(pack, {**HEALTHY, **changes})
    assert (tag in result["tags"]) is on
    assert result["tags"] == sorted(result["tags"])


def test_customer_segments_healthy_customer_has_no_tags(pack):
    result = run(pack, HEALTHY)
    assert result["tags"] == [] and result["memory"]["tags"] == {}


# ---------------------------------------------------------------- hysteresis across runs


def tag_config(**rule) -> SegmentsConfig:
    data = {
        "lifecycle": {"stages": [{"name": "active"}]},
        "rfm": {"grid": [{"name": "all", "label": "All", "r": [1, 5], "f": [1, 5]}]},
        "custom": [{"name": "low_usage", "when": "usage_frequency < 0.2", **rule}],
    }
    return SegmentsConfig.model_validate(data)


def run_sequence(cfg, values, key="usage_frequency", extra=None):
    previous = None
    outcomes = []
    for day, value in enumerate(values):
        features = {"c1": {key: value, **(extra or {})}}
        result = customer_segments(features, cfg, AS_OF + timedelta(days=day), previous)
        previous = json.loads(json.dumps(result))  # what the state store gives back
        outcomes.append("low_usage" in result["c1"]["tags"])
    return outcomes


NEAR_THRESHOLD = [0.19, 0.21, 0.19, 0.21, 0.19, 0.35, 0.35]


@pytest.mark.parametrize(
    "rule, expected",
    [
        pytest.param({}, [True, False, True, False, True, False, False], id="no-hysteresis-flaps"),
        pytest.param({"exit_when": "usage_frequency >= 0.3"}, [True, True, True, True, True, False, False],
                     id="enter-exit-thresholds"),
        pytest.param({"min_runs": 2}, [True, True, True, True, True, True, False], id="two-runs-in-a-row"),
        pytest.param({"min_runs": 3}, [True, True, True, True, True, True, True], id="three-runs-in-a-row"),
    ],
)
def test_customer_segments_flapping_suppressed(rule, expected):
    assert run_sequence(tag_config(**rule), NEAR_THRESHOLD) == expected


def test_customer_segments_min_runs_delays_entering_too():
    cfg = tag_config(min_runs=2)
    assert run_sequence(cfg, [0.5, 0.1, 0.5, 0.1, 0.1, 0.1]) == [False, False, False, False, True, True]


def test_customer_segments_exit_rule_keeps_tag_when_value_unknown():
    cfg = tag_config(exit_when="usage_frequency >= 0.3")
    assert run_sequence(cfg, [0.1, None, 0.25, 0.3]) == [True, True, True, False]


def test_customer_segments_cooldown_blocks_reentry():
    cfg = tag_config(cooldown_days=3)
    # on at day 0, off day 1, wanted again days 2-3 (within 3 days of entering), allowed at day 3
    assert run_sequence(cfg, [0.1, 0.5, 0.1, 0.1, 0.1]) == [True, False, False, True, True]


def test_customer_segments_entered_and_left():
    cfg = tag_config()
    first = customer_segments({"c1": {"usage_frequency": 0.1}}, cfg, AS_OF)
    assert (first["c1"]["entered"], first["c1"]["left"]) == (["low_usage"], [])
    second = customer_segments({"c1": {"usage_frequency": 0.1}}, cfg, AS_OF, first)
    assert (second["c1"]["entered"], second["c1"]["left"]) == ([], [])
    third = customer_segments({"c1": {"usage_frequency": 0.5}}, cfg, AS_OF, second)
    assert (third["c1"]["entered"], third["c1"]["left"]) == ([], ["low_usage"])


def test_customer_segments_new_customer_later_takes_outcome_at_once():
    cfg = tag_config(min_runs=3)
    first = customer_segments({"c1": {"usage_frequency": 0.5}}, cfg, AS_OF)
    second = customer_segments({"c1": {"usage_frequency": 0.5}, "c2": {"usage_frequency": 0.1}}, cfg, AS_OF, first)
    assert second["c2"]["tags"] == ["low_usage"]


def test_customer_segments_results_json_serialisable(pack):
    features = {**e9_features()}
    for row in features.values():
        row.update(HEALTHY)
    result = customer_segments(features, pack, AS_OF)
    assert json.loads(json.dumps(result)) == result


def test_segment_distribution_counts_and_changes(pack):
    before = customer_segments({"a": HEALTHY, "b": {**HEALTHY, "health_band": "red"}}, pack, AS_OF)
    now = customer_segments({"a": {**HEALTHY, "health_band": "red"}, "b": {**HEALTHY, "health_band": "red"},
                             "c": {**HEALTHY, "payment_overdue": True}}, pack, AS_OF, before)
    result = segment_distribution(now, before, pack)
    assert result["lifecycle"]["at_risk"] == 2 and result["lifecycle"]["active"] == 1
    assert result["changes"]["lifecycle"]["at_risk"] == 1 and result["changes"]["lifecycle"]["active"] == 0
    assert result["tags"]["payment_overdue"] == 1 and result["tags"]["at_risk"] == 2
    assert result["customers"] == 3


# ---------------------------------------------------------------- schema checks


def test_segments_config_option_values_match_writeback_pack(pack):
    from connector.mapping.writeback import WritebackConfig

    writeback = load_yaml_model(ROOT / "mappings" / "writeback.yaml", WritebackConfig)
    offered = {o.field: {option.value for option in o.property.options} for o in writeback.outputs
               if o.object == "companies" and o.field in ("lifecycle", "tags")}
    options = pack.option_values()
    assert {o["value"] for o in options["tags"]} <= offered["tags"]
    # "prospect" is new here; write-back adds a value its property lacks as an option when it first occurs
    assert {o["value"] for o in options["lifecycle"]} - offered["lifecycle"] <= {"prospect"}


def broken(tmp_path, old: str, new: str) -> str:
    text = (ROOT / "mappings" / "segments.yaml").read_text()
    assert old in text
    path = tmp_path / "segments.yaml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


def line_of(path: str, needle: str) -> int:
    return next(i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "old, new, needle, message",
    [
        pytest.param('"is_active and usage_frequency < 0.2"', '"is_active and usgae_frequency < 0.2"', "usgae",
                     'column 15: unknown feature "usgae_frequency" (did you mean "usage_frequency"?)', id="unknown-feature"),
        pytest.param("\"lifecycle == 'at_risk'\"", "\"lifecycle == 'at_rsk'\"", "at_rsk",
                     'column 14: "at_rsk" is not a lifecycle value (did you mean "at_risk"?)', id="unknown-stage-value"),
        pytest.param('"cancel_requested and is_active"', '"cancel_requested and is_active and"', "is_active and\"",
                     "column 35: rule ends too early", id="syntax"),
        pytest.param('"payment_overdue"', '"payment_overdue == 1"', "payment_overdue == 1",
                     'column 17: cannot compare "payment_overdue" (bool) with 1 (number)', id="type-error"),
        pytest.param("min_runs: 2\n  - name: cancellation_save", "min_run: 2\n  - name: cancellation_save", "min_run:",
                     'unknown key "min_run" (did you mean "min_runs"?)', id="unknown-key"),
        pytest.param("{name: loyal, label: Loyal, r: [3, 4], f: [4, 5]}", "{name: loyal, label: Loyal, r: [3, 4], f: [4, 4]}",
                     "rfm:", "RFM grid has gaps: R3 F5, R4 F5", id="grid-gap"),
    ],
)
def test_segments_yaml_errors_point_at_file_line_column(tmp_path, old, new, needle, message):
    path = broken(tmp_path, old, new)
    with pytest.raises(MappingError) as info:
        load_yaml_model(path, SegmentsConfig)
    problem = info.value.problems[0]
    assert problem.file == path
    assert problem.line == line_of(path, needle)
    assert message in problem.reason


@pytest.mark.parametrize(
    "stages, message",
    [
        pytest.param([{"name": "active"}, {"name": "churned", "when": "not is_active"}],
                     'stage "active" has no "when", so churned can never be reached', id="fallback-not-last"),
        pytest.param([{"name": "churned", "when": "not is_active"}], 'the last stage ("churned") must have no "when"',
                     id="no-fallback"),
        pytest.param([{"name": "a", "when": "is_active"}, {"name": "a"}], "stage names must be unique: a",
                     id="duplicate"),
        pytest.param([{"name": "x", "when": "lifecycle == 'x'"}, {"name": "y"}], 'unknown feature "lifecycle"',
                     id="lifecycle-rule-cannot-read-its-own-result"),
    ],
)
def test_segments_config_lifecycle_invalid(stages, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SegmentsConfig.model_validate({"lifecycle": {"stages": stages},
                                       "rfm": {"grid": [{"name": "all", "label": "All", "r": [1, 5], "f": [1, 5]}]}})


@pytest.mark.parametrize(
    "grid, message",
    [
        pytest.param([{"name": "a", "label": "A", "r": [1, 5], "f": [1, 5]},
                      {"name": "b", "label": "B", "r": [5, 5], "f": [5, 5]}], 'overlap: R5 F5 is in both "a" and "b"',
                     id="overlap"),
        pytest.param([{"name": "a", "label": "A", "r": [1, 5], "f": [1, 6]}], "scores go up to 5", id="out-of-range"),
        pytest.param([{"name": "a", "label": "A", "r": [2, 1], "f": [1, 5]}], "must be [low, high]", id="inverted"),
    ],
)
def test_segments_config_rfm_grid_invalid(grid, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SegmentsConfig.model_validate({"lifecycle": {"stages": [{"name": "active"}]}, "rfm": {"grid": grid}})


def test_segments_config_duplicate_tag_names():
    with pytest.raises(ValueError, match="tag names must be unique across playbook and custom: x repeated"):
        SegmentsConfig.model_validate({
            "lifecycle": {"stages": [{"name": "active"}]},
            "rfm": {"grid": [{"name": "all", "label": "All", "r": [1, 5], "f": [1, 5]}]},
            "playbook": [{"name": "x", "when": "is_active"}], "custom": [{"name": "x", "when": "is_active"}]})


def test_customer_segments_reads_columnar_feature_table_with_health_overlay(pack):
    import numpy as np

    from connector.metrics.features import FeatureTable

    rows = e9_features()
    ids = sorted(rows)
    table = FeatureTable(ids, {
        "recency_days": np.array([rows[c]["recency_days"] for c in ids], dtype=float),
        "frequency": np.array([rows[c]["frequency"] for c in ids], dtype=float),
        "monetary": np.array([rows[c]["monetary"] for c in ids], dtype=float),
        "is_active": np.array([1] * 9 + [0], dtype=np.int8),
        "was_ever_active": np.array([1] * 10, dtype=np.int8),
        "tenure_days": np.array([400.0] * 10),
        "payment_overdue": np.array([-1] * 9 + [1], dtype=np.int8),
    })
    health = {c: {"health_band": "red" if c == "A" else "green", "health_trend": "flat", "health_change": 0}
              for c in ids}
    result = customer_segments(table, pack, AS_OF, health=health)
    assert {cid: (r["rfm"]["code"], r["rfm"]["segment"]) for cid, r in result.items()} == E9_EXPECTED
    assert (result["A"]["lifecycle"], result["B"]["lifecycle"], result["J"]["lifecycle"]) == (
        "at_risk", "active", "churned")
    assert result["J"]["tags"] == ["payment_overdue"] and result["A"]["tags"] == ["at_risk"]


def test_segments_config_check_health_band_labels(pack):
    assert pack.check_health(["red", "yellow", "green"]) == []
    problems = pack.check_health(["poor", "fair", "good"])
    paths = [path for path, _ in problems]
    assert ("lifecycle", "stages", 4, "when") in paths and ("playbook", 3, "when") in paths
    reason = dict(problems)[("playbook", 3, "when")]
    assert reason.startswith('playbook.3.when: column 44: "green" is not a health_band value (valid: fair, good, poor)')


def test_segments_yaml_reports_value_typos_with_other_problems_at_once(tmp_path):
    path = broken(tmp_path, "\"lifecycle == 'at_risk'\"", "\"lifecycle == 'at_rsk'\"")
    text = Path(path).read_text().replace('"is_active and usage_frequency < 0.2"', '"is_active and usgae_frequency < 0.2"')
    Path(path).write_text(text)
    with pytest.raises(MappingError) as info:
        load_yaml_model(path, SegmentsConfig)
    found = {(p.line, p.reason.split(" in rule")[0]) for p in info.value.problems}
    assert found == {
        (line_of(path, "usgae"), 'playbook.6.when: column 15: unknown feature "usgae_frequency" '
                                 '(did you mean "usage_frequency"?)'),
        (line_of(path, "at_rsk"), 'custom.0.when: column 14: "at_rsk" is not a lifecycle value '
                                  '(did you mean "at_risk"?)'),
    }


def test_customer_segments_unchanged_customer_is_stable_across_runs(pack):
    features = {cid: {**HEALTHY, **row} for cid, row in e9_features().items()}
    features["A"].update(payment_overdue=True, usage_frequency=0.1)
    first = customer_segments(features, pack, AS_OF)
    again = json.loads(json.dumps(first))
    for day in range(1, 4):
        again = json.loads(json.dumps(customer_segments(features, pack, AS_OF + timedelta(days=day), again)))
    for cid in features:
        assert (again[cid]["lifecycle"], again[cid]["tags"], again[cid]["rfm"]) == (
            first[cid]["lifecycle"], first[cid]["tags"], first[cid]["rfm"])
        assert again[cid]["lifecycle_since"] == AS_OF.isoformat() and again[cid]["entered"] == []
        assert again[cid]["memory"]["tags"] == first[cid]["memory"]["tags"]
