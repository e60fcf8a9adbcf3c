"""Health score (pure): weighted components, bands, trend and a one-line explanation."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Mapping

from connector.mapping.expression import Predicate, compile_node
from connector.mapping.health import Component, HealthConfig, Scorecard, explain_template

Features = Mapping[str, Any]


def iter_feature_rows(features: Mapping[str, Features]) -> Iterator[tuple[str, Features]]:
    """(customer_id, row) pairs; uses a columnar table's chunked fast path when it has one (metrics.FeatureTable)."""
    fast = getattr(features, "iter_rows", None)
    return fast() if callable(fast) else iter(features.items())


def feature_columns(features: Mapping[str, Features], names: Iterable[str]) -> tuple[list[str], list[list[Any]]]:
    """(customer ids, one value list per name) without building every row when the table is columnar."""
    names = list(names)
    ids = getattr(features, "customer_ids", None)
    column = getattr(features, "column", None)
    columns = getattr(features, "columns", None)
    if ids is not None and callable(column) and isinstance(columns, Mapping):
        return list(ids), [column(n) if n in columns else [None] * len(ids) for n in names]
    ids = list(features)
    return ids, [[features[c].get(n) for c in ids] for n in names]


# Floating-point sums such as 0.4*75 + 0.2*60 land a hair off the exact value; this keeps "67.5" rounding up.
_EPS = 1e-9


def round_half_up(value: float) -> int:
    """67.5 -> 68, 67.4999 -> 67 (Python's round() would send 66.5 to 66)."""
    return int(math.floor(value + 0.5 + _EPS))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        return None if math.isnan(number) else number
    return None


def _clamp(value: float) -> float:
    return 0.0 if value < 0 else 100.0 if value > 100 else value


def normalise(component: Component, value: Any) -> float | None:
    """One component's 0-100 score from its raw feature value (None when the value is missing or unusable).

    Percentile components are ranked against the population in ``health_scores``; here they return None.
    """
    apply = _normaliser(component)
    return None if apply is None else apply(value)


def _normaliser(component: Component) -> Callable[[Any], float | None] | None:
    """The component's value -> 0-100 function, specialised once per run (it runs for every customer)."""
    method = component.method
    if method == "percentile":
        return None
    if method == "bool":
        if_true, if_false = float(component.if_true), float(component.if_false)  # type: ignore[arg-type]
        return lambda v: if_true if v is True else if_false if v is False else None
    if method == "target_ratio":
        factor = 100.0 / component.target  # type: ignore[operator]
        curve: Callable[[float], float] = lambda x: x * factor
    elif method == "inverse":
        k = float(component.k)  # type: ignore[arg-type]
        curve = lambda x: 100.0 - k * x
    elif method == "linear_decay":
        days = float(component.days)  # type: ignore[arg-type]
        curve = lambda x: 100.0 * (1.0 - x / days)
    elif component.scale == "nps":
        curve = lambda x: x * 10.0
    elif component.scale == "csat":
        curve = lambda x: x
    else:  # ces on 1-7
        curve = lambda x: (x - 1.0) / 6.0 * 100.0

    def apply(value: Any) -> float | None:
        cls = value.__class__
        if cls is float:
            if value != value:  # NaN
                return None
        elif cls is not int:
            value = _number(value)
            if value is None:
                return None
        result = curve(value)
        return 0.0 if result < 0 else 100.0 if result > 100 else float(result)

    return apply


# ---------------------------------------------------------------- percentile within a peer group


def _midrank_percentiles(values: list[float]) -> dict[float, float]:
    """value -> percentile among ``values``: lowest 0, highest 100, ties share their mid rank."""
    ordered = sorted(values)
    n = len(ordered)
    if n < 2:
        return {}
    result: dict[float, float] = {}
    for value in set(ordered):
        less = bisect_left(ordered, value)
        equal = bisect_right(ordered, value) - less
        result[value] = 100.0 * (less + 0.5 * (equal - 1)) / (n - 1)
    return result


def peer_percentiles(features: Mapping[str, Features], component: Component,
                     members: set[str] | None = None) -> dict[str, float]:
    """customer_id -> percentile of the component's feature among peers (same ``peer`` value).

    Only ``members`` are ranked (those the scorecard scores; default everyone). Customers without a peer
    value, and peer groups smaller than ``min_peers``, are ranked among all members, so a two-company industry
    does not hand out 0 and 100.
    """
    peer, min_peers, higher_is_better = component.percentile_settings()
    ids, (raw_values, peer_values) = feature_columns(features, [component.feature, peer or component.feature])
    values: dict[str, float] = {}
    groups: dict[Any, list[str]] = {}
    for customer_id, raw, peer_value in zip(ids, raw_values, peer_values):
        number = _number(raw)
        if number is None or (members is not None and customer_id not in members):
            continue
        values[customer_id] = number
        key = peer_value if peer else None
        groups.setdefault(key, []).append(customer_id)
    everyone = _midrank_percentiles(list(values.values()))
    result: dict[str, float] = {}
    for key, members in groups.items():
        if key is None or len(members) < min_peers:
            table = everyone
        else:
            table = _midrank_percentiles([values[m] for m in members])
        for member in members:
            pct = table.get(values[member])
            if pct is not None:
                result[member] = pct if higher_is_better else 100.0 - pct
    return result


