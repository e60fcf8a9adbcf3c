"""Survey metrics: NPS, CSAT, CES for the portfolio and per customer, cross-checked with HubSpot's groups."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Literal, Sequence

from connector.metrics.periods import Period
from connector.model import FeedbackResponse

CsatScale = Literal["hubspot", "1-5"]
PerContact = Literal["latest", "all"]
GROUPS = ("PROMOTER", "PASSIVE", "DETRACTOR")


def _pct(count: int, total: int) -> float | None:
    return None if not total else 100.0 * count / total


def nps(ratings: Sequence[int]) -> float | None:
    """100 × (#9–10 − #0–6)/#responses; passives count in the denominator (§1.6, E7)."""
    ratings = [r for r in ratings if r is not None]
    promoters = sum(1 for r in ratings if r >= 9)
    detractors = sum(1 for r in ratings if r <= 6)
    return None if not ratings else 100.0 * (promoters - detractors) / len(ratings)


def nps_group(rating: int | None) -> str | None:
    if rating is None:
        return None
    return "promoter" if rating >= 9 else "passive" if rating >= 7 else "detractor"


def csat(ratings: Sequence[int], scale: CsatScale = "1-5") -> float | None:
    """Share of satisfied answers, 0–100: top-2-box (4–5) on 1–5, or value 2 on HubSpot's 0/1/2 scale."""
    ratings = [r for r in ratings if r is not None]
    if scale == "1-5":
        satisfied = sum(1 for r in ratings if r >= 4)
    elif scale == "hubspot":
        satisfied = sum(1 for r in ratings if r == 2)
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
    return _pct(sum(1 for r in ratings if r >= 5), len(ratings))


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


def cross_check_groups(responses: Iterable[FeedbackResponse], *, keep_ids: int = 20) -> GroupCheck:
    checked = mismatches = missing = 0
    ids: list[str] = []
    for response in responses:
        ours = hubspot_response_group(response.survey_type, response.value)
        if ours is None:
            continue
        if response.response_group is None:
            missing += 1
            continue
        checked += 1
        if response.response_group.upper() != ours:
            mismatches += 1
            if len(ids) < keep_ids:
                ids.append(response.id)
    return GroupCheck(checked, mismatches, missing, tuple(ids))


def select_responses(
    responses: Iterable[FeedbackResponse],
    period: Period | None = None,
    *,
    per_contact: PerContact = "latest",
) -> list[FeedbackResponse]:
    """Responses submitted inside ``period`` ([start, end)); with ``latest``, one per contact and survey type."""
    chosen = [
        r for r in responses
        if r.value is not None and r.submitted_at is not None and (period is None or period.contains(r.submitted_at))
    ]
    if per_contact == "all":
        return chosen
    if per_contact != "latest":
        raise ValueError(f"unknown per_contact {per_contact!r} (valid: latest, all)")
    latest: dict[tuple[str, str], FeedbackResponse] = {}
    for r in chosen:
        # Anonymous answers (no contact) are each their own respondent.
        key = (r.contact_id or f"response:{r.id}", r.survey_type.upper())
        seen = latest.get(key)
        if seen is None or (r.submitted_at, r.id) > (seen.submitted_at, seen.id):
            latest[key] = r
    return list(latest.values())


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
    responses: Iterable[FeedbackResponse],
    period: Period | None = None,
    *,
    per_contact: PerContact = "latest",
    csat_scale: CsatScale = "hubspot",
) -> SurveySummary:
    """NPS, CSAT, CES of the responses in ``period``; HubSpot's own CSAT is 0/1/2, hence that default here."""
    chosen = select_responses(responses, period, per_contact=per_contact)
    by_type: dict[str, list[int]] = {"NPS": [], "CSAT": [], "CES": []}
    groups: dict[str, Counter[str]] = {}
    for r in chosen:
        kind = r.survey_type.upper()
        if kind in by_type:
            by_type[kind].append(r.value)
            group = hubspot_response_group(kind, r.value)
            if group is not None:
                groups.setdefault(kind, Counter())[group] += 1
    ratings = by_type["NPS"]
    return SurveySummary(
        nps=nps(ratings),
        nps_responses=len(ratings),
        promoters=sum(1 for v in ratings if v >= 9),
        passives=sum(1 for v in ratings if 7 <= v <= 8),
        detractors=sum(1 for v in ratings if v <= 6),
        csat=csat(by_type["CSAT"], csat_scale),
        csat_responses=len(by_type["CSAT"]),
        ces_mean=ces_mean(by_type["CES"]),
        ces_easy_pct=ces_easy_pct(by_type["CES"]),
        ces_responses=len(by_type["CES"]),
        hubspot_groups={k: {g: c[g] for g in GROUPS} for k, c in groups.items()},
        group_check=cross_check_groups(chosen),
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
