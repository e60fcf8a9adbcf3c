"""The default health.yaml and segments.yaml on features computed from the sandbox portal pulled over real HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from connector import pipeline
from connector.health import health_features, health_scores
from connector.mapping import load_pack
from connector.metrics.features import customer_features
from connector.segments import customer_segments
from connector.settings import Settings
from connector.state import StateStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(sandbox, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('health') / 'state.db'}"
    settings = Settings(_env_file=None, base_url=sandbox.base_url, token=sandbox.token, state_url=url,
                        mappings_dir=ROOT / "mappings")
    pipeline.run_pull(settings)
    store = StateStore.open(url)
    pack = load_pack(ROOT / "mappings")
    portfolio = pipeline.load_portfolio(store, pack)
    now = datetime.fromtimestamp(sandbox.portal.now_ms / 1000, tz=timezone.utc)
    features = customer_features(portfolio, now, options=pipeline.metrics_options(pack).features)
    yield pack, features, now
    store.close()


def run(pack, features, as_of, previous_health=None, previous_segments=None):
    health = health_scores(features, pack.health, previous_health)
    segments = customer_segments(features, pack.segments, as_of, previous_segments, health=health_features(health))
    return json.loads(json.dumps(health)), json.loads(json.dumps(segments))  # as the state store keeps them


def test_default_pack_scores_every_paying_customer(world):
    pack, features, now = world
    health, segments = run(pack, features, now)
    active = [cid for cid in features if features[cid]["is_active"]]
    assert len(active) >= 10
    for cid in features:
        result = health[cid]
        assert 0 < len(result["explanation"]) <= pack.health.explanation.max_length
        if cid in active:
            assert result["scorecard"] in ("onboarding", "default")
            assert result["score"] is not None or result["explanation"].startswith("not enough data")
        else:
            assert (result["score"], result["explanation"]) == (None, "no scorecard applies")
    scores = [health[cid]["score"] for cid in active if health[cid]["score"] is not None]
    assert len(scores) >= 0.9 * len(active) and all(0 <= s <= 100 for s in scores)
    assert len({health[cid]["band"] for cid in active}) >= 2  # the score separates customers


def test_default_pack_gives_exactly_one_stage_and_known_tags(world):
    pack, features, now = world
    _, segments = run(pack, features, now)
    stages, tags = set(pack.segments.lifecycle.names()), {t.name for t in pack.segments.tags()}
    for cid, result in segments.items():
        assert result["lifecycle"] in stages
        assert set(result["tags"]) <= tags and result["tags"] == sorted(result["tags"])
        if not features[cid]["is_active"]:
            assert result["lifecycle"] in ("churned", "prospect")
    assert {r["lifecycle"] for r in segments.values()} >= {"churned", "active"}


def test_default_pack_is_stable_on_unchanged_data(world):
    pack, features, now = world
    health, segments = run(pack, features, now)
    health2, segments2 = run(pack, features, now + timedelta(days=1), health, segments)
    for cid in features:
        assert (health2[cid]["score"], health2[cid]["band"]) == (health[cid]["score"], health[cid]["band"])
        assert health2[cid]["trend"] in (None, "flat")
        assert (segments2[cid]["tags"], segments2[cid]["entered"], segments2[cid]["left"]) == (
            segments[cid]["tags"], [], [])
    moved = [cid for cid in features if segments2[cid]["lifecycle"] != segments[cid]["lifecycle"]]
    # the only stage that depends on the previous one by itself: at risk / stagnating -> re-engaged
    assert all(segments[cid]["lifecycle"] in ("at_risk", "stagnating") for cid in moved)
