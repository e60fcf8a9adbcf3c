"""Backtest of the default health score against the sandbox generator's churn ground truth: prints ROC AUC.

Pulls a seeded sandbox portal over HTTP into a scratch store, scores every paying customer as of several past
dates with mappings/health.yaml, and compares with the churns the generator recorded in the following days.

    .venv/bin/python bench/health_backtest.py                        # medium portal (10,000 contacts), 90 days
    .venv/bin/python bench/health_backtest.py --size small --horizon 60
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector import pipeline  # noqa: E402
from connector.health import backtest_auc, health_scores  # noqa: E402
from connector.mapping import load_pack  # noqa: E402
from connector.metrics.features import customer_features  # noqa: E402
from connector.metrics.revenue import build_mrr_ledger  # noqa: E402
from connector.sandbox.server import running_sandbox  # noqa: E402
from connector.settings import Settings  # noqa: E402
from connector.state import StateStore  # noqa: E402


def churned_between(truth: list[dict], start: datetime, end: datetime) -> set[str]:
    out = set()
    for event in truth:
        if event.get("kind") == "churn" and event.get("churned_at"):
            at = datetime.fromisoformat(event["churned_at"].replace("Z", "+00:00"))
            if start < at <= end:
                out.add(str(event["company_id"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium", help="sandbox size: small, medium, large or a contact count")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=90, help="days after the scoring date that count as churn")
    parser.add_argument("--months", default="3,6,9,12", help="scoring dates, in months before the portal's today")
    args = parser.parse_args()
    pack = load_pack(ROOT / "mappings")
    with tempfile.TemporaryDirectory() as scratch, running_sandbox(seed=args.seed, size=args.size) as sandbox:
        url = f"sqlite:///{Path(scratch) / 'state.db'}"
        started = time.perf_counter()
        pipeline.run_pull(Settings(_env_file=None, base_url=sandbox.base_url, token=sandbox.token, state_url=url,
                                   mappings_dir=ROOT / "mappings"))
        print(f"pulled seed {args.seed} size {args.size} in {time.perf_counter() - started:.1f} s")
        store = StateStore.open(url)
        portfolio = pipeline.load_portfolio(store, pack)
        ledger = build_mrr_ledger(portfolio)
        options = pipeline.metrics_options(pack).features
        now = datetime.fromtimestamp(sandbox.portal.now_ms / 1000, tz=timezone.utc)
        truth = sandbox.portal.ground_truth
        labels = pack.health.band_labels()
        for months in (int(m) for m in args.months.split(",")):
            as_of = now - timedelta(days=30 * months)
            features = customer_features(portfolio, as_of, options=options, ledger=ledger)
            health = health_scores(features, pack.health)
            active = [cid for cid in features if features[cid]["is_active"]]
            churned = churned_between(truth, as_of, as_of + timedelta(days=args.horizon)) & set(active)
            scores = {cid: health[cid]["score"] for cid in active}
            try:
                auc = f"{backtest_auc(scores, churned):.3f}"
            except ValueError as exc:
                auc = f"n/a ({exc})"
            by_band = []
            for label in labels:
                members = [cid for cid in active if health[cid]["band"] == label]
                rate = sum(1 for cid in members if cid in churned) / len(members) if members else 0.0
                by_band.append(f"{label} {len(members)} ({rate:.1%} churned)")
            unscored = sum(1 for cid in active if health[cid]["score"] is None)
            print(f"as of {as_of.date()} (+{args.horizon} d): {len(active)} paying, {len(churned)} churned, "
                  f"AUC {auc}; " + ", ".join(by_band) + f", unscored {unscored}")
        store.close()


if __name__ == "__main__":
    main()
