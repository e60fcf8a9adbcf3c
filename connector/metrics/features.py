"""Per-customer features of the catalog (connector.mapping.features) as of a date, computed column by column."""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time as dt_time, timedelta
from itertools import repeat
from operator import eq, is_not
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from connector.metrics import periods
from connector.metrics.retention import customer_counts
from connector.metrics.revenue import FxTable, MrrLedger, build_mrr_ledger
from connector.metrics.value import lifespan
from connector.model import OVERDUE_STATUSES, Flat, Portfolio, Table

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

    @property
    def frame(self) -> pl.DataFrame:
        """The features as one polars frame: ``customer_id`` then one column per feature, null for unknown
        (numbers Float64, whole-number features Int64, flags Boolean, text String, dates Date)."""
        columns: list[pl.Series] = [pl.Series("customer_id", self.customer_ids, dtype=pl.String)]
        for name, column in self.columns.items():
            if name == "customer_id":
                continue
            if isinstance(column, np.ndarray) and column.dtype == np.int8:
                series = pl.Series(name, column).replace_strict({-1: None, 0: False, 1: True},
                                                                return_dtype=pl.Boolean)
            elif isinstance(column, np.ndarray):
                series = pl.Series(name, column, dtype=pl.Float64).fill_nan(None)
                if name in INT_FEATURES:
                    series = series.cast(pl.Int64, strict=False)
            else:
                series = pl.Series(name, list(column), strict=False)
            columns.append(series)
        return pl.DataFrame(columns)

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
            # Rows are zipped and made dicts in C: no Python step per row but the generator's hand-over.
            yield from zip(self.customer_ids[lo:hi], map(dict, map(zip, repeat(names), zip(*parts))))


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


_BOOLS = (False, True, None)  # int8 codes 0, 1 and -1 (unknown)


def _to_python_list(name: str, column: Any) -> list[Any]:
    if not isinstance(column, np.ndarray):
        return list(column)
    if column.dtype == np.int8:
        if column.size and (int(column.min()) < -1 or int(column.max()) > 1):
            return [None if v < 0 else bool(v) for v in column.tolist()]
        return list(map(_BOOLS.__getitem__, column.tolist()))
    missing = np.isnan(column)
    known = column[~missing]
    if name in INT_FEATURES:
        if known.size and not np.abs(known).max() < 2.0**63:  # beyond int64 (or infinite): Python's int() decides
            return [None if v != v else int(v) for v in column.tolist()]
        values = np.where(missing, 0.0, column).astype(np.int64).tolist()  # truncates toward 0, as int() does
    else:
        values = column.tolist()
    for i in np.flatnonzero(missing).tolist():  # NaN is None
        values[i] = None
    return values


