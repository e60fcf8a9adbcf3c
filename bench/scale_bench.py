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
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_bench import (  # noqa: E402
    Paged, Timed, TreeMemory, WorkerReaders, iter_association_columns, iter_records, peak_mb)

from connector.mapping import load_pack  # noqa: E402
from connector.metrics import periods  # noqa: E402
from connector.metrics.features import customer_features  # noqa: E402
from connector.metrics.portfolio import MetricsOptions, portfolio_metrics  # noqa: E402
from connector.metrics.retention import customer_counts  # noqa: E402
from connector.metrics.revenue import build_mrr_ledger, revenue_figures  # noqa: E402
from connector.model import Pages, build_portfolio  # noqa: E402
from connector.pipeline import build_portfolio_in_workers  # noqa: E402

AS_OF = datetime(2026, 1, 15, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2,
                        help="processes reading the object types (pipeline.build_portfolio_in_workers, as a sync "
                             "on a file or PostgreSQL store does); 1: build_portfolio in this process")
    args = parser.parse_args()
    n = args.customers
    pack = load_pack(Path(__file__).resolve().parent.parent / "mappings")
    base = peak_mb()
    rows: list[tuple[str, float, float, float]] = []  # (stage, wall, cpu, peak RSS of this process)
    clock = {}

    def begin() -> None:
        clock["wall"], clock["cpu"] = time.perf_counter(), time.process_time()

    def stage(name: str) -> None:
        rows.append((name, time.perf_counter() - clock["wall"], time.process_time() - clock["cpu"], peak_mb()))

    gc.collect()
    with TreeMemory() as memory:
        associations = Timed(iter_association_columns(n))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        begin()
        if args.workers > 1:
            readers = WorkerReaders(n, args.workers)
            portfolio = build_portfolio_in_workers(readers.shards, associations, pack, args.workers)
            finished = time.perf_counter()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            generating = readers.generating_cpu() + associations.cpu
            cpu = (time.process_time() - clock["cpu"] + after.ru_utime + after.ru_stime
                   - children.ru_utime - children.ru_stime - generating)
            wall = readers.model_wall(clock["wall"], finished, associations.wall)
            name = f"model: records -> columns in {args.workers} worker processes, generating subtracted"
        else:
            records = Paged(iter_records(n))
            portfolio = build_portfolio(Pages(records), associations, pack)
            generating = records.cpu + associations.cpu
            wall = time.perf_counter() - clock["wall"] - records.wall - associations.wall
            cpu = time.process_time() - clock["cpu"] - generating
            name = "model: build_portfolio (records -> columns) in this process, generating subtracted"
        rows.append((name, wall, cpu, peak_mb()))
        assert len(portfolio.customers) == n and len(portfolio.subscriptions) == n and not portfolio.issues
        month = periods.month(2025, 12)
        begin()
        ledger = build_mrr_ledger(portfolio)
        stage("metrics: MRR ledger")
        begin()
        counts = customer_counts(ledger, month)
        revenue = revenue_figures(ledger, month)
        stage("metrics: customer counts + revenue figures (one month)")
        begin()
        features = customer_features(portfolio, AS_OF, ledger=ledger)
        stage(f"metrics: per-customer features ({len(features.columns)} columns)")
        begin()
        figures = portfolio_metrics(portfolio, month, AS_OF, ledger=ledger, features=features)
        stage("metrics: portfolio figures (surveys, sources, cohorts)")
        begin()
        earlier = month
        for _ in range(5):
            earlier = periods.previous(earlier)
            portfolio_metrics(portfolio, earlier, AS_OF, ledger=ledger, features=features,
                              options=MetricsOptions(cohorts=False))
        stage("metrics: the 5 months before (a report's 6 months)")
    total_wall = sum(r[1] for r in rows)
    total_cpu = sum(r[2] for r in rows)
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(f"scale: {n:,} customers, {6 * n:,} records, {6 * n:,} associations (default pack); seconds of wall "
          f"clock and of cpu (all processes)")
    print(f"  generating the records, page by page in place: {generating:.2f} s cpu (not counted); "
          f"RSS before building {base:,.0f} MB")
    for name, wall, cpu, high in rows:
        print(f"  {wall:7.2f} s wall {cpu:7.2f} s cpu  peak RSS here {high:7,.0f} MB  {name}")
    print(f"  {total_wall:7.2f} s wall {total_cpu:7.2f} s cpu  model + metrics (goal at 1,000,000 customers: "
          f"<= 30 s, <= 2,048 MB)")
    print(f"  peak memory: this process {peak_mb():,.0f} MB RSS; the largest worker {workers_peak:,.0f} MB RSS; "
          f"all processes together {memory.rss_mb:,.0f} MB RSS (every 50 ms), {memory.pss_mb:,.0f} MB PSS (every s)")
    print(f"  check: S={counts.start:,} E={counts.end:,} MRR={revenue.end_mrr:,} NPS={figures.surveys.nps} "
          f"features={len(features):,}")


if __name__ == "__main__":
    main()
