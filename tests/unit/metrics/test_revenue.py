"""Revenue: E3 (plain numbers and an encoded Portfolio), E4 normalisation, E5, constant currency, ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from connector.errors import ConfigError
from connector.metrics import periods
from connector.metrics.revenue import (
    FxTable,
    arpa,
    arr,
    build_mrr_ledger,
    mrr_movements,
    net_mrr_churn,
    normalise_mrr,
    revenue_churn,
    revenue_figures,
    revenue_retention,
    subscription_steps,
)
from connector.model import Portfolio

from .portfolios import at, customer, e3_portfolio, subscription

D = Decimal
JANUARY = periods.month(2026, 1)
E3_COHORT = [(D(100), D(150)), (D(200), D(120)), (D(300), D(0)), (D(400), D(400))]


def test_revenue_retention_e3():
    r = revenue_retention(E3_COHORT)
    assert (r.start_mrr, r.end_mrr) == (D(1000), D(670))
    assert (r.expansion, r.contraction, r.churned) == (D(50), D(80), D(300))
    assert r.nrr == pytest.approx(0.67)
    assert r.grr == pytest.approx(0.62)
    assert r.gross_mrr_churn == pytest.approx(0.38)
    assert r.net_mrr_churn == pytest.approx(0.33)
    assert r.gross_mrr_churn == pytest.approx(1 - r.grr) and r.net_mrr_churn == pytest.approx(1 - r.nrr)


def test_chartmogul_net_mrr_churn_offsets_reactivation_e3():
    assert net_mrr_churn(D(1000), D(50), D(80), D(300), reactivation=D(90)) == pytest.approx(0.24)
    assert net_mrr_churn(D(1000), D(50), D(80), D(300)) == pytest.approx(0.33)


def test_revenue_churn_uses_the_corrected_sign_e3():
    start, end, acquired = D(12000), D(12120), D(340 * 12)
    printed = ((start - end) - acquired) / start  # the guides' form, shown only to pin the difference
    assert printed == D("-0.35")
    assert revenue_churn(start, end, acquired) == pytest.approx(0.33)


def test_mrr_movements_e3_add_up():
    rows = [(s, e, False) for s, e in E3_COHORT] + [(D(0), D(250), False), (D(0), D(90), True)]
    m = mrr_movements(rows)
    assert (m.new, m.reactivation, m.expansion, m.contraction, m.churned) == (D(250), D(90), D(50), D(80), D(300))
    assert m.end_mrr == D(1010) == m.start_mrr + m.net_new


def test_revenue_figures_from_e3_portfolio_match_plain_numbers():
    figures = revenue_figures(build_mrr_ledger(e3_portfolio()), JANUARY)
    plain = revenue_retention(E3_COHORT)
    assert figures.retention == plain
    assert (figures.start_mrr, figures.end_mrr) == (D(1000), D(1010))
    assert (figures.start_arr, figures.end_arr) == (D(12000), D(12120))
    m = figures.movements
    assert (m.new, m.reactivation, m.expansion, m.contraction, m.churned) == (D(250), D(90), D(50), D(80), D(300))
    assert figures.chartmogul_net_mrr_churn == pytest.approx(0.24)
    assert figures.revenue_churn == pytest.approx(0.33)
    assert (figures.active_start, figures.active_end) == (4, 5)
    assert figures.arpa_start == D(250) and figures.arpa_end == D(202)


def test_revenue_figures_with_no_start_mrr_are_none_e5():
    figures = revenue_figures(build_mrr_ledger(e3_portfolio()), periods.month(2025, 1))
    assert figures.start_mrr == 0
    assert figures.retention.nrr is None and figures.retention.grr is None
    assert figures.revenue_churn is None and figures.arpa_start is None


@pytest.mark.parametrize(
    ("amount", "frequency", "kwargs", "expected"),
    [
        pytest.param("1200", "annually", {}, "100.00", id="annual"),
        pytest.param("450", "quarterly", {}, "150.00", id="quarterly"),
        pytest.param("99", "monthly", {}, "99.00", id="monthly"),
        pytest.param("4800", "per_two_years", {}, "200.00", id="two-years"),
        pytest.param("25", "weekly", {}, "108.33", id="weekly-52/12"),
        pytest.param("1200", "annually", {"discount_percentage": D(20)}, "80.00", id="discount"),
        pytest.param("1260", "annually", {"tax": D(60)}, "100.00", id="tax-excluded"),
        pytest.param("50", "monthly", {"service_days": 15, "period_days": 30}, "100.00", id="prorated"),
        pytest.param("10", "daily", {}, "304.17", id="daily-365/12"),
    ],
)
def test_normalise_mrr_e4(amount, frequency, kwargs, expected):
    assert normalise_mrr(D(amount), frequency, **kwargs).quantize(D("0.01")) == D(expected)


def test_customer_mrr_and_arr_e4():
    mrr = sum(normalise_mrr(D(a), f) for a, f in [("1200", "annually"), ("450", "quarterly"), ("99", "monthly")])
    assert mrr == D(349) and arr(mrr) == D(4188)


def test_normalise_mrr_unknown_frequency_suggests_the_right_one():
    with pytest.raises(ConfigError, match='did you mean "annually"'):
        normalise_mrr(D(1), "anually")


def test_arpa_without_customers_is_none():
    assert arpa(D(0), 0) is None
    assert arpa(D(349), 1) == D(349)


def test_fx_table_converts_at_one_constant_rate():
    fx = FxTable("USD", {"EUR": D("1.10")}, rate_date=date(2026, 1, 1))
    assert fx.convert(D(100), "EUR") == D("110.00")
    assert fx.convert(D(100), "USD") == D(100)
    with pytest.raises(ConfigError, match="no FX rate for GBP"):
        fx.convert(D(1), "GBP")


def test_ledger_converts_foreign_subscriptions_at_constant_fx():
    sub = subscription("s1", "c1", [(at(6, 1, 2025), "active")], mrr="100")
    eur = type(sub)(**{**sub.__dict__, "currency": "EUR"})
    portfolio = Portfolio(customers={"c1": customer("c1")}, subscriptions=(eur,), deals=(), line_items=(),
                          feedback=(), usage={})
    figures = revenue_figures(build_mrr_ledger(portfolio, FxTable("USD", {"EUR": D("1.1")})), JANUARY)
    assert figures.start_mrr == figures.end_mrr == D("110.0")
    assert figures.movements.expansion == 0


@pytest.mark.parametrize(
    "instant",
    [pytest.param(at(m, d, y), id=f"{y}-{m:02d}-{d:02d}") for y, m, d in
     [(2025, 1, 1), (2025, 3, 1), (2025, 6, 1), (2025, 11, 15),
      (2026, 1, 7), (2026, 1, 9), (2026, 1, 21), (2026, 2, 1)]],
)
def test_subscription_steps_agree_with_model_mrr_at(instant):
    portfolio = e3_portfolio()
    ledger = build_mrr_ledger(portfolio)
    by_customer = portfolio.subscriptions_by_customer()
    # The ledger's snapshot at t is the left limit; one microsecond later it must equal model.mrr_at(t).
    got = ledger.mrr_at(instant.timestamp() + 1e-6)
    for cid, i in ledger.index.items():
        expected = sum((s.mrr_at(instant) for s in by_customer[cid]), D(0))
        assert got[i] == float(expected), cid
    for sub in portfolio.subscriptions:
        steps = subscription_steps(sub)
        value = D(0)
        for t, v in steps:
            if t <= instant.timestamp():
                value = v
        assert value == sub.mrr_at(instant)


def _step_value(steps, instant):
    value = D(0)
    for t, v in steps:
        if t <= instant.timestamp():
            value = v
    return value


@pytest.mark.parametrize("grace", [None, 0, 3, 10], ids=lambda g: f"grace-{g}")
def test_subscription_steps_follow_past_due_grace_like_the_model(grace):
    import random
    from dataclasses import replace
    from datetime import timedelta

    rng = random.Random(grace or 0)
    statuses = ["active", "past_due", "unpaid", "active", "past_due", "canceled", "active", "paused"]
    for case in range(30):
        t = at(1, 1, 2025)
        history = []
        for _ in range(rng.randint(1, 6)):
            history.append((t, rng.choice(statuses)))
            t += timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 23))
        mrrs = [(history[0][0], "100"), (history[0][0] + timedelta(days=rng.randint(1, 40)), "150")]
        sub = replace(subscription(f"s{case}", "c", history, mrrs), past_due_grace_days=grace,
                      live_statuses=frozenset({"active", "past_due", "unpaid"}) if case % 2
                      else frozenset({"active", "past_due"}))
        steps = subscription_steps(sub)
        instant = at(12, 31, 2024)
        while instant < t + timedelta(days=30):
            assert _step_value(steps, instant) == sub.mrr_at(instant), (case, instant, history)
            instant += timedelta(hours=7)


def test_ledger_equals_summed_model_mrr_on_random_portfolios():
    import random
    from dataclasses import replace
    from datetime import timedelta

    from connector.metrics.revenue import MICRO

    rng = random.Random(42)
    statuses = ["active", "past_due", "unpaid", "canceled", "paused", "active"]
    subs = []
    for n in range(240):
        cid = f"c{n % 60}"
        t = at(1, 1, 2025) + timedelta(days=rng.randint(0, 60))
        history = []
        for _ in range(rng.randint(0, 5)):
            history.append((t, rng.choice(statuses)))
            t += timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 5))  # 0 days: same-instant collisions
        mrrs = [(at(1, 1, 2025) + timedelta(days=rng.randint(0, 120)), str(rng.choice([0, 10, 99.99, 120.5])))
                for _ in range(rng.randint(0, 3))]
        mrrs.sort()
        base = subscription(f"s{n}", cid, history or [(t, rng.choice(statuses))], mrrs or None,
                            mrr=str(rng.choice([0, 25, 49.5])))
        sub = replace(
            base,
            status_history=tuple(history),
            mrr_history=tuple((tt, D(v)) for tt, v in mrrs),
            created_at=None if n % 17 == 0 else base.created_at,
            past_due_grace_days=rng.choice([None, None, 0, 5]),
            # The shared default, an equal set built apart, and a portal that counts only "active".
            live_statuses=rng.choice(
                [base.live_statuses, frozenset({"active", "past_due", "unpaid"}), frozenset({"active"})]
            ),
        )
        subs.append(sub)
    portfolio = Portfolio(customers={f"c{i}": customer(f"c{i}") for i in range(61)}, subscriptions=tuple(subs),
                          deals=(), line_items=(), feedback=(), usage={})
    ledger = build_mrr_ledger(portfolio)
    by_customer = portfolio.subscriptions_by_customer()
    instant = at(12, 1, 2024)
    while instant < at(9, 1, 2025):
        micro = ledger.micro_at(instant.timestamp() + 1e-6)
        for cid, i in ledger.index.items():
            expected = sum((s.mrr_at(instant) for s in by_customer.get(cid, [])), D(0))
            assert micro[i] == int(expected * MICRO), (cid, instant)
        instant += timedelta(hours=29)


def test_ledger_snapshots_are_shared_read_only_and_stay_right_after_eviction():
    ledger = build_mrr_ledger(e3_portfolio())
    instants = [at(1, d).timestamp() for d in range(1, 29)]
    first = ledger.micro_at(instants[0]).copy()
    assert ledger.micro_at(instants[0]) is ledger.micro_at(instants[0])  # kept: periods share their bounds
    with pytest.raises(ValueError):
        ledger.micro_at(instants[0])[0] = 1  # shared, so read-only
    for instant in instants:  # more instants than a ledger keeps
        ledger.micro_at(instant)
    assert (ledger.micro_at(instants[0]) == first).all()
    assert ledger.first_active_ts() is ledger.first_active_ts() and not ledger.first_active_ts().flags.writeable
