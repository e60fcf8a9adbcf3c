"""MRR/ARR, billing normalisation, constant currency, MRR movements, NRR/GRR, MRR and revenue churn, ARPA."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Mapping

import numpy as np
import polars as pl

from connector.errors import ConfigError
from connector.metrics.periods import Period
from connector.model import Portfolio, Subscription
from connector.model.mrr import ALWAYS, mrr_steps, steps_of
from connector.vocabulary import MONTHLY_FRACTION

ZERO = Decimal(0)
# The model's billing frequencies (HubSpot's), plus daily charges at 365/12 (METRICS §1.3; Stripe snippets use x30):
# HubSpot has no daily billing frequency, so the model's vocabulary does not list it.
FRACTIONS: dict[str, tuple[int, int]] = {**MONTHLY_FRACTION, "daily": (365, 12)}


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
    """The billing frequency's monthly factor as an exact fraction (numerator, denominator), METRICS §1.3."""
    try:
        return FRACTIONS[billing_frequency]
    except KeyError:
        raise ConfigError(
            f"unknown billing frequency {billing_frequency!r}{_did_you_mean(billing_frequency, FRACTIONS)}"
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
    """Snapshot movements of a period: start + new + reactivation + expansion − contraction − churned = end."""

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

MICRO = 1_000_000  # the ledger carries MRR as integer micro-units: exact sums, exact to 1e-6 per value
US = 1_000_000  # microseconds per second: ledger instants are epoch microseconds
# Snapshots a ledger keeps (8 MB each at a million customers): a period's two bounds and the next earlier
# period's start, whose end is this one's start.
_SNAPSHOTS_KEPT = 3
ALWAYS_US = int(ALWAYS.timestamp()) * US


def money(micro: int) -> Decimal:
    """Micro-units back to Decimal (integral amounts without a fraction part)."""
    micro = int(micro)
    if micro % MICRO == 0:
        return Decimal(micro // MICRO)
    return Decimal(micro).scaleb(-6).normalize()


def _to_micro(value: Decimal) -> int:
    return int((value * MICRO).to_integral_value())


def _seconds(instant_us: int) -> float:
    return -math.inf if instant_us <= ALWAYS_US else instant_us / US


def subscription_steps(sub: Subscription, fx: FxTable | None = None) -> list[tuple[float, Decimal]]:
    """One subscription's MRR as steps (epoch seconds, MRR from then on; 0 before the first): the MRR rule
    (``connector.model.mrr``) read for it, converted at constant FX."""
    convert = fx is not None and sub.currency is not None and sub.currency != fx.reporting_currency
    steps: list[tuple[float, Decimal]] = []
    previous = None
    for at, value in steps_of(sub):
        if convert and value:
            value = fx.convert(value, sub.currency)  # type: ignore[union-attr]
        if value != previous:
            steps.append((-math.inf if at == ALWAYS else at.timestamp(), value))
            previous = value
    return steps


class MrrLedger:
    """Every customer's MRR as steps, summed over its subscriptions: the frame ``points`` (``row``: the customer's
    position in ``ids``; ``at``: epoch microseconds; ``micro``: MRR in integer micro-units from then on;
    ``activation`` 0 -> >0, ``deactivation`` >0 -> 0 (a churn), ``reactivation`` any activation after the first),
    sorted by row then time. MRR is 0 before a customer's first point. Snapshots are numpy arrays in ``ids`` order.
    """

    def __init__(self, ids: pl.Series, points: pl.DataFrame):
        self.ids = ids
        self.points = points
        # Derived per-portfolio data that several periods reuse (a period's states, sources), by name.
        self.cache: dict[Any, Any] = {}
        self._snapshots: dict[float, np.ndarray] = {}
        self._first_active: np.ndarray | None = None
        self._customer_ids: list[str] | None = None
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return self.ids.len()

    @property
    def customer_ids(self) -> list[str]:
        if self._customer_ids is None:
            self._customer_ids = self.ids.to_list()
        return self._customer_ids

    @property
    def index(self) -> dict[str, int]:
        """Customer id -> position (made on first use: the metrics themselves join on ``ids``)."""
        if self._index is None:
            self._index = {cid: i for i, cid in enumerate(self.customer_ids)}
        return self._index

    def micro_at(self, at: float) -> np.ndarray:
        """Per customer MRR in micro-units in effect just before epoch ``at`` (read-only: shared by callers)."""
        at = float(at)
        cached = self._snapshots.get(at)
        if cached is not None:
            return cached
        last = (self.points.lazy().filter(pl.col("at") < at * US).select("row", "micro")
                .unique(subset="row", keep="last").collect())
        micro = np.zeros(len(self), dtype=np.int64)
        micro[last["row"].to_numpy()] = last["micro"].to_numpy()
        micro.flags.writeable = False
        if len(self._snapshots) >= _SNAPSHOTS_KEPT:
            del self._snapshots[next(iter(self._snapshots))]  # the oldest asked for
        self._snapshots[at] = micro
        return micro

    def mrr_at(self, at: float) -> np.ndarray:
        """Per customer MRR (float) in effect just before epoch ``at``."""
        return self.micro_at(at) / MICRO

    def first_active_ts(self) -> np.ndarray:
        """Per customer, when MRR first went above 0 in epoch seconds (NaN if never, -inf since always);
        read-only, computed once."""
        if self._first_active is None:
            first = self.first_active()
            out = np.full(len(self), np.nan)
            rows, instants = first["row"].to_numpy(), first["first"].to_numpy()
            out[rows] = np.where(instants <= ALWAYS_US, -np.inf, instants / US)
            out.flags.writeable = False
            self._first_active = out
        return self._first_active

    def first_active(self) -> pl.DataFrame:
        """(row, first): when each customer that ever paid first did (epoch microseconds)."""
        return self.points.filter(pl.col("activation")).group_by("row").agg(pl.col("at").first().alias("first"))


def _with_micro(steps: pl.DataFrame, fx: FxTable | None) -> pl.DataFrame:
    """The steps with their MRR in micro-units; foreign amounts converted at the constant rate, each distinct one
    once (Decimal arithmetic, as FxTable.convert)."""
    exact = (pl.col("mrr") * MICRO).cast(pl.Int64)
    if fx is not None:
        foreign = steps.filter(pl.col("currency").is_not_null() & (pl.col("currency") != fx.reporting_currency)
                               & (pl.col("mrr") != 0)).select("currency", "mrr").unique()
        if foreign.height:
            converted = foreign.with_columns(pl.Series(
                "converted", [_to_micro(fx.convert(mrr, currency)) for currency, mrr in foreign.iter_rows()],
                dtype=pl.Int64))
            steps = steps.join(converted, on=["currency", "mrr"], how="left", maintain_order="left")
            return steps.with_columns(pl.coalesce("converted", exact).alias("micro")).drop("converted")
    return steps.with_columns(exact.alias("micro"))


def build_mrr_ledger(portfolio: Portfolio, fx: FxTable | None = None) -> MrrLedger:
    """Each customer's MRR steps from the frames: the subscriptions' steps (the MRR rule, ``connector.model.mrr``)
    as changes, summed per customer and instant, then a running sum per customer, in exact micro-units."""
    frames = portfolio.frames
    customers = frames.customers.select("id").with_row_index("row")
    subs = frames.subscriptions.join(customers.rename({"id": "customer_id"}), on="customer_id", how="inner")
    steps = mrr_steps(subs, frames.histories["status_history"], frames.histories["mrr_history"])
    steps = steps.with_columns(subs["row"].gather(steps["sub"]), subs["currency"].gather(steps["sub"]))
    steps = _with_micro(steps, fx)
    first_of_sub = pl.col("sub") != pl.col("sub").shift(1)
    change = pl.col("micro") - pl.when(first_of_sub.fill_null(True)).then(0).otherwise(pl.col("micro").shift(1))
    points = (
        steps.select("row", pl.col("at").dt.epoch("us").alias("at"), change.alias("delta"))
        .filter(pl.col("delta") != 0)
        .group_by("row", "at").agg(pl.col("delta").sum())
        .filter(pl.col("delta") != 0)
        .sort("row", "at")
    )
    same = (pl.col("row") == pl.col("row").shift(1)).fill_null(False)
    points = points.select("row", "at", _running(pl.col("delta"), ~same).alias("micro"))
    active = pl.col("micro") > 0
    was_active = same & active.shift(1).fill_null(False)
    points = points.with_columns((active & ~was_active).alias("activation"),
                                 (~active & was_active).alias("deactivation"))
    points = points.with_columns(
        (pl.col("activation") & (_running(pl.col("activation").cast(pl.Int64), ~same) > 1)).alias("reactivation"))
    return MrrLedger(customers["id"], points)


def _running(values: pl.Expr, opens: pl.Expr) -> pl.Expr:
    """The running sum of ``values`` within each run of rows that ``opens`` starts (rows sorted by their group): one
    sum over all rows less what the earlier groups summed to (a window per customer costs ten times more)."""
    total = values.cum_sum()
    return total - pl.when(opens).then(total - values).forward_fill()


def period_states(ledger: MrrLedger, period: Period) -> pl.DataFrame:
    """Per customer that ever had an MRR step: MRR at the period's start and end (snapshots, micro-units), whether
    it first paid before or inside the period, and its churn and reactivation events inside it. Customers without
    a step are 0 throughout and count nowhere. The last period's states are kept (its figures read them thrice)."""
    t0, t1 = period.start_ts * US, period.end_ts * US
    cached = ledger.cache.get("states")
    if cached is not None and cached[0] == (t0, t1):
        return cached[1]
    at = pl.col("at")
    inside = (at >= t0) & (at < t1)
    states = ledger.points.group_by("row").agg(
        pl.col("micro").filter(at < t0).last().fill_null(0).alias("start"),
        pl.col("micro").filter(at < t1).last().fill_null(0).alias("end"),
        at.filter(pl.col("activation")).first().alias("first"),
        (pl.col("deactivation") & inside).sum().alias("churns"),
        (pl.col("reactivation") & inside).sum().alias("reactivations"),
    ).with_columns(
        (pl.col("first") < t0).fill_null(False).alias("paid_before"),
        ((pl.col("first") >= t0) & (pl.col("first") < t1)).fill_null(False).alias("first_inside"),
    )
    ledger.cache["states"] = ((t0, t1), states)
    return states


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
    start_m, end_m = pl.col("start"), pl.col("end")
    was, now = start_m > 0, end_m > 0
    gain = end_m - start_m
    paid_before = pl.col("paid_before")
    sums = period_states(ledger, period).select(
        start_m.sum().alias("start"), end_m.sum().alias("end"),
        end_m.filter(now & ~was & ~paid_before).sum().alias("new"),
        end_m.filter(now & ~was & paid_before).sum().alias("reactivation"),
        gain.filter(was & now & (gain > 0)).sum().alias("expansion"),
        (-gain).filter(was & now & (gain < 0)).sum().alias("contraction"),
        start_m.filter(was & ~now).sum().alias("churned"),
        pl.min_horizontal(start_m, end_m).filter(was).sum().alias("kept"),
        end_m.filter(was).sum().alias("cohort_end"),
        was.sum().alias("active_start"), now.sum().alias("active_end"),
    ).row(0, named=True)
    total = {name: money(value) for name, value in sums.items()}
    movements = MrrMovements(
        start_mrr=total["start"], end_mrr=total["end"], new=total["new"], reactivation=total["reactivation"],
        expansion=total["expansion"], contraction=total["contraction"], churned=total["churned"],
    )
    start, kept, cohort_end = movements.start_mrr, total["kept"], total["cohort_end"]
    cohort = RevenueRetention(
        start_mrr=start,
        end_mrr=cohort_end,
        expansion=movements.expansion,
        contraction=movements.contraction,
        churned=movements.churned,
        nrr=ratio(cohort_end, start),
        grr=ratio(kept, start),
        gross_mrr_churn=ratio(movements.churned + movements.contraction, start),
        net_mrr_churn=ratio(movements.churned + movements.contraction - movements.expansion, start),
    )
    acquired = movements.new + movements.reactivation
    active_start, active_end = int(sums["active_start"]), int(sums["active_end"])
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
    micro = pl.Series(ledger.micro_at(at))
    paying = pl.DataFrame({"id": ledger.ids, "micro": micro}).filter(pl.col("micro") > 0)
    return {cid: money(value) for cid, value in paying.iter_rows()}
