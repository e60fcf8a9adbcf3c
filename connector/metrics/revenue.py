"""MRR/ARR, billing normalisation, constant currency, MRR movements, NRR/GRR, MRR and revenue churn, ARPA."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

import numpy as np

from connector.errors import ConfigError
from connector.metrics.periods import Period
from connector.model import OVERDUE_STATUSES, Portfolio, Subscription

ZERO = Decimal(0)
NEG_INF = -math.inf
DAY_SECONDS = 86400.0

# Monthly factor per billing frequency as an exact fraction (METRICS §1.3): weekly 52/12 and daily 365/12 by
# choice (Stripe snippets use x4 and x30, ChartMogul the real service length); the rest divide the term.
MONTHLY_FACTORS: dict[str, tuple[int, int]] = {
    "daily": (365, 12),
    "weekly": (52, 12),
    "biweekly": (26, 12),
    "monthly": (1, 1),
    "quarterly": (1, 3),
    "per_six_months": (1, 6),
    "annually": (1, 12),
    "per_two_years": (1, 24),
    "per_three_years": (1, 36),
    "per_four_years": (1, 48),
    "per_five_years": (1, 60),
}


def ratio(numerator: Decimal | float | int, denominator: Decimal | float | int) -> float | None:
    """numerator / denominator as float; ``None`` for a zero denominator (never 0 % or 100 %)."""
    if not denominator:
        return None
    if isinstance(numerator, Decimal) or isinstance(denominator, Decimal):
        return float(Decimal(numerator) / Decimal(denominator))
    return numerator / denominator


def _did_you_mean(name: str, choices) -> str:
    # Imported on the error path only: the metrics core should not pay for loading the mapping package.
    from connector.mapping.base import did_you_mean

    return did_you_mean(name, choices)


def monthly_factor(billing_frequency: str) -> tuple[int, int]:
    try:
        return MONTHLY_FACTORS[billing_frequency]
    except KeyError:
        raise ConfigError(
            f"unknown billing frequency {billing_frequency!r}{_did_you_mean(billing_frequency, MONTHLY_FACTORS)}"
        ) from None


def normalise_mrr(
    amount: Decimal,
    billing_frequency: str,
    *,
    discount_percentage: Decimal | None = None,
    discount_amount: Decimal | None = None,
    tax: Decimal | None = None,
    service_days: int | None = None,
    period_days: int | None = None,
) -> Decimal:
    """Monthly run-rate of one recurring charge (METRICS §1.3, E4).

    Tax is excluded and discounts deducted; a prorated charge covering ``service_days`` of a ``period_days``
    billing period is scaled back to the full period (ChartMogul), never pro-rated by days in the month.
    """
    net = Decimal(amount) - (tax or ZERO) - (discount_amount or ZERO)
    if discount_percentage:
        net = net * (Decimal(100) - Decimal(discount_percentage)) / Decimal(100)
    if service_days is not None or period_days is not None:
        if not service_days or not period_days:
            raise ValueError("a prorated charge needs both service_days > 0 and period_days > 0")
        net = net * Decimal(period_days) / Decimal(service_days)
    numerator, denominator = monthly_factor(billing_frequency)
    return net * numerator / denominator


def arr(mrr: Decimal) -> Decimal:
    return mrr * 12


@dataclass(frozen=True)
class FxTable:
    """Constant-currency rates: units of the reporting currency per unit of each currency, fixed at ``rate_date``.

    The same table converts the start and the end of a period so FX moves never look like expansion.
    """

    reporting_currency: str
    rates: Mapping[str, Decimal]
    rate_date: date | None = None

    def convert(self, amount: Decimal, currency: str | None) -> Decimal:
        if currency is None or currency == self.reporting_currency:
            return amount
        try:
            return amount * Decimal(self.rates[currency])
        except KeyError:
            raise ConfigError(
                f"no FX rate for {currency} into {self.reporting_currency}"
                f"{_did_you_mean(currency, self.rates)}"
            ) from None


# ---------------------------------------------------------------- plain-number formulas


@dataclass(frozen=True)
class RevenueRetention:
    """Fixed-cohort revenue retention of the customers active at the period start (METRICS §1.4)."""

    start_mrr: Decimal
    end_mrr: Decimal  # the cohort's MRR at the end (new customers excluded)
    expansion: Decimal
    contraction: Decimal
    churned: Decimal
    nrr: float | None
    grr: float | None
    gross_mrr_churn: float | None
    net_mrr_churn: float | None


def revenue_retention(pairs: Iterable[tuple[Decimal, Decimal]]) -> RevenueRetention:
    """From (start MRR, end MRR) of each customer active at the start (end 0 when churned)."""
    start = end = expansion = contraction = churned = kept = ZERO
    for start_c, end_c in pairs:
        if start_c <= 0:
            raise ValueError("a cohort member must have MRR > 0 at the start")
        start += start_c
        end += end_c
        kept += min(start_c, end_c)
        if end_c <= 0:
            churned += start_c
        elif end_c > start_c:
            expansion += end_c - start_c
        else:
            contraction += start_c - end_c
    return RevenueRetention(
        start_mrr=start,
        end_mrr=end,
        expansion=expansion,
        contraction=contraction,
        churned=churned,
        nrr=ratio(end, start),
        grr=ratio(kept, start),
        gross_mrr_churn=ratio(churned + contraction, start),
        net_mrr_churn=ratio(churned + contraction - expansion, start),
    )


def net_revenue_retention(start: Decimal, expansion: Decimal, contraction: Decimal, churned: Decimal) -> float | None:
    return ratio(start + expansion - contraction - churned, start)


def gross_revenue_retention(start: Decimal, contraction: Decimal, churned: Decimal) -> float | None:
    return ratio(start - contraction - churned, start)


def gross_mrr_churn(start: Decimal, contraction: Decimal, churned: Decimal) -> float | None:
    return ratio(churned + contraction, start)


def net_mrr_churn(
    start: Decimal, expansion: Decimal, contraction: Decimal, churned: Decimal, *, reactivation: Decimal | None = None
) -> float | None:
    """Fixed cohort by default; pass ``reactivation`` for ChartMogul's variant, which also offsets it."""
    return ratio(churned + contraction - expansion - (reactivation or ZERO), start)


