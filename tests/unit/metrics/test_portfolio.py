"""Portfolio figures: the encoded E2/E3 portfolios give the plain-number answers; options; clipping; to_dict."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from connector.metrics import periods
from connector.metrics.portfolio import MetricsOptions, portfolio_metrics
from connector.model import FeedbackResponse, Usage

from .portfolios import at, e2_portfolio, e3_portfolio

JANUARY = periods.month(2026, 1)
FEB_1 = datetime(2026, 2, 1, tzinfo=timezone.utc)


def test_portfolio_metrics_e3():
    m = portfolio_metrics(e3_portfolio(), JANUARY, FEB_1)
    assert m.revenue.retention.nrr == pytest.approx(0.67) and m.revenue.retention.grr == pytest.approx(0.62)
    assert m.net_mrr_churn == pytest.approx(0.33)
    assert m.revenue.end_mrr == Decimal(1010) and m.arpa == Decimal(202)
    variant = portfolio_metrics(e3_portfolio(), JANUARY, FEB_1, options=MetricsOptions(net_mrr_churn="chartmogul"))
    assert variant.net_mrr_churn == pytest.approx(0.24)


def test_portfolio_metrics_e2_churn_methods():
    standard = portfolio_metrics(e2_portfolio(), JANUARY, FEB_1)
    assert standard.customers.retention_rate == pytest.approx(0.96) and standard.churn == pytest.approx(0.04)
    stripe = portfolio_metrics(e2_portfolio(), JANUARY, FEB_1, options=MetricsOptions(churn_method="stripe"))
    assert stripe.churn == pytest.approx(0.053398, abs=1e-6)
    # SaaS CLV at the start ARPA (100) with margin 0.8 and monthly churn 0.04: 100 × 0.8 / 0.04.
    assert standard.clv == Decimal("2000")
    with pytest.raises(ValueError, match="valid: chartmogul, stripe"):
        portfolio_metrics(e2_portfolio(), JANUARY, FEB_1, options=MetricsOptions(churn_method="baremetrics"))


def test_running_period_is_clipped_to_as_of():
    mid = portfolio_metrics(e3_portfolio(), JANUARY, at(1, 15))
    assert mid.period.end == at(1, 15) and mid.period.label == "2026-01"
    assert mid.revenue.end_mrr == Decimal(1000 - 80 + 50 + 250)  # B contracted, A expanded, E joined; C not yet gone
    empty = portfolio_metrics(e3_portfolio(), JANUARY, JANUARY.start)
    assert empty.customers.start == empty.customers.end == 4 and empty.churn == 0.0
    assert empty.revenue.retention.nrr == 1.0


def test_surveys_engagement_and_to_dict():
    portfolio = e3_portfolio()
    feedback = tuple(
        FeedbackResponse(id=f"r{i}", customer_id=cid, contact_id=f"p{i}", survey_type="NPS", value=v,
                         response_group="PASSIVE", submitted_at=at(1, 10))
        for i, (cid, v) in enumerate([("A", 10), ("B", 9), ("C", 3), ("D", 8)])
    )
    usage = {
        "A": Usage(customer_id="A", active_days_30d=0, active_users_30d=4, avg_daily_active_users_30d=1.0,
                   seats_purchased=10, seats_used=5, onboarding_milestones_total=2,
                   onboarding_milestones_done=("a", "b")),
        "B": Usage(customer_id="B", active_days_30d=15, active_users_30d=0, seats_purchased=4, seats_used=4,
                   onboarding_milestones_total=2),
    }
    m = portfolio_metrics(portfolio.replace(feedback=feedback, usage=usage), JANUARY, FEB_1)
    assert m.surveys.nps == pytest.approx(25.0)
    assert m.surveys.group_check.mismatches == 3  # only D's 8 is a passive
    e = m.engagement
    assert e.customers_with_usage == 2 and e.mean_usage_frequency == pytest.approx(0.25)
    assert e.mean_stickiness == 0.25 and e.forgettable_share == 0.5
    assert e.mean_seat_utilisation == pytest.approx(0.75) and e.onboarding_complete_share == 0.5
    from connector.metrics.features import customer_features

    rows = customer_features(portfolio.replace(usage=usage), FEB_1)
    assert rows["B"]["usage_frequency"] == 0.5 and rows["B"]["usage_frequency_prev"] is None  # no history
    data = m.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["revenue"]["end_mrr"] == "1010" and data["customers"]["start"] == 4
    assert data["cohorts"] and data["by_source"]["organic"]["start"] == 4


def test_periods_sharing_a_ledger_read_only_their_own_answers():
    from connector.metrics.revenue import build_mrr_ledger

    feedback = tuple(
        FeedbackResponse(id=f"r{i}", customer_id="A", contact_id=f"p{i}", survey_type="NPS", value=v,
                         response_group=None, submitted_at=when)
        for i, (v, when) in enumerate([(10, at(1, 1)), (0, at(1, 31)), (9, FEB_1), (3, at(2, 20))])
    )
    portfolio = e3_portfolio().replace(feedback=feedback)
    ledger = build_mrr_ledger(portfolio)
    as_of = datetime(2026, 3, 1, tzinfo=timezone.utc)
    january = portfolio_metrics(portfolio, JANUARY, as_of, ledger=ledger)
    february = portfolio_metrics(portfolio, periods.month(2026, 2), as_of, ledger=ledger)
    assert (january.surveys.nps, january.surveys.nps_responses) == (0.0, 2)  # 00:00 on Feb 1 is February's
    assert (february.surveys.nps, february.surveys.nps_responses) == (0.0, 2)
    assert january.surveys == portfolio_metrics(portfolio, JANUARY, as_of).surveys


def test_engagement_follows_the_feature_table_handed_in_with_one_ledger():
    # The summary is kept per ledger for the periods of a report; another feature table must not get it.
    from connector.metrics.features import customer_features
    from connector.metrics.portfolio import engagement_summary
    from connector.metrics.revenue import build_mrr_ledger

    from connector.model import Portfolio

    e3 = e3_portfolio()
    # C pays from June 2025 and churns on January 20: active (with its usage) early, not on February 1.
    portfolio = Portfolio(customers=dict(e3.customers), subscriptions=e3.subscriptions, deals=(), line_items=(),
                          feedback=(), usage={"C": Usage(customer_id="C", active_days_30d=12)})
    ledger = build_mrr_ledger(portfolio)
    early = customer_features(portfolio, datetime(2025, 7, 1, tzinfo=timezone.utc), ledger=ledger)
    late = customer_features(portfolio, FEB_1, ledger=ledger)
    for features in (early, late, early):
        for month in (JANUARY, periods.month(2025, 12)):
            m = portfolio_metrics(portfolio, month, FEB_1, ledger=ledger, features=features)
            assert m.engagement == engagement_summary(features)
    assert engagement_summary(early) != engagement_summary(late)
