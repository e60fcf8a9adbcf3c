"""Per-customer features of the catalog (connector.mapping.features) as of a date: polars expressions over the frames."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from connector.metrics import periods
from connector.metrics.retention import customer_counts
from connector.metrics.revenue import ALWAYS_US, US, FxTable, MrrLedger, build_mrr_ledger
from connector.metrics.value import lifespan
from connector.model import OVERDUE_STATUSES, Portfolio

_DAY_US = 86_400 * US
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Features that are whole numbers: Int64 columns of the feature frame (float64 columns handed in become Int64).
INT_FEATURES = frozenset({
    "tenure_days", "days_since_churn", "days_since_reactivation", "churn_count", "active_subscriptions",
    "days_past_due", "days_to_renewal", "logins_30d", "active_days_30d", "days_since_last_login",
    "seats_purchased", "seats_used", "days_to_first_value", "open_tickets", "tickets_90d",
    "days_since_last_engagement", "nps_latest", "nps_previous", "nps_trend", "responses_90d",
    "days_since_last_survey", "birthday_month", "anniversary_month", "recency_days", "frequency",
})
# Catalog entries the health stage adds; everything else in the catalog is computed here.
HEALTH_FEATURES = frozenset({"health_score", "health_band", "health_change", "health_trend"})


@dataclass(frozen=True)
class FeatureOptions:
    """Windows and conventions of the per-customer features (defaults follow METRICS.md)."""

    tz: str = "UTC"  # calendar of birthday / anniversary months
    survey_window_days: int = 365  # CSAT and CES answers considered
    csat_scale: Literal["hubspot", "1-5"] = "hubspot"
    rfm_window_days: int = 365  # won deals counted in frequency / monetary
    gross_margin: float = 0.8  # CLV = MRR × margin × min(1/churn, cap)
    clv_cap_months: float | None = 60.0
    monthly_churn: float | None = None  # None: the portfolio's customer churn of the trailing 30 days
    forgettable_min_active_days: int = 1


class FeatureTable(Mapping[str, dict[str, Any]]):
    """``{customer_id: {feature: value}}`` as a row view over the feature frame (``frame``: ``customer_id`` then one
    column per feature, null for unknown; numbers Float64, whole-number features Int64, flags Boolean, text
    String, dates Date). Rows are built on access.

    ``FeatureTable(frame)``; or ``FeatureTable(customer_ids, columns)`` from numpy columns (float64 with NaN for
    None, int8 flags with -1 for None; tests and benches that make features by hand).
    """

    def __init__(self, frame: pl.DataFrame | list[str], columns: Mapping[str, Any] | None = None):
        if not isinstance(frame, pl.DataFrame):
            frame = _frame_of_columns(list(frame), columns or {})
        self._frame = frame
        self._ids: list[str] | None = None
        self._index: dict[str, int] | None = None

    @property
    def frame(self) -> pl.DataFrame:
        return self._frame

    @property
    def customer_ids(self) -> list[str]:
        if self._ids is None:
            self._ids = self._frame["customer_id"].to_list()
        return self._ids

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {cid: i for i, cid in enumerate(self.customer_ids)}
        return self._index

    @property
    def columns(self) -> Mapping[str, pl.Series]:
        """Feature name -> its column."""
        return {name: self._frame.get_column(name) for name in self._frame.columns}

    def __len__(self) -> int:
        return self._frame.height

    def __iter__(self) -> Iterator[str]:
        return iter(self.customer_ids)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self.index

    def __getitem__(self, customer_id: str) -> dict[str, Any]:
        return self._frame.row(self.index[customer_id], named=True)

    def items(self) -> ItemsView[str, dict[str, Any]]:
        return _RowItems(self)

    def column(self, name: str) -> list[Any]:
        """One feature for every customer, in ``customer_ids`` order, as Python values."""
        return self._frame.get_column(name).to_list()

    def iter_rows(
        self, chunk: int = 65536, names: list[str] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(customer_id, row) for every customer, a chunk of the frame at a time; ``names`` limits the rows to the
        features a reader needs."""
        frame = self._frame if names is None else self._frame.select("customer_id", *names)
        for lo in range(0, frame.height, chunk):
            part = frame.slice(lo, chunk)
            rows = part.iter_rows(named=True)
            if names is not None and "customer_id" not in names:
                rows = ({name: row[name] for name in names} for row in rows)
            yield from zip(part.get_column("customer_id").to_list(), rows)