def revenue_churn(arr_start: Decimal, arr_end: Decimal, arr_acquired: Decimal) -> float | None:
    """Net revenue churn, corrected form ((start − end) + acquired)/start (METRICS defect 2, E3)."""
    return ratio((arr_start - arr_end) + arr_acquired, arr_start)


def arpa(total_mrr: Decimal, active_customers: int) -> Decimal | None:
    """Average revenue per account (MRR); ``None`` without customers."""
    if not active_customers:
        return None
    return total_mrr / active_customers


@dataclass(frozen=True)
class MrrMovements:
    """Snapshot movements between start and end: start + new + reactivation + expansion − contraction − churned = end."""

    start_mrr: Decimal
    end_mrr: Decimal
    new: Decimal
    reactivation: Decimal
    expansion: Decimal
    contraction: Decimal
    churned: Decimal

    @property
    def net_new(self) -> Decimal:
        return self.new + self.reactivation + self.expansion - self.contraction - self.churned


def mrr_movements(rows: Iterable[tuple[Decimal, Decimal, bool]]) -> MrrMovements:
    """From (MRR at start, MRR at end, was active before the start) per customer.

    A customer at 0 on both snapshots moves nothing (joined and left inside the period). A customer at 0 at
    the start is new, or a reactivation when it paid at some time before the start.
    """
    start = end = new = reactivation = expansion = contraction = churned = ZERO
    for start_c, end_c, was_active_before in rows:
        start += start_c
        end += end_c
        if start_c > 0 and end_c > 0:
            if end_c > start_c:
                expansion += end_c - start_c
            else:
                contraction += start_c - end_c
        elif start_c > 0:
            churned += start_c
        elif end_c > 0:
            if was_active_before:
                reactivation += end_c
            else:
                new += end_c
    return MrrMovements(start, end, new, reactivation, expansion, contraction, churned)


