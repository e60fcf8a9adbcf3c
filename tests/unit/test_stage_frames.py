"""The frame forms of health and segments: the dict results are views of them, and their arithmetic and text are
Python's to the last bit (a score or an explanation must not move when the stage changed engine)."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from connector.health import SNAPSHOT_SCHEMA, _raw_text, health_frame, health_scores, normalise
from connector.mapping.health import HealthConfig
from connector.mapping.loader import load_yaml_model
from connector.mapping.segments import SegmentsConfig
from connector.segments import customer_segments, segments_frame, snapshot_schema

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def packs() -> tuple[HealthConfig, SegmentsConfig]:
    return (load_yaml_model(ROOT / "mappings" / "health.yaml", HealthConfig),
            load_yaml_model(ROOT / "mappings" / "segments.yaml", SegmentsConfig))


def customers(seed: int, n: int = 300) -> dict[str, dict]:
    rng = random.Random(seed)

    def maybe(value, missing=0.15):
        return None if rng.random() < missing else value

    return {str(100 + i): {
        "is_active": rng.random() < 0.85, "was_ever_active": True, "tenure_days": rng.randint(1, 900),
        "onboarding_complete": maybe(rng.random() < 0.7), "onboarding_progress": maybe(rng.random()),
        "usage_frequency": maybe(rng.randint(0, 30) / 30), "usage_trend": maybe(rng.randint(-10, 10) / 30),
        "forgettable": maybe(rng.random() < 0.1), "seat_utilisation": maybe(rng.random() * 1.2),
        "open_tickets": maybe(rng.randint(0, 6)), "nps_latest": maybe(rng.randint(0, 10), 0.4),
        "payment_overdue": maybe(rng.random() < 0.1), "days_since_last_engagement": maybe(rng.randint(0, 200)),
        "days_since_last_login": maybe(rng.randint(0, 60)), "industry": rng.choice(["RETAIL", "HOSPITALITY", None]),
        "recency_days": maybe(rng.randint(0, 365)), "frequency": rng.randint(1, 9), "monetary": rng.random() * 900,
        "cancel_requested": rng.random() < 0.05, "days_since_reactivation": maybe(rng.randint(0, 200), 0.8),
    } for i in range(n)}


def test_health_frame_is_what_the_dict_view_shows(packs):
    health, _ = packs
    features = customers(1)
    first = health_scores(features, health)
    again = health_scores(customers(2), health, json.loads(json.dumps(first)))
    frame = health_frame(customers(2), health, json.loads(json.dumps(first)))
    assert frame.columns == ["customer_id", "score", "band", "scorecard", "coverage", "trend", "change", "explanation"]
    for cid, score, band, card, coverage, trend, change, text in frame.iter_rows():
        r = again[cid]
        assert (score, band, card, coverage, trend, change, text) == (
            r["score"], r["band"], r["scorecard"], r["coverage"], r["trend"], r["change"], r["explanation"])
    assert {r["trend"] for r in again.values()} >= {"up", "down", "flat"}


def test_segments_frame_is_what_the_dict_view_shows(packs):
    health, segments = packs
    features = customers(3)
    overlay = health_frame(features, health)
    first = customer_segments(features, segments, AS_OF, health=overlay)
    later = customers(4)
    result = customer_segments(later, segments, AS_OF + timedelta(days=1), json.loads(json.dumps(first)),
                               health=health_frame(later, health))
    frame = segments_frame(later, segments, AS_OF + timedelta(days=1), json.loads(json.dumps(first)),
                           health=health_frame(later, health))
    for row in frame.iter_rows(named=True):
        r = result[row["customer_id"]]
        assert (row["lifecycle"], row["lifecycle_since"], row["previous_lifecycle"], row["nps_group"], row["tags"],
                row["entered"], row["left"], row["rfm_code"]) == (
            r["lifecycle"], r["lifecycle_since"], r["previous_lifecycle"], r["nps_group"], r["tags"], r["entered"],
            r["left"], r["rfm"]["code"] if r["rfm"] else None)
    assert any(r["entered"] for r in result.values()) and any(r["left"] for r in result.values())


@pytest.mark.parametrize("component, python", [
    pytest.param({"method": "linear_decay", "days": 90}, lambda x: 100.0 * (1.0 - x / 90.0), id="decay"),
    pytest.param({"method": "linear_decay", "days": 30}, lambda x: 100.0 * (1.0 - x / 30.0), id="decay-30"),
    pytest.param({"method": "survey", "scale": "ces"}, lambda x: (x - 1.0) / 6.0 * 100.0, id="ces"),
    pytest.param({"method": "target_ratio", "target": 0.4}, lambda x: x * (100.0 / 0.4), id="target"),
])
def test_normalise_divides_as_python_does(component, python):
    # polars divides a column by a scalar as a product with the reciprocal: 52 / 90 would land one bit off
    cfg = HealthConfig.model_validate({"scorecards": [{"name": "a", "components": [
        {"name": "x", "feature": "csat_pct", "weight": 1, **component}]}]})
    values = [52, 23, 7, 1.7, 0.31, 5.5] + [random.Random(5).uniform(0, 8) for _ in range(50)]
    for value in values:
        expected = min(100.0, max(0.0, python(value)))
        assert normalise(cfg.scorecards[0].components[0], value) == expected, value


@pytest.mark.parametrize("value, text", [
    pytest.param(2.675, "2.67", id="binary-below-half"), pytest.param(1e-05, "0", id="tiny"),
    pytest.param(-0.001, "-0", id="minus-tiny"), pytest.param(1e20, "100000000000000000000", id="big-whole"),
    pytest.param(0.1 + 0.2, "0.3", id="float-noise"), pytest.param(4.4, "4.4", id="one-decimal"),
    pytest.param(2, "2", id="whole"), pytest.param(None, "n/a", id="missing"),
    pytest.param(float("inf"), "inf", id="infinite"),
])
def test_raw_text_formats_like_python(value, text):
    assert _raw_text(pl.Series([value], dtype=pl.Float64)).to_list() == [text]


def stored(frame: pl.DataFrame, schema: dict) -> pl.DataFrame:
    """A result frame as a store keeps it (JSON text per customer) and reads it back (decoded with the schema)."""
    text = frame.select("customer_id", pl.struct(list(schema)).struct.json_encode().alias("data"))
    return text.select("customer_id", pl.col("data").str.json_decode(pl.Struct(schema))).unnest("data")


def test_last_run_read_as_a_frame_gives_what_its_dicts_give(packs):
    health, segments = packs
    features, later, day = customers(5), customers(6), AS_OF + timedelta(days=1)
    health_before = health_frame(features, health)
    segments_before = segments_frame(features, segments, AS_OF, health=health_before)
    health_dicts = json.loads(json.dumps(health_scores(features, health)))
    segment_dicts = json.loads(json.dumps(customer_segments(features, segments, AS_OF, health=health_before)))

    health_now = health_frame(later, health, stored(health_before, SNAPSHOT_SCHEMA))
    assert health_now.equals(health_frame(later, health, health_dicts))
    now = segments_frame(later, segments, day, stored(segments_before, snapshot_schema(segments)), health=health_now)
    assert now.equals(segments_frame(later, segments, day, segment_dicts, health=health_now))
    assert now["entered"].list.len().sum() > 0 and now["left"].list.len().sum() > 0
    memory = now["memory"].struct.field("tags").struct.unnest()
    assert memory.null_count().sum_horizontal().item() < memory.height * memory.width  # some tag remembered
