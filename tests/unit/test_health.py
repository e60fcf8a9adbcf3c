"""Health score: METRICS E8, normalisation methods, re-weighting and coverage, bands, trend, explanation, AUC."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from connector.health import (
    backtest_auc,
    health_distribution,
    health_features,
    health_scores,
    normalise,
    peer_percentiles,
    round_half_up,
)
from connector.mapping.health import HealthConfig
from connector.mapping.loader import load_yaml_model

ROOT = Path(__file__).resolve().parents[2]

E8_COMPONENTS = [
    {"name": "usage", "feature": "logins_30d", "method": "target_ratio", "target": 20, "weight": 0.4},
    {"name": "support", "feature": "open_tickets", "method": "inverse", "k": 20, "weight": 0.2,
     "explain": "{raw} open ticket{s}"},
    {"name": "nps", "feature": "nps_latest", "method": "survey", "scale": "nps", "weight": 0.2},
    {"name": "engagement", "feature": "days_since_last_engagement", "method": "linear_decay", "days": 90,
     "weight": 0.2},
]
E8_CUSTOMER = {"logins_30d": 15, "open_tickets": 2, "nps_latest": 8, "days_since_last_engagement": 45}


def config(components=None, **kw) -> HealthConfig:
    return HealthConfig.model_validate({"scorecards": [{"name": "main", "components": components or E8_COMPONENTS}],
                                        **kw})


def score_one(row, cfg=None, previous=None):
    return health_scores({"c1": row}, cfg or config(), {"c1": previous} if previous else None)["c1"]


# ---------------------------------------------------------------- E8


def test_health_scores_e8_full():
    result = score_one(E8_CUSTOMER)
    assert result["score"] == 68
    assert result["band"] == "yellow"
    # name: [raw, normalised, weight after re-weighting]
    assert {name: (raw, value, pytest.approx(weight)) for name, (raw, value, weight) in result["components"].items()} == {
        "usage": (15, 75.0, 0.4), "support": (2, 60.0, 0.2), "nps": (8, 80.0, 0.2), "engagement": (45, 50.0, 0.2)}
    assert list(result["components"]) == ["usage", "support", "nps", "engagement"]
    assert result["coverage"] == 1.0


def test_health_scores_e8_nps_missing_reweights():
    result = score_one({**E8_CUSTOMER, "nps_latest": None})
    assert result["score"] == 65  # (30 + 12 + 10) / 0.8
    assert result["band"] == "yellow"
    assert result["coverage"] == 0.8
    assert result["components"]["nps"] == [None, None, 0.0]
    assert result["components"]["usage"] == [15, 75.0, pytest.approx(0.5)]
    assert sum(weight for _, _, weight in result["components"].values()) == pytest.approx(1.0)


def test_health_scores_e8_missing_feature_key_same_as_none():
    row = dict(E8_CUSTOMER)
    del row["nps_latest"]
    assert score_one(row)["score"] == 65


# ---------------------------------------------------------------- methods


@pytest.mark.parametrize(
    "component, value, expected",
    [
        pytest.param({"method": "target_ratio", "target": 20}, 15, 75.0, id="target-ratio"),
        pytest.param({"method": "target_ratio", "target": 20}, 45, 100.0, id="target-ratio-capped"),
        pytest.param({"method": "target_ratio", "target": 20}, -3, 0.0, id="target-ratio-negative-floored"),
        pytest.param({"method": "inverse", "k": 20}, 2, 60.0, id="inverse"),
        pytest.param({"method": "inverse", "k": 20}, 7, 0.0, id="inverse-floored"),
        pytest.param({"method": "linear_decay", "days": 90}, 45, 50.0, id="decay"),
        pytest.param({"method": "linear_decay", "days": 90}, 200, 0.0, id="decay-floored"),
        pytest.param({"method": "linear_decay", "days": 90}, 0, 100.0, id="decay-today"),
        pytest.param({"method": "survey", "scale": "nps"}, 8, 80.0, id="nps"),
        pytest.param({"method": "survey", "scale": "csat"}, 62.5, 62.5, id="csat"),
        pytest.param({"method": "survey", "scale": "ces"}, 4, 50.0, id="ces-middle"),
        pytest.param({"method": "survey", "scale": "ces"}, 7, 100.0, id="ces-top"),
        pytest.param({"method": "survey", "scale": "ces"}, 1, 0.0, id="ces-bottom"),
        pytest.param({"method": "target_ratio", "target": 20}, None, None, id="missing"),
        pytest.param({"method": "target_ratio", "target": 20}, True, None, id="bool-is-not-a-number"),
        pytest.param({"method": "target_ratio", "target": 20}, float("nan"), None, id="nan-is-missing"),
        pytest.param({"method": "target_ratio", "target": 20}, "15", None, id="text-is-missing"),
    ],
)
def test_normalise_methods(component, value, expected):
    cfg = config([{"name": "x", "feature": "logins_30d", "weight": 1, **component}])
    assert normalise(cfg.scorecards[0].components[0], value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [pytest.param(True, 0.0, id="overdue"), pytest.param(False, 100.0, id="paid"),
     pytest.param(None, None, id="unknown"), pytest.param(1, None, id="number-is-not-a-bool")],
)
def test_normalise_bool(value, expected):
    cfg = config([{"name": "payment", "feature": "payment_overdue", "method": "bool", "if_true": 0,
                   "if_false": 100, "weight": 1}])
    assert normalise(cfg.scorecards[0].components[0], value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [pytest.param(67.5, 68, id="half-up"), pytest.param(66.5, 67, id="half-up-even"),
     pytest.param(67.49, 67, id="below-half"), pytest.param(0.4 * 75 + 0.2 * 60 + 0.2 * 80 + 0.2 * 50, 68, id="e8-sum"),
     pytest.param(52.5 - 1e-12, 53, id="float-noise-below-half"), pytest.param(100.0, 100, id="top")],
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


# ---------------------------------------------------------------- coverage


@pytest.mark.parametrize(
    "present, expected",
    [
        pytest.param({"logins_30d": 15, "open_tickets": 2, "nps_latest": 8}, 73, id="80pct-72.5-rounds-up"),
        pytest.param({"logins_30d": 15, "open_tickets": 2}, 70, id="60pct"),  # (30 + 12) / 0.6
        pytest.param({"nps_latest": 8, "open_tickets": 2, "days_since_last_engagement": 45}, 63, id="60pct-other"),
        pytest.param({"nps_latest": 8, "open_tickets": 2}, None, id="40pct-none-other"),
        pytest.param({"nps_latest": 8}, None, id="20pct-none"),
        pytest.param({"logins_30d": 15}, None, id="40pct-none"),
        pytest.param({}, None, id="nothing"),
    ],
)
def test_health_scores_coverage_minimum(present, expected):
    result = score_one(present)
    assert result["score"] == expected
    if expected is None:
        assert result["band"] is None
        assert result["explanation"].startswith("not enough data")
        assert all(weight == 0.0 for _, _, weight in result["components"].values())


def test_health_scores_coverage_exactly_at_minimum_scores():
    halves = [{**E8_COMPONENTS[0], "weight": 1}, {**E8_COMPONENTS[1], "weight": 1}]
    assert score_one({"logins_30d": 15}, config(halves))["score"] == 75
    assert score_one({"open_tickets": 2}, config(halves))["coverage"] == 0.5


def test_health_scores_coverage_minimum_configurable():
    cfg = config(coverage_min=0.9)
    assert score_one({**E8_CUSTOMER, "nps_latest": None}, cfg)["score"] is None
    assert score_one(E8_CUSTOMER, cfg)["score"] == 68


def test_health_scores_weights_need_not_sum_to_one():
    scaled = [{**c, "weight": c["weight"] * 250} for c in E8_COMPONENTS]
    assert score_one(E8_CUSTOMER, config(scaled))["score"] == 68


# ---------------------------------------------------------------- bands


@pytest.mark.parametrize(
    "score, band",
    [pytest.param(0, "red", id="0"), pytest.param(50, "red", id="50"), pytest.param(51, "yellow", id="51"),
     pytest.param(75, "yellow", id="75"), pytest.param(76, "green", id="76"), pytest.param(100, "green", id="100"),
     pytest.param(None, None, id="none")],
)
def test_band_for_default_bands(score, band):
    assert config().band_for(score) == band


def test_band_for_custom_labels_and_ranges():
    cfg = config(bands=[{"label": "good", "min": 61, "max": 100}, {"label": "poor", "min": 0, "max": 30},
                        {"label": "fair", "min": 31, "max": 60}])
    assert [b.label for b in cfg.bands] == ["poor", "fair", "good"]  # sorted by range
    assert (cfg.band_for(30), cfg.band_for(31), cfg.band_for(61)) == ("poor", "fair", "good")
    assert score_one(E8_CUSTOMER, cfg)["band"] == "good"


@pytest.mark.parametrize(
    "bands, message",
    [
        pytest.param([(0, 50), (52, 100)], "bands leave a gap: no band covers 51", id="gap"),
        pytest.param([(0, 50), (50, 100)], 'bands overlap: "b1" starts at 50, already covered up to 50', id="overlap"),
        pytest.param([(1, 100)], "no band covers 0", id="missing-zero"),
        pytest.param([(0, 50), (51, 99)], "bands must reach 100: no band covers 100", id="missing-top"),
        pytest.param([(0, 40), (51, 100)], "no band covers 41-50", id="gap-range"),
        pytest.param([(60, 50), (0, 100)], "min 60 is above max 50", id="inverted"),
    ],
)
def test_health_config_bands_invalid(bands, message):
    with pytest.raises(ValueError, match=message):
        config(bands=[{"label": f"b{i}", "min": lo, "max": hi} for i, (lo, hi) in enumerate(bands)])


def test_health_config_bands_duplicate_labels():
    with pytest.raises(ValueError, match="band labels must be unique: red repeated"):
        config(bands=[{"label": "red", "min": 0, "max": 50}, {"label": "red", "min": 51, "max": 100}])


# ---------------------------------------------------------------- trend


@pytest.mark.parametrize(
    "previous, trend, change",
    [
        pytest.param({"score": 60}, "up", 8, id="up"),
        pytest.param({"score": 75}, "down", -7, id="down"),
        pytest.param({"score": 66}, "flat", 2, id="flat-at-tolerance"),
        pytest.param({"score": 70}, "flat", -2, id="flat-at-minus-tolerance"),
        pytest.param({"score": 65}, "up", 3, id="just-above-tolerance"),
        pytest.param({"score": 68}, "flat", 0, id="unchanged"),
        pytest.param({"score": None}, None, None, id="previous-unscored"),
        pytest.param(None, None, None, id="first-run"),
    ],
)
def test_health_scores_trend(previous, trend, change):
    result = score_one(E8_CUSTOMER, previous=previous)
    assert (result["trend"], result["change"]) == (trend, change)


def test_health_scores_trend_tolerance_configurable():
    cfg = config(trend={"tolerance": 10})
    assert score_one(E8_CUSTOMER, cfg, {"score": 60})["trend"] == "flat"
    assert score_one(E8_CUSTOMER, cfg, {"score": 57})["trend"] == "up"


def test_health_scores_unscored_now_has_no_trend():
    result = score_one({"nps_latest": 8}, previous={"score": 70})
    assert (result["score"], result["trend"], result["change"]) == (None, None, None)


# ---------------------------------------------------------------- explanation


@pytest.mark.parametrize(
    "row, expected",
    [
        pytest.param({"logins_30d": 4.4, "open_tickets": 2, "nps_latest": 9, "days_since_last_engagement": 9},
                     "usage 22/100, 2 open tickets", id="brief-example"),
        pytest.param({"logins_30d": 20, "open_tickets": 1, "nps_latest": 10, "days_since_last_engagement": 0},
                     "1 open ticket", id="singular-and-only-losers-named"),
        pytest.param({"logins_30d": 20, "open_tickets": 0, "nps_latest": 10, "days_since_last_engagement": 0},
                     "all components at 100/100", id="perfect"),
        pytest.param(E8_CUSTOMER, "engagement 50/100, usage 75/100", id="e8-tie-broken-by-name"),
        pytest.param({"nps_latest": 3}, "not enough data (20% of weight): missing usage, support, engagement",
                     id="coverage"),
    ],
)
def test_health_scores_explanation(row, expected):
    assert score_one(row)["explanation"] == expected


def test_health_scores_explanation_weighs_points_lost_not_raw_score():
    # usage 50/100 at weight 0.4 costs 20 points; NPS 0/100 at weight 0.1 costs only 10
    components = [
        {"name": "usage", "feature": "logins_30d", "method": "target_ratio", "target": 20, "weight": 0.4},
        {"name": "nps", "feature": "nps_latest", "method": "survey", "scale": "nps", "weight": 0.1},
        {"name": "payment", "feature": "payment_overdue", "method": "bool", "if_true": 0, "if_false": 100,
         "weight": 0.5, "explain": "payment overdue"},
    ]
    cfg = config(components, explanation={"components": 1})
    assert score_one({"logins_30d": 10, "nps_latest": 0, "payment_overdue": False}, cfg)["explanation"] == "usage 50/100"
    assert score_one({"logins_30d": 10, "nps_latest": 0, "payment_overdue": True}, cfg)["explanation"] == "payment overdue"


@pytest.mark.parametrize("max_length", [pytest.param(20, id="20"), pytest.param(25, id="25"),
                                        pytest.param(100, id="100")])
def test_health_scores_explanation_length(max_length):
    long_name = [{**c, "explain": "{name} is far below what a healthy account of this size shows ({score}/100)"}
                 for c in E8_COMPONENTS]
    cfg = config(long_name, explanation={"max_length": max_length, "components": 4})
    text = score_one({"logins_30d": 1, "open_tickets": 4, "nps_latest": 1, "days_since_last_engagement": 80},
                     cfg)["explanation"]
    assert 0 < len(text) <= max_length
    assert text.startswith("usage" if max_length >= 100 else "usage is far"[: max_length - 1])


def test_health_scores_explanation_drops_pieces_that_do_not_fit():
    cfg = config(explanation={"max_length": 20, "components": 3})
    text = score_one({"logins_30d": 4.4, "open_tickets": 2, "nps_latest": 9, "days_since_last_engagement": 9},
                     cfg)["explanation"]
    assert text == "usage 22/100"


# ---------------------------------------------------------------- scorecards


def two_cards() -> HealthConfig:
    return HealthConfig.model_validate({
        "scorecards": [
            {"name": "onboarding", "when": "tenure_days <= 90 and not onboarding_complete",
             "components": [{"name": "onboarding", "feature": "onboarding_progress", "method": "target_ratio",
                             "target": 1, "weight": 1}]},
            {"name": "smb", "when": "seats_purchased < 10",
             "components": [{"name": "usage", "feature": "logins_30d", "method": "target_ratio", "target": 10,
                             "weight": 1}]},
            {"name": "default", "components": E8_COMPONENTS},
        ]
    })


@pytest.mark.parametrize(
    "row, card, score",
    [
        pytest.param({"tenure_days": 30, "onboarding_complete": False, "onboarding_progress": 0.6,
                      "seats_purchased": 5, **E8_CUSTOMER}, "onboarding", 60, id="onboarding-first-match"),
        pytest.param({"tenure_days": 30, "onboarding_complete": True, "seats_purchased": 5, **E8_CUSTOMER},
                     "smb", 100, id="onboarded-small"),
        pytest.param({"tenure_days": 400, "seats_purchased": 50, **E8_CUSTOMER}, "default", 68, id="default"),
        pytest.param({"tenure_days": None, "seats_purchased": None, **E8_CUSTOMER}, "default", 68,
                     id="unknown-values-fall-through"),
    ],
)
def test_health_scores_scorecard_selection(row, card, score):
    result = score_one(row, two_cards())
    assert (result["scorecard"], result["score"]) == (card, score)


def test_health_scores_no_scorecard_matches():
    cfg = HealthConfig.model_validate({"scorecards": [
        {"name": "big", "when": "seats_purchased >= 100", "components": E8_COMPONENTS}]})
    result = score_one(E8_CUSTOMER, cfg)
    assert (result["score"], result["scorecard"], result["explanation"]) == (None, None, "no scorecard applies")


def test_health_config_catch_all_scorecard_must_be_last():
    with pytest.raises(ValueError, match='scorecard "default" has no "when".*smb can never be used'):
        HealthConfig.model_validate({"scorecards": [
            {"name": "default", "components": E8_COMPONENTS},
            {"name": "smb", "when": "seats_purchased < 10", "components": E8_COMPONENTS}]})


# ---------------------------------------------------------------- percentile within peers


def percentile_config(**kw):
    return config([{"name": "usage", "feature": "logins_30d", "method": "percentile", "weight": 1, **kw}])


def test_peer_percentiles_rank_within_peer_group():
    features = {f"s{i}": {"logins_30d": v, "industry": "RETAIL"} for i, v in enumerate([1, 2, 3, 4, 5])}
    features |= {f"f{i}": {"logins_30d": v, "industry": "FINANCE"} for i, v in enumerate([10, 20, 30, 40, 50])}
    cfg = percentile_config(peer="industry", min_peers=5)
    result = peer_percentiles(features, cfg.scorecards[0].components[0])
    assert [result[f"s{i}"] for i in range(5)] == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert [result[f"f{i}"] for i in range(5)] == [0.0, 25.0, 50.0, 75.0, 100.0]
    scores = health_scores(features, cfg)
    assert scores["s4"]["score"] == scores["f4"]["score"] == 100


def test_peer_percentiles_small_groups_and_missing_peer_ranked_among_everyone():
    features = {"a": {"logins_30d": 1, "industry": "RETAIL"}, "b": {"logins_30d": 2, "industry": "RETAIL"},
                "c": {"logins_30d": 3, "industry": None}, "d": {"logins_30d": 4, "industry": "FINANCE"},
                "e": {"logins_30d": None, "industry": "FINANCE"}}
    component = percentile_config(peer="industry", min_peers=3).scorecards[0].components[0]
    result = peer_percentiles(features, component)
    assert result == pytest.approx({"a": 0.0, "b": 100 / 3, "c": 200 / 3, "d": 100.0})


def test_peer_percentiles_ties_share_mid_rank_and_direction():
    features = {"a": {"logins_30d": 1}, "b": {"logins_30d": 5}, "c": {"logins_30d": 5}, "d": {"logins_30d": 9}}
    up = peer_percentiles(features, percentile_config().scorecards[0].components[0])
    down = peer_percentiles(features, percentile_config(higher_is_better=False).scorecards[0].components[0])
    assert up == {"a": 0.0, "b": 50.0, "c": 50.0, "d": 100.0}
    assert down == {"a": 100.0, "b": 50.0, "c": 50.0, "d": 0.0}


def test_peer_percentiles_single_customer_has_no_rank():
    component = percentile_config().scorecards[0].components[0]
    assert peer_percentiles({"a": {"logins_30d": 3}}, component) == {}


# ---------------------------------------------------------------- outputs


def test_health_scores_output_json_serialisable_and_stable():
    features = {"c1": E8_CUSTOMER, "c2": {**E8_CUSTOMER, "nps_latest": None}, "c3": {}}
    first = health_scores(features, config())
    again = health_scores(features, config(), previous=json.loads(json.dumps(first)))
    assert json.loads(json.dumps(first)) == first
    assert {cid: (r["trend"], r["change"]) for cid, r in again.items()} == {
        "c1": ("flat", 0), "c2": ("flat", 0), "c3": (None, None)}
    assert {cid: r["score"] for cid, r in again.items()} == {cid: r["score"] for cid, r in first.items()}


def test_health_features_for_segments():
    result = health_scores({"c1": E8_CUSTOMER}, config(), {"c1": {"score": 80}})
    assert health_features(result)["c1"] == {
        "health_score": 68, "health_band": "yellow", "health_change": -12, "health_trend": "down",
        "health_explanation": "engagement 50/100, usage 75/100", "health_scorecard": "main"}


def test_health_distribution_counts_and_changes():
    now = {"a": {"band": "red", "score": 40}, "b": {"band": "green", "score": 90}, "c": {"band": None, "score": None}}
    before = {"a": {"band": "yellow", "score": 60}, "b": {"band": "green", "score": 88}}
    result = health_distribution(now, before, ["red", "yellow", "green"])
    assert result["bands"] == {"red": 1, "yellow": 0, "green": 1, "unscored": 1}
    assert result["changes"] == {"red": 1, "yellow": -1, "green": 0, "unscored": 1}
    assert result["average"] == 65.0
    assert health_distribution(now, None, ["red", "yellow", "green"])["changes"] == {}


def test_default_health_yaml_scores_a_realistic_customer():
    cfg = load_yaml_model(ROOT / "mappings" / "health.yaml", HealthConfig)
    established = {"is_active": True, "tenure_days": 500, "onboarding_complete": True, "usage_frequency": 0.1,
                   "seat_utilisation": 0.8, "open_tickets": 3, "nps_latest": 6, "payment_overdue": False,
                   "days_since_last_engagement": 30, "days_since_last_login": 3}
    new = {"is_active": True, "tenure_days": 20, "onboarding_complete": False, "onboarding_progress": 0.4,
           "usage_frequency": 0.4, "open_tickets": 0, "payment_overdue": False}
    churned = {**established, "is_active": False}
    result = health_scores({"old": established, "new": new, "churned": churned}, cfg)
    assert (result["churned"]["score"], result["churned"]["explanation"]) == (None, "no scorecard applies")
    assert result["old"]["scorecard"] == "default" and result["new"]["scorecard"] == "onboarding"
    # 25*20 + 15*100 + 10*40 + 15*60 + 15*100 + 10*66.67 + 10*90 = 6366.7 / 100
    assert result["old"]["score"] == 64 and result["old"]["band"] == "yellow"
    assert result["old"]["explanation"] == "usage 20/100, NPS 6"
    assert result["new"]["score"] == 76 and result["new"]["explanation"] == "onboarding 40% done"


# ---------------------------------------------------------------- backtest AUC


@pytest.mark.parametrize(
    "scores, churned, expected",
    [
        pytest.param({"a": 10, "b": 20, "c": 80, "d": 90}, {"a", "b"}, 1.0, id="perfect"),
        pytest.param({"a": 10, "b": 20, "c": 80, "d": 90}, {"c", "d"}, 0.0, id="inverted"),
        pytest.param({"a": 50, "b": 50, "c": 50, "d": 50}, {"a"}, 0.5, id="all-tied"),
        pytest.param({"a": 10, "b": 50, "c": 50, "d": 90}, {"a", "b"}, 0.875, id="one-tie-across"),
        pytest.param({"a": 10, "b": None, "c": 90}, {"a", "b"}, 1.0, id="unscored-left-out"),
        pytest.param({"a": 30, "b": 10, "c": 20, "x": 40}, {"a"}, 0.3333333333333333, id="middle"),
    ],
)
def test_backtest_auc(scores, churned, expected):
    assert backtest_auc(scores, churned) == pytest.approx(expected)


def test_backtest_auc_matches_pairwise_definition():
    rng = random.Random(7)
    scores = {f"c{i}": rng.choice([None] + list(range(0, 101, 5))) for i in range(300)}
    churned = {cid for cid in scores if rng.random() < 0.3}
    scored = [(s, cid in churned) for cid, s in scores.items() if s is not None]
    wins = 0.0
    pairs = 0
    for (s1, c1), (s2, c2) in itertools.product(scored, scored):
        if c1 and not c2:
            pairs += 1
            wins += 1.0 if s1 < s2 else 0.5 if s1 == s2 else 0.0
    assert backtest_auc(scores, churned) == pytest.approx(wins / pairs)


@pytest.mark.parametrize("churned", [pytest.param(set(), id="no-churn"), pytest.param({"a", "b"}, id="all-churned")])
def test_backtest_auc_needs_both_classes(churned):
    with pytest.raises(ValueError, match="AUC needs churned and retained customers"):
        backtest_auc({"a": 10, "b": 20, "c": None}, churned)


def test_health_scores_reads_columnar_feature_table():
    import numpy as np

    from connector.metrics.features import FeatureTable

    table = FeatureTable(["c1", "c2"], {
        "logins_30d": np.array([15.0, 15.0]), "open_tickets": np.array([2.0, 2.0]),
        "nps_latest": np.array([8.0, np.nan]), "days_since_last_engagement": np.array([45.0, 45.0]),
    })
    result = health_scores(table, config())
    assert (result["c1"]["score"], result["c2"]["score"]) == (68, 65)
    pct = peer_percentiles(table, percentile_config().scorecards[0].components[0])
    assert pct == {"c1": 50.0, "c2": 50.0}


@pytest.mark.parametrize(
    "margin, scores, bands",
    [
        pytest.param(0, [51, 50, 51, 49], ["yellow", "red", "yellow", "red"], id="no-margin-flaps"),
        pytest.param(2, [51, 50, 51, 49, 48, 50, 52, 53], ["yellow", "yellow", "yellow", "yellow", "red", "red",
                                                        "red", "yellow"], id="margin-2"),
        pytest.param(2, [90, 60], ["green", "yellow"], id="real-change-moves-at-once"),
    ],
)
def test_health_scores_band_margin_stops_flapping(margin, scores, bands):
    # one component scored 0-100 straight from the feature, so the score is the value itself
    cfg = config([{"name": "csat", "feature": "csat_pct", "method": "survey", "scale": "csat", "weight": 1}],
                 band_margin=margin)
    previous = None
    seen = []
    for value in scores:
        result = health_scores({"c1": {"csat_pct": value}}, cfg, previous)
        assert result["c1"]["score"] == value
        seen.append(result["c1"]["band"])
        previous = json.loads(json.dumps(result))
    assert seen == bands


def test_health_scores_percentile_ranks_only_within_the_scorecard():
    cfg = HealthConfig.model_validate({"scorecards": [
        {"name": "paying", "when": "is_active", "components": [
            {"name": "usage", "feature": "logins_30d", "method": "percentile", "weight": 1}]}]})
    features = {"a": {"is_active": True, "logins_30d": 10}, "b": {"is_active": True, "logins_30d": 20},
                "c": {"is_active": True, "logins_30d": 30},
                "gone1": {"is_active": False, "logins_30d": 0}, "gone2": {"is_active": False, "logins_30d": 0}}
    result = health_scores(features, cfg)
    assert [result[c]["score"] for c in ("a", "b", "c")] == [0, 50, 100]  # churned zeros do not lift "a"
    assert result["gone1"]["score"] is None


@pytest.mark.parametrize(
    ("days", "text"),
    [
        pytest.param(0, "under a week", id="today"),
        pytest.param(6, "under a week", id="six-days"),
        pytest.param(7, "1 week", id="one-week"),
        pytest.param(29, "4 weeks", id="four-weeks"),
        pytest.param(30, "1 month", id="one-month"),
        pytest.param(95, "3 months", id="three-months"),
        pytest.param(800, "2 years", id="two-years"),
        pytest.param(None, "n/a", id="unknown"),
    ],
)
def test_format_age_buckets_day_counts(days, text):
    from connector.health import format_age

    assert format_age(days) == text


def test_explanation_with_age_is_stable_from_day_to_day():
    """A day count in an explanation must not rewrite the CRM property every day."""
    from connector.health import health_scores
    from connector.mapping.health import HealthConfig

    config = HealthConfig.model_validate({
        "scorecards": [{"name": "all", "components": [
            {"name": "engagement", "feature": "days_since_last_engagement", "method": "linear_decay", "days": 90,
             "weight": 1, "explain": "no touch in {age}"},
        ]}],
    })
    texts = {health_scores({"c": {"days_since_last_engagement": d}}, config)["c"]["explanation"] for d in range(31, 38)}
    assert texts == {"no touch in 1 month"}