def _floats(values: list[Any]) -> np.ndarray:
    """float64 of numbers, NaN for None, as ``np.array(values, dtype=float64)`` gives them; each distinct value
    converted once (a column holds few: Decimal → float goes through text, a micro-second per value)."""
    n = len(values)
    try:
        distinct = set(values)
    except TypeError:  # an unhashable value: no shortcut
        return np.array(values, dtype=np.float64)
    if len(distinct) > n // 4:
        return np.array(values, dtype=np.float64)
    if len(distinct) == 1:  # one value for every row (a field no record fills: None)
        only = next(iter(distinct))
        if only is None or type(only) is int or type(only) is float:
            return np.full(n, NAN if only is None else float(only))
    if None not in distinct:
        if all(type(v) is int for v in distinct):
            try:
                return np.fromiter(values, dtype=np.int64, count=n).astype(np.float64)  # exact, then as float
            except OverflowError:
                pass
        if all(type(v) is int or type(v) is float for v in distinct):
            return np.fromiter(values, dtype=np.float64, count=n)  # plain numbers: float() in C, no lookup
    # Equal values (1, 1.0, Decimal(1)) share a key and convert to the same float.
    as_float = {v: NAN if v is None else float(v) for v in distinct}
    return np.fromiter(map(as_float.__getitem__, values), dtype=np.float64, count=n)


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

    Reads the portfolio's columns (``portfolio.tables``), never its row objects: vector passes over customers,
    subscriptions, usage, feedback and deals; revenue features come from the MRR ledger (build it once and pass
    it in when the portfolio figures need it too).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    ledger = ledger or build_mrr_ledger(portfolio, fx)
    tables = portfolio.tables
    ids = ledger.customer_ids
    index = ledger.index
    n = len(ids)
    now = as_of.timestamp()
    zone = ZoneInfo(options.tz)
    local_today = as_of.astimezone(zone).date()
    today_ordinal = local_today.toordinal()
    columns: dict[str, Any] = {}

    # ---- identity and profile (columns of the customers table, in the ledger's order)
    profile = tables.customers.columns
    rows = _customer_rows(portfolio, ids)
    columns["customer_id"] = ids
    for feature, attribute in (("customer_name", "name"), ("customer_object", "object_type"), ("industry", "industry"),
                               ("acquisition_source", "acquisition_source"), ("country", "country")):
        columns[feature] = _take_list(profile[attribute], rows)

    # ---- revenue (vectorised over the ledger)
    mrr_now = ledger.mrr_at(now)
    mrr_90 = ledger.mrr_at(now - 90 * DAY)
    first_active = ledger.first_active_ts()
    with np.errstate(invalid="ignore"):
        ever = first_active < now
    active = mrr_now > 0
    columns["is_active"] = _bool_array(active)
    columns["was_ever_active"] = _bool_array(ever)
    # The CRM's date where there is one, else the local day of the first payment (None if never paid).
    since_ord = _take_array(profile["customer_since"], rows)
    for i in np.flatnonzero(np.isnan(since_ord) & ever).tolist():  # one by one: a zone's local day has no vector form
        since_ord[i] = datetime.fromtimestamp(float(first_active[i]), tz=zone).date().toordinal()
    columns["customer_since"] = _dates(since_ord)
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

    _subscription_features(tables.subscriptions, index, as_of, local_today, columns, n)
    _usage_features(tables.usage, index, as_of, options, since_ord, columns, n)
    _survey_features(tables.feedback, index, as_of, options, columns, n)
    _deal_features(tables.deals, index, as_of, options, columns, n)

    # ---- calendar moments
    birthday_month = _months(_take_array(profile["birthday"], rows))
    anniversary_month = _months(since_ord)
    columns["birthday_month"] = birthday_month
    columns["anniversary_month"] = anniversary_month
    columns["is_birthday_month"] = _bool_array(birthday_month == local_today.month, ~np.isnan(birthday_month))
    with np.errstate(invalid="ignore"):
        anniversary = (anniversary_month == local_today.month) & (tenure >= 365)
    columns["is_anniversary_month"] = _bool_array(anniversary, ~np.isnan(anniversary_month))
    return FeatureTable(ids, columns, index)


def _customer_rows(portfolio: Portfolio, ids: list[str]) -> np.ndarray | None:
    """Row in the customers table of each of ``ids``; None when the ledger lists them in table order (the rule:
    both follow ``portfolio.customers``), so the columns are read without a gather."""
    table_ids = portfolio.tables.customers.columns["id"]
    if ids is table_ids or ids == table_ids:  # C-level compare, identity first
        return None
    index = portfolio.customer_index()
    return np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))


def _take_list(values: list[Any], rows: np.ndarray | None) -> list[Any]:
    # a copy either way: the feature table must not share a list with the portfolio
    return list(values) if rows is None else list(map(values.__getitem__, rows.tolist()))