# ---------------------------------------------------------------- explanation


def _format_raw(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = _number(value)
    if number is None:
        return "n/a" if value is None else str(value)
    if number.is_integer():
        return str(int(number))
    return f"{number:.2f}".rstrip("0").rstrip(".")


def format_age(days: Any) -> str:
    """A day count as a coarse age ("2 weeks", "3 months"): an explanation that names it changes weekly at most,
    not every day, so the CRM property is not rewritten daily while nothing else moved."""
    number = _number(days)
    if number is None:
        return "n/a"
    whole = int(number)
    if whole < 7:
        return "under a week"
    if whole < 30:
        weeks = whole // 7
        return f"{weeks} week{'s' if weeks > 1 else ''}"
    if whole < 365:
        months = whole // 30
        return f"{months} month{'s' if months > 1 else ''}"
    years = whole // 365
    return f"{years} year{'s' if years > 1 else ''}"


def _fit(pieces: Iterable[str], max_length: int, separator: str = ", ") -> str:
    """Join pieces while the whole stays within max_length; a first piece too long is cut with an ellipsis."""
    text = ""
    for piece in pieces:
        candidate = piece if not text else text + separator + piece
        if len(candidate) <= max_length:
            text = candidate
        elif not text:
            return piece[: max_length - 1] + "…"
        else:
            break
    return text


class _Part:
    """One component prepared for a run: its normaliser, weight and explanation template."""

    __slots__ = ("name", "feature", "weight", "normalise", "percentiles", "template", "placeholders")

    def __init__(self, component: Component, percentiles: dict[str, float] | None):
        self.name = component.name
        self.feature = component.feature
        self.weight = float(component.weight)
        self.normalise = _normaliser(component)
        self.percentiles = percentiles
        self.template = explain_template(component)
        self.placeholders = [p for p in ("{name}", "{raw}", "{score}", "{s}", "{age}") if p in self.template]

    def render(self, raw: Any, score: float) -> str:
        # Only the documented placeholders, substituted literally: no str.format on admin text.
        text = self.template
        for placeholder in self.placeholders:
            if placeholder == "{name}":
                value = self.name
            elif placeholder == "{raw}":
                value = _format_raw(raw)
            elif placeholder == "{score}":
                value = str(round_half_up(score))
            elif placeholder == "{age}":
                value = format_age(raw)
            else:
                value = "" if _number(raw) == 1 else "s"
            text = text.replace(placeholder, value)
        return text


def explain(parts: list[_Part] | None, entries: list[tuple[_Part, Any, float | None, float]], score: int | None,
            coverage: float, config: HealthConfig) -> str:
    """The one line a CSM reads: the components that cost the most points, weakest first."""
    limit = config.explanation.max_length
    if parts is None:
        return _fit(["no scorecard applies"], limit)
    if score is None:
        missing = [part.name for part, _, value, _ in entries if value is None]
        return _fit([f"not enough data ({round_half_up(coverage * 100)}% of weight): missing " + ", ".join(missing)],
                    limit)
    lost = []
    for part, raw, value, share in entries:
        if value is None:
            continue
        points = round(share * (100.0 - value), 6)  # ties (E8: 10 and 10) go by name, not by float noise
        if points > 0.005:
            lost.append((-points, part.name, part, raw, value))
    if not lost:
        return _fit(["all components at 100/100"], limit)
    lost.sort(key=lambda item: (item[0], item[1]))
    return _fit([part.render(raw, value) for _, _, part, raw, value in lost[: config.explanation.components]], limit)


# ---------------------------------------------------------------- score


def _json_value(value: Any) -> Any:
    if value is None or value.__class__ in (int, float, bool, str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _trend(score: int | None, previous: Mapping[str, Any] | None, tolerance: float) -> tuple[str | None, int | None]:
    before = previous.get("score") if previous else None
    if score is None or before is None:
        return None, None
    change = score - int(before)
    if change > tolerance:
        return "up", change
    if change < -tolerance:
        return "down", change
    return "flat", change


def select_scorecard(row: Features, cards: list[tuple[Scorecard, Predicate | None]]) -> Scorecard | None:
    for card, predicate in cards:
        if predicate is None or predicate(row):
            return card
    return None


def health_scores(
    features: Mapping[str, Features],
    config: HealthConfig,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """customer_id -> health result (JSON-serialisable), given every customer's features and last run's results.

    Result keys: score (int 0-100, or None below the coverage minimum), band, scorecard (name), coverage (share
    of the scorecard's weight with a value), components ``{name: [raw value, normalised 0-100, weight]}`` where
    weight is the component's share of the score after re-weighting (0 when missing; lists, not dicts, keep a
    million snapshots small), trend (up | down | flat; None on the first run), change (points since the last
    run) and explanation.
    """
    previous = previous or {}
    cards = [(card, compile_node(card.rule) if card.rule is not None else None) for card in config.scorecards]
    # Percentiles rank a customer among the customers of its own scorecard (churned accounts with no logins
    # must not lift everyone else's usage rank), so those scorecards are chosen in a first pass.
    ranked = any(c.method == "percentile" for card in config.scorecards for c in card.components)
    chosen: dict[str, Scorecard | None] = {}
    if ranked:
        chosen = {cid: select_scorecard(row, cards) for cid, row in iter_feature_rows(features)}
    plans: dict[str, tuple[list[_Part], float]] = {}
    for card in config.scorecards:
        members = {cid for cid, c in chosen.items() if c is card} if ranked else None
        parts = [_Part(c, peer_percentiles(features, c, members) if c.method == "percentile" else None)
                 for c in card.components]
        plans[card.name] = (parts, sum(p.weight for p in parts))
    coverage_min = config.coverage_min - _EPS
    tolerance = config.trend.tolerance

    results: dict[str, dict[str, Any]] = {}
    shared: dict[float, float] = {}
    for customer_id, row in iter_feature_rows(features):
        card = chosen[customer_id] if ranked else select_scorecard(row, cards)
        coverage = 0.0
        score: int | None = None
        components: dict[str, list[Any]] = {}
        entries: list[tuple[_Part, Any, float | None, float]] = []
        parts: list[_Part] | None = None
        if card is not None:
            parts, total = plans[card.name]
            present = 0.0
            weighted = 0.0
            values: list[tuple[_Part, Any, float | None]] = []
            for part in parts:
                raw = row.get(part.feature)
                if part.normalise is None:
                    value = part.percentiles.get(customer_id) if part.percentiles is not None else None
                else:
                    value = part.normalise(raw)
                values.append((part, raw, value))
                if value is not None:
                    present += part.weight
                    weighted += part.weight * value
            coverage = present / total
            scored = present > 0 and coverage >= coverage_min
            if scored:
                score = round_half_up(_clamp(weighted / present))
            for part, raw, value in values:
                share = part.weight / present if scored and value is not None else 0.0
                # a million snapshots repeat the same few shares, 0 and 100: keep one float object of each
                share = shared.setdefault(share, share)
                if value == 0.0 or value == 100.0:
                    value = shared.setdefault(value, value)
                entries.append((part, raw, value, share))
                components[part.name] = [_json_value(raw), value, share]
            coverage = shared.setdefault(coverage, coverage)
        before = previous.get(customer_id)
        trend, change = _trend(score, before, tolerance)
        results[customer_id] = {
            "score": score,
            "band": config.sticky_band(score, before.get("band") if before else None),
            "scorecard": card.name if card else None,
            "coverage": coverage,
            "components": components,
            "trend": trend,
            "change": change,
            "explanation": explain(parts, entries, score, coverage, config),
        }
    return results


def health_features(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The health_* features segments read, plus the explanation and scorecard the write-back can publish."""
    return {
        customer_id: {
            "health_score": r["score"],
            "health_band": r["band"],
            "health_change": r["change"],
            "health_trend": r["trend"],
            "health_explanation": r["explanation"],
            "health_scorecard": r["scorecard"],
        }
        for customer_id, r in results.items()
    }


def health_distribution(
    results: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Mapping[str, Any]] | None,
    band_labels: list[str],
) -> dict[str, Any]:
    """Counts per band (plus "unscored"), their change since the previous run and the average score."""

    def count(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
        counts = {label: 0 for label in band_labels}
        for r in rows.values():
            key = r.get("band") or "unscored"
            counts[key] = counts.get(key, 0) + 1
        return counts

    now = count(results)
    before = count(previous or {})
    if not now.get("unscored") and not before.get("unscored"):
        now.pop("unscored", None)
    scores = [r["score"] for r in results.values() if r.get("score") is not None]
    return {
        "bands": now,
        "changes": {label: now[label] - before.get(label, 0) for label in now} if previous else {},
        "average": round(sum(scores) / len(scores), 2) if scores else None,
        "customers": len(results),
    }


# ---------------------------------------------------------------- backtest


def backtest_auc(scores: Mapping[str, float | None], churned: set[str]) -> float:
    """ROC AUC of "low health predicts churn": P(a churned customer scored below a retained one), ties count half.

    Customers without a score are left out. 1.0 = every churned customer scored below every retained one,
    0.5 = no signal. Mann-Whitney U on mid-ranks: O(n log n).
    """
    pairs = [(float(s), cid in churned) for cid, s in scores.items() if s is not None]
    positives = sum(1 for _, is_churned in pairs if is_churned)
    negatives = len(pairs) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC needs churned and retained customers with a score "
                         f"(have {positives} churned, {negatives} retained)")
    # Rank by risk = -score: ascending score order means descending risk, so rank on -score.
    ordered = sorted(pairs, key=lambda p: -p[0])
    rank_sum = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][0] == ordered[i][0]:
            j += 1
        midrank = (i + j) / 2 + 1  # 1-based mid rank of the tie block
        rank_sum += midrank * sum(1 for k in range(i, j + 1) if ordered[k][1])
        i = j + 1
    u = rank_sum - positives * (positives + 1) / 2
    return u / (positives * negatives)