# ---------------------------------------------------------------- the MRR ledger of a portfolio


def _ts(value) -> float:
    return value.timestamp()


def subscription_steps(sub: Subscription, fx: FxTable | None = None) -> list[tuple[float, Decimal]]:
    """The subscription's MRR as steps (epoch seconds, MRR from then on); 0 before the first step.

    Replicates ``Subscription.mrr_at`` exactly (live statuses, past-due grace), in one merge over its
    histories instead of a bisect per instant.
    """
    status_history = sub.status_history
    mrr_history = sub.mrr_history
    live = sub.live_statuses
    grace = sub.past_due_grace_days
    convert = fx is not None and sub.currency is not None and sub.currency != fx.reporting_currency
    if not status_history and not mrr_history:
        value = (sub.mrr or ZERO) if sub.status in live else ZERO
        if convert and value:
            value = fx.convert(value, sub.currency)
        return [(NEG_INF if sub.created_at is None else _ts(sub.created_at), value)]
    times: set[float] = set()
    status_points = [(_ts(t), s) for t, s in status_history]
    mrr_points = [(_ts(t), m) for t, m in mrr_history]
    times.update(t for t, _ in status_points)
    times.update(t for t, _ in mrr_points)
    # Start of the unbroken past_due/unpaid run each status point belongs to; with a grace period, MRR
    # stops (grace + 1) whole days into the run, an instant that is a step of its own.
    run_start: list[float | None] = []
    for k, (t, status) in enumerate(status_points):
        if status in OVERDUE_STATUSES:
            start = run_start[k - 1] if k and run_start[k - 1] is not None else t
            run_start.append(start)
            if grace is not None:
                times.add(start + (grace + 1) * DAY_SECONDS)
        else:
            run_start.append(None)
    created = None
    if not status_history:
        created = NEG_INF if sub.created_at is None else _ts(sub.created_at)
        times.add(created)
    steps: list[tuple[float, Decimal]] = []
    si = mi = -1
    ns, nm = len(status_points), len(mrr_points)
    previous = None
    for t in sorted(times):
        while si + 1 < ns and status_points[si + 1][0] <= t:
            si += 1
        while mi + 1 < nm and mrr_points[mi + 1][0] <= t:
            mi += 1
        if status_history:
            status = status_points[si][1] if si >= 0 else None
        else:
            status = sub.status if t >= created else None
        if status not in live:
            value = ZERO
        elif grace is not None and si >= 0 and run_start[si] is not None and t - run_start[si] >= (grace + 1) * DAY_SECONDS:
            value = ZERO
        elif mrr_history:
            value = mrr_points[mi][1] if mi >= 0 else None
            value = ZERO if value is None else value
        else:
            value = sub.mrr or ZERO
        if convert and value:
            value = fx.convert(value, sub.currency)
        if value != previous:
            steps.append((t, value))
            previous = value
    return steps


def _merge_steps(per_sub: list[list[tuple[float, Decimal]]]) -> list[tuple[float, Decimal]]:
    times = sorted({t for steps in per_sub for t, _ in steps})
    pointers = [-1] * len(per_sub)
    out: list[tuple[float, Decimal]] = []
    previous = None
    for t in times:
        total = ZERO
        for k, steps in enumerate(per_sub):
            p = pointers[k]
            while p + 1 < len(steps) and steps[p + 1][0] <= t:
                p += 1
            pointers[k] = p
            if p >= 0:
                total += steps[p][1]
        if total != previous:
            out.append((t, total))
            previous = total
    return out


