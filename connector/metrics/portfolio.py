"""The portfolio's figures for one period as of a date: what ``connector metrics`` shows and snapshots store."""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from connector.metrics.features import FeatureOptions, FeatureTable, customer_features
from connector.metrics.periods import Period
from connector.metrics.retention import (
    CohortRow,
    CustomerCounts,
    cohort_retention,
    customer_counts,
    retention_by_source,
)
from connector.metrics.revenue import FxTable, MrrLedger, RevenueFigures, build_mrr_ledger, revenue_figures
from connector.metrics.satisfaction import PerContact, SurveySummary, survey_summary
from connector.metrics.value import saas_clv
from connector.model import Portfolio


@dataclass(frozen=True)
class MetricsOptions:
    """Conventions of the portfolio figures; defaults are METRICS.md's recommendations."""

    churn_method: str = "chartmogul"  # or "stripe"
    net_mrr_churn: str = "fixed_cohort"  # or "chartmogul" (reactivation MRR offsets churn)
    per_contact: PerContact = "latest"
    gross_margin: float = 0.8
    clv_cap_months: float | None = 60.0
    cohorts: bool = True
    features: FeatureOptions = FeatureOptions()


@dataclass(frozen=True)
class EngagementSummary:
    customers_with_usage: int
    mean_usage_frequency: float | None
    mean_stickiness: float | None
    forgettable_share: float | None  # of customers with a known usage frequency
    mean_seat_utilisation: float | None
    onboarding_complete_share: float | None


@dataclass(frozen=True)
class PortfolioMetrics:
    period: Period
    as_of: datetime
    customers: CustomerCounts
    churn: float | None  # by the chosen churn method
    revenue: RevenueFigures
    net_mrr_churn: float | None  # by the chosen variant
    arpa: Decimal | None
    clv: Decimal | None  # ARPA × margin / monthly churn (capped); meaningful for monthly periods
    surveys: SurveySummary
    engagement: EngagementSummary
    by_source: dict[str, CustomerCounts]
    cohorts: list[CohortRow]
    data_issues: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: Decimal → str, dates → ISO strings."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _mean(values: pl.Series) -> float | None:
    # numpy's mean (pairwise sums): the figures stay what they were to the last digit
    known = values.drop_nulls().cast(pl.Float64).to_numpy()
    return float(known.mean()) if known.size else None


def engagement_summary(features: FeatureTable) -> EngagementSummary:
    active = features.frame.filter(pl.col("is_active"))
    return EngagementSummary(
        customers_with_usage=int(active["usage_frequency"].count()),
        mean_usage_frequency=_mean(active["usage_frequency"]),
        mean_stickiness=_mean(active["stickiness"]),
        forgettable_share=_mean(active["forgettable"]),
        mean_seat_utilisation=_mean(active["seat_utilisation"]),
        onboarding_complete_share=_mean(active["onboarding_complete"]),
    )


def _engagement_of(ledger: MrrLedger, features: FeatureTable) -> EngagementSummary:
    """engagement_summary of ``features``, kept for the next period's figures (the features are as of one date, so
    every period of a report shows the same summary); a weak reference, so the cache never keeps a table alive."""
    cached = ledger.cache.get("engagement")
    if cached is None or cached[0]() is not features:
        cached = ledger.cache["engagement"] = (weakref.ref(features), engagement_summary(features))
    return cached[1]


def _feedback_in(portfolio: Portfolio, period: Period) -> pl.DataFrame:
    """The answers submitted in ``period``, in submission order (the order ties break in and groups are listed)."""
    submitted = pl.col("submitted_at")
    return (portfolio.frames.feedback.filter((submitted >= period.start) & (submitted < period.end))
            .sort("submitted_at", maintain_order=True))


def portfolio_metrics(
    portfolio: Portfolio,
    period: Period,
    as_of: datetime,
    *,
    options: MetricsOptions = MetricsOptions(),
    ledger: MrrLedger | None = None,
    features: FeatureTable | None = None,
    fx: FxTable | None = None,
) -> PortfolioMetrics:
    """Customer, revenue, survey and engagement figures of ``period`` (clipped to ``as_of`` if still running)."""
    window = period.clip(as_of)
    ledger = ledger or build_mrr_ledger(portfolio, fx)
    features = features if features is not None else customer_features(
        portfolio, as_of, options=options.features, ledger=ledger
    )
    counts = customer_counts(ledger, window)
    revenue = revenue_figures(ledger, window)
    retention = revenue.retention
    if options.net_mrr_churn == "fixed_cohort":
        net_churn = retention.net_mrr_churn
    elif options.net_mrr_churn == "chartmogul":
        net_churn = revenue.chartmogul_net_mrr_churn
    else:
        raise ValueError(f"unknown net MRR churn variant {options.net_mrr_churn!r} (valid: fixed_cohort, chartmogul)")
    churn = counts.churn(options.churn_method)  # type: ignore[arg-type]
    return PortfolioMetrics(
        period=window,
        as_of=as_of,
        customers=counts,
        churn=churn,
        revenue=revenue,
        net_mrr_churn=net_churn,
        arpa=revenue.arpa_end,
        clv=saas_clv(revenue.arpa_start, options.gross_margin, churn, cap=options.clv_cap_months)
        if revenue.arpa_start is not None else None,
        surveys=survey_summary(_feedback_in(portfolio, window), window, per_contact=options.per_contact,
                               csat_scale=options.features.csat_scale),
        engagement=_engagement_of(ledger, features),
        by_source=retention_by_source(ledger, portfolio, window),
        cohorts=cohort_retention(ledger, as_of, tz=options.features.tz) if options.cohorts else [],
        data_issues=len(portfolio.issues),
    )
