"""Customer retention: S/E/N/L, retention and churn rates (ChartMogul standard, Stripe-style), cohorts, sources."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from connector.metrics import periods
from connector.metrics.periods import Period
from connector.metrics.revenue import ALWAYS_US, US, MrrLedger, period_states, ratio
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


def _counts(label: str, states: pl.DataFrame) -> CustomerCounts:
    s, e = pl.col("start") > 0, pl.col("end") > 0
    first_inside = pl.col("first_inside")
    n = e & ~s
    c = states.select(
        s.sum().alias("start"), e.sum().alias("end"), n.sum().alias("new_or_returned"), (s & ~e).sum().alias("lost"),
        (n & ~pl.col("paid_before")).sum().alias("new"), (n & pl.col("paid_before")).sum().alias("reactivated"),
        (s & e & (pl.col("churns") > 0)).sum().alias("churned_and_returned"),
        (first_inside & ~e).sum().alias("joined_and_left"),
        pl.col("churns").sum().alias("churn_events"), pl.col("reactivations").sum().alias("reactivation_events"),
        first_inside.sum().alias("new_first"),  # first-time payers of the period, whether they stayed or not
    ).row(0, named=True)
    c = {name: int(value or 0) for name, value in c.items()}
    new_first = c.pop("new_first")
    return CustomerCounts(
        period_label=label,
        **c,
        retention_rate=customer_retention_rate(c["start"], c["end"], c["new_or_returned"]),
        churn_rate=customer_churn_rate(c["start"], c["lost"]),
        churn_rate_stripe=stripe_churn_rate(c["churn_events"], c["start"], new_first),
    )


def customer_counts(ledger: MrrLedger, period: Period) -> CustomerCounts:
    """S/E/N/L and the retention and churn rates of ``period`` (snapshots at its start and end)."""
    return _counts(period.label, period_states(ledger, period))


def retention_by_source(ledger: MrrLedger, portfolio: Portfolio, period: Period) -> dict[str, CustomerCounts]:
    """Customer counts and rates per acquisition source (missing or empty source: ``unknown``)."""
    states = period_states(ledger, period).filter(
        (pl.col("start") > 0) | (pl.col("end") > 0) | pl.col("first_inside"))
    # Sources by customer id, so a ledger of another portfolio's customer order reads each customer's own.
    source = pl.when(pl.col("acquisition_source") == "").then(None).otherwise(pl.col("acquisition_source"))
    sources = pl.DataFrame({"id": ledger.ids}).with_row_index("row").join(
        portfolio.frames.customers.select("id", source.fill_null(UNKNOWN_SOURCE).alias("source")), on="id",
        how="left")
    states = states.join(sources.select("row", pl.col("source").fill_null(UNKNOWN_SOURCE)), on="row", how="left")
    return {name: _counts(period.label, group)
            for (name,), group in sorted(states.partition_by("source", as_dict=True).items())}


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
    first = ledger.first_active().filter(pl.col("first") > ALWAYS_US)  # "since always" has no start month
    if not first.height:
        return []
    start_at = datetime.fromtimestamp(first["first"].min() / US, tz=ZoneInfo("UTC"))
    earliest = (start_at - timedelta(days=1)).astimezone(ZoneInfo(tz) if isinstance(tz, str) else tz).date()
    if first_month is not None and first_month > earliest:
        earliest = first_month
    months: list[Period] = [p for p in periods.iter_months(earliest, as_of.date(), tz) if p.end <= as_of]
    if not months:
        return []
    count = len(months)
    starts = pl.Series([int(p.start_ts) * US for p in months] + [int(months[-1].end_ts) * US])
    ends = pl.Series([int(p.end_ts) * US for p in months])
    # Movements of a period are the changes in [start, end): a first payment at 00:00 on the 1st opens that month.
    cohorts = first.select("row", (starts.search_sorted(first["first"], side="right") - 1).alias("cohort")).filter(
        (pl.col("cohort") >= 0) & (pl.col("cohort") < count))
    sizes = cohorts.group_by("cohort").len()
    size_of = dict(zip(sizes["cohort"].to_list(), sizes["len"].to_list()))
    active_by_month = _active_by_month(ledger, cohorts, ends)
    rows: list[CohortRow] = []
    for c, p in enumerate(months):
        size = int(size_of.get(c, 0))
        if not rows and not size:
            continue  # no leading empty cohorts
        active = tuple(int(active_by_month[c, c + k]) for k in range(count - c))
        rows.append(CohortRow(p.label, size, active, tuple(ratio(a, size) for a in active)))
    return rows


def _active_by_month(ledger: MrrLedger, cohorts: pl.DataFrame, ends: pl.Series) -> np.ndarray:
    """``[c, j]``: customers of cohort ``c`` paying just before ``ends[j]`` (ascending).

    A ledger point is the customer's MRR for the snapshots after it up to and including its successor's instant
    (a snapshot is the left limit), i.e. for the month ends in (time, next time]: each paying point adds one to a
    range of months of its cohort, counted as +1 where the range opens and -1 where it closes, then summed.
    """
    count = ends.len()
    after = pl.when(pl.col("row") == pl.col("row").shift(-1)).then(pl.col("at").shift(-1))
    paying = (ledger.points.select("row", "at", after.alias("next"), "micro")
              .filter(pl.col("micro") > 0).join(cohorts, on="row"))
    opens = ends.search_sorted(paying["at"], side="right")
    closes = pl.Series(np.where(paying["next"].is_null().to_numpy(), count,
                                ends.search_sorted(paying["next"].fill_null(0), side="right").to_numpy()))
    edges = pl.concat([
        pl.DataFrame({"cohort": paying["cohort"], "month": opens, "step": 1}),
        pl.DataFrame({"cohort": paying["cohort"], "month": closes, "step": -1}),
    ], how="vertical_relaxed").group_by("cohort", "month").agg(pl.col("step").sum())
    diff = np.zeros((count, count + 1), dtype=np.int64)
    diff[edges["cohort"].to_numpy(), edges["month"].to_numpy()] = edges["step"].to_numpy()
    return np.cumsum(diff[:, :count], axis=1)


def retention_table(rows: Sequence[CohortRow]) -> list[list[float | None]]:
    """The cohort rates as a triangle (one list per cohort), for display."""
    return [list(r.rates) for r in rows]
