"""Customer value: AOV, purchase frequency, margin, simple CLV with a cap, RFM summaries and quintile scores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Hashable, Iterable, Iterator, Sequence

import numpy as np
import polars as pl

from connector.metrics.revenue import ratio
from connector.model import Deal
from connector.model.frames import frames_of_rows


def _dec(value: Decimal | float | int) -> Decimal:
    # str() keeps a float's shortest repr (0.3 stays 0.3), not its binary expansion.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def average_order_value(revenue: Decimal, orders: int) -> Decimal | None:
    return None if not orders else _dec(revenue) / orders


def purchase_frequency(orders: int, customers: int) -> float | None:
    """Orders per customer in the period the caller chose (keep it the unit of the churn used for CLV)."""
    return ratio(orders, customers)


def gross_margin(revenue: Decimal, cost: Decimal) -> float | None:
    return ratio(_dec(revenue) - _dec(cost), _dec(revenue))


def lifespan(churn: float | Decimal | None, *, cap: float | None = None) -> Decimal | None:
    """Expected lifetime in periods of the churn's unit: 1/churn, at most ``cap``; ``None`` if unbounded."""
    if churn is None or churn < 0:
        return None
    if churn == 0:
        return None if cap is None else _dec(cap)
    life = 1 / _dec(churn)
    return life if cap is None else min(life, _dec(cap))


def simple_clv(
    aov: Decimal | float,
    frequency: float | Decimal,
    margin: float | Decimal,
    churn: float | Decimal | None,
    *,
    cap: float | None = None,
) -> Decimal | None:
    """AOV × purchase frequency × gross margin × lifespan, frequency and churn in the same period unit (§1.5, E6)."""
    life = lifespan(churn, cap=cap)
    if life is None:
        return None
    return _dec(aov) * _dec(frequency) * _dec(margin) * life


def saas_clv(
    arpa: Decimal | float, margin: float | Decimal, churn: float | Decimal | None, *, cap: float | None = None
) -> Decimal | None:
    """ARPA × margin / churn at the billing cadence (monthly ARPA with monthly churn, never mixed)."""
    life = lifespan(churn, cap=cap)
    if life is None:
        return None
    return _dec(arpa) * _dec(margin) * life


# ---------------------------------------------------------------- RFM summary for BTYD models (METRICS §3)


@dataclass(frozen=True)
class RfmSummary:
    """BTYD inputs of one customer, in ``unit_days`` units: frequency counts repeat purchases only."""

    frequency: int
    recency: float  # first to last purchase (t_x)
    T: float  # first purchase to the end of calibration
    monetary_value: float  # mean value of the repeat purchases (0 without any)


def summarise_transactions(
    transactions: Iterable[tuple[Hashable, date | datetime, float | Decimal]],
    calibration_end: date,
    *,
    unit_days: float = 7.0,
    decimals: int | None = 2,
) -> dict[Hashable, RfmSummary]:
    """(customer, day, amount) rows → per customer frequency / recency / T / monetary (lifetimes-compatible).

    Same-day purchases merge into one (amounts add up); rows after ``calibration_end`` are ignored; times are
    whole days divided by ``unit_days`` and rounded to ``decimals`` (weeks with 2 decimals rebuild the CDNOW files).
    """
    days: dict[Hashable, dict[date, float]] = {}
    for customer, when, amount in transactions:
        day = when.date() if isinstance(when, datetime) else when
        if day > calibration_end:
            continue
        per_day = days.setdefault(customer, {})
        per_day[day] = per_day.get(day, 0.0) + float(amount)

    def unit(n_days: int) -> float:
        value = n_days / unit_days
        return round(value, decimals) if decimals is not None else value

    out: dict[Hashable, RfmSummary] = {}
    for customer, per_day in days.items():
        ordered = sorted(per_day)
        first, last = ordered[0], ordered[-1]
        repeats = [per_day[d] for d in ordered[1:]]
        out[customer] = RfmSummary(
            frequency=len(repeats),
            recency=unit((last - first).days),
            T=unit((calibration_end - first).days),
            monetary_value=sum(repeats) / len(repeats) if repeats else 0.0,
        )
    return out


