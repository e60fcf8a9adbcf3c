"""Per-customer features of the catalog (connector.mapping.features) as of a date, computed column by column."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from connector.metrics import periods
from connector.metrics.retention import customer_counts
from connector.metrics.revenue import MrrLedger, build_mrr_ledger, FxTable
from connector.metrics.value import lifespan
from connector.model import OVERDUE_STATUSES, Portfolio, value_at

DAY = 86400.0
NAN = math.nan

# Columns that hold whole numbers (stored as float64 with NaN for None, handed out as int).
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
    """``{customer_id: {feature: value}}`` kept as columns: a million customers as ~60 arrays, not 60M objects.

    Numbers are float64 columns with NaN for ``None`` (whole-number features come back as ``int``), booleans
    int8 columns with -1 for ``None``; text and dates are lists. Rows are built on access.
    """

    def __init__(self, customer_ids: list[str], columns: dict[str, Any]):
        self.customer_ids = customer_ids
        self.index = {cid: i for i, cid in enumerate(customer_ids)}
        self.columns = columns

    def __len__(self) -> int:
        return len(self.customer_ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.customer_ids)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self.index

    def __getitem__(self, customer_id: str) -> dict[str, Any]:
        i = self.index[customer_id]
        return {name: _python(name, column[i]) for name, column in self.columns.items()}

    def column(self, name: str) -> list[Any]:
        """One feature for every customer, in ``customer_ids`` order, as Python values."""
        return _to_python_list(name, self.columns[name])

    def iter_rows(self, chunk: int = 65536) -> Iterator[tuple[str, dict[str, Any]]]:
        """(customer_id, row) for every customer; converts a chunk of each column at a time (fast path)."""
        names = list(self.columns)
        for lo in range(0, len(self.customer_ids), chunk):
            hi = min(lo + chunk, len(self.customer_ids))
            parts = [_to_python_list(name, self.columns[name][lo:hi]) for name in names]
            for offset, values in enumerate(zip(*parts)):
                yield self.customer_ids[lo + offset], dict(zip(names, values))


def _python(name: str, value: Any) -> Any:
    if isinstance(value, np.floating):
        if math.isnan(value):
            return None
        return int(value) if name in INT_FEATURES else float(value)
    if isinstance(value, np.integer):  # int8 booleans
        return None if value < 0 else bool(value)
    return value


def _to_python_list(name: str, column: Any) -> list[Any]:
    if isinstance(column, np.ndarray):
        values = column.tolist()
        if column.dtype == np.int8:
            return [None if v < 0 else bool(v) for v in values]
        if name in INT_FEATURES:
            return [None if v != v else int(v) for v in values]
        return [None if v != v else v for v in values]
    return list(column)


def _floats(values: list[Any]) -> np.ndarray:
    return np.fromiter((NAN if v is None else v for v in values), dtype=np.float64, count=len(values))


def _bools(values: list[bool | None]) -> np.ndarray:
    return np.fromiter((-1 if v is None else int(v) for v in values), dtype=np.int8, count=len(values))


def _bool_array(mask: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    out = mask.astype(np.int8)
    if known is not None:
        out[~known] = -1
    return out


def _ts(value: datetime | None) -> float:
    return NAN if value is None else value.timestamp()


def _whole_days(seconds: np.ndarray) -> np.ndarray:
    return np.floor(seconds / DAY)


def customer_features(
    portfolio: Portfolio,
    as_of: datetime,
    *,
    options: FeatureOptions = FeatureOptions(),
    ledger: MrrLedger | None = None,
    fx: FxTable | None = None,
) -> FeatureTable:
    """Every catalog feature (but the health_* ones) for every customer as of ``as_of``.

    Single passes over customers, subscriptions, usage, feedback and deals; revenue features come from the
    MRR ledger (build it once and pass it in when the portfolio figures need it too).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    ledger = ledger or build_mrr_ledger(portfolio, fx)
    ids = ledger.customer_ids
    index = ledger.index
    n = len(ids)
    now = as_of.timestamp()
    zone = ZoneInfo(options.tz)
    local_today = as_of.astimezone(zone).date()
    today_ordinal = local_today.toordinal()
    columns: dict[str, Any] = {}

    # ---- identity and profile (one pass over customers)
    customers = [portfolio.customers[cid] for cid in ids]
    columns["customer_id"] = ids
    columns["customer_name"] = [c.name for c in customers]
    columns["customer_object"] = [c.object_type for c in customers]
    columns["industry"] = [c.industry for c in customers]
    columns["acquisition_source"] = [c.acquisition_source for c in customers]
    columns["country"] = [c.country for c in customers]

    # ---- revenue (vectorised over the ledger)
    mrr_now = ledger.mrr_at(now)
    mrr_90 = ledger.mrr_at(now - 90 * DAY)
    first_active = ledger.first_active_ts()
    with np.errstate(invalid="ignore"):
        ever = first_active < now
    active = mrr_now > 0
    columns["is_active"] = _bool_array(active)
    columns["was_ever_active"] = _bool_array(ever)
    since: list[date | None] = []
    first_list = first_active.tolist()
    for c, first, was in zip(customers, first_list, ever.tolist()):
        if c.customer_since is not None:
            since.append(c.customer_since)
        elif was:
            since.append(datetime.fromtimestamp(first, tz=zone).date())
        else:
            since.append(None)
    columns["customer_since"] = since
    since_ord = _floats([None if d is None else d.toordinal() for d in since])
    tenure = today_ordinal - since_ord
    tenure[tenure < 0] = NAN  # not a customer yet on that date
    columns["tenure_days"] = tenure
    churns = ledger.deactivation & (ledger.times < now)
    columns["churn_count"] = np.bincount(ledger.owner[churns], minlength=n).astype(np.float64)
    last_churn = ledger.last_event_before(ledger.deactivation, now)
    days_since_churn = _whole_days(now - last_churn)
    days_since_churn[active] = NAN
    columns["days_since_churn"] = days_since_churn
    columns["days_since_reactivation"] = _whole_days(now - ledger.last_event_before(ledger.reactivation, now))
    columns["mrr"] = mrr_now
    columns["arr"] = mrr_now * 12
    columns["mrr_90d_ago"] = mrr_90
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["mrr_change_90d"] = np.where(mrr_90 > 0, (mrr_now - mrr_90) / mrr_90, NAN)

    churn = options.monthly_churn
    if churn is None:
        churn = customer_counts(ledger, periods.trailing(as_of, 30)).churn_rate
    life = lifespan(churn, cap=options.clv_cap_months)
    columns["clv"] = np.where(active, mrr_now * options.gross_margin * float(life), NAN) if life is not None else np.full(n, NAN)

    _subscription_features(portfolio, index, as_of, local_today, columns, n)
    _usage_features(portfolio, ids, customers, as_of, options, columns)
    _survey_features(portfolio, index, as_of, options, columns, n)
    _deal_features(portfolio, index, as_of, options, columns, n)

    # ---- calendar moments
    birthday_month = _floats([c.birthday.month if c.birthday else None for c in customers])
    anniversary_month = _floats([d.month if d else None for d in since])
    columns["birthday_month"] = birthday_month
    columns["anniversary_month"] = anniversary_month
    columns["is_birthday_month"] = _bool_array(birthday_month == local_today.month, ~np.isnan(birthday_month))
    with np.errstate(invalid="ignore"):
        anniversary = (anniversary_month == local_today.month) & (tenure >= 365)
    columns["is_anniversary_month"] = _bool_array(anniversary, ~np.isnan(anniversary_month))
    return FeatureTable(ids, columns)