def _take_array(values: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return values.copy() if rows is None else values[rows]


# Proleptic ordinal of 1970-01-01, day 0 of numpy's datetime64[D].
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _months(ordinals: np.ndarray) -> np.ndarray:
    """Calendar month (1-12) of date ordinals, NaN for NaN (numpy's calendar is the proleptic Gregorian too)."""
    out = np.full(ordinals.size, NAN)
    known = ~np.isnan(ordinals)
    days = (ordinals[known] - _EPOCH_ORDINAL).astype(np.int64).astype("datetime64[D]")
    out[known] = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return out


def _dates(ordinals: np.ndarray) -> list[date | None]:
    """Date objects of ordinals, None for NaN: one ``date`` built per distinct day (a few thousand), not per row."""
    known = ~np.isnan(ordinals)
    days, inverse = np.unique(ordinals[known], return_inverse=True)
    lookup: list[date | None] = list(map(date.fromordinal, days.astype(np.int64).tolist()))
    lookup.append(None)
    slots = np.full(ordinals.size, len(days), dtype=np.int64)
    slots[known] = inverse.reshape(-1)
    return list(map(lookup.__getitem__, slots.tolist()))


def _points_at(flat: Flat, at: float) -> np.ndarray:
    """Per timeline, the flat index of its last entry at or before ``at`` (model.value_at), -1 if none."""
    offsets = flat.offsets
    csum = np.zeros(flat.times.size + 1, dtype=np.int64)
    np.cumsum(flat.times <= at, out=csum[1:])
    found = csum[offsets[1:]] - csum[offsets[:-1]]
    return np.where(found > 0, offsets[:-1] + found - 1, -1)


def _timeline_values_at(flat: Flat, instants: list[float], defaults: np.ndarray) -> list[np.ndarray]:
    """Numeric value in effect at each instant per timeline; the default where a timeline is empty, NaN before
    its first entry."""
    empty = flat.counts() == 0
    if not flat.times.size:
        return [defaults.copy() for _ in instants]
    values = _floats(flat.values)
    out = []
    for at in instants:
        points = _points_at(flat, at)
        column = np.where(points >= 0, values[np.maximum(points, 0)], NAN)
        column[empty] = defaults[empty]
        out.append(column)
    return out


class _FirstSeen(dict):
    """value -> small integer, numbered on first sight: ``map(codes.__getitem__, values)`` stays in C for every
    value seen before, and ``list(codes)`` lists the values in code order."""

    def __missing__(self, value: Any) -> int:
        code = self[value] = len(self)
        return code


def _subscription_features(
    subs: Table, index: dict[str, int], as_of: datetime, today: date, columns: dict[str, Any], n: int
) -> None:
    table = subs.columns
    owner_all = subs.owners(index)
    known = np.flatnonzero(owner_all >= 0)
    owner = owner_all[known]
    now = as_of.timestamp()
    # Status at the date: the status history where there is one, else the status since creation (None before
    # it). One lookup list: the history values, then each row's own status, then None ("no status yet").
    history = table["status_history"]
    points = _points_at(history, now)
    given = len(history.values)
    none_slot = given + subs.size
    with np.errstate(invalid="ignore"):
        created_later = table["created_at"] > now  # NaN (no creation time): False
    slot = np.where(points >= 0, points, none_slot)
    own = np.flatnonzero((history.counts() == 0) & ~created_later)
    slot[own] = given + own
    lookup = history.values + table["status"] + [None]
    # Each distinct status coded once; live and overdue are then a table lookup per code.
    code_of = _FirstSeen()
    slots = slot[known].tolist()
    status = np.fromiter(map(code_of.__getitem__, map(lookup.__getitem__, slots)), dtype=np.int64, count=len(slots))
    lives_all = table["live_statuses"]
    common = lives_all[int(known[0])] if known.size else frozenset()
    statuses = list(code_of)  # in code order
    live = np.array([st in common for st in statuses], dtype=bool)[status]
    if lives_all.count(common) < subs.size:  # one C-level scan: usually every row shares the portal's set
        odd = np.fromiter(map(is_not, lives_all, repeat(common)), dtype=bool, count=subs.size)[known]
        for i in np.flatnonzero(odd).tolist():
            live[i] = lookup[slots[i]] in lives_all[int(known[i])]
    overdue = np.array([st in OVERDUE_STATUSES for st in statuses], dtype=bool)[status]
    if "failed" in table["last_payment_status"]:
        overdue |= np.fromiter(map(eq, table["last_payment_status"], repeat("failed")), dtype=bool,
                               count=subs.size)[known]
    due = table["next_payment_due"][known]
    with np.errstate(invalid="ignore"):
        requested = table["cancel_requested_at"][known] <= now  # NaN: False
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
    usage: Table, index: dict[str, int], as_of: datetime, options: FeatureOptions, since_ord: np.ndarray,
    columns: dict[str, Any], n: int,
) -> None:
    table = usage.columns
    # Usage row of each customer (-1: none, i.e. an empty Usage): computed per usage row, spread to the customers.
    owner = usage.owners(index)
    row_of = np.full(n, -1, dtype=np.int64)
    present = np.flatnonzero(owner >= 0)
    row_of[owner[present]] = present
    known = row_of >= 0
    rows = row_of[known]
    now = as_of.timestamp()
    month_ago = as_of - timedelta(days=30)

    def spread(values: np.ndarray) -> np.ndarray:
        out = np.full(n, NAN)  # an empty Usage: every number None
        out[known] = values[rows]
        return out

    def field(name: str) -> np.ndarray:
        return spread(_floats(table[name]))

    def stamps(name: str) -> np.ndarray:
        t = spread(table[name])
        with np.errstate(invalid="ignore"):
            t[t > now] = NAN  # after the date: unknown as of then
        return t

    # Histories give the value in effect on the date; without one the last pulled value stands.
    history = table["active_days_history"]
    active_now, active_prev = _timeline_values_at(history, [now, month_ago.timestamp()],
                                                  _floats(table["active_days_30d"]))
    # 30 days back only a history knows the value: the last pulled one is today's.
    active_prev[history.counts() == 0] = NAN
    active_now, active_prev = spread(active_now), spread(active_prev)
    (logins,) = _timeline_values_at(table["logins_history"], [now], _floats(table["logins_30d"]))
    columns["logins_30d"] = spread(logins)
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
    (used,) = _timeline_values_at(table["seats_used_history"], [now], _floats(table["seats_used"]))
    used = spread(used)
    columns["seats_purchased"] = bought
    columns["seats_used"] = used
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["seat_utilisation"] = np.where(bought > 0, used / bought, NAN)
    done = table["onboarding_milestones_done"]
    done_a = spread(np.fromiter(map(len, done), dtype=np.float64, count=len(done)))
    planned_a = field("onboarding_milestones_total")
    with np.errstate(divide="ignore", invalid="ignore"):
        progress = np.where(planned_a > 0, np.minimum(done_a / planned_a, 1.0), NAN)
    progress[~known] = NAN
    columns["onboarding_progress"] = progress
    columns["onboarding_complete"] = _bool_array(progress >= 1.0, ~np.isnan(progress))
    # From the start of the customer_since day in the calendar's zone: one midnight per distinct day.
    zone = ZoneInfo(options.tz)
    first_value = stamps("first_value_at")
    since_ts = np.full(n, NAN)
    both = ~np.isnan(first_value) & ~np.isnan(since_ord)
    days, inverse = np.unique(since_ord[both], return_inverse=True)
    midnights = [datetime.combine(date.fromordinal(d), dt_time(), tzinfo=zone).timestamp()
                 for d in days.astype(np.int64).tolist()]
    since_ts[both] = np.array(midnights, dtype=np.float64)[inverse.reshape(-1)]
    columns["days_to_first_value"] = _whole_days(first_value - since_ts)
    columns["open_tickets"] = field("open_tickets")
    columns["tickets_90d"] = field("tickets_90d")
    columns["days_since_last_engagement"] = _whole_days(now - stamps("last_engagement_at"))


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


