"""Benchmark of the metrics stage: a synthetic Portfolio of N customers, time per stage and peak RSS.

    .venv/bin/python bench/metrics_bench.py                 # 100,000 customers
    .venv/bin/python bench/metrics_bench.py --customers 1000000

Prints figures only; the test suite never times anything. Peak RSS is ``resource.getrusage`` (ru_maxrss),
so each line shows the high-water mark reached by the end of that stage.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.metrics import periods  # noqa: E402
from connector.metrics.features import customer_features  # noqa: E402
from connector.metrics.portfolio import MetricsOptions, portfolio_metrics  # noqa: E402
from connector.metrics.retention import customer_counts  # noqa: E402
from connector.metrics.revenue import build_mrr_ledger, revenue_figures  # noqa: E402
from connector.model import Customer, Deal, FeedbackResponse, Portfolio, Subscription, Usage  # noqa: E402

AS_OF = datetime(2026, 3, 1, tzinfo=timezone.utc)
START = datetime(2024, 3, 1, tzinfo=timezone.utc)
SOURCES = ("organic", "paid", "referral", "partner", None)
INDUSTRIES = ("software", "retail", "health", "finance")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def synthetic_portfolio(n: int, seed: int = 7) -> Portfolio:
    """24 months of a B2B SaaS book: 1-3 subscriptions, price changes, churn and returns, 2 surveys, 1 deal each."""
    rng = np.random.default_rng(seed)
    span = (AS_OF - START).total_seconds()
    starts = rng.uniform(0, span * 0.9, n)
    n_subs = rng.choice([1, 1, 1, 2, 3], n)
    churned = rng.random(n) < 0.25
    returned = churned & (rng.random(n) < 0.2)
    prices = rng.choice([29, 49, 99, 199, 499, 999], n)
    customers: dict[str, Customer] = {}
    subs: list[Subscription] = []
    feedback: list[FeedbackResponse] = []
    deals: list[Deal] = []
    usage: dict[str, Usage] = {}
    for i in range(n):
        cid = str(1000 + i)
        began = START + timedelta(seconds=float(starts[i]))
        customers[cid] = Customer(
            id=cid, object_type="companies", name=f"Company {i}", created_at=began, customer_since=began.date(),
            acquisition_source=SOURCES[i % 5], industry=INDUSTRIES[i % 4], country="US",
            birthday=date(1980, 1 + i % 12, 1 + i % 28), contact_ids=(f"c{i}",), primary_contact_id=f"c{i}",
        )
        left = began + timedelta(days=30 + int(starts[i]) % 400)
        for k in range(int(n_subs[i])):
            price = Decimal(int(prices[i]) * (k + 1))
            statuses = [(began, "active")]
            if churned[i] and left < AS_OF:
                statuses.append((left, "canceled"))
                if returned[i] and left + timedelta(days=60) < AS_OF:
                    statuses.append((left + timedelta(days=60), "active"))
            mrr_history = [(began, price)]
            if i % 3 == 0:
                mrr_history.append((began + timedelta(days=120), price + Decimal(20)))
            subs.append(Subscription(
                id=f"s{i}-{k}", customer_id=cid, name=None, status=statuses[-1][1], mrr=mrr_history[-1][1],
                currency="USD", billing_frequency="monthly", start_date=began.date(),
                next_payment_due=(AS_OF + timedelta(days=i % 30)).date(), last_payment_status="succeeded",
                cancel_requested_at=None, created_at=began, mrr_history=tuple(mrr_history),
                status_history=tuple(statuses),
            ))
        for k in range(2):
            submitted = began + timedelta(days=20 + 90 * k)
            feedback.append(FeedbackResponse(
                id=f"f{i}-{k}", customer_id=cid, contact_id=f"c{i}", survey_type="NPS" if k == 0 else "CSAT",
                value=(i * 7 + k) % 11 if k == 0 else i % 3, response_group=None, submitted_at=submitted,
            ))
        deals.append(Deal(
            id=f"d{i}", customer_id=cid, name=None, amount=Decimal(int(prices[i]) * 12), currency="USD",
            close_date=began, stage="closedwon", is_won=True, is_closed=True, created_at=began,
        ))
        usage[cid] = Usage(
            customer_id=cid, last_login_at=AS_OF - timedelta(days=i % 40), logins_30d=i % 50,
            active_days_30d=i % 31, active_users_30d=1 + i % 20, avg_daily_active_users_30d=float(1 + i % 7),
            seats_purchased=20, seats_used=i % 21, onboarding_milestones_total=5, open_tickets=i % 4,
            active_days_history=((AS_OF - timedelta(days=45), (i + 3) % 31), (AS_OF - timedelta(days=5), i % 31)),
        )
    return Portfolio(customers=customers, subscriptions=tuple(subs), deals=tuple(deals), line_items=(),
                     feedback=tuple(feedback), usage=usage)


def calibration() -> tuple[float, float]:
    """CPU and wall seconds of a fixed 10M-iteration Python loop: how busy/fast this box is right now."""
    cpu, wall = time.process_time(), time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="portfolio size (default 100,000)")
    args = parser.parse_args()
    base = peak_mb()
    rows: list[tuple[str, float, float, float]] = []
    cpu = [time.process_time()]

    def stage(name: str, started: float) -> None:
        now_cpu = time.process_time()
        rows.append((name, time.perf_counter() - started, now_cpu - cpu[0], peak_mb()))
        cpu[0] = now_cpu

    t = time.perf_counter()
    cpu[0] = time.process_time()
    portfolio = synthetic_portfolio(args.customers)
    portfolio.tables  # objects -> columns, once: the model stage hands columns over, so this is its share
    gc.collect()
    stage("build synthetic Portfolio and its columns (stands in for the model stage)", t)
    metrics_started, metrics_cpu = time.perf_counter(), time.process_time()
    t = time.perf_counter()
    ledger = build_mrr_ledger(portfolio)
    stage("MRR ledger (one pass over subscriptions)", t)
    month = periods.month(2026, 2)
    t = time.perf_counter()
    counts = customer_counts(ledger, month)
    revenue = revenue_figures(ledger, month)
    stage("customer counts + revenue figures (one month)", t)
    t = time.perf_counter()
    features = customer_features(portfolio, AS_OF, ledger=ledger)
    stage(f"per-customer features ({len(features.columns)} columns)", t)
    t = time.perf_counter()
    figures = portfolio_metrics(portfolio, month, AS_OF, ledger=ledger, features=features)
    stage("portfolio figures (surveys, sources, 24-month cohorts)", t)
    t = time.perf_counter()
    earlier = month
    for _ in range(5):
        earlier = periods.previous(earlier)
        portfolio_metrics(portfolio, earlier, AS_OF, ledger=ledger, features=features,
                          options=MetricsOptions(cohorts=False))
    stage("5 earlier months' figures on the same ledger (the report's 6 months)", t)
    t = time.perf_counter()
    touched = sum(1 for _ in features.iter_rows())
    stage("iterate every feature row as dicts (what health reads)", t)
    metrics_total, metrics_cpu = time.perf_counter() - metrics_started, time.process_time() - metrics_cpu

    loop_cpu, loop_wall = calibration()
    print(f"calibration: a 10M-iteration Python loop took {loop_cpu:.2f} s cpu, {loop_wall:.2f} s wall "
          f"(about 0.4 s on an idle core; scale the figures below by it)")
    print(f"customers: {args.customers:,}  subscriptions: {len(portfolio.subscriptions):,}  "
          f"feedback: {len(portfolio.feedback):,}  ledger points: {len(ledger.times):,}")
    print(f"baseline RSS {base:,.0f} MB   (wall = elapsed; cpu = this process's CPU time, robust to a busy box)")
    for name, seconds, cpu_seconds, peak in rows:
        print(f"{seconds:8.2f} s wall {cpu_seconds:8.2f} s cpu  peak RSS {peak:8,.0f} MB  {name}")
    print(f"{metrics_total:8.2f} s wall {metrics_cpu:8.2f} s cpu  metrics stages total (ledger .. feature rows)")
    print(f"check: S={counts.start:,} E={counts.end:,} CRR={counts.retention_rate:.4f} NRR={revenue.retention.nrr:.4f} "
          f"MRR={figures.revenue.end_mrr:,} NPS={figures.surveys.nps} rows={touched:,}")


if __name__ == "__main__":
    main()
