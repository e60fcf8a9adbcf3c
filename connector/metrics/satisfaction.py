"""Survey metrics: NPS, CSAT, CES for the portfolio and per customer, cross-checked with HubSpot's groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, count, repeat
from operator import eq, ge, is_not, le
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from connector.metrics.memo import Once
from connector.metrics.periods import Period
from connector.model import FeedbackResponse, Table

CsatScale = Literal["hubspot", "1-5"]
PerContact = Literal["latest", "all"]
GROUPS = ("PROMOTER", "PASSIVE", "DETRACTOR")


def _pct(count: int, total: int) -> float | None:
    return None if not total else 100.0 * count / total


def nps(ratings: Sequence[int]) -> float | None:
    """100 × (#9–10 − #0–6)/#responses; passives count in the denominator (§1.6, E7)."""
    ratings = [r for r in ratings if r is not None]
    promoters = sum(map(ge, ratings, repeat(9)))
    detractors = sum(map(le, ratings, repeat(6)))
    return None if not ratings else 100.0 * (promoters - detractors) / len(ratings)


def nps_group(rating: int | None) -> str | None:
    if rating is None:
        return None
    return "promoter" if rating >= 9 else "passive" if rating >= 7 else "detractor"


def csat(ratings: Sequence[int], scale: CsatScale = "1-5") -> float | None:
    """Share of satisfied answers, 0–100: top-2-box (4–5) on 1–5, or value 2 on HubSpot's 0/1/2 scale."""
    ratings = [r for r in ratings if r is not None]
    if scale == "1-5":
        satisfied = sum(map(ge, ratings, repeat(4)))
    elif scale == "hubspot":
        satisfied = sum(map(eq, ratings, repeat(2)))
    else:
        raise ValueError(f"unknown CSAT scale {scale!r} (valid: hubspot, 1-5)")
    return _pct(satisfied, len(ratings))


def ces_mean(ratings: Sequence[int]) -> float | None:
    """Mean customer-effort answer on 1–7, higher = easier (CES 2.0)."""
    ratings = [r for r in ratings if r is not None]
    return None if not ratings else sum(ratings) / len(ratings)


def ces_easy_pct(ratings: Sequence[int]) -> float | None:
    """Share of CES answers 5–7, 0–100."""
    ratings = [r for r in ratings if r is not None]
    return _pct(sum(map(ge, ratings, repeat(5))), len(ratings))


def hubspot_response_group(survey_type: str, value: int | None) -> str | None:
    """The group HubSpot stores in ``hs_response_group`` for a rating (METRICS §5)."""
    if value is None:
        return None
    kind = survey_type.upper()
    if kind == "NPS":
        return "PROMOTER" if value >= 9 else "PASSIVE" if value >= 7 else "DETRACTOR"
    if kind == "CSAT":
        return {2: "PROMOTER", 1: "PASSIVE", 0: "DETRACTOR"}.get(value)
    if kind == "CES":
        return "PROMOTER" if value >= 6 else "PASSIVE" if value >= 4 else "DETRACTOR"
    return None


@dataclass(frozen=True)
class GroupCheck:
    """Our grouping of each rating against HubSpot's ``hs_response_group``: counted, never fatal."""

    checked: int = 0
    mismatches: int = 0
    missing_group: int = 0
    mismatch_ids: tuple[str, ...] = ()  # the first few, to look up


# ---------------------------------------------------------------- on columns
# The survey figures read the feedback Table's columns (a month of a million customers' answers is ~100,000 rows:
# no object per answer). Objects handed in (tests, small lists) are turned into a Table first, so there is one
# implementation.

Responses = Iterable[FeedbackResponse] | Table
_KINDS = {"NPS": 0, "CSAT": 1, "CES": 2}  # the survey types with a HubSpot group (code per kind)


def _table(responses: Responses) -> Table:
    return responses if isinstance(responses, Table) else Table.of(FeedbackResponse, responses)


def _kind_code(survey_type: str) -> int:
    return _KINDS.get(survey_type.upper(), -1)


def _stored_code(stored: str | None) -> int:
    """A stored ``hs_response_group`` as an index into GROUPS; -1 none stored, len(GROUPS) any other text."""
    if stored is None:
        return -1
    upper = stored.upper()
    return GROUPS.index(upper) if upper in GROUPS else len(GROUPS)


def _kind_codes(survey_types: Iterable[str], n: int) -> np.ndarray:
    """Per answer its kind code (``_KINDS`` of the upper-cased type, -1 other): one upper() per distinct type."""
    return np.fromiter(map(Once(_kind_code).__getitem__, survey_types), dtype=np.int8, count=n)


def _groups(kind: np.ndarray, v: np.ndarray, rated: np.ndarray) -> np.ndarray:
    """``hubspot_response_group`` as an index into GROUPS (-1 for none) from kind codes and float ratings (read
    where ``rated``); the same bands as hubspot_response_group, in numpy."""
    group = np.full(kind.size, -1, dtype=np.int8)
    for code, promoter, passive in ((_KINDS["NPS"], 9, 7), (_KINDS["CES"], 6, 4)):
        rows = kind == code
        group[rows] = np.where(v[rows] >= promoter, 0, np.where(v[rows] >= passive, 1, 2))
    csat = kind == _KINDS["CSAT"]
    for index, rating in enumerate((2, 1, 0)):  # HubSpot's CSAT is 0/1/2; any other value has no group
        group[csat & (v == rating)] = index
    group[~rated] = -1
    return group


def _kind_and_group(kinds: list[str], values: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per answer its kind code (``_KINDS``, -1 other) and ``hubspot_response_group`` as an index into GROUPS
    (-1 for none), for upper-case kinds."""
    n = len(kinds)
    kind = np.fromiter(map(_KINDS.get, kinds, repeat(-1)), dtype=np.int8, count=n)
    rated = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=n)
    v = np.zeros(n)
    v[rated] = np.fromiter(compress(values, rated.tolist()), dtype=np.float64, count=int(rated.sum()))
    return kind, _groups(kind, v, rated)


def _group_check(table: Table, rows: list[int], group: np.ndarray, keep_ids: int) -> GroupCheck:
    # Each distinct stored group upper-cased and coded once, compared with ours in numpy.
    stored = map(table.columns["response_group"].__getitem__, rows)
    theirs = np.fromiter(map(Once(_stored_code).__getitem__, stored), dtype=np.int8, count=len(rows))
    ours = group >= 0
    missing = ours & (theirs < 0)
    checked = ours & ~missing
    differs = checked & (theirs != group)
    first = np.flatnonzero(differs)[:keep_ids].tolist()
    ids = table.columns["id"]
    return GroupCheck(int(checked.sum()), int(differs.sum()), int(missing.sum()),
                      tuple(ids[rows[k]] for k in first))


def _chosen(table: Table, rows: np.ndarray | None, period: Period | None, per_contact: PerContact) -> np.ndarray:
    """The rows select_responses keeps, among ``rows`` (all if None) and in their order: rated, dated, submitted
    inside ``period``; with ``latest`` each respondent's latest answer per survey type, in first-answer order."""
    return _select(table, rows, period, per_contact)[0]


def _select(
    table: Table, rows: np.ndarray | None, period: Period | None, per_contact: PerContact
) -> tuple[np.ndarray, list[Any], np.ndarray | None]:
    """``_chosen``'s rows with their values and, where the selection needed them, their kind codes."""
    columns = table.columns
    rows = np.arange(table.size, dtype=np.int64) if rows is None else rows
    t = columns["submitted_at"][rows]
    values = list(map(columns["value"].__getitem__, rows.tolist()))
    keep = ~np.isnan(t)
    if None in values:  # a C-level scan; most answers carry a rating
        keep &= np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=rows.size)
    if period is not None:
        keep &= (t >= period.start_ts) & (t < period.end_ts)  # [start, end): Period.contains on epochs
    chosen, t = rows[keep], t[keep]
    if per_contact not in ("all", "latest"):
        raise ValueError(f"unknown per_contact {per_contact!r} (valid: latest, all)")
    values = list(compress(values, keep.tolist())) if chosen.size < rows.size else values
    if per_contact == "all" or not chosen.size:
        return chosen, values, None
    picked = chosen.tolist()
    n = len(picked)
    ids = columns["id"]
    kinds = _kind_codes(map(columns["survey_type"].__getitem__, picked), n)
    contact_ids = columns["contact_id"]
    contacts = list(map(contact_ids.__getitem__, picked))
    distinct = set(contacts)  # a set of the contacts costs a third of numbering them
    if len(distinct) == n and None not in distinct and "" not in distinct:
        return chosen, values, kinds  # every contact answered once: each answer is its own latest, in order
    del distinct
    # Each (respondent, type) is numbered by its first answer's position, so numbers follow first-answer order.
    # Respondents are numbered apart and combined with the type in numpy: no tuple per answer (a tuple per answer
    # wakes the cycle collector, which then walks every object of the process).
    seen: dict[Any, int] = {}
    respondent = np.fromiter(map(seen.setdefault, contacts, count()), dtype=np.int64, count=n)
    del contacts
    for blank in (None, ""):  # anonymous answers (no contact) are each their own respondent
        if blank in seen:
            for k in np.flatnonzero(respondent == seen.pop(blank)).tolist():
                respondent[k] = seen.setdefault(f"response:{ids[picked[k]]}", n + k)
    kind = kinds.astype(np.int64)
    other = kind < 0
    if other.any():  # types other than NPS/CSAT/CES are told apart by their upper-cased name
        uppers = map(str.upper, map(columns["survey_type"].__getitem__, compress(picked, other.tolist())))
        kind[other] = len(_KINDS) + np.fromiter(map({}.setdefault, uppers, count()), dtype=np.int64,
                                                count=int(other.sum()))
    width = int(kind.max()) + 1
    pair = respondent * width + kind
    taken = np.zeros(int(pair.max()) + 1, dtype=bool)
    taken[pair] = True
    if np.count_nonzero(taken) == n:
        return chosen, values, kinds  # every (respondent, type) answered once: each is its own latest, in order
    del taken
    key = np.fromiter(map({}.setdefault, pair.tolist(), count()), dtype=np.int64, count=n)
    # The latest answer per key is the greatest (time, id), the earliest of equal ones: the last after sorting.
    order = np.lexsort((t, key))
    if np.any((key[order][1:] == key[order][:-1]) & (t[order][1:] == t[order][:-1])):
        # Answers at the same instant (rare): their ids decide, so only then are the ids read and ranked.
        _, id_rank = np.unique(np.array(list(map(ids.__getitem__, picked)), dtype=str), return_inverse=True)
        order = np.lexsort((-np.arange(n), id_rank.reshape(-1), t, key))
    last = np.r_[key[order][1:] != key[order][:-1], True]
    selected = order[last]
    return chosen[selected], list(map(values.__getitem__, selected.tolist())), kinds[selected]


def cross_check_groups(responses: Responses, *, keep_ids: int = 20) -> GroupCheck:
    table = _table(responses)
    values = table.columns["value"]
    kind = _kind_codes(table.columns["survey_type"], table.size)
    rated = np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=table.size)
    v = np.zeros(table.size)
    v[rated] = np.fromiter(compress(values, rated.tolist()), dtype=np.float64, count=int(rated.sum()))
    return _group_check(table, list(range(table.size)), _groups(kind, v, rated), keep_ids)


