"""Per-customer features of the catalog (connector.mapping.features) as of a date, computed column by column."""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain, compress, repeat
from operator import attrgetter, eq, is_not, itemgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

from connector.metrics import periods
from connector.metrics.retention import customer_counts
from connector.metrics.revenue import FxTable, MrrLedger, build_mrr_ledger
from connector.metrics.value import lifespan
from connector.model import OVERDUE_STATUSES, Portfolio, Usage

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

    def __init__(self, customer_ids: list[str], columns: dict[str, Any], index: dict[str, int] | None = None):
        self.customer_ids = customer_ids
        self.index = index if index is not None else {cid: i for i, cid in enumerate(customer_ids)}
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

    def items(self) -> ItemsView[str, dict[str, Any]]:
        return _RowItems(self)

    def column(self, name: str) -> list[Any]:
        """One feature for every customer, in ``customer_ids`` order, as Python values."""
        return _to_python_list(name, self.columns[name])

    def iter_rows(
        self, chunk: int = 65536, names: list[str] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(customer_id, row) for every customer, converting a chunk of each column at a time (the fast path).

        ``names`` limits the rows to the features a reader needs (a third of the cost for a third of the names).
        """
        names = list(self.columns) if names is None else list(names)
        for lo in range(0, len(self.customer_ids), chunk):
            hi = min(lo + chunk, len(self.customer_ids))
            parts = [_to_python_list(name, self.columns[name][lo:hi]) for name in names]
            for offset, values in enumerate(zip(*parts)):
                yield self.customer_ids[lo + offset], dict(zip(names, values))


class _RowItems(ItemsView):
    """``table.items()`` iterates through the chunked fast path instead of one row lookup at a time."""

    def __iter__(self):
        return self._mapping.iter_rows()


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
    return np.array(values, dtype=np.float64)  # None becomes NaN, in C


def _bool_array(mask: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    out = mask.astype(np.int8)
    if known is not None:
        out[~known] = -1
    return out


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
    customers = list(map(portfolio.customers.__getitem__, ids))
    columns["customer_id"] = ids
    for feature, attribute in (("customer_name", "name"), ("customer_object", "object_type"), ("industry", "industry"),
                               ("acquisition_source", "acquisition_source"), ("country", "country")):
        columns[feature] = list(map(attrgetter(attribute), customers))

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
    if life is None:
        columns["clv"] = np.full(n, NAN)
    else:
        columns["clv"] = np.where(active, mrr_now * options.gross_margin * float(life), NAN)

    _subscription_features(portfolio, index, as_of, local_today, columns, n)
    _usage_features(portfolio, ids, as_of, options, columns)
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
    return FeatureTable(ids, columns, index)


def _flatten(timelines: list[Any]) -> tuple[np.ndarray, list[Any], list[Any]]:
    """Counts, times and values of many short ascending timelines, flattened in C."""
    counts = np.fromiter(map(len, timelines), dtype=np.int64, count=len(timelines))
    pairs = list(chain.from_iterable(timelines))
    return counts, list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs))


def _points_at(counts: np.ndarray, times: np.ndarray, at: float) -> np.ndarray:
    """Per timeline, the flat index of its last entry at or before ``at`` (model.value_at), -1 if none."""
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    csum = np.zeros(times.size + 1, dtype=np.int64)
    np.cumsum(times <= at, out=csum[1:])
    found = csum[offsets[1:]] - csum[offsets[:-1]]
    return np.where(found > 0, offsets[:-1] + found - 1, -1)


def _timeline_values_at(timelines: list[Any], instants: list[float], defaults: list[Any]) -> list[np.ndarray]:
    """Numeric value in effect at each instant per timeline; the default where a timeline is empty, NaN before
    its first entry. The timelines are flattened once for all the instants."""
    counts, times, values = _flatten(timelines)
    empty = counts == 0
    fallback = _floats(defaults)
    if empty.all():
        return [fallback.copy() for _ in instants]
    stamps, flat = epochs_or_nan(times), _floats(values)
    out = []
    for at in instants:
        points = _points_at(counts, stamps, at)
        column = np.where(points >= 0, flat[np.maximum(points, 0)], NAN)
        column[empty] = fallback[empty]
        out.append(column)
    return out


def _ordinals(days: list[date | None]) -> np.ndarray:
    """Proleptic ordinals of dates, NaN for None (C loops)."""
    present = np.fromiter(map(is_not, days, repeat(None)), dtype=bool, count=len(days))
    out = np.full(len(days), NAN)
    count = int(present.sum())
    if count:
        out[present] = np.fromiter(map(date.toordinal, compress(days, present.tolist())), dtype=np.float64, count=count)
    return out


def _subscription_features(
    portfolio: Portfolio, index: dict[str, int], as_of: datetime, today: date, columns: dict[str, Any], n: int
) -> None:
    subs_all = portfolio.subscriptions
    owner_all = np.fromiter(map(index.get, map(attrgetter("customer_id"), subs_all), repeat(-1)),
                            dtype=np.int64, count=len(subs_all))
    known = np.flatnonzero(owner_all >= 0)
    subs = list(map(subs_all.__getitem__, known.tolist()))
    owner = owner_all[known]
    now = as_of.timestamp()
    # Status at the date: the status history where there is one, else the status since creation.
    counts, times, values = _flatten(list(map(attrgetter("status_history"), subs)))
    points = _points_at(counts, epochs_or_nan(times), now)
    lookup = np.empty(len(values) + 1, dtype=object)  # the extra last slot stays None: "no status yet"
    lookup[:-1] = values
    status = lookup[np.where(points >= 0, points, len(values))].tolist()
    for i in np.flatnonzero(counts == 0).tolist():
        sub = subs[i]
        status[i] = None if sub.created_at is not None and as_of < sub.created_at else sub.status
    lives = list(map(attrgetter("live_statuses"), subs))
    common = lives[0] if lives else frozenset()
    live_of = {st: st in common for st in set(status)}
    live = np.fromiter(map(live_of.__getitem__, status), dtype=bool, count=len(status))
    for i in np.flatnonzero(np.fromiter(map(is_not, lives, repeat(common)), dtype=bool, count=len(lives))).tolist():
        live[i] = status[i] in lives[i]
    overdue_of = {st: st in OVERDUE_STATUSES for st in live_of}
    overdue = np.fromiter(map(overdue_of.__getitem__, status), dtype=bool, count=len(status))
    overdue |= np.fromiter(map(eq, map(attrgetter("last_payment_status"), subs), repeat("failed")), dtype=bool,
                           count=len(subs))
    due = _ordinals(list(map(attrgetter("next_payment_due"), subs)))
    with np.errstate(invalid="ignore"):
        requested = epochs_or_nan(list(map(attrgetter("cancel_requested_at"), subs))) <= now  # NaN: False
    today_ordinal = today.toordinal()

    has_sub = np.bincount(owner, minlength=n) > 0
    live_count = np.bincount(owner[live], minlength=n)
    any_overdue = np.bincount(owner[live & overdue], minlength=n) > 0
    any_cancel = np.bincount(owner[live & requested], minlength=n) > 0
    with np.errstate(invalid="ignore"):
        late = live & overdue & (due <= today_ordinal)
        ahead = live & (due >= today_ordinal)
    past_due_days = np.full(n, -np.inf)
    np.maximum.at(past_due_days, owner[late], today_ordinal - due[late])
    renewal = np.full(n, np.inf)
    np.minimum.at(renewal, owner[ahead], due[ahead] - today_ordinal)
    past_due_days[np.isinf(past_due_days)] = NAN
    renewal[np.isinf(renewal)] = NAN
    columns["active_subscriptions"] = live_count.astype(np.float64)
    # A customer with subscriptions but none live is known not to be overdue / cancelling; without any, unknown.
    columns["payment_overdue"] = _bool_array(any_overdue, has_sub)
    columns["days_past_due"] = past_due_days
    columns["cancel_requested"] = _bool_array(any_cancel, has_sub)
    columns["days_to_renewal"] = renewal


def _usage_features(
    portfolio: Portfolio, ids: list[str], as_of: datetime, options: FeatureOptions, columns: dict[str, Any]
) -> None:
    empty = Usage(customer_id="")
    get = portfolio.usage.get
    rows = list(map(get, ids, repeat(empty)))
    known = np.fromiter(map(is_not, rows, repeat(empty)), dtype=bool, count=len(rows))
    now = as_of.timestamp()
    month_ago = as_of - timedelta(days=30)

    def field(name: str) -> np.ndarray:
        return _floats(list(map(attrgetter(name), rows)))

    def stamps(name: str) -> np.ndarray:
        t = epochs_or_nan(list(map(attrgetter(name), rows)))
        with np.errstate(invalid="ignore"):
            t[t > now] = NAN  # after the date: unknown as of then
        return t

    # Histories give the value in effect on the date; without one the last pulled value stands.
    active_now, active_prev = _timeline_values_at(
        list(map(attrgetter("active_days_history"), rows)), [now, month_ago.timestamp()],
        list(map(attrgetter("active_days_30d"), rows)),
    )
    # 30 days back only a history knows the value: the last pulled one is today's.
    active_prev[np.fromiter(map(len, map(attrgetter("active_days_history"), rows)), dtype=np.int64,
                            count=len(rows)) == 0] = NAN
    (columns["logins_30d"],) = _timeline_values_at(list(map(attrgetter("logins_history"), rows)), [now],
                                                   list(map(attrgetter("logins_30d"), rows)))
    columns["active_days_30d"] = active_now
    columns["usage_frequency"] = active_now / 30.0
    columns["usage_frequency_prev"] = active_prev / 30.0
    columns["usage_trend"] = (active_now - active_prev) / 30.0
    with np.errstate(invalid="ignore"):
        columns["forgettable"] = _bool_array(active_now < options.forgettable_min_active_days, ~np.isnan(active_now))
    dau_a, mau_a = field("avg_daily_active_users_30d"), field("active_users_30d")
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["stickiness"] = np.where(mau_a > 0, dau_a / mau_a, NAN)
    columns["days_since_last_login"] = _whole_days(now - stamps("last_login_at"))
    bought = field("seats_purchased")
    (used,) = _timeline_values_at(list(map(attrgetter("seats_used_history"), rows)), [now],
                                  list(map(attrgetter("seats_used"), rows)))
    columns["seats_purchased"] = bought
    columns["seats_used"] = used
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["seat_utilisation"] = np.where(bought > 0, used / bought, NAN)
    done_a = np.fromiter(map(len, map(attrgetter("onboarding_milestones_done"), rows)), dtype=np.float64,
                         count=len(rows))
    planned_a = field("onboarding_milestones_total")
    with np.errstate(divide="ignore", invalid="ignore"):
        progress = np.where(planned_a > 0, np.minimum(done_a / planned_a, 1.0), NAN)
    progress[~known] = NAN
    columns["onboarding_progress"] = progress
    columns["onboarding_complete"] = _bool_array(progress >= 1.0, ~np.isnan(progress))
    zone = ZoneInfo(options.tz)
    first_value = stamps("first_value_at")
    since = columns["customer_since"]
    since_ts = np.full(len(rows), NAN)
    for i in np.flatnonzero(~np.isnan(first_value)).tolist():  # only where there is a first-value date
        d = since[i]
        if d is not None:
            since_ts[i] = datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()
    columns["days_to_first_value"] = _whole_days(first_value - since_ts)
    columns["open_tickets"] = field("open_tickets")
    columns["tickets_90d"] = field("tickets_90d")
    columns["days_since_last_engagement"] = _whole_days(now - stamps("last_engagement_at"))


def epochs_or_nan(values: list[datetime | None]) -> np.ndarray:
    """Epoch seconds of aware datetimes, NaN for None; every loop runs in C (map, compress)."""
    present = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=len(values))
    out = np.full(len(values), NAN)
    count = int(present.sum())
    if count:
        out[present] = np.fromiter(map(datetime.timestamp, compress(values, present.tolist())), dtype=np.float64,
                                   count=count)
    return out


def _last_two(owner: np.ndarray, t: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per owner, the value with the latest ``t`` and the one before it (NaN if missing)."""
    latest = np.full(n, NAN)
    previous = np.full(n, NAN)
    if owner.size:
        order = np.lexsort((t, owner))
        o, v = owner[order], values[order]
        last = np.r_[o[1:] != o[:-1], True]
        latest[o[last]] = v[last]
        second = np.r_[last[1:], False] & ~last  # the row just before an owner's last row
        second &= np.r_[o[1:] == o[:-1], False]
        previous[o[second]] = v[second]
    return latest, previous


def _survey_features(portfolio, index: dict[str, int], as_of: datetime, options: FeatureOptions,
                     columns: dict[str, Any], n: int) -> None:
    now = as_of.timestamp()
    rows = portfolio.feedback
    owner = np.fromiter(map(index.get, map(attrgetter("customer_id"), rows), repeat(-1)), dtype=np.int64,
                        count=len(rows))
    t = epochs_or_nan(list(map(attrgetter("submitted_at"), rows)))
    value = _floats(list(map(attrgetter("value"), rows)))
    types = list(map(attrgetter("survey_type"), rows))
    code_of = {k: {"NPS": 1, "CSAT": 2, "CES": 3}.get(k.upper(), 0) for k in set(types)}
    kind = np.fromiter(map(code_of.__getitem__, types), dtype=np.int8, count=len(rows))
    keep = (owner >= 0) & (t <= now) & ~np.isnan(value)  # NaN times compare False: dropped too
    owner, t, value, kind = owner[keep], t[keep], value[keep], kind[keep]
    last_survey = np.full(n, -np.inf)
    np.maximum.at(last_survey, owner, t)
    last_survey[np.isinf(last_survey)] = NAN
    nps_rows = kind == 1
    latest, previous = _last_two(owner[nps_rows], t[nps_rows], value[nps_rows], n)
    columns["nps_latest"] = latest
    columns["nps_previous"] = previous
    columns["nps_trend"] = latest - previous
    columns["nps_group"] = [
        None if v != v else "promoter" if v >= 9 else "passive" if v >= 7 else "detractor" for v in latest.tolist()
    ]
    window = t > now - options.survey_window_days * DAY
    csat_rows = window & (kind == 2)
    satisfied = (value == 2) if options.csat_scale == "hubspot" else (value >= 4)
    csat_total = np.bincount(owner[csat_rows], minlength=n)
    csat_ok = np.bincount(owner[csat_rows & satisfied], minlength=n)
    ces_rows = window & (kind == 3)
    ces_total = np.bincount(owner[ces_rows], minlength=n)
    ces_sum = np.bincount(owner[ces_rows], weights=value[ces_rows], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["csat_pct"] = np.where(csat_total > 0, 100.0 * csat_ok / csat_total, NAN)
        columns["ces_mean"] = np.where(ces_total > 0, ces_sum / ces_total, NAN)
    recent = t > now - 90 * DAY
    columns["responses_90d"] = np.bincount(owner[recent], minlength=n).astype(np.float64)
    columns["days_since_last_survey"] = _whole_days(now - last_survey)


def _deal_features(portfolio, index: dict[str, int], as_of: datetime, options: FeatureOptions,
                   columns: dict[str, Any], n: int) -> None:
    now = as_of.timestamp()
    deals = portfolio.deals
    owner = np.fromiter(map(index.get, map(attrgetter("customer_id"), deals), repeat(-1)), dtype=np.int64,
                        count=len(deals))
    won = np.fromiter(map(attrgetter("is_won"), deals), dtype=bool, count=len(deals))
    t = epochs_or_nan(list(map(attrgetter("close_date"), deals)))
    amount = np.nan_to_num(_floats(list(map(attrgetter("amount"), deals))))  # Decimal or None → float, None → 0
    keep = won & (owner >= 0) & (t <= now)
    owner, t, amount = owner[keep], t[keep], amount[keep]
    last = np.full(n, -np.inf)
    np.maximum.at(last, owner, t)
    last[np.isinf(last)] = NAN
    window = t > now - options.rfm_window_days * DAY
    columns["recency_days"] = _whole_days(now - last)
    columns["frequency"] = np.bincount(owner[window], minlength=n).astype(np.float64)
    columns["monetary"] = np.bincount(owner[window], weights=amount[window], minlength=n)


def feature_names() -> list[str]:
    """The catalog names this module computes (all but the health stage's)."""
    from connector.mapping.features import FEATURES

    return [name for name in FEATURES if name not in HEALTH_FEATURES]