def _subscription_features(
    portfolio: Portfolio, index: dict[str, int], as_of: datetime, today: date, columns: dict[str, Any], n: int
) -> None:
    live_count = [0] * n
    overdue: list[bool | None] = [None] * n
    past_due_days: list[int | None] = [None] * n
    cancel: list[bool | None] = [None] * n
    renewal: list[int | None] = [None] * n
    has_sub = [False] * n
    for sub in portfolio.subscriptions:
        i = index.get(sub.customer_id) if sub.customer_id is not None else None
        if i is None:
            continue
        has_sub[i] = True
        status = sub.status_at(as_of)
        if status not in sub.live_statuses:
            continue
        live_count[i] += 1
        is_overdue = status in OVERDUE_STATUSES or sub.last_payment_status == "failed"
        overdue[i] = bool(overdue[i]) or is_overdue
        due = sub.next_payment_due
        if is_overdue and due is not None and due <= today:
            days = (today - due).days
            if past_due_days[i] is None or days > past_due_days[i]:
                past_due_days[i] = days
        requested = sub.cancel_requested_at is not None and sub.cancel_requested_at <= as_of
        cancel[i] = bool(cancel[i]) or requested
        if due is not None and due >= today:
            days = (due - today).days
            if renewal[i] is None or days < renewal[i]:
                renewal[i] = days
    # A customer with subscriptions but none live is known not to be overdue / cancelling.
    for i in range(n):
        if has_sub[i] and overdue[i] is None:
            overdue[i] = False
            cancel[i] = False
    columns["active_subscriptions"] = np.asarray(live_count, dtype=np.float64)
    columns["payment_overdue"] = _bools(overdue)
    columns["days_past_due"] = _floats(past_due_days)
    columns["cancel_requested"] = _bools(cancel)
    columns["days_to_renewal"] = _floats(renewal)