class MrrLedger:
    """Every customer's MRR as a step function, flattened into arrays for single-pass period metrics.

    Points of customer ``i`` are ``offsets[i]:offsets[i+1]``, ascending in time; MRR is 0 before the first.
    ``mrr`` (float) serves activity tests and ranking; ``mrr_exact`` (Decimal) serves money totals.
    """

    def __init__(self, customer_ids: list[str], steps: list[list[tuple[float, Decimal]]]):
        self.customer_ids = customer_ids
        self.index = {cid: i for i, cid in enumerate(customer_ids)}
        counts = np.fromiter((len(s) for s in steps), dtype=np.int64, count=len(steps))
        self.offsets = np.zeros(len(steps) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        total = int(self.offsets[-1])
        self.owner = np.repeat(np.arange(len(steps), dtype=np.int64), counts)
        self.times = np.fromiter((t for s in steps for t, _ in s), dtype=np.float64, count=total)
        self.mrr_exact: list[Decimal] = [v for s in steps for _, v in s]
        self.mrr = np.fromiter((float(v) for v in self.mrr_exact), dtype=np.float64, count=total)
        active = self.mrr > 0
        prev_active = np.zeros(total, dtype=bool)
        if total:
            prev_active[1:] = active[:-1]
            prev_active[self.offsets[:-1][counts > 0]] = False
        self.activation = active & ~prev_active  # 0 -> >0
        self.deactivation = ~active & prev_active  # >0 -> 0 (a churn)
        # An activation is a reactivation when the customer had been active at an earlier point.
        first_act_per_customer = np.full(len(steps), -1, dtype=np.int64)
        act_idx = np.flatnonzero(self.activation)
        if act_idx.size:
            owners = self.owner[act_idx]
            firsts = np.unique(owners, return_index=True)
            first_act_per_customer[firsts[0]] = act_idx[firsts[1]]
        self.first_activation_point = first_act_per_customer
        self.reactivation = self.activation.copy()
        has_first = first_act_per_customer >= 0
        self.reactivation[first_act_per_customer[has_first]] = False

    def __len__(self) -> int:
        return len(self.customer_ids)

    def point_at(self, at: float) -> np.ndarray:
        """Per customer, the point in effect just before epoch ``at`` (snapshot semantics, see Period), -1 if none."""
        n = len(self.customer_ids)
        if not len(self.times):
            return np.full(n, -1, dtype=np.int64)
        upto = (self.times < at).astype(np.int64)
        csum = np.concatenate(([0], np.cumsum(upto)))
        counts = csum[self.offsets[1:]] - csum[self.offsets[:-1]]
        return np.where(counts > 0, self.offsets[:-1] + counts - 1, -1)

    def mrr_at(self, at: float) -> np.ndarray:
        """Per customer MRR (float) in effect just before epoch ``at``."""
        points = self.point_at(at)
        return np.where(points >= 0, self.mrr[np.maximum(points, 0)] if len(self.mrr) else 0.0, 0.0)

    def exact_at(self, points: np.ndarray) -> list[Decimal]:
        exact = self.mrr_exact
        return [exact[p] if p >= 0 else ZERO for p in points.tolist()]

    def first_active_ts(self) -> np.ndarray:
        """Per customer, when MRR first went above 0 (NaN if never)."""
        out = np.full(len(self.customer_ids), np.nan)
        has = self.first_activation_point >= 0
        out[has] = self.times[self.first_activation_point[has]]
        return out

    def events_between(self, flags: np.ndarray, start: float, end: float) -> np.ndarray:
        """Per customer, how many flagged points fall in [start, end)."""
        mask = flags & (self.times >= start) & (self.times < end)
        return np.bincount(self.owner[mask], minlength=len(self.customer_ids))

    def last_event_before(self, flags: np.ndarray, before: float) -> np.ndarray:
        """Per customer, the epoch of the last flagged point before ``before`` (NaN if none)."""
        out = np.full(len(self.customer_ids), np.nan)
        idx = np.flatnonzero(flags & (self.times < before))
        if idx.size:
            out[self.owner[idx]] = self.times[idx]  # ascending, so the last write per owner wins
        return out


def build_mrr_ledger(portfolio: Portfolio, fx: FxTable | None = None) -> MrrLedger:
    """One pass over the subscriptions: each customer's summed MRR steps (customers without any have none)."""
    by_customer: dict[str, list[Subscription]] = {}
    for sub in portfolio.subscriptions:
        if sub.customer_id is not None:
            by_customer.setdefault(sub.customer_id, []).append(sub)
    customer_ids = list(portfolio.customers)
    steps: list[list[tuple[float, Decimal]]] = []
    for cid in customer_ids:
        subs = by_customer.get(cid)
        if not subs:
            steps.append([])
        elif len(subs) == 1:
            steps.append(subscription_steps(subs[0], fx))
        else:
            steps.append(_merge_steps([subscription_steps(s, fx) for s in subs]))
    # Leading zero steps carry no information (MRR is 0 before the first point anyway).
    steps = [s[1:] if s and s[0][1] == 0 and len(s) > 1 else ([] if s and s[0][1] == 0 else s) for s in steps]
    return MrrLedger(customer_ids, steps)


@dataclass(frozen=True)
class RevenueFigures:
    """Revenue figures of one period (snapshot at start and end)."""

    period_label: str
    start_mrr: Decimal
    end_mrr: Decimal
    start_arr: Decimal
    end_arr: Decimal
    movements: MrrMovements
    retention: RevenueRetention
    chartmogul_net_mrr_churn: float | None
    revenue_churn: float | None
    arpa_start: Decimal | None
    arpa_end: Decimal | None
    active_start: int
    active_end: int


def revenue_figures(ledger: MrrLedger, period: Period) -> RevenueFigures:
    """MRR/ARR, movements, NRR/GRR (fixed cohort), MRR churn both ways, revenue churn and ARPA for ``period``."""
    t0, t1 = period.start_ts, period.end_ts
    p0, p1 = ledger.point_at(t0), ledger.point_at(t1)
    start_f = np.where(p0 >= 0, ledger.mrr[np.maximum(p0, 0)], 0.0) if len(ledger.mrr) else np.zeros(len(ledger))
    end_f = np.where(p1 >= 0, ledger.mrr[np.maximum(p1, 0)], 0.0) if len(ledger.mrr) else np.zeros(len(ledger))
    first = ledger.first_active_ts()
    before = first < t0  # NaN compares False: never active
    touched = np.flatnonzero((start_f > 0) | (end_f > 0))
    exact = ledger.mrr_exact
    p0l, p1l, beforel = p0[touched].tolist(), p1[touched].tolist(), before[touched].tolist()
    rows = [
        (exact[a] if a >= 0 else ZERO, exact[b] if b >= 0 else ZERO, w) for a, b, w in zip(p0l, p1l, beforel)
    ]
    movements = mrr_movements(rows)
    cohort = revenue_retention((s, e) for s, e, _ in rows if s > 0)
    acquired = movements.new + movements.reactivation
    active_start = int(np.count_nonzero(start_f > 0))
    active_end = int(np.count_nonzero(end_f > 0))
    return RevenueFigures(
        period_label=period.label,
        start_mrr=movements.start_mrr,
        end_mrr=movements.end_mrr,
        start_arr=arr(movements.start_mrr),
        end_arr=arr(movements.end_mrr),
        movements=movements,
        retention=cohort,
        chartmogul_net_mrr_churn=net_mrr_churn(
            cohort.start_mrr, cohort.expansion, cohort.contraction, cohort.churned, reactivation=movements.reactivation
        ),
        revenue_churn=revenue_churn(arr(movements.start_mrr), arr(movements.end_mrr), arr(acquired)),
        arpa_start=arpa(movements.start_mrr, active_start),
        arpa_end=arpa(movements.end_mrr, active_end),
        active_start=active_start,
        active_end=active_end,
    )


def mrr_by_customer(ledger: MrrLedger, at: float) -> dict[str, Decimal]:
    """Exact MRR per active customer just before epoch ``at``."""
    points = ledger.point_at(at)
    exact = ledger.mrr_exact
    return {
        ledger.customer_ids[i]: exact[p]
        for i, p in enumerate(points.tolist())
        if p >= 0 and exact[p] > 0
    }


def total_mrr(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO)
