"""Benchmark of the issue-4 goal: the model + metrics stages on N customers, time per stage and peak RSS.

    .venv/bin/python bench/scale_bench.py                     # 100,000 customers
    .venv/bin/python bench/scale_bench.py --customers 1000000 # the goal: <= 30 s and <= 2 GB peak RSS

The records are model_bench's (per customer a company with usage and three histories, two contacts, a
subscription with MRR and status histories, a won deal with a line item, an NPS answer: 6 records and 6
associations), generated lazily a page of 1,000 at a time in the store's order, as the pipeline streams them;
the time spent generating each page is measured in place and subtracted, so the model line is the builder's. The
metrics are what a sync computes: the MRR ledger, a month's counts and revenue, every per-customer feature, the
month's portfolio figures (with cohorts) and the 5 months before it. Prints figures only; the test suite never times anything. Peak RSS is ru_maxrss.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_bench import Paged, Timed, iter_association_columns, iter_records, peak_mb  # noqa: E402

from connector.mapping import load_pack  # noqa: E402
from connector.metrics import periods  # noqa: E402
from connector.metrics.features import customer_features  # noqa: E402
from connector.metrics.portfolio import MetricsOptions, portfolio_metrics  # noqa: E402
from connector.metrics.retention import customer_counts  # noqa: E402
from connector.metrics.revenue import build_mrr_ledger, revenue_figures  # noqa: E402
from connector.model import Pages, build_portfolio  # noqa: E402

AS_OF = datetime(2026, 1, 15, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    n = args.customers
    pack = load_pack(Path(__file__).resolve().parent.parent / "mappings")
    base = peak_mb()
    rows: list[tuple[str, float, float]] = []

    def stage(name: str, started: float) -> None:
        rows.append((name, time.process_time() - started, peak_mb()))

    gc.collect()
    records, associations = Paged(iter_records(n)), Timed(iter_association_columns(n))
    t = time.process_time()
    portfolio = build_portfolio(Pages(records), associations, pack)
    generating = records.cpu + associations.cpu
    rows.append(("model: build_portfolio (records -> columns), generating the records subtracted",
                 time.process_time() - t - generating, peak_mb()))
    assert len(portfolio.customers) == n and len(portfolio.subscriptions) == n and not portfolio.issues
    month = periods.month(2025, 12)
    t = time.process_time()
    ledger = build_mrr_ledger(portfolio)
    stage("metrics: MRR ledger", t)
    t = time.process_time()
    counts = customer_counts(ledger, month)
    revenue = revenue_figures(ledger, month)
    stage("metrics: customer counts + revenue figures (one month)", t)
    t = time.process_time()
    features = customer_features(portfolio, AS_OF, ledger=ledger)
    stage(f"metrics: per-customer features ({len(features.columns)} columns)", t)
    t = time.process_time()
    figures = portfolio_metrics(portfolio, month, AS_OF, ledger=ledger, features=features)
    stage("metrics: portfolio figures (surveys, sources, cohorts)", t)
    t = time.process_time()
    earlier = month
    for _ in range(5):
        earlier = periods.previous(earlier)
        portfolio_metrics(portfolio, earlier, AS_OF, ledger=ledger, features=features,
                          options=MetricsOptions(cohorts=False))
    stage("metrics: the 5 months before (a report's 6 months)", t)
    total = sum(seconds for _, seconds, _ in rows)
    peak = peak_mb()
    print(f"scale: {n:,} customers, {6 * n:,} records, {6 * n:,} associations (default pack); cpu seconds")
    print(f"  generating the records, page by page in place: {generating:.2f} s (not counted); "
          f"RSS before building {base:,.0f} MB")
    for name, seconds, high in rows:
        print(f"  {seconds:7.2f} s  peak RSS {high:7,.0f} MB  {name}")
    print(f"  {total:7.2f} s  peak RSS {peak:7,.0f} MB  model + metrics "
          f"(goal at 1,000,000 customers: <= 30 s, <= 2,048 MB)")
    print(f"  check: S={counts.start:,} E={counts.end:,} MRR={revenue.end_mrr:,} NPS={figures.surveys.nps} "
          f"features={len(features):,}")


if __name__ == "__main__":
    main()
