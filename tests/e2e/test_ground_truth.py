"""The numbers are right end to end: churn and reactivations computed after seed → sandbox (HTTP) → pull → store →
model → MRR ledger equal the generator's ground truth, month by month over the portal's whole history."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from connector import pipeline
from connector.mapping import load_pack
from connector.metrics.periods import iter_months
from connector.metrics.retention import customer_counts
from connector.metrics.revenue import build_mrr_ledger
from connector.settings import Settings
from connector.state import StateStore

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    from connector.sandbox.server import running_sandbox

    tmp = tmp_path_factory.mktemp("truth")
    with running_sandbox(seed=11, size=2000, profile="unlimited") as sb:
        settings = Settings(_env_file=None, token=SecretStr(sb.token), base_url=sb.base_url,
                            state_url=f"sqlite:///{tmp / 'state.db'}", mappings_dir=MAPPINGS)
        pipeline.run_pull(settings)
        truth = list(sb.portal.ground_truth)
        now = datetime.fromtimestamp(sb.portal.now_ms / 1000, timezone.utc)
    pack = load_pack(MAPPINGS)
    with StateStore.open(settings.state_url) as store:
        portfolio = pipeline.load_portfolio(store, pack)
    return build_mrr_ledger(portfolio), truth, now


def _months(now: datetime):
    first = date(now.year - 2, now.month, 1)
    return list(iter_months(first, now.date()))


def test_churn_per_month_equals_the_generators_ground_truth(pulled):
    ledger, truth, now = pulled
    expected = Counter(t["churned_at"][:7] for t in truth if t["kind"] == "churn" and t.get("churned_at"))
    assert sum(expected.values()) > 30  # the portal has real churn to compare
    computed = {p.label: customer_counts(ledger, p).churn_events for p in _months(now)}
    assert {k: v for k, v in computed.items() if v} == {k: v for k, v in expected.items() if k in computed}


def test_reactivations_per_month_equal_the_generators_ground_truth(pulled):
    ledger, truth, now = pulled
    expected = Counter(t["reactivated_at"][:7] for t in truth if t["kind"] == "reactivation")
    assert sum(expected.values()) > 5
    computed = {p.label: customer_counts(ledger, p).reactivation_events for p in _months(now)}
    assert {k: v for k, v in computed.items() if v} == {k: v for k, v in expected.items() if k in computed}