def _usage_features(portfolio, ids, customers, as_of: datetime, options: FeatureOptions, columns: dict[str, Any]) -> None:
    usage = portfolio.usage
    now = as_of.timestamp()
    month_ago = as_of - timedelta(days=30)
    logins: list[Any] = []
    active_days: list[Any] = []
    active_days_prev: list[Any] = []
    last_login: list[float] = []
    seats_bought: list[Any] = []
    seats_in_use: list[Any] = []
    dau: list[Any] = []
    mau: list[Any] = []
    done: list[Any] = []
    planned: list[Any] = []
    first_value: list[float] = []
    open_tickets: list[Any] = []
    tickets: list[Any] = []
    last_touch: list[float] = []
    for cid in ids:
        u = usage.get(cid)
        if u is None:
            for column in (logins, active_days, active_days_prev, seats_bought, seats_in_use, dau, mau, done,
                           planned, open_tickets, tickets):
                column.append(None)
            last_login.append(NAN)
            first_value.append(NAN)
            last_touch.append(NAN)
            continue
        # Histories give the value in effect on the date; without one the last pulled value stands.
        logins.append(value_at(u.logins_history, as_of) if u.logins_history else u.logins_30d)
        active_days.append(value_at(u.active_days_history, as_of) if u.active_days_history else u.active_days_30d)
        active_days_prev.append(value_at(u.active_days_history, month_ago) if u.active_days_history else None)
        seats_in_use.append(value_at(u.seats_used_history, as_of) if u.seats_used_history else u.seats_used)
        seats_bought.append(u.seats_purchased)
        dau.append(u.avg_daily_active_users_30d)
        mau.append(u.active_users_30d)
        done.append(len(u.onboarding_milestones_done))
        planned.append(u.onboarding_milestones_total)
        last_login.append(_ts(u.last_login_at))
        first_value.append(_ts(u.first_value_at))
        open_tickets.append(u.open_tickets)
        tickets.append(u.tickets_90d)
        last_touch.append(_ts(u.last_engagement_at))

    def days_since(stamps: list[float]) -> np.ndarray:
        t = np.asarray(stamps, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            t[t > now] = NAN  # after the date: unknown as of then
        return _whole_days(now - t)

    active_now = _floats(active_days)
    active_prev = _floats(active_days_prev)
    columns["logins_30d"] = _floats(logins)
    columns["active_days_30d"] = active_now
    columns["usage_frequency"] = active_now / 30.0
    columns["usage_frequency_prev"] = active_prev / 30.0
    columns["usage_trend"] = (active_now - active_prev) / 30.0
    with np.errstate(invalid="ignore"):
        columns["forgettable"] = _bool_array(active_now < options.forgettable_min_active_days, ~np.isnan(active_now))
    dau_a, mau_a = _floats(dau), _floats(mau)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["stickiness"] = np.where(mau_a > 0, dau_a / mau_a, NAN)
    columns["days_since_last_login"] = days_since(last_login)
    bought, used = _floats(seats_bought), _floats(seats_in_use)
    columns["seats_purchased"] = bought
    columns["seats_used"] = used
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["seat_utilisation"] = np.where(bought > 0, used / bought, NAN)
    done_a, planned_a = _floats(done), _floats(planned)
    with np.errstate(divide="ignore", invalid="ignore"):
        progress = np.where(planned_a > 0, np.minimum(done_a / planned_a, 1.0), NAN)
    columns["onboarding_progress"] = progress
    columns["onboarding_complete"] = _bool_array(progress >= 1.0, ~np.isnan(progress))
    since = columns["customer_since"]
    first_value_a = np.asarray(first_value, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        first_value_a[first_value_a > now] = NAN
    since_ts = _floats([None if d is None else datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(options.tz)).timestamp()
                        for d in since])
    columns["days_to_first_value"] = _whole_days(first_value_a - since_ts)
    columns["open_tickets"] = _floats(open_tickets)
    columns["tickets_90d"] = _floats(tickets)
    columns["days_since_last_engagement"] = days_since(last_touch)


def _survey_features(portfolio, index: dict[str, int], as_of: datetime, options: FeatureOptions,
                     columns: dict[str, Any], n: int) -> None:
    now = as_of.timestamp()
    window_start = now - options.survey_window_days * DAY
    recent_start = now - 90 * DAY
    nps_last_t = [-math.inf] * n
    nps_last: list[int | None] = [None] * n
    nps_prev_t = [-math.inf] * n
    nps_prev: list[int | None] = [None] * n
    csat_total = [0] * n
    csat_ok = [0] * n
    ces_total = [0] * n
    ces_sum = [0] * n
    recent = [0] * n
    last_survey = [NAN] * n
    satisfied = (lambda v: v == 2) if options.csat_scale == "hubspot" else (lambda v: v >= 4)
    for r in portfolio.feedback:
        if r.customer_id is None or r.submitted_at is None or r.value is None:
            continue
        i = index.get(r.customer_id)
        if i is None:
            continue
        t = r.submitted_at.timestamp()
        if t > now:
            continue
        if not last_survey[i] >= t:  # NaN-safe max
            last_survey[i] = t
        if t > recent_start:
            recent[i] += 1
        kind = r.survey_type.upper()
        if kind == "NPS":
            if t >= nps_last_t[i]:
                nps_prev_t[i], nps_prev[i] = nps_last_t[i], nps_last[i]
                nps_last_t[i], nps_last[i] = t, r.value
            elif t >= nps_prev_t[i]:
                nps_prev_t[i], nps_prev[i] = t, r.value
        elif t > window_start:
            if kind == "CSAT":
                csat_total[i] += 1
                csat_ok[i] += satisfied(r.value)
            elif kind == "CES":
                ces_total[i] += 1
                ces_sum[i] += r.value
    latest, previous = _floats(nps_last), _floats(nps_prev)
    columns["nps_latest"] = latest
    columns["nps_previous"] = previous
    columns["nps_trend"] = latest - previous
    columns["nps_group"] = [
        None if v is None else "promoter" if v >= 9 else "passive" if v >= 7 else "detractor" for v in nps_last
    ]
    total, ok = np.asarray(csat_total, dtype=np.float64), np.asarray(csat_ok, dtype=np.float64)
    ces_n, ces_s = np.asarray(ces_total, dtype=np.float64), np.asarray(ces_sum, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["csat_pct"] = np.where(total > 0, 100.0 * ok / total, NAN)
        columns["ces_mean"] = np.where(ces_n > 0, ces_s / ces_n, NAN)
    columns["responses_90d"] = np.asarray(recent, dtype=np.float64)
    columns["days_since_last_survey"] = _whole_days(now - np.asarray(last_survey, dtype=np.float64))


def _deal_features(portfolio, index: dict[str, int], as_of: datetime, options: FeatureOptions,
                   columns: dict[str, Any], n: int) -> None:
    now = as_of.timestamp()
    window_start = now - options.rfm_window_days * DAY
    last = [NAN] * n
    count = [0] * n
    spend = [0.0] * n
    for deal in portfolio.deals:
        if not deal.is_won or deal.customer_id is None or deal.close_date is None:
            continue
        i = index.get(deal.customer_id)
        if i is None:
            continue
        t = deal.close_date.timestamp()
        if t > now:
            continue
        if not last[i] >= t:
            last[i] = t
        if t > window_start:
            count[i] += 1
            spend[i] += float(deal.amount or 0)
    columns["recency_days"] = _whole_days(now - np.asarray(last, dtype=np.float64))
    columns["frequency"] = np.asarray(count, dtype=np.float64)
    columns["monetary"] = np.asarray(spend, dtype=np.float64)


def feature_names() -> list[str]:
    """The catalog names this module computes (all but the health stage's)."""
    from connector.mapping.features import FEATURES

    return [name for name in FEATURES if name not in HEALTH_FEATURES]
