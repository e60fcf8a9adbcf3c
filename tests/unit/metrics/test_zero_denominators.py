"""E5: every ratio with a zero denominator is None, never 0 % or 100 % (METRICS §1.2, §2)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.metrics import periods
from connector.metrics.engagement import stickiness
from connector.metrics.retention import customer_churn_rate, customer_counts, customer_retention_rate
from connector.metrics.revenue import build_mrr_ledger, revenue_figures, revenue_retention
from connector.metrics.satisfaction import ces_mean, csat, nps
from connector.metrics.value import saas_clv, simple_clv

from .portfolios import at, customer, subscription
from connector.model import Portfolio


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(customer_retention_rate(0, 12, 12), id="CRR-S=0"),
        pytest.param(customer_churn_rate(0, 0), id="churn-S=0"),
        pytest.param(revenue_retention([]).nrr, id="NRR-start-0"),
        pytest.param(revenue_retention([]).grr, id="GRR-start-0"),
        pytest.param(nps([]), id="NPS-no-responses"),
        pytest.param(csat([]), id="CSAT-no-responses"),
        pytest.param(ces_mean([]), id="CES-no-responses"),
        pytest.param(simple_clv(Decimal(50), 4, 0.3, 0), id="CLV-churn-0"),
        pytest.param(saas_clv(Decimal(100), 0.8, 0), id="SaaS-CLV-churn-0"),
        pytest.param(stickiness(5.0, 0), id="stickiness-MAU-0"),
    ],
)
def test_zero_denominator_gives_none_e5(value):
    assert value is None


def test_e5_portfolio_twelve_new_customers_and_nobody_at_the_start():
    subs = [subscription(f"s{i}", f"c{i}", [(at(1, 3 + i), "active")]) for i in range(12)]
    portfolio = Portfolio(customers={f"c{i}": customer(f"c{i}") for i in range(12)}, subscriptions=tuple(subs),
                          deals=(), line_items=(), feedback=(), usage={})
    ledger = build_mrr_ledger(portfolio)
    counts = customer_counts(ledger, periods.month(2026, 1))
    assert (counts.start, counts.new_or_returned, counts.end) == (0, 12, 12)
    assert counts.retention_rate is None and counts.churn_rate is None
    figures = revenue_figures(ledger, periods.month(2026, 1))
    assert figures.retention.nrr is None and figures.retention.grr is None
    assert figures.movements.new == Decimal(1200)
