"""`connector health` and `connector segments` read the state store's snapshots of two runs (real SQLite store)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.health import health_features, health_scores
from connector.mapping.health import HealthConfig
from connector.mapping.loader import load_yaml_model
from connector.mapping.segments import SegmentsConfig
from connector.segments import customer_segments
from connector.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

BASE = {"is_active": True, "was_ever_active": True, "tenure_days": 400, "onboarding_complete": True,
        "usage_frequency": 0.5, "seat_utilisation": 0.8, "open_tickets": 0, "nps_latest": 9,
        "payment_overdue": False, "days_since_last_engagement": 10, "days_since_last_login": 1}
DAY_1 = {"101": BASE, "102": {**BASE, "open_tickets": 5, "usage_frequency": 0.05, "nps_latest": 2,
                               "days_since_last_engagement": 90, "days_since_last_login": 30},
         "103": {**BASE, "nps_latest": None}}
DAY_2 = {**DAY_1, "101": {**BASE, "payment_overdue": True, "usage_frequency": 0.1}}


@pytest.fixture
def store_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("CONNECTOR_STATE_URL", url)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(ROOT / "mappings"))
    return url


def save_two_runs(url: str) -> list[str]:
    health_cfg = load_yaml_model(ROOT / "mappings" / "health.yaml", HealthConfig)
    segments_cfg = load_yaml_model(ROOT / "mappings" / "segments.yaml", SegmentsConfig)
    store = StateStore.open(url)
    run_ids = []
    try:
        for day, features in ((1, DAY_1), (2, DAY_2)):
            as_of = datetime(2026, 11, day, tzinfo=timezone.utc)
            run_id = store.start_run("sync")
            health = health_scores(features, health_cfg, store.load_snapshots("health"))
            segments = customer_segments(features, segments_cfg, as_of, store.load_snapshots("segments"),
                                         health=health_features(health))
            store.save_snapshots(run_id, "health", as_of, health)
            store.save_snapshots(run_id, "segments", as_of, segments)
            store.finish_run(run_id, "ok", {})
            run_ids.append(run_id)
    finally:
        store.close()
    return run_ids


def test_health_command_without_runs_says_what_to_do(store_url):
    result = runner.invoke(app, ["health"])
    assert result.exit_code == 0, result.output
    assert "run `connector sync` first" in result.stdout
    as_json = runner.invoke(app, ["segments", "--output", "json"])
    assert json.loads(as_json.stdout)["run_id"] is None


def test_health_command_prints_bands_with_change(store_url):
    first, second = save_two_runs(store_url)
    result = runner.invoke(app, ["health", "--output", "json", "--customer", "101"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["run_id"], report["previous_run_id"]) == (second, first)
    assert report["distribution"]["bands"] == {"red": 1, "yellow": 1, "green": 1}
    assert report["distribution"]["changes"] == {"red": 0, "yellow": 1, "green": -1}
    assert report["customer"]["score"] == 62 and report["customer"]["trend"] == "down"
    assert report["customer"]["explanation"] == "usage 20/100, payment overdue"

    text = runner.invoke(app, ["health"])
    assert text.exit_code == 0, text.output
    assert f"health of run {second}" in text.stdout and f"change since run {first}" in text.stdout
    assert "  yellow          1  (+1)" in text.stdout


def test_segments_command_prints_lifecycle_and_tags_with_change(store_url):
    first, second = save_two_runs(store_url)
    result = runner.invoke(app, ["segments", "--output", "json", "--customer", "101"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    distribution = report["distribution"]
    assert distribution["lifecycle"]["at_risk"] == 2  # 102 red, 101 fell 35 points
    assert distribution["changes"]["lifecycle"]["at_risk"] == 1
    assert distribution["tags"]["payment_overdue"] == 1 and distribution["changes"]["tags"]["payment_overdue"] == 1
    assert report["customer"]["lifecycle"] == "at_risk"
    assert report["customer"]["entered"] == ["at_risk", "payment_overdue"]

    text = runner.invoke(app, ["segments"])
    assert text.exit_code == 0, text.output
    assert "lifecycle:" in text.stdout and "tags:" in text.stdout and "RFM segments:" in text.stdout


def test_health_command_rejects_unknown_output(store_url):
    result = runner.invoke(app, ["health", "--output", "yaml"])
    assert result.exit_code == 2
    assert "--output must be text or json" in result.output