def _survey_features(feedback: Table, index: dict[str, int], as_of: datetime, options: FeatureOptions,
                     columns: dict[str, Any], n: int) -> None:
    now = as_of.timestamp()
    table = feedback.columns
    owner = feedback.owners(index)
    t = table["submitted_at"]
    value = _floats(table["value"])
    types = table["survey_type"]
    code_of = {k: {"NPS": 1, "CSAT": 2, "CES": 3}.get(k.upper(), 0) for k in set(types)}
    kind = np.fromiter(map(code_of.__getitem__, types), dtype=np.int8, count=feedback.size)
    with np.errstate(invalid="ignore"):
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
    with np.errstate(invalid="ignore"):
        band = np.where(np.isnan(latest), 3, np.where(latest >= 9, 0, np.where(latest >= 7, 1, 2)))
    columns["nps_group"] = list(map(("promoter", "passive", "detractor", None).__getitem__, band.tolist()))
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


def _deal_features(deals: Table, index: dict[str, int], as_of: datetime, options: FeatureOptions,
                   columns: dict[str, Any], n: int) -> None:
    now = as_of.timestamp()
    table = deals.columns
    owner = deals.owners(index)
    won = table["is_won"]
    t = table["close_date"]
    amount = np.nan_to_num(_floats(table["amount"]))  # Decimal or None → float, None → 0
    with np.errstate(invalid="ignore"):
        keep = won & (owner >= 0) & (t <= now)  # NaN: no close date, dropped
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
