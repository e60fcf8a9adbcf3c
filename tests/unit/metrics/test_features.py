"""Per-customer features: every catalog name, the right kind, and hand-checked values for three customers."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from connector.mapping.features import FEATURES, feature_kind
from connector.metrics.features import FeatureOptions, customer_features, feature_names
from connector.model import Deal, FeedbackResponse, Portfolio, Usage

from .portfolios import at, customer, subscription

AS_OF = datetime(2026, 3, 15, 12, tzinfo=timezone.utc)
KINDS = {"number": (int, float), "bool": (bool,), "str": (str,), "date": (date,)}


def _feedback(rid, kind, value, when, customer_id="k1"):
    return FeedbackResponse(id=rid, customer_id=customer_id, contact_id="p1", survey_type=kind, value=value,
                            response_group=None, submitted_at=when)


def _deal(did, amount, when, won=True):
    return Deal(id=did, customer_id="k1", name=None, amount=Decimal(amount), currency="USD", close_date=when,
                stage="closedwon" if won else "closedlost", is_won=won, is_closed=True, created_at=when)


@pytest.fixture(scope="module")
def table():
    subs = (
        subscription("s1", "k1", [(at(3, 2, 2025), "active")], [(at(3, 2, 2025), "100"), (at(1, 10), "150")],
                     next_payment_due=date(2026, 3, 20)),
        subscription("s2", "k1", [(at(6, 1, 2025), "active"), (at(3, 1), "past_due")], mrr="50",
                     next_payment_due=date(2026, 3, 1), cancel_requested_at=at(3, 10)),
        subscription("s3", "k2", [(at(1, 1, 2025), "active"), (at(6, 1, 2025), "canceled"), (at(9, 1, 2025), "active"),
                                  (at(3, 1), "canceled")]),
    )
    usage = Usage(
        customer_id="k1", last_login_at=datetime(2026, 3, 13, 10, tzinfo=timezone.utc), logins_30d=15,
        active_days_30d=12, active_users_30d=8, avg_daily_active_users_30d=2.0, seats_purchased=10, seats_used=7,
        onboarding_milestones_done=("setup", "import", "invite"), onboarding_milestones_total=4,
        first_value_at=at(3, 16, 2025), open_tickets=2, tickets_90d=5,
        last_engagement_at=datetime(2026, 2, 13, 12, tzinfo=timezone.utc),
        active_days_history=((at(2, 10), 9), (at(3, 10), 12)), logins_history=((at(2, 10), 11), (at(3, 10), 15)),
    )
    feedback = (
        _feedback("f1", "NPS", 6, at(12, 1, 2025)),
        _feedback("f2", "NPS", 9, at(2, 1)),
        _feedback("f3", "NPS", 3, at(4, 1)),  # after the date
        _feedback("f4", "CSAT", 2, at(1, 5)),
        _feedback("f5", "CSAT", 1, at(1, 6)),
        _feedback("f6", "CSAT", 2, at(1, 6, 2024)),  # outside the survey window
        _feedback("f7", "CES", 7, at(2, 2)),
        _feedback("f8", "CES", 4, at(2, 3)),
    )
    deals = (
        _deal("d1", "1000", at(3, 5)), _deal("d2", "500", at(10, 1, 2025)), _deal("d3", "700", at(1, 1, 2024)),
        _deal("d4", "900", at(3, 10), won=False),
    )
    customers = {
        "k1": customer("k1", since=date(2025, 3, 2), country="DE", birthday=date(1990, 3, 20)),
        "k2": customer("k2"),
        "k3": customer("k3"),
    }
    portfolio = Portfolio(customers=customers, subscriptions=subs, deals=deals, line_items=(), feedback=feedback,
                          usage={"k1": usage})
    return customer_features(portfolio, AS_OF, options=FeatureOptions(monthly_churn=0.02))


K1 = {
    "customer_id": "k1", "customer_name": "Customer k1", "customer_object": "companies",
    "is_active": True, "was_ever_active": True, "customer_since": date(2025, 3, 2), "tenure_days": 378,
    "days_since_churn": None, "days_since_reactivation": None, "churn_count": 0,
    "mrr": 200.0, "arr": 2400.0, "mrr_90d_ago": 150.0, "mrr_change_90d": pytest.approx(1 / 3),
    "active_subscriptions": 2, "payment_overdue": True, "days_past_due": 14, "cancel_requested": True,
    "days_to_renewal": 5, "clv": pytest.approx(8000.0),
    "logins_30d": 15, "active_days_30d": 12, "usage_frequency": pytest.approx(0.4),
    "usage_frequency_prev": pytest.approx(0.3), "usage_trend": pytest.approx(0.1), "forgettable": False,
    "stickiness": 0.25, "days_since_last_login": 2, "seats_purchased": 10, "seats_used": 7,
    "seat_utilisation": pytest.approx(0.7), "onboarding_progress": 0.75, "onboarding_complete": False,
    "days_to_first_value": 14, "open_tickets": 2, "tickets_90d": 5, "days_since_last_engagement": 30,
    "nps_latest": 9, "nps_previous": 6, "nps_trend": 3, "nps_group": "promoter", "csat_pct": 50.0,
    "ces_mean": 5.5, "responses_90d": 5, "days_since_last_survey": 40,
    "industry": "software", "acquisition_source": "organic", "country": "DE", "birthday_month": 3,
    "anniversary_month": 3, "is_birthday_month": True, "is_anniversary_month": True,
    "recency_days": 10, "frequency": 2, "monetary": 1500.0,
}


@pytest.mark.parametrize("name", sorted(K1))
def test_customer_features_k1(table, name):
    assert table["k1"][name] == K1[name]


def test_churned_and_reactivated_customer(table):
    k2 = table["k2"]
    assert (k2["is_active"], k2["was_ever_active"], k2["churn_count"]) == (False, True, 2)
    assert (k2["days_since_churn"], k2["days_since_reactivation"]) == (14, 195)
    assert k2["customer_since"] == date(2025, 1, 1)  # first payment when the CRM has no date
    assert k2["clv"] is None and k2["mrr"] == 0.0 and k2["mrr_change_90d"] == -1.0
    assert (k2["active_subscriptions"], k2["payment_overdue"], k2["cancel_requested"]) == (0, False, False)


def test_customer_without_data_has_nones_not_zeros(table):
    k3 = table["k3"]
    assert (k3["is_active"], k3["was_ever_active"]) == (False, False)
    assert k3["mrr_change_90d"] is None and k3["tenure_days"] is None and k3["customer_since"] is None
    assert k3["payment_overdue"] is None and k3["usage_frequency"] is None and k3["forgettable"] is None
    assert k3["nps_latest"] is None and k3["csat_pct"] is None and k3["recency_days"] is None
    assert k3["frequency"] == 0 and k3["responses_90d"] == 0


def test_every_catalog_feature_but_health_is_computed(table):
    assert set(table["k1"]) == set(feature_names()) == {n for n in FEATURES if not n.startswith("health_")}


def test_values_have_the_catalog_kind(table):
    for cid, row in table.iter_rows(chunk=2):
        for name, value in row.items():
            if value is not None:
                assert isinstance(value, KINDS[feature_kind(name)]), (cid, name, value)
                assert not (feature_kind(name) == "number" and isinstance(value, bool)), (cid, name)


def test_iter_rows_and_column_agree_with_row_access(table):
    rows = dict(table.iter_rows(chunk=2))
    assert list(rows) == ["k1", "k2", "k3"]
    for cid in table:
        assert rows[cid] == table[cid]
    assert table.column("mrr") == [200.0, 0.0, 0.0]
    assert table.column("nps_latest") == [9, None, None]
    assert "k4" not in table and len(table) == 3


def test_items_iterates_the_fast_path_and_stays_a_mapping_view(table):
    items = table.items()
    assert len(items) == 3
    assert [cid for cid, _ in items] == ["k1", "k2", "k3"]
    assert dict(items)["k2"] == table["k2"]


def test_iter_rows_can_limit_the_features(table):
    rows = dict(table.iter_rows(names=["mrr", "nps_group"]))
    assert rows["k1"] == {"mrr": 200.0, "nps_group": "promoter"}
    assert rows["k3"] == {"mrr": 0.0, "nps_group": None}


def test_feature_frame_agrees_with_row_access(table):
    frame = table.frame
    assert frame["customer_id"].to_list() == list(table)
    for row in frame.iter_rows(named=True):
        expected = table[row["customer_id"]]
        assert row == expected
