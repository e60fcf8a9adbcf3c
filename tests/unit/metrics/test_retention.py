"""Customer retention: E1, E2 (plain numbers and an encoded Portfolio), E5, cohorts and sources."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connector.metrics import periods
from connector.metrics.retention import (
    churn_over,
    cohort_retention,
    customer_churn_rate,
    customer_counts,
    customer_retention_rate,
    retention_by_source,
    stripe_churn_rate,
)
from connector.metrics.revenue import build_mrr_ledger

from .portfolios import at, customer, e2_portfolio, subscription
from connector.model import Portfolio

JANUARY = periods.month(2026, 1)


@pytest.mark.parametrize(
    ("start", "end", "new", "lost", "crr", "churn"),
    [
        pytest.param(1000, 1025, 65, 40, 0.96, 0.04, id="E1-guide-example"),
        pytest.param(200, 200, 8, 8, 0.96, 0.04, id="E2-reactivations"),
        pytest.param(0, 12, 12, 0, None, None, id="E5-no-start-customers"),
    ],
)
def test_customer_retention_rate_matches_worked_examples(start, end, new, lost, crr, churn):
    assert customer_retention_rate(start, end, new) == (pytest.approx(crr) if crr is not None else None)
    assert customer_churn_rate(start, lost) == (pytest.approx(churn) if churn is not None else None)
    if start:
        assert customer_churn_rate(start, lost) == pytest.approx(1 - customer_retention_rate(start, end, new))


def test_customer_churn_rate_is_not_the_wrong_printed_form():
    # (S − E)/S would give −0.025 on E1; lost/S gives 0.04.
    assert (1000 - 1025) / 1000 == pytest.approx(-0.025)
    assert customer_churn_rate(1000, 40) == pytest.approx(0.04)


def test_stripe_churn_rate_e2():
    assert stripe_churn_rate(10 + 1, 200, 5 + 1) == pytest.approx(0.053398, abs=1e-6)
    assert stripe_churn_rate(0, 0, 0) is None


def test_churn_over_compounds_monthly_churn():
    assert churn_over(0.02, 12) == pytest.approx(0.2153, abs=1e-4)


def test_customer_counts_from_e2_portfolio_match_plain_numbers():
    counts = customer_counts(build_mrr_ledger(e2_portfolio()), JANUARY)
    assert (counts.start, counts.end, counts.new_or_returned, counts.lost) == (200, 200, 8, 8)
    assert counts.end == counts.start - counts.lost + counts.new_or_returned
    assert (counts.new, counts.reactivated) == (5, 3)
    assert counts.churned_and_returned == 2
    assert counts.joined_and_left == 1
    assert counts.churn_events == 11
    assert counts.reactivation_events == 5
    assert counts.retention_rate == pytest.approx(0.96)
    assert counts.churn("chartmogul") == pytest.approx(0.04)
    assert counts.churn("stripe") == pytest.approx(11 / 206)
    assert counts.retention_rate == customer_retention_rate(200, 200, 8)


def test_customer_counts_with_no_start_customers_are_none():
    ledger = build_mrr_ledger(e2_portfolio())
    counts = customer_counts(ledger, periods.month(2025, 1))  # nobody paid yet
    assert counts.start == 0 and counts.retention_rate is None and counts.churn_rate is None


def test_retention_by_source_splits_e2():
    by_source = retention_by_source(build_mrr_ledger(e2_portfolio()), e2_portfolio(), JANUARY)
    assert by_source["paid"].start == 98 and by_source["paid"].lost == 8
    assert by_source["paid"].retention_rate == pytest.approx(90 / 98)
    assert by_source["organic"].start == 102 and by_source["organic"].lost == 0
    assert by_source["organic"].reactivated == 3
    assert by_source["referral"].start == 0 and by_source["referral"].new == 5
    assert by_source["referral"].retention_rate is None
    assert by_source["referral"].joined_and_left == 1


def test_cohort_retention_counts_paying_customers_at_each_month_end():
    subs = [
        subscription("s1", "c1", [(at(1, 10), "active")]),
        subscription("s2", "c2", [(at(1, 20), "active"), (at(2, 15), "canceled")]),
        subscription("s3", "c3", [(at(1, 5), "active"), (at(1, 25), "canceled")]),
        subscription("s4", "c4", [(at(2, 3), "active")]),
        # Starts exactly at the February 1 instant: February's cohort (periods are [start, end)).
        subscription("s5", "c5", [(at(2, 1), "active"), (at(3, 1), "canceled")]),
    ]
    portfolio = Portfolio(
        customers={f"c{i}": customer(f"c{i}") for i in range(1, 6)},
        subscriptions=tuple(subs), deals=(), line_items=(), feedback=(), usage={},
    )
    rows = cohort_retention(build_mrr_ledger(portfolio), datetime(2026, 3, 10, tzinfo=timezone.utc))
    assert [(r.cohort, r.size, r.active) for r in rows] == [("2026-01", 3, (2, 1)), ("2026-02", 2, (2,))]
    assert rows[0].rates == (2 / 3, 1 / 3)


def test_cohort_retention_uses_calendar_of_the_given_zone():
    # 2026-01-31 23:30 UTC is already February in Berlin.
    subs = [subscription("s1", "c1", [(datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc), "active")])]
    portfolio = Portfolio(customers={"c1": customer("c1")}, subscriptions=tuple(subs), deals=(), line_items=(),
                          feedback=(), usage={})
    as_of = datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert cohort_retention(build_mrr_ledger(portfolio), as_of)[0].cohort == "2026-01"
    assert cohort_retention(build_mrr_ledger(portfolio), as_of, tz="Europe/Berlin")[0].cohort == "2026-02"


@pytest.mark.parametrize("seed", range(3))
def test_cohort_table_agrees_with_month_end_snapshots(seed):
    # The table is built in one pass over the ledger; each cell must equal the paying customers of the cohort
    # in the snapshot just before that month's end, churns and returns included.
    import random
    from datetime import timedelta

    import numpy as np

    rng = random.Random(seed)
    subs = []
    for n in range(150):
        t = at(1, 1, 2025) + timedelta(days=rng.randint(0, 300), hours=rng.randint(0, 23))
        history = []
        for _ in range(rng.randint(1, 5)):
            history.append((t, rng.choice(["active", "canceled", "active", "paused"])))
            t += timedelta(days=rng.choice([0, 1, 30, 31, 90]))  # 0 days: same-instant changes; month ends hit
        subs.append(subscription(f"s{n}", f"c{n % 70}", history))
    portfolio = Portfolio(customers={f"c{i}": customer(f"c{i}") for i in range(70)}, subscriptions=tuple(subs),
                          deals=(), line_items=(), feedback=(), usage={})
    ledger = build_mrr_ledger(portfolio)
    as_of = datetime(2026, 6, 15, tzinfo=timezone.utc)
    rows = cohort_retention(ledger, as_of)
    first = ledger.first_active_ts()
    for row in rows:
        month = periods.month(int(row.cohort[:4]), int(row.cohort[5:]))
        members = (first >= month.start_ts) & (first < month.end_ts)
        assert row.size == int(members.sum())
        end = month
        for k, active in enumerate(row.active):
            assert active == int(((ledger.micro_at(end.end_ts) > 0) & members).sum()), (row.cohort, k)
            end = periods.month(*(end.end.year, end.end.month))
    assert np.count_nonzero(~np.isnan(first)) >= sum(r.size for r in rows)
