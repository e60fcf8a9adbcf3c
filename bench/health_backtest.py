"""Backtest of the default health score: score every paying customer as of a past date, then check how well the
score ranks those who churned in the next 90 days (ROC AUC) and the churn rate per band.

The sandbox's churn is drawn from a hazard that depends on usage, satisfaction, support load and payment trouble,
so a score with real signal must rank churners low. Only what was knowable at the scoring date is used: features
come from property histories and dated events; those the portal keeps no history for (open tickets, tickets in 90
days, stickiness, last login, last engagement) are blanked for every customer, since even their missingness would
leak the future.

    .venv/bin/python bench/health_backtest.py [--contacts 5000] [--seed 1] [--days-before 91 182 273]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pydantic import SecretStr

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

# Features the portal holds only as a current value: unknowable at a past date.
NO_HISTORY = ("open_tickets", "tickets_90d", "stickiness", "days_since_last_login", "days_since_last_engagement")
HORIZON = timedelta(days=90)


def backtest(portfolio, pack, as_of: datetime) -> dict:
    ledger = build_mrr_ledger(portfolio)
    options = pipeline.metrics_options(pack)
    features = customer_features(portfolio, as_of, options=options.features, ledger=ledger)
    paying_then = ledger.mrr_at(as_of.timestamp()) > 0
    paying_later = ledger.mrr_at((as_of + HORIZON).timestamp()) > 0
    ids = ledger.customer_ids
    rows = {}
    for i, customer_id in enumerate(ids):
        if paying_then[i]:
            row = dict(features[customer_id])
            for name in NO_HISTORY:
                row[name] = None
            rows[customer_id] = row
    churned = {ids[i] for i in range(len(ids)) if paying_then[i] and not paying_later[i]}
    results = health_scores(rows, pack.health)
    scores = {cid: r["score"] for cid, r in results.items()}
    per_band: dict[str, list[int]] = {}
    for cid, r in results.items():
        band = r["band"] or "unscored"
        counts = per_band.setdefault(band, [0, 0])
        counts[0] += 1
        counts[1] += cid in churned
    return {
        "as_of": as_of.date().isoformat(),
        "customers": len(rows),
        "churned": len(churned),
        "auc": backtest_auc(scores, churned),
        "per_band": per_band,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days-before", type=int, nargs="+", default=[91, 182, 273])
    args = parser.parse_args()

    started = time.monotonic()
    with running_sandbox(seed=args.seed, size=args.contacts, profile="unlimited") as sb, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, token=SecretStr(sb.token), base_url=sb.base_url,
                            state_url=f"sqlite:///{tmp}/state.db", mappings_dir=ROOT / "mappings")
        pipeline.run_pull(settings)
        pack = load_pack(settings.mappings_dir)
        with StateStore.open(settings.state_url) as store:
            portfolio = pipeline.load_portfolio(store, pack)
        now = datetime.fromtimestamp(sb.portal.now_ms / 1000, timezone.utc) if hasattr(sb.portal, "now_ms") \
            else datetime.now(timezone.utc)
    print(f"portal: seed {args.seed}, {args.contacts} contacts, {len(portfolio.customers)} customers "
          f"(pulled and modelled in {time.monotonic() - started:.1f}s)")
    for days in args.days_before:
        result = backtest(portfolio, pack, now - timedelta(days=days))
        bands = ", ".join(
            f"{band} {n} customers / {c} churned ({c / n:.1%})" for band, (n, c) in sorted(result["per_band"].items())
        )
        print(f"as of {result['as_of']}: {result['customers']} paying, {result['churned']} churned within 90 days, "
              f"ROC AUC {result['auc']:.3f}; {bands}")


if __name__ == "__main__":
    main()