def select_responses(
    responses: Responses,
    period: Period | None = None,
    *,
    per_contact: PerContact = "latest",
) -> list[FeedbackResponse]:
    """Responses submitted inside ``period`` ([start, end)); with ``latest``, one per contact and survey type."""
    given = responses if isinstance(responses, Table) else list(responses)
    return list(map(given.__getitem__, _chosen(_table(given), None, period, per_contact).tolist()))


@dataclass(frozen=True)
class SurveySummary:
    nps: float | None
    nps_responses: int
    promoters: int
    passives: int
    detractors: int
    csat: float | None
    csat_responses: int
    ces_mean: float | None
    ces_easy_pct: float | None
    ces_responses: int
    hubspot_groups: dict[str, dict[str, int]] = field(default_factory=dict)  # survey type -> group -> count
    group_check: GroupCheck = GroupCheck()


def survey_summary(
    responses: Responses,
    period: Period | None = None,
    *,
    per_contact: PerContact = "latest",
    csat_scale: CsatScale = "hubspot",
    rows: np.ndarray | None = None,
) -> SurveySummary:
    """NPS, CSAT, CES of the responses in ``period``; HubSpot's own CSAT is 0/1/2, hence that default here.

    ``rows``: read only these rows of a feedback Table (e.g. a period's slice), in this order.
    """
    table = _table(responses)
    rows_chosen, values, kind = _select(table, rows, period, per_contact)
    chosen = rows_chosen.tolist()
    columns = table.columns
    if kind is None:
        kind = _kind_codes(map(columns["survey_type"].__getitem__, chosen), len(chosen))
    v = np.fromiter(values, dtype=np.float64, count=len(values))  # all rated: _select keeps answers with a value
    group = _groups(kind, v, np.ones(len(values), dtype=bool))
    groups: dict[str, dict[str, int]] = {}
    grouped = group >= 0
    present = {name: np.flatnonzero(grouped & (kind == code)) for name, code in _KINDS.items()}
    # Survey types in the order of their first grouped answer: the order to_dict and the snapshots show.
    for name in sorted((name for name, at in present.items() if at.size), key=lambda name: present[name][0]):
        counts = np.bincount(group[present[name]], minlength=len(GROUPS))
        groups[name] = {g: int(counts[i]) for i, g in enumerate(GROUPS)}
    # NPS counted in numpy (whole-number ratings compare exactly as floats); CSAT and CES through their
    # functions on the (few) ratings of their type.
    nps_values = v[kind == _KINDS["NPS"]]
    promoters = int(np.count_nonzero(nps_values >= 9))
    detractors = int(np.count_nonzero(nps_values <= 6))
    by_type = {name: list(map(values.__getitem__, np.flatnonzero(kind == _KINDS[name]).tolist()))
               for name in ("CSAT", "CES")}
    return SurveySummary(
        nps=100.0 * (promoters - detractors) / nps_values.size if nps_values.size else None,
        nps_responses=int(nps_values.size),
        promoters=promoters,
        passives=int(np.count_nonzero((nps_values >= 7) & (nps_values <= 8))),
        detractors=detractors,
        csat=csat(by_type["CSAT"], csat_scale),
        csat_responses=len(by_type["CSAT"]),
        ces_mean=ces_mean(by_type["CES"]),
        ces_easy_pct=ces_easy_pct(by_type["CES"]),
        ces_responses=len(by_type["CES"]),
        hubspot_groups=groups,
        group_check=_group_check(table, chosen, group, 20),
    )


