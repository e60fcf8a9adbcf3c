"""Survey metrics: NPS, CSAT, CES for the portfolio and per customer, cross-checked with HubSpot's groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from operator import eq, ge, le
from typing import Iterable, Literal, Sequence

import polars as pl

from connector.metrics.periods import Period
from connector.model import FeedbackResponse
from connector.model.frames import frames_of_rows

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


# ---------------------------------------------------------------- on the feedback frame
# The survey figures read the model's feedback frame (a month of a million customers' answers is ~100,000 rows: no
# object per answer). Objects handed in (tests, small lists) are made a frame first, so there is one implementation.

Responses = Iterable[FeedbackResponse] | pl.DataFrame
_KIND = pl.col("survey_type").str.to_uppercase()


def _frame(responses: Responses) -> pl.DataFrame:
    if isinstance(responses, pl.DataFrame):
        return responses
    return frames_of_rows({}, (), (), (), list(responses), {}).feedback


def _group(kind: pl.Expr, value: pl.Expr) -> pl.Expr:
    """``hubspot_response_group`` of each answer, as an expression (null for none)."""
    def bands(promoter: int, passive: int) -> pl.Expr:
        return (pl.when(value >= promoter).then(pl.lit("PROMOTER"))
                .when(value >= passive).then(pl.lit("PASSIVE")).otherwise(pl.lit("DETRACTOR")))

    csat = value.replace_strict({2: "PROMOTER", 1: "PASSIVE", 0: "DETRACTOR"}, default=None, return_dtype=pl.String)
    return (pl.when(value.is_null()).then(None).when(kind == "NPS").then(bands(9, 7))
            .when(kind == "CES").then(bands(6, 4)).when(kind == "CSAT").then(csat))


def _group_check(answers: pl.DataFrame, keep_ids: int) -> GroupCheck:
    """Our group (``_group``) against HubSpot's stored one, upper-cased (any other text differs)."""
    ours, theirs = pl.col("_group"), pl.col("response_group").str.to_uppercase()
    missing = ours.is_not_null() & theirs.is_null()
    checked = ours.is_not_null() & theirs.is_not_null()
    differs = checked & (ours != theirs)
    counts = answers.select(checked.sum().alias("checked"), differs.sum().alias("differs"),
                            missing.sum().alias("missing")).row(0)
    ids = answers.filter(differs).head(keep_ids)["id"].to_list()
    return GroupCheck(int(counts[0]), int(counts[1]), int(counts[2]), tuple(ids))


def _select(feedback: pl.DataFrame, period: Period | None, per_contact: PerContact) -> pl.DataFrame:
    """The answers select_responses keeps, in their given order: rated, dated, submitted inside ``period``; with
    ``latest`` each respondent's latest answer per survey type (the greatest (time, id), the first of equal ones),
    in first-answer order. An anonymous answer's respondent is ``response:<id>``."""
    if per_contact not in ("all", "latest"):
        raise ValueError(f"unknown per_contact {per_contact!r} (valid: latest, all)")
    keep = pl.col("value").is_not_null() & pl.col("submitted_at").is_not_null()
    if period is not None:
        keep &= (pl.col("submitted_at") >= period.start) & (pl.col("submitted_at") < period.end)
    chosen = feedback.with_row_index("_pos").filter(keep).with_columns(_KIND.alias("_kind"))
    if per_contact == "all" or not chosen.height:
        return chosen
    respondent = pl.when(pl.col("contact_id").is_null() | (pl.col("contact_id") == "")).then(
        pl.lit("response:") + pl.col("id")).otherwise(pl.col("contact_id"))
    latest = (chosen.with_columns(respondent.alias("_respondent"))
              .group_by("_respondent", "_kind", maintain_order=True)
              .agg(pl.col("_pos").sort_by(["submitted_at", "id", "_pos"], descending=[True, True, False]).first()))
    return chosen.join(latest.select("_pos"), on="_pos", how="semi").join(
        latest.select("_pos").with_row_index("_order"), on="_pos").sort("_order").drop("_order")


def cross_check_groups(responses: Responses, *, keep_ids: int = 20) -> GroupCheck:
    feedback = _frame(responses)
    return _group_check(feedback.with_columns(_group(_KIND, pl.col("value")).alias("_group")), keep_ids)


def select_responses(
    responses: Responses,
    period: Period | None = None,
    *,
    per_contact: PerContact = "latest",
) -> list[FeedbackResponse]:
    """Responses submitted inside ``period`` ([start, end)); with ``latest``, one per contact and survey type."""
    given = responses if isinstance(responses, pl.DataFrame) else list(responses)
    positions = _select(_frame(given), period, per_contact)["_pos"].to_list()
    if isinstance(given, list):
        return [given[k] for k in positions]
    return [FeedbackResponse(**row) for row in given[positions].iter_rows(named=True)]


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
) -> SurveySummary:
    """NPS, CSAT, CES of the responses in ``period``; HubSpot's own CSAT is 0/1/2, hence that default here. A frame
    is read in its row order (the order ``latest`` breaks ties in and groups are listed in)."""
    chosen = _select(_frame(responses), period, per_contact)
    chosen = chosen.with_columns(_group(pl.col("_kind"), pl.col("value")).alias("_group"))
    groups: dict[str, dict[str, int]] = {}
    grouped = chosen.filter(pl.col("_group").is_not_null())
    # Survey types in the order of their first grouped answer: the order to_dict and the snapshots show.
    for (kind,), answers in grouped.partition_by("_kind", as_dict=True, maintain_order=True).items():
        counts = dict(answers.group_by("_group").len().iter_rows())
        groups[kind] = {g: int(counts.get(g, 0)) for g in GROUPS}
    by_type = {kind: chosen.filter(pl.col("_kind") == kind)["value"].to_list() for kind in ("NPS", "CSAT", "CES")}
    ratings = by_type["NPS"]
    promoters = sum(1 for v in ratings if v >= 9)
    detractors = sum(1 for v in ratings if v <= 6)
    return SurveySummary(
        nps=nps(ratings),
        nps_responses=len(ratings),
        promoters=promoters,
        passives=len(ratings) - promoters - detractors,
        detractors=detractors,
        csat=csat(by_type["CSAT"], csat_scale),
        csat_responses=len(by_type["CSAT"]),
        ces_mean=ces_mean(by_type["CES"]),
        ces_easy_pct=ces_easy_pct(by_type["CES"]),
        ces_responses=len(by_type["CES"]),
        hubspot_groups=groups,
        group_check=_group_check(chosen, 20),
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
