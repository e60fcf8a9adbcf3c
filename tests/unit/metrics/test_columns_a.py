"""Ledger, sources and surveys read the portfolio's frames: the same figures from a frames-only portfolio (what the
model hands over) as from row objects."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connector.metrics import periods
from connector.metrics.portfolio import MetricsOptions, portfolio_metrics
from connector.metrics.retention import retention_by_source
from connector.metrics.revenue import FxTable, build_mrr_ledger
from connector.metrics.satisfaction import _group, hubspot_response_group, select_responses, survey_summary
from connector.model import FeedbackResponse, Portfolio

from .portfolios import at, customer, e2_portfolio, subscription

D = Decimal
UTC = timezone.utc
AS_OF = datetime(2025, 8, 1, tzinfo=UTC)


def _random_portfolio(seed: int, *, odd: bool = True) -> Portfolio:
    """Subscriptions of every shape the ledger distinguishes; ``odd=False`` leaves out those it resolves one by one."""
    rng = random.Random(seed)
    statuses = ["active", "past_due", "unpaid", "canceled", "paused", "active", None]
    subs = []
    for n in range(120):
        t = at(1, 1, 2025) + timedelta(days=rng.randint(0, 60), microseconds=rng.randint(0, 999_999))
        history = []
        for _ in range(rng.randint(0, 4)):
            history.append((t, rng.choice(statuses)))
            t += timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 5))  # 0 days: same-instant changes
        mrrs = sorted(((at(1, 1, 2025) + timedelta(days=rng.randint(0, 120)),
                        rng.choice([None, D(0), D("99.99"), D(120)])) for _ in range(rng.randint(0, 3))),
                      key=lambda point: point[0])
        base = subscription(f"s{n}", f"c{rng.randrange(25)}" if n % 11 else "nobody", [(t, "active")],
                            mrr=rng.choice(["0", "25", "49.5"]))
        subs.append(replace(
            base, status=rng.choice(statuses), status_history=tuple(history), mrr_history=tuple(mrrs),
            # No created_at and no history: live since forever (-inf), which features and cohorts cannot date.
            created_at=None if odd and n % 17 == 0 else base.created_at,
            currency=rng.choice(["USD", "EUR"]) if odd else "USD",
            past_due_grace_days=rng.choice([None, 0, 5]) if odd else None,
            live_statuses=rng.choice([base.live_statuses, frozenset({"active"})]) if odd else base.live_statuses,
        ))
    customers = {f"c{i}": customer(f"c{i}", source=rng.choice(["organic", "paid", None, ""])) for i in range(25)}
    kinds = ["NPS", "CSAT", "CES", "nps", "OTHER"]
    feedback = tuple(
        FeedbackResponse(
            id=f"r{rng.randrange(40)}", customer_id=f"c{rng.randrange(25)}",
            contact_id=rng.choice([None, "", "p1", "p2", "p3"]), survey_type=rng.choice(kinds),
            value=rng.choice([None, 0, 1, 2, 5, 6, 7, 8, 9, 10]),
            response_group=rng.choice([None, "", "PROMOTER", "passive", "DETRACTOR"]),
            submitted_at=rng.choice([None, at(rng.randint(1, 7), rng.choice([1, 15]), 2025)]),  # ties in time
        )
        for _ in range(150)
    )
    return Portfolio(customers=customers, subscriptions=tuple(subs), feedback=feedback)


def _columns_only(portfolio: Portfolio) -> Portfolio:
    """The portfolio as the model stage hands it over: frames only, objects built on access."""
    return Portfolio(frames=portfolio.frames, reporting_currency=portfolio.reporting_currency)


@pytest.mark.parametrize("seed", range(6))
def test_ledger_from_columns_equals_summed_model_mrr(seed):
    portfolio = _random_portfolio(seed)
    ledger = build_mrr_ledger(_columns_only(portfolio), FxTable("USD", {"EUR": D("1.1")}))
    by_customer = portfolio.subscriptions_by_customer()
    instant = at(12, 1, 2024)
    while instant < at(9, 1, 2025):
        micro = ledger.micro_at(instant.timestamp() + 1e-6)
        for cid, i in ledger.index.items():
            expected = sum((s.mrr_at(instant) * (D("1.1") if s.currency == "EUR" else 1)
                            for s in by_customer.get(cid, [])), D(0))
            assert micro[i] == int(expected * 1_000_000), (cid, instant)
        instant += timedelta(hours=31)


@pytest.mark.parametrize("seed", range(4))
def test_portfolio_figures_from_columns_equal_those_from_objects(seed):
    objects = _random_portfolio(seed, odd=False)
    columns = _columns_only(objects)
    ledger = build_mrr_ledger(objects)
    from connector.metrics.features import customer_features

    features = customer_features(objects, AS_OF, ledger=ledger)
    for options in (MetricsOptions(), MetricsOptions(per_contact="all", cohorts=False)):
        for month in (periods.month(2025, 2), periods.month(2025, 6)):
            a = portfolio_metrics(objects, month, AS_OF, ledger=ledger, features=features, options=options)
            b = portfolio_metrics(columns, month, AS_OF, ledger=build_mrr_ledger(columns), features=features,
                                  options=options)
            assert repr(a.to_dict()) == repr(b.to_dict())  # values and key order


def test_sources_follow_the_ledgers_customer_order():
    portfolio = e2_portfolio()
    shuffled = Portfolio(customers=dict(reversed(list(portfolio.customers.items()))),
                         subscriptions=portfolio.subscriptions)
    january = periods.month(2026, 1)
    assert retention_by_source(build_mrr_ledger(shuffled), portfolio, january) == \
        retention_by_source(build_mrr_ledger(portfolio), portfolio, january)


def test_survey_groups_as_an_expression_match_hubspot_response_group():
    import polars as pl

    kinds = [k for k in ("NPS", "CSAT", "CES", "OTHER") for _ in range(14)]
    values = [v for _ in range(4) for v in (None, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)]
    frame = pl.DataFrame({"kind": kinds, "value": values}, schema={"kind": pl.String, "value": pl.Int64})
    group = frame.select(_group(pl.col("kind"), pl.col("value")).alias("group"))["group"].to_list()
    expected = [hubspot_response_group(k, v) for k, v in zip(kinds, values)]
    assert group == expected


def _latest_by_rule(responses, period):
    """select_responses' rule spelled out: each (contact or the answer itself, type)'s greatest (time, id)."""
    latest: dict = {}
    for r in responses:
        if r.value is None or r.submitted_at is None or not period.contains(r.submitted_at):
            continue
        key = (r.contact_id or f"response:{r.id}", r.survey_type.upper())
        if key not in latest or (r.submitted_at, r.id) > (latest[key].submitted_at, latest[key].id):
            latest[key] = r
    return list(latest.values())


@pytest.mark.parametrize("seed", range(5))
def test_latest_answers_and_summary_from_a_feedback_table(seed):
    portfolio = _random_portfolio(seed)
    period = periods.custom(at(1, 1, 2025).date(), at(6, 1, 2025).date())
    assert select_responses(portfolio.feedback, period) == _latest_by_rule(portfolio.feedback, period)
    table = portfolio.frames.feedback
    # a frame given in another order is read in that order
    assert survey_summary(table.reverse(), period) == survey_summary(portfolio.feedback[::-1], period)
    assert survey_summary(table, period) == survey_summary(portfolio.feedback, period)
