"""Customer retention: S/E/N/L, retention and churn rates (ChartMogul standard, Stripe-style), cohorts, sources."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Sequence
from zoneinfo import ZoneInfo

import numpy as np

from connector.metrics import periods
from connector.metrics.periods import Period
from connector.metrics.revenue import MrrLedger, ratio
from connector.model import Portfolio

ChurnMethod = Literal["chartmogul", "stripe"]
UNKNOWN_SOURCE = "unknown"


def customer_retention_rate(start: int, end: int, new: int) -> float | None:
    """CRR = (E − N)/S; ``None`` when S = 0 (METRICS §1.2, E1)."""
    return ratio(end - new, start)


def customer_churn_rate(start: int, lost: int) -> float | None:
    """Churn = L/S = 1 − CRR (ChartMogul standard). Never (S − E)/S, which is wrong whenever N > 0."""
    return ratio(lost, start)


def stripe_churn_rate(churn_events: int, start: int, new_subscribers: int) -> float | None:
    """Stripe-style: every churn event in the period over (active at start + new subscribers)."""
    return ratio(churn_events, start + new_subscribers)


def compound_retention(rate_per_period: float, periods_count: int) -> float:
    """Retention over several periods: (rate)^n, never a sum (METRICS §1.2)."""
    return rate_per_period**periods_count


def churn_over(churn_per_period: float, periods_count: int) -> float:
    """Churn over several periods from a per-period churn: 1 − (1 − m)^n (2 % a month → 21.53 % a year)."""
    return 1.0 - (1.0 - churn_per_period) ** periods_count


@dataclass(frozen=True)
class CustomerCounts:
    """Customer movement of one period; identity E = S − L + N."""

    period_label: str
    start: int  # S: paying at the start
    end: int  # E: paying at the end
    new_or_returned: int  # N: paying at the end, not at the start
    lost: int  # L: paying at the start, not at the end
    new: int  # in N and never paid before the period
    reactivated: int  # in N and paid at some time before the start
    churned_and_returned: int  # in S and E, churned and came back inside the period (retained)
    joined_and_left: int  # first paid inside the period and left inside it (in neither S nor E)
    churn_events: int  # every MRR > 0 -> 0 transition inside the period
    reactivation_events: int  # every 0 -> > 0 transition of a customer who had paid before
    retention_rate: float | None
    churn_rate: float | None  # ChartMogul standard L/S
    churn_rate_stripe: float | None

    def churn(self, method: ChurnMethod = "chartmogul") -> float | None:
        if method == "chartmogul":
            return self.churn_rate
        if method == "stripe":
            return self.churn_rate_stripe
        raise ValueError(f"unknown churn method {method!r} (valid: chartmogul, stripe)")


def _masks(ledger: MrrLedger, period: Period) -> dict[str, np.ndarray]:
    t0, t1 = period.start_ts, period.end_ts
    # The portfolio figures ask for the same period's masks twice (counts, then by source): keep the last ones.
    cached = ledger.cache.get("masks")
    if cached is not None and cached[0] == (t0, t1):
        return cached[1]
    start_active = ledger.micro_at(t0) > 0
    end_active = ledger.micro_at(t1) > 0
    first = ledger.first_active_ts()
    with np.errstate(invalid="ignore"):
        paid_before = first < t0
        first_inside = (first >= t0) & (first < t1)
    masks = {
        "S": start_active,
        "E": end_active,
        "paid_before": paid_before,
        "first_inside": first_inside,
        "churns": ledger.events_between(ledger.deactivation, t0, t1),
        "reactivations": ledger.events_between(ledger.reactivation, t0, t1),
    }
    for mask in masks.values():
        mask.flags.writeable = False
    ledger.cache["masks"] = ((t0, t1), masks)
    return masks


def _counts(label: str, m: dict[str, np.ndarray], select: np.ndarray | None = None) -> CustomerCounts:
    def pick(a: np.ndarray) -> np.ndarray:
        return a if select is None else a[select]

    s, e = pick(m["S"]), pick(m["E"])
    paid_before, first_inside = pick(m["paid_before"]), pick(m["first_inside"])
    churns, reactivations = pick(m["churns"]), pick(m["reactivations"])
    n_mask = e & ~s
    start, end = int(s.sum()), int(e.sum())
    new_or_returned = int(n_mask.sum())
    lost = int((s & ~e).sum())
    new_first = int(first_inside.sum())  # first-time payers of the period, whether they stayed or not
    churn_events = int(churns.sum())
    return CustomerCounts(
        period_label=label,
        start=start,
        end=end,
        new_or_returned=new_or_returned,
        lost=lost,
        new=int((n_mask & ~paid_before).sum()),
        reactivated=int((n_mask & paid_before).sum()),
        churned_and_returned=int((s & e & (churns > 0)).sum()),
        joined_and_left=int((first_inside & ~e).sum()),
        churn_events=churn_events,
        reactivation_events=int(reactivations.sum()),
        retention_rate=customer_retention_rate(start, end, new_or_returned),
        churn_rate=customer_churn_rate(start, lost),
        churn_rate_stripe=stripe_churn_rate(churn_events, start, new_first),
    )


def customer_counts(ledger: MrrLedger, period: Period) -> CustomerCounts:
    """S/E/N/L and the retention and churn rates of ``period`` (snapshots at its start and end)."""
    return _counts(period.label, _masks(ledger, period))


def _source_codes(ledger: MrrLedger, portfolio: Portfolio) -> tuple[list[str], np.ndarray]:
    """Each customer's source as a small integer, computed once per ledger (several periods reuse it)."""
    customers = portfolio.tables.customers
    cached = ledger.cache.get("sources")
    if cached is not None and cached[0] is customers:
        return cached[1], cached[2]
    ids, sources = customers.columns["id"], customers.columns["acquisition_source"]
    if ledger.customer_ids is not ids and ledger.customer_ids != ids:  # a ledger of another portfolio's order
        sources = list(map(sources.__getitem__, map(portfolio.customer_index().__getitem__, ledger.customer_ids)))
    # A handful of distinct sources: name them (a missing or empty one is "unknown"), then code every customer's
    # in C; codes follow the sorted names (stable output order).
    name_of = {source: source or UNKNOWN_SOURCE for source in set(sources)}
    names = sorted(set(name_of.values()))
    position = {name: i for i, name in enumerate(names)}
    code_of = {source: position[name] for source, name in name_of.items()}
    codes = np.fromiter(map(code_of.__getitem__, sources), dtype=np.int64, count=len(sources))
    ledger.cache["sources"] = (customers, names, codes)
    return names, codes