@dataclass(frozen=True)
class CustomerSurveys:
    """One customer's answers of one survey type up to a date, oldest first."""

    history: tuple[tuple[datetime, int], ...]

    @property
    def latest(self) -> int | None:
        return self.history[-1][1] if self.history else None

    @property
    def previous(self) -> int | None:
        return self.history[-2][1] if len(self.history) > 1 else None

    @property
    def trend(self) -> int | None:
        if self.latest is None or self.previous is None:
            return None
        return self.latest - self.previous


def customer_surveys(
    responses: Iterable[FeedbackResponse], as_of: datetime
) -> dict[str, dict[str, CustomerSurveys]]:
    """Per customer and survey type (NPS/CSAT/CES/…), the answers submitted up to ``as_of``."""
    grouped: dict[str, dict[str, list[tuple[datetime, str, int]]]] = {}
    for r in responses:
        if r.customer_id is None or r.value is None or r.submitted_at is None or r.submitted_at > as_of:
            continue
        kinds = grouped.setdefault(r.customer_id, {})
        kinds.setdefault(r.survey_type.upper(), []).append((r.submitted_at, r.id, r.value))
    return {
        cid: {kind: CustomerSurveys(tuple((t, v) for t, _, v in sorted(rows))) for kind, rows in kinds.items()}
        for cid, kinds in grouped.items()
    }