class _RowItems(ItemsView):
    """``table.items()`` iterates the frame a chunk at a time instead of one row lookup at a time."""

    def __iter__(self):
        return self._mapping.iter_rows()


def _frame_of_columns(customer_ids: list[str], columns: Mapping[str, Any]) -> pl.DataFrame:
    series: list[pl.Series] = [pl.Series("customer_id", customer_ids, dtype=pl.String)]
    for name, column in columns.items():
        if name == "customer_id":
            continue
        if isinstance(column, np.ndarray) and column.dtype == np.int8:
            values = pl.Series(name, column).replace_strict({-1: None, 0: False, 1: True}, return_dtype=pl.Boolean)
        elif isinstance(column, np.ndarray):
            values = pl.Series(name, column, dtype=pl.Float64).fill_nan(None)
            if name in INT_FEATURES:
                values = values.cast(pl.Int64, strict=False)
        else:
            values = pl.Series(name, list(column), strict=False)
        series.append(values)
    return pl.DataFrame(series)


def _days(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Whole days from ``earlier`` to ``later`` (instants as epoch microseconds), rounded down."""
    return (later - earlier) // _DAY_US


def _per_day(days: pl.Expr) -> pl.Expr:
    """Days of the trailing 30 as a share. numpy divides: polars divides by a constant as a multiplication by its
    reciprocal, a last digit off the true quotient (23 / 30)."""
    return days.cast(pl.Float64).map_batches(
        lambda s: pl.Series(s.name, s.to_numpy() / 30.0, nan_to_null=True), pl.Float64)


def _epoch(instant: pl.Expr) -> pl.Expr:
    return instant.dt.epoch("us")


def _value_at(frames: Any, history: str, at: datetime, name: str) -> pl.DataFrame:
    """(owner, ``name``, ``name``_known): the value in effect at ``at`` (the last change at or before it, null before
    the first) of every owner with a history of ``history`` (a history lists each owner's changes in time order)."""
    return frames.histories[history].group_by("owner").agg(
        pl.col("value").filter(pl.col("at") <= at).last().alias(name), pl.lit(True).alias(f"{name}_known"))


def customer_features(
    portfolio: Portfolio,
    as_of: datetime,
    *,
    options: FeatureOptions = FeatureOptions(),
    ledger: MrrLedger | None = None,
    fx: FxTable | None = None,
) -> FeatureTable:
    """Every catalog feature (but the health_* ones) for every customer as of ``as_of``, in the ledger's customer
    order: polars expressions over the portfolio's frames; revenue features from the MRR ledger (build it once and
    pass it in when the portfolio figures need it too)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    ledger = ledger or build_mrr_ledger(portfolio, fx)
    frames = portfolio.frames
    now = _epoch_us(as_of)
    today = as_of.astimezone(ZoneInfo(options.tz)).date()
    customers = pl.DataFrame({"customer_id": ledger.ids}).with_row_index("row")
    profile = frames.customers.select(
        pl.col("id").alias("customer_id"), pl.col("name").alias("customer_name"),
        pl.col("object_type").alias("customer_object"), "industry", "acquisition_source", "country",
        pl.col("customer_since").alias("_since_crm"), pl.col("birthday").alias("_birthday"))
    frame = customers.join(profile, on="customer_id", how="left", maintain_order="left")
    frame = _revenue_features(frame, ledger, as_of, now, today, options)
    owned = customers.select("row", "customer_id")
    for part in (_subscription_features(frames, owned, as_of, today),
                 _usage_features(frames, owned, as_of, options),
                 _survey_features(frames, owned, as_of, now, options),
                 _deal_features(frames, owned, as_of, now, options)):
        frame = frame.join(part, on="row", how="left", maintain_order="left")
    # From the start of the customer_since day in the calendar's zone to the first value (after the date: unknown).
    midnight = pl.col("customer_since").cast(pl.Datetime("us")).dt.replace_time_zone(
        options.tz, ambiguous="earliest", non_existent="null")
    frame = frame.with_columns(
        pl.col("active_subscriptions").fill_null(0), pl.col("responses_90d").fill_null(0),
        pl.col("frequency").fill_null(0), pl.col("monetary").fill_null(0.0),
        _days(_epoch(pl.col("_first_value")), _epoch(midnight)).alias("days_to_first_value"),
        pl.col("_birthday").dt.month().cast(pl.Int64).alias("birthday_month"),
        pl.col("customer_since").dt.month().cast(pl.Int64).alias("anniversary_month"),
    ).with_columns(
        (pl.col("birthday_month") == today.month).alias("is_birthday_month"),
        pl.when(pl.col("anniversary_month").is_not_null()).then(
            (pl.col("anniversary_month") == today.month) & (pl.col("tenure_days") >= 365).fill_null(False)
        ).alias("is_anniversary_month"),
    )
    return FeatureTable(frame.select(FEATURE_COLUMNS))


def _revenue_features(frame: pl.DataFrame, ledger: MrrLedger, as_of: datetime, now: int, today: date,
                      options: FeatureOptions) -> pl.DataFrame:
    at = pl.col("at")
    past = ledger.points.filter(at < now).group_by("row").agg(
        pl.col("deactivation").sum().cast(pl.Int64).alias("churn_count"),
        at.filter(pl.col("deactivation")).last().alias("_last_churn"),
        at.filter(pl.col("reactivation")).last().alias("_last_reactivation"),
    )
    first = ledger.first_active().filter(pl.col("first") < now)
    churn = options.monthly_churn
    if churn is None:
        churn = customer_counts(ledger, periods.trailing(as_of, 30)).churn_rate
    life = lifespan(churn, cap=options.clv_cap_months)
    mrr, mrr_90 = pl.col("mrr"), pl.col("mrr_90d_ago")
    # The CRM's date where there is one, else the local day of the first payment ("since always": no day).
    first_day = pl.from_epoch(pl.col("_first"), "us").dt.replace_time_zone("UTC").dt.convert_time_zone(
        options.tz).dt.date()
    since = pl.coalesce("_since_crm", pl.when(pl.col("_first") > ALWAYS_US).then(first_day))
    tenure = (pl.lit(today) - pl.col("customer_since")).dt.total_days()
    return (
        frame.join(past, on="row", how="left", maintain_order="left")
        .join(first.rename({"first": "_first"}), on="row", how="left", maintain_order="left")
        .with_columns(
            pl.Series("mrr", ledger.mrr_at(now / US)),
            pl.Series("mrr_90d_ago", ledger.mrr_at((now - 90 * _DAY_US) / US)),
        ).with_columns(
            (mrr > 0).alias("is_active"), pl.col("_first").is_not_null().alias("was_ever_active"),
            since.alias("customer_since"), pl.col("churn_count").fill_null(0),
        ).with_columns(
            pl.when(tenure >= 0).then(tenure).alias("tenure_days"),
            pl.when(~pl.col("is_active")).then(_days(pl.lit(now), pl.col("_last_churn"))).alias("days_since_churn"),
            _days(pl.lit(now), pl.col("_last_reactivation")).alias("days_since_reactivation"),
            (mrr * 12).alias("arr"),
            pl.when(mrr_90 > 0).then((mrr - mrr_90) / mrr_90).alias("mrr_change_90d"),
            (pl.when(pl.col("is_active")).then(mrr * options.gross_margin * float(life)) if life is not None
             else pl.lit(None, dtype=pl.Float64)).alias("clv"),
        )
    )


def _subscription_features(frames: Any, owned: pl.DataFrame, as_of: datetime, today: date) -> pl.DataFrame:
    # Status at the date: the status history where there is one (null before its first change), else the status
    # since creation (null before it).
    status = _value_at(frames, "status_history", as_of, "_status")
    subs = (frames.subscriptions.join(owned, on="customer_id", how="inner")
            .join(status, left_on="id", right_on="owner", how="left"))
    now_status = (pl.when(pl.col("_status_known").fill_null(False)).then(pl.col("_status"))
                  .when(pl.col("created_at") > as_of).then(None).otherwise(pl.col("status")))
    subs = subs.with_columns(now_status.alias("_now"))
    live = pl.col("live_statuses").list.contains(pl.col("_now")).fill_null(False)
    overdue = (pl.col("_now").is_in(list(OVERDUE_STATUSES)).fill_null(False)
               | (pl.col("last_payment_status") == "failed").fill_null(False))
    requested = (pl.col("cancel_requested_at") <= as_of).fill_null(False)
    late = (pl.lit(today) - pl.col("next_payment_due")).dt.total_days()  # days since the due date
    # A customer with subscriptions but none live is known not to be overdue / cancelling; without any, unknown.
    return subs.group_by("row").agg(
        live.sum().cast(pl.Int64).alias("active_subscriptions"),
        (live & overdue).any().alias("payment_overdue"),
        late.filter(live & overdue & (late >= 0)).max().alias("days_past_due"),
        (live & requested).any().alias("cancel_requested"),
        (-late).filter(live & (late <= 0)).min().alias("days_to_renewal"),
    )


def _usage_features(frames: Any, owned: pl.DataFrame, as_of: datetime, options: FeatureOptions) -> pl.DataFrame:
    month_ago = as_of - timedelta(days=30)
    usage = frames.usage.join(owned, on="customer_id", how="inner", maintain_order="left").unique(
        "customer_id", keep="last", maintain_order=True)
    # Histories give the value in effect on the date; without one the last pulled value stands (30 days back only
    # a history knows the value).
    for history, at, name in (("active_days_history", as_of, "_active_now"),
                              ("active_days_history", month_ago, "_active_prev"),
                              ("logins_history", as_of, "_logins"), ("seats_used_history", as_of, "_used")):
        usage = usage.join(_value_at(frames, history, at, name), left_on="customer_id", right_on="owner", how="left")
    known = {name: pl.col(f"{name}_known").fill_null(False) for name in ("_active_now", "_active_prev", "_logins",
                                                                         "_used")}
    active_now = pl.when(known["_active_now"]).then(pl.col("_active_now")).otherwise(pl.col("active_days_30d"))
    active_prev = pl.when(known["_active_prev"]).then(pl.col("_active_prev"))
    used = pl.when(known["_used"]).then(pl.col("_used")).otherwise(pl.col("seats_used"))

    def stamp(name: str) -> pl.Expr:  # after the date: unknown as of then
        return pl.when(pl.col(name) <= as_of).then(_epoch(pl.col(name)))

    now = _epoch_us(as_of)
    done = pl.col("onboarding_milestones_done").list.len().fill_null(0)
    planned = pl.col("onboarding_milestones_total")
    usage = usage.with_columns(
        pl.when(known["_logins"]).then(pl.col("_logins")).otherwise(pl.col("logins_30d")).alias("logins_30d"),
        active_now.alias("active_days_30d"), _per_day(active_now).alias("usage_frequency"),
        _per_day(active_prev).alias("usage_frequency_prev"), _per_day(active_now - active_prev).alias("usage_trend"),
        (active_now < options.forgettable_min_active_days).alias("forgettable"),
        pl.when(pl.col("active_users_30d") > 0).then(
            pl.col("avg_daily_active_users_30d") / pl.col("active_users_30d")).alias("stickiness"),
        _days(pl.lit(now), stamp("last_login_at")).alias("days_since_last_login"),
        used.alias("seats_used"),
        pl.when(pl.col("seats_purchased") > 0).then(used / pl.col("seats_purchased")).alias("seat_utilisation"),
        pl.when(planned > 0).then(pl.min_horizontal(done / planned, 1.0)).alias("onboarding_progress"),
        _days(pl.lit(now), stamp("last_engagement_at")).alias("days_since_last_engagement"),
        pl.when(pl.col("first_value_at") <= as_of).then(pl.col("first_value_at")).alias("_first_value"),
    )
    return usage.select(
        "row", "logins_30d", "active_days_30d", "usage_frequency", "usage_frequency_prev", "usage_trend",
        "forgettable", "stickiness", "days_since_last_login", "seats_purchased", "seats_used", "seat_utilisation",
        "onboarding_progress", (pl.col("onboarding_progress") >= 1.0).alias("onboarding_complete"), "open_tickets",
        "tickets_90d", "days_since_last_engagement", "_first_value")


def _survey_features(frames: Any, owned: pl.DataFrame, as_of: datetime, now: int,
                     options: FeatureOptions) -> pl.DataFrame:
    answers = (frames.feedback.join(owned, on="customer_id", how="inner", maintain_order="left")
               .filter((pl.col("submitted_at") <= as_of) & pl.col("value").is_not_null())
               .with_columns(pl.col("survey_type").str.to_uppercase().alias("_kind"),
                             _epoch(pl.col("submitted_at")).alias("_t")))
    value, kind, t = pl.col("value"), pl.col("_kind"), pl.col("_t")
    window = t > now - options.survey_window_days * _DAY_US
    csat = window & (kind == "CSAT")
    satisfied = (value == 2) if options.csat_scale == "hubspot" else (value >= 4)
    ces = window & (kind == "CES")
    # The latest NPS answer and the one before it (equal times: the later row is the later answer).
    nps = answers.filter(kind == "NPS").sort("row", "_t", maintain_order=True).group_by("row").agg(
        value.last().alias("nps_latest"), value.shift(1).last().alias("nps_previous"))
    found = answers.group_by("row").agg(
        csat.sum().alias("_csat"), (csat & satisfied).sum().alias("_csat_ok"),
        ces.sum().alias("_ces"), value.filter(ces).cast(pl.Float64).sum().alias("_ces_sum"),
        (t > now - 90 * _DAY_US).sum().cast(pl.Int64).alias("responses_90d"),
        t.max().alias("_last"),
    ).join(nps, on="row", how="left")
    latest = pl.col("nps_latest")
    return found.select(
        "row", latest, "nps_previous", (latest - pl.col("nps_previous")).alias("nps_trend"),
        pl.when(latest >= 9).then(pl.lit("promoter")).when(latest >= 7).then(pl.lit("passive"))
        .when(latest.is_not_null()).then(pl.lit("detractor")).alias("nps_group"),
        pl.when(pl.col("_csat") > 0).then(100.0 * pl.col("_csat_ok") / pl.col("_csat")).alias("csat_pct"),
        pl.when(pl.col("_ces") > 0).then(pl.col("_ces_sum") / pl.col("_ces")).alias("ces_mean"),
        "responses_90d", _days(pl.lit(now), pl.col("_last")).alias("days_since_last_survey"),
    )


def _deal_features(frames: Any, owned: pl.DataFrame, as_of: datetime, now: int,
                   options: FeatureOptions) -> pl.DataFrame:
    won = (frames.deals.join(owned, on="customer_id", how="inner", maintain_order="left")
           .filter(pl.col("is_won").fill_null(False) & (pl.col("close_date") <= as_of)))
    t = _epoch(pl.col("close_date"))
    window = t > now - options.rfm_window_days * _DAY_US
    return won.group_by("row").agg(
        _days(pl.lit(now), t.max()).alias("recency_days"),
        window.sum().cast(pl.Int64).alias("frequency"),
        pl.col("amount").cast(pl.Float64).fill_null(0.0).filter(window).sum().alias("monetary"),
    )


def _epoch_us(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


# The feature frame's columns, in the order rows list them.
FEATURE_COLUMNS = [
    "customer_id", "customer_name", "customer_object", "industry", "acquisition_source", "country", "is_active",
    "was_ever_active", "customer_since", "tenure_days", "churn_count", "days_since_churn", "days_since_reactivation",
    "mrr", "arr", "mrr_90d_ago", "mrr_change_90d", "clv", "active_subscriptions", "payment_overdue", "days_past_due",
    "cancel_requested", "days_to_renewal", "logins_30d", "active_days_30d", "usage_frequency",
    "usage_frequency_prev", "usage_trend", "forgettable", "stickiness", "days_since_last_login", "seats_purchased",
    "seats_used", "seat_utilisation", "onboarding_progress", "onboarding_complete", "days_to_first_value",
    "open_tickets", "tickets_90d", "days_since_last_engagement", "nps_latest", "nps_previous", "nps_trend",
    "nps_group", "csat_pct", "ces_mean", "responses_90d", "days_since_last_survey", "recency_days", "frequency",
    "monetary", "birthday_month", "anniversary_month", "is_birthday_month", "is_anniversary_month",
]


def feature_names() -> list[str]:
    """The catalog names this module computes (all but the health stage's)."""
    from connector.mapping.features import FEATURES

    return [name for name in FEATURES if name not in HEALTH_FEATURES]