def transactions_from_deals(deals: Iterable[Deal] | pl.DataFrame) -> Iterator[tuple[str, datetime, float]]:
    """Won deals with a customer and a close date as (customer, close date, amount) for summarise_transactions;
    from row objects or the model's deals frame."""
    if not isinstance(deals, pl.DataFrame):
        deals = frames_of_rows({}, (), list(deals), (), (), {}).deals
    won = deals.filter(pl.col("is_won").fill_null(False) & pl.col("customer_id").is_not_null()
                       & pl.col("close_date").is_not_null())
    yield from won.select("customer_id", "close_date", pl.col("amount").cast(pl.Float64).fill_null(0.0)).iter_rows()


# ---------------------------------------------------------------- RFM quintile scores (METRICS §4.2, E9)

# The 10-segment RF grid (exhaustive over the 25 cells): (R range, F range, name).
RF_GRID: tuple[tuple[range, range, str], ...] = (
    (range(1, 3), range(1, 3), "Hibernating"),
    (range(1, 3), range(3, 5), "At Risk"),
    (range(1, 3), range(5, 6), "Can't Lose Them"),
    (range(3, 4), range(1, 3), "About to Sleep"),
    (range(3, 4), range(3, 4), "Need Attention"),
    (range(3, 5), range(4, 6), "Loyal Customers"),
    (range(4, 5), range(1, 2), "Promising"),
    (range(5, 6), range(1, 2), "New Customers"),
    (range(4, 6), range(2, 4), "Potential Loyalists"),
    (range(5, 6), range(4, 6), "Champions"),
)


def rf_segment(r: int, f: int) -> str:
    for r_range, f_range, name in RF_GRID:
        if r in r_range and f in f_range:
            return name
    raise ValueError(f"R and F must be 1-5, got R={r} F={f}")


def quantile_scores(values: Sequence[float], bins: int = 5) -> np.ndarray:
    """pandas.qcut(values, bins, labels=1..bins): equal-frequency bins on linear-interpolated quantiles.

    Where quantile edges coincide (heavy ties) qcut would refuse; we then score the values' first-order ranks.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.quantile(x, np.linspace(0, 1, bins + 1))
    if np.unique(edges).size < edges.size:
        x = rank_first(x)
        edges = np.quantile(x, np.linspace(0, 1, bins + 1))
    # Bins are right-closed, (e_k, e_k+1], the first one including its lower edge.
    return np.searchsorted(edges[1:-1], x, side="left") + 1


def rank_first(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties broken by position (pandas rank(method="first"))."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size, dtype=float)
    ranks[order] = np.arange(1, x.size + 1)
    return ranks


@dataclass(frozen=True)
class RfmScore:
    r: int
    f: int
    m: int

    @property
    def code(self) -> str:
        return f"{self.r}{self.f}{self.m}"

    @property
    def segment(self) -> str:
        return rf_segment(self.r, self.f)


def rfm_scores(
    rows: Iterable[tuple[str, float, float, float]], bins: int = 5
) -> dict[str, RfmScore]:
    """(customer_id, recency_days, frequency, monetary) → quintile scores; most recent R = 5.

    Rows are sorted by customer id first so frequency ties break the same way on every run (E9).
    """
    ordered = sorted(rows, key=lambda row: row[0])
    if not ordered:
        return {}
    ids = [row[0] for row in ordered]
    recency = quantile_scores([row[1] for row in ordered], bins)
    frequency = quantile_scores(rank_first([row[2] for row in ordered]), bins)
    monetary = quantile_scores([row[3] for row in ordered], bins)
    return {
        cid: RfmScore(int(bins + 1 - r), int(f), int(m))
        for cid, r, f, m in zip(ids, recency.tolist(), frequency.tolist(), monetary.tolist())
    }
