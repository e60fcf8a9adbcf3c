"""Customer value: simple CLV (E6, §1.5), AOV / frequency / margin, E5 zero churn, RFM quintiles (E9)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.metrics.retention import churn_over
from connector.metrics.value import (
    average_order_value,
    gross_margin,
    lifespan,
    purchase_frequency,
    quantile_scores,
    rf_segment,
    rfm_scores,
    saas_clv,
    simple_clv,
)

D = Decimal
CENT = D("0.01")


def test_simple_clv_e6():
    assert simple_clv(D(50), 4, 0.30, 0.25).quantize(CENT) == D("240.00")


@pytest.mark.parametrize(
    ("arpa", "churn", "expected"),
    [
        pytest.param(D(100), 0.02, "4000.00", id="monthly"),
        pytest.param(D(1200), churn_over(0.02, 12), "4459.24", id="annual-terms"),
    ],
)
def test_saas_clv_depends_on_the_period_unit(arpa, churn, expected):
    assert saas_clv(arpa, 0.8, churn).quantize(CENT) == D(expected)


@pytest.mark.parametrize(
    ("churn", "cap", "expected"),
    [
        pytest.param(0, None, None, id="E5-zero-churn-unbounded"),
        pytest.param(0, 60, D(60), id="zero-churn-capped"),
        pytest.param(0.01, 60, D(60), id="cap-binds"),
        pytest.param(0.05, 60, D(20), id="cap-loose"),
        pytest.param(None, 60, None, id="unknown-churn"),
    ],
)
def test_lifespan_cap(churn, cap, expected):
    assert lifespan(churn, cap=cap) == expected


def test_simple_clv_zero_churn_is_none_unless_capped():
    assert simple_clv(D(50), 4, 0.3, 0) is None
    assert simple_clv(D(50), 4, 0.3, 0, cap=5) == D("300.0")


def test_aov_frequency_margin():
    assert average_order_value(D(1000), 20) == D(50)
    assert average_order_value(D(1000), 0) is None
    assert purchase_frequency(400, 100) == 4.0
    assert purchase_frequency(0, 0) is None
    assert gross_margin(D(100), D(70)) == pytest.approx(0.30)
    assert gross_margin(D(0), D(0)) is None


E9 = [
    ("A", 2, 12, 1500, "555", "Champions"),
    ("B", 5, 3, 220, "533", "Potential Loyalists"),
    ("C", 9, 8, 900, "454", "Loyal Customers"),
    ("D", 14, 1, 60, "412", "Promising"),
    ("E", 20, 5, 480, "343", "Loyal Customers"),
    ("F", 33, 1, 45, "311", "About to Sleep"),
    ("G", 45, 7, 1100, "245", "At Risk"),
    ("H", 60, 2, 150, "222", "Hibernating"),
    ("I", 90, 1, 30, "121", "Hibernating"),
    ("J", 180, 4, 700, "134", "At Risk"),
]


@pytest.mark.parametrize(("cid", "code", "segment"), [pytest.param(c, code, seg, id=c) for c, *_, code, seg in E9])
def test_rfm_scores_e9(cid, code, segment):
    # Rows given in reverse order: scores must not depend on input order (ties break by customer id).
    scores = rfm_scores([(c, r, f, m) for c, r, f, m, *_ in reversed(E9)])
    assert scores[cid].code == code
    assert scores[cid].segment == segment


def test_quantile_scores_match_pandas_qcut():
    import pandas  # installed with the test extra (a lifetimes dependency)
    values = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5, 3.5, 8.0, 9.5, 7.0]
    expected = pandas.qcut(values, 5, labels=[1, 2, 3, 4, 5]).astype(int).tolist()
    assert quantile_scores(values).tolist() == expected


def test_rf_grid_covers_every_cell_once():
    names = {rf_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert len(names) == 10
    with pytest.raises(ValueError):
        rf_segment(0, 3)


def test_transactions_from_won_deals_feed_the_rfm_summary():
    from datetime import date, datetime, timezone

    from connector.metrics.value import summarise_transactions, transactions_from_deals
    from connector.model import Deal

    def deal(did, cid, day, amount, won=True):
        when = datetime(2026, 1, day, 15, tzinfo=timezone.utc)
        return Deal(id=did, customer_id=cid, name=None, amount=D(amount), currency="USD", close_date=when,
                    stage=None, is_won=won, is_closed=True, created_at=when)

    deals = [deal("1", "a", 1, "10"), deal("2", "a", 8, "30"), deal("3", "a", 8, "20"),
             deal("4", "a", 15, "40", won=False),
             deal("5", "b", 29, "99")]
    summary = summarise_transactions(transactions_from_deals(deals), date(2026, 1, 29))
    a = summary["a"]
    assert (a.frequency, a.recency, a.T, a.monetary_value) == (1, 1.0, 4.0, 50.0)
    assert (summary["b"].frequency, summary["b"].T) == (0, 0.0)