def retention_by_source(ledger: MrrLedger, portfolio: Portfolio, period: Period) -> dict[str, CustomerCounts]:
    """Customer counts and rates per acquisition source (missing source: ``unknown``)."""
    masks = _masks(ledger, period)
    names, codes = _source_codes(ledger, portfolio)
    involved = masks["S"] | masks["E"] | masks["first_inside"]
    out: dict[str, CustomerCounts] = {}
    for k, name in enumerate(names):
        select = (codes == k) & involved
        if select.any():
            out[name] = _counts(period.label, masks, select)
    return out


@dataclass(frozen=True)
class CohortRow:
    """Customers who first paid in ``cohort`` (a calendar month) and how many still pay at each month end."""

    cohort: str
    size: int
    active: tuple[int, ...]  # active[k]: paying at the end of month cohort + k
    rates: tuple[float | None, ...]  # active[k] / size


def cohort_retention(
    ledger: MrrLedger,
    as_of: datetime,
    *,
    first_month: date | None = None,
    tz: str | ZoneInfo = "UTC",
) -> list[CohortRow]:
    """Cohort retention table by start month: offsets whose month has ended by ``as_of`` only."""
    first = ledger.first_active_ts()
    known = ~np.isnan(first)
    if not known.any():
        return []
    start_at = datetime.fromtimestamp(float(np.nanmin(first)), tz=ZoneInfo("UTC"))
    earliest = (start_at - timedelta(days=1)).astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz).date()
    if first_month is not None and first_month > earliest:
        earliest = first_month
    months: list[Period] = [p for p in periods.iter_months(earliest, as_of.date(), tz) if p.end <= as_of]
    if not months:
        return []
    starts = np.array([p.start_ts for p in months] + [months[-1].end_ts])
    cohort_of = np.full(len(ledger), -1, dtype=np.int64)
    # Movements of a period are the changes in [start, end): a first payment at 00:00 on the 1st opens that month.
    cohort_of[known] = np.searchsorted(starts, first[known], side="right") - 1
    cohort_of[(cohort_of < 0) | (cohort_of >= len(months))] = -1
    sizes = np.bincount(cohort_of[cohort_of >= 0], minlength=len(months))
    active_by_month = _active_by_month(ledger, cohort_of, np.array([p.end_ts for p in months]))
    rows: list[CohortRow] = []
    for c, p in enumerate(months):
        size = int(sizes[c])
        if not rows and not size:
            continue  # no leading empty cohorts
        active = tuple(int(active_by_month[c + k, c]) for k in range(len(months) - c))
        rows.append(CohortRow(p.label, size, active, tuple(ratio(a, size) for a in active)))
    return rows


_POINTS_PER_PASS = 1 << 18  # ledger points per chunk of the cohort pass: bounded working memory at any scale


def _active_by_month(ledger: MrrLedger, cohort_of: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``[j, c]``: customers of cohort ``c`` paying just before ``ends[j]`` (ascending), in one pass over the ledger.

    A ledger point is the customer's MRR for the snapshots after it up to and including its successor's instant
    (a snapshot is the left limit), i.e. for the ends in (time, next time]: a range of months per paying point,
    counted in a difference array over (cohort, month).
    """
    months = ends.size
    width = months + 1
    diff = np.zeros(months * width, dtype=np.int64)
    times, owner, micro = ledger.times, ledger.owner, ledger.micro
    total = times.size
    for lo in range(0, total, _POINTS_PER_PASS):
        hi = min(lo + _POINTS_PER_PASS, total)
        cohort = cohort_of[owner[lo:hi]]
        paying = np.flatnonzero((micro[lo:hi] > 0) & (cohort >= 0))
        if not paying.size:
            continue
        cohort = cohort[paying] * width
        at = lo + paying
        after = np.minimum(at + 1, total - 1)
        # The successor's instant where the next point is the same customer's; a customer's last point: never.
        upto = np.where((at + 1 < total) & (owner[after] == owner[at]), times[after], np.inf)
        diff += np.bincount(cohort + np.searchsorted(ends, times[at], side="right"), minlength=months * width)
        diff -= np.bincount(cohort + np.searchsorted(ends, upto, side="right"), minlength=months * width)
    return np.cumsum(diff.reshape(months, width)[:, :months], axis=1).T


def retention_table(rows: Sequence[CohortRow]) -> list[list[float | None]]:
    """The cohort rates as a triangle (one list per cohort), for display."""
    return [list(r.rates) for r in rows]
