"""customer_features reads the portfolio's frames: the same values from a frames-only portfolio (what the model
hands over) as from row objects, and the per-row corners of the expressions hand-checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from connector.metrics.features import FeatureOptions, customer_features
from connector.metrics.revenue import build_mrr_ledger
from connector.model import Deal, FeedbackResponse, Portfolio, Usage

from .portfolios import at, customer, subscription

UTC = timezone.utc
AS_OF = datetime(2026, 3, 15, 12, tzinfo=UTC)
BERLIN = FeatureOptions(tz="Europe/Berlin", monthly_churn=0.02)
UTC_OPTIONS = FeatureOptions(monthly_churn=0.02)


def _feedback(rid, kind, value, when, customer_id="a"):
    return FeedbackResponse(id=rid, customer_id=customer_id, contact_id=None, survey_type=kind, value=value,
                            response_group=None, submitted_at=when)


def _deal(did, amount, when):
    return Deal(id=did, customer_id="a", name=None, amount=amount, currency="USD", close_date=when,
                stage="closedwon", is_won=True, is_closed=True, created_at=None)


def objects() -> Portfolio:
    subs = (
        # No history: created after the date, so no status yet (not live).
        replace(subscription("s1", "a", [(at(4, 1), "active")], next_payment_due=date(2026, 3, 16)),
                status_history=()),
        # No history: past_due since creation, overdue five days.
        replace(subscription("s2", "a", [(at(1, 1), "past_due")], next_payment_due=date(2026, 3, 10)),
                status_history=()),
        # Its own live statuses (another set than the portfolio's): paused counts as live here.
        replace(subscription("s3", "a", [(at(1, 1, 2025), "paused")], next_payment_due=date(2026, 3, 20)),
                live_statuses=frozenset({"active", "paused"})),
        # First payment at 23:30 UTC on New Year's Eve: already 1 January in Berlin.
        subscription("s4", "b", [(datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "active")]),
        subscription("s5", None, [(at(1, 1), "active")]),
        subscription("s6", "ghost", [(at(1, 1), "active")]),
    )
    usage = {  # not in the customers' order: rows are matched by customer_id
        "c": Usage(customer_id="c", active_days_30d=4, seats_purchased=10, onboarding_milestones_done=("x",),
                   onboarding_milestones_total=2, seats_used=1, seats_used_history=((at(3, 1), 6), (at(3, 20), 9))),
        "b": Usage(customer_id="b", first_value_at=datetime(2026, 1, 10, 22, 30, tzinfo=UTC),
                   active_days_history=((at(2, 1), 3), (at(3, 1), 5))),
    }
    feedback = (
        _feedback("f1", "nps", 8, at(3, 1)),  # lower case still NPS
        _feedback("f2", "NPS", None, at(3, 2)),  # no value: dropped
        _feedback("f3", "NPS", 3, None),  # no time: dropped
        _feedback("f4", "CSAT", 2, at(3, 3), customer_id="ghost"),
    )
    deals = (_deal("d1", None, at(3, 1)), _deal("d2", Decimal("80"), None))
    customers = {
        "a": customer("a", since=date(2025, 1, 1), birthday=date(1990, 3, 1)),
        "b": customer("b"),
        "c": customer("c", country="FR"),
    }
    return Portfolio(customers=customers, subscriptions=subs, deals=deals, line_items=(), feedback=feedback,
                     usage=usage)


def columns_only() -> Portfolio:
    return Portfolio(frames=objects().frames)


@pytest.fixture(params=[objects, columns_only], ids=["objects", "columns"])
def portfolio(request):
    return request.param()


def test_subscription_statuses_without_history_and_own_live_statuses(portfolio):
    a = customer_features(portfolio, AS_OF, options=UTC_OPTIONS)["a"]
    assert (a["active_subscriptions"], a["payment_overdue"], a["days_past_due"]) == (2, True, 5)
    assert (a["days_to_renewal"], a["cancel_requested"]) == (5, False)


@pytest.mark.parametrize("options, since, days_to_value, tenure, month", [
    (BERLIN, date(2026, 1, 1), 9, 73, 1),
    (UTC_OPTIONS, date(2025, 12, 31), 10, 74, 12),
])
def test_first_payment_day_and_first_value_in_the_calendar_zone(portfolio, options, since, days_to_value, tenure,
                                                                 month):
    b = customer_features(portfolio, AS_OF, options=options)["b"]
    assert (b["customer_since"], b["days_to_first_value"], b["tenure_days"]) == (since, days_to_value, tenure)
    assert b["anniversary_month"] == month and type(b["customer_since"]) is date
    assert (b["active_days_30d"], b["usage_frequency_prev"]) == (5, pytest.approx(0.1))


def test_usage_matched_by_customer_not_by_position(portfolio):
    table = customer_features(portfolio, AS_OF, options=UTC_OPTIONS)
    c = table["c"]
    assert (c["active_days_30d"], c["usage_frequency_prev"], c["seats_used"]) == (4, None, 6)
    assert (c["seat_utilisation"], c["onboarding_progress"], c["onboarding_complete"]) == (0.6, 0.5, False)
    assert (c["country"], c["customer_since"], c["tenure_days"]) == ("FR", None, None)
    assert table["a"]["active_days_30d"] is None and table["a"]["onboarding_progress"] is None


def test_surveys_deals_and_calendar(portfolio):
    a = customer_features(portfolio, AS_OF, options=UTC_OPTIONS)["a"]
    assert (a["nps_latest"], a["nps_group"], a["responses_90d"], a["days_since_last_survey"]) == (8, "passive", 1, 14)
    assert (a["frequency"], a["monetary"], a["recency_days"]) == (1, 0.0, 14)
    assert (a["birthday_month"], a["is_birthday_month"], a["anniversary_month"]) == (3, True, 1)
    assert a["customer_since"] == date(2025, 1, 1)


@pytest.mark.parametrize("options", [UTC_OPTIONS, BERLIN])
def test_columns_only_portfolio_gives_the_object_values(options):
    expected = dict(customer_features(objects(), AS_OF, options=options).iter_rows())
    portfolio = columns_only()
    ledger = build_mrr_ledger(portfolio)
    got = customer_features(portfolio, AS_OF, options=options, ledger=ledger)
    assert dict(got.iter_rows()) == expected


def test_ledger_in_another_customer_order_reads_each_customers_own_columns():
    portfolio = objects()
    reordered = portfolio.replace(customers=dict(reversed(list(portfolio.customers.items()))))
    ledger = build_mrr_ledger(reordered)
    table = customer_features(portfolio, AS_OF, options=BERLIN, ledger=ledger)
    assert list(table) == ["c", "b", "a"]
    expected = customer_features(portfolio, AS_OF, options=BERLIN)
    for cid in "abc":
        assert table[cid] == expected[cid]
