"""Segment tags (pure): lifecycle, NPS group, RFM, playbook tags and custom rules."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping

import numpy as np

from connector.health import feature_columns, iter_feature_rows
from connector.mapping.expression import Predicate, compile_node
from connector.mapping.segments import Rfm, SegmentsConfig, TagRule

Features = Mapping[str, Any]


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _parse_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return _as_date(value)
    return date.fromisoformat(str(value)[:10])


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        return None if math.isnan(number) else number
    return None


# ---------------------------------------------------------------- NPS group


def nps_group(rating: Any) -> str | None:
    """promoter 9-10, passive 7-8, detractor 0-6 (Reichheld); None without a rating."""
    number = _number(rating)
    if number is None:
        return None
    if number >= 9:
        return "promoter"
    if number >= 7:
        return "passive"
    return "detractor"


# ---------------------------------------------------------------- RFM


def id_order(customer_id: str) -> tuple[int, int, str]:
    """Sort key for customer ids: HubSpot's numeric ids numerically, anything else after them as text."""
    return (0, int(customer_id), "") if customer_id.isdigit() else (1, 0, customer_id)


def quantile_bins(values: list[float], bins: int) -> list[int]:
    """0-based quantile bin of each value, as pandas.qcut(values, bins) cuts them.

    Edges are the linear-interpolation quantiles; a value lands in the first bin whose upper edge it does
    not exceed (right-closed bins, lowest edge included). Tied edges leave a bin empty instead of failing.
    """
    array = np.asarray(values, dtype=float)
    edges = np.quantile(array, np.linspace(0.0, 1.0, bins + 1))
    return np.searchsorted(edges[1:-1], array, side="left").tolist()


def rfm_scores(features: Mapping[str, Features], rfm: Rfm) -> dict[str, dict[str, Any]]:
    """customer_id -> {r, f, m, code, segment (label), segment_id} for customers with recency, frequency, monetary.

    R = quintile of recency_days reversed (most recent = 5); F = quintile of the frequency rank with ties broken
    by customer id (rank(method="first") after sorting by id); M = quintile of monetary. Fewer than
    ``min_customers`` customers with all three: no scores.
    """
    rows: list[tuple[str, float, float, float]] = []
    ids, columns = feature_columns(features, ("recency_days", "frequency", "monetary"))
    for customer_id, *values in zip(ids, *columns):
        recency, frequency, monetary = (_number(v) for v in values)
        if recency is not None and frequency is not None and monetary is not None:
            rows.append((customer_id, recency, frequency, monetary))
    if len(rows) < rfm.min_customers:
        return {}
    rows.sort(key=lambda r: id_order(r[0]))
    bins = rfm.bins
    r_bins = quantile_bins([r[1] for r in rows], bins)
    m_bins = quantile_bins([r[3] for r in rows], bins)
    # rank(method="first"): position after a stable sort by frequency of the id-ordered rows
    order = sorted(range(len(rows)), key=lambda i: rows[i][2])
    ranks = [0.0] * len(rows)
    for rank, i in enumerate(order, start=1):
        ranks[i] = float(rank)
    f_bins = quantile_bins(ranks, bins)
    result: dict[str, dict[str, Any]] = {}
    by_code: dict[tuple[int, int, int], dict[str, Any]] = {}  # at most bins**3 distinct rows: share them
    for (customer_id, *_), rb, fb, mb in zip(rows, r_bins, f_bins, m_bins):
        key = (bins - rb, fb + 1, mb + 1)
        scores = by_code.get(key)
        if scores is None:
            r, f, m = key
            cell = rfm.cell(r, f)
            scores = by_code[key] = {"r": r, "f": f, "m": m, "code": f"{r}{f}{m}", "segment": cell.label,
                                     "segment_id": cell.name}
        result[customer_id] = scores
    return result


# ---------------------------------------------------------------- lifecycle and tags


def _compiled(config: SegmentsConfig) -> tuple[list[tuple[str, int, Predicate | None]],
                                               list[tuple[TagRule, Predicate, Predicate | None]]]:
    stages = [(s.name, s.min_runs, compile_node(s.rule) if s.rule is not None else None)
              for s in config.lifecycle.stages]
    tags = [(t, compile_node(t.rule), compile_node(t.exit_rule) if t.exit_rule is not None else None)
            for t in config.tags()]
    return stages, tags


def _next_lifecycle(
    raw: str, memory: Mapping[str, Any] | None, min_runs: dict[str, int], today: str
) -> dict[str, Any]:
    """Move to the rule's stage, unless it needs more runs in a row first (hysteresis)."""
    if not memory or memory.get("stage") is None or memory["stage"] not in min_runs or memory["stage"] == raw:
        same = bool(memory) and memory.get("stage") == raw
        since = memory.get("since") if same and memory else today
        return {"stage": raw, "since": since, "pending": None}
    pending = memory.get("pending") or {}
    runs = int(pending.get("runs", 0)) + 1 if pending.get("stage") == raw else 1
    if runs >= min_runs[raw]:
        return {"stage": raw, "since": today, "pending": None}
    return {"stage": memory["stage"], "since": memory.get("since"), "pending": {"stage": raw, "runs": runs}}


def _next_tag(
    tag: TagRule, wanted: bool, memory: Mapping[str, Any] | None, first_run: bool, as_of: date, today: str,
) -> dict[str, Any] | None:
    """The tag's state after this run given the rule's outcome; None when it is off with nothing to remember.

    State: on, since (date it last changed), streak (runs in a row the outcome has differed, for min_runs),
    last_entered (kept only for a cooldown).
    """
    was_on = bool(memory and memory.get("on"))
    last_entered = memory.get("last_entered") if memory else None
    if wanted and not was_on and tag.cooldown_days and last_entered:
        if (as_of - _parse_date(last_entered)).days < tag.cooldown_days:  # type: ignore[operator]
            wanted = False
    state = {"on": was_on, "since": memory.get("since") if memory else None, "streak": 0}
    if first_run:
        state["on"] = wanted
        state["since"] = today if wanted else None
        if wanted:
            last_entered = today
    elif wanted != was_on:
        streak = int(memory.get("streak", 0)) + 1 if memory else 1
        if streak >= tag.min_runs:
            state["on"] = wanted
            state["since"] = today
            if wanted:
                last_entered = today
        else:
            state["streak"] = streak
    if tag.cooldown_days and last_entered:
        state["last_entered"] = last_entered
    if not state["on"] and not state["streak"] and "last_entered" not in state:
        return None
    return state


def customer_segments(
    features: Mapping[str, Features],
    config: SegmentsConfig,
    as_of: date | datetime,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    health: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """customer_id -> segments result (JSON-serialisable).

    ``health`` is ``health.health_features(...)`` per customer, laid over ``features`` (which may instead hold
    the health_* values already); ``previous`` is last run's result per customer (its ``memory`` drives
    hysteresis and re-engagement). Result keys: lifecycle, lifecycle_since, previous_lifecycle, nps_group,
    rfm ({r, f, m, code, segment, segment_id} or None), tags (sorted), entered / left (tags that changed this
    run), memory (to snapshot and pass back next run).
    """
    day = _as_date(as_of)
    today = day.isoformat()  # one string object for every date written this run
    previous = previous or {}
    stages, tags = _compiled(config)
    min_runs = {name: runs for name, runs, _ in stages}
    rfm = rfm_scores(features, config.rfm)
    results: dict[str, dict[str, Any]] = {}
    health = health or {}
    no_memory: dict[str, Any] = {}
    for customer_id, row in iter_feature_rows(features):
        before = previous.get(customer_id)
        memory = (before.get("memory") if before else None) or no_memory
        life_memory = memory.get("lifecycle")
        scores = rfm.get(customer_id)
        group = nps_group(row.get("nps_latest"))
        previous_stage = life_memory.get("stage") if life_memory else None
        since = _parse_date(life_memory.get("since")) if life_memory else None
        # one flat dict per customer: the compiled rules read it with dict.get (C speed)
        context = dict(row)
        overlay = health.get(customer_id)
        if overlay:
            context.update(overlay)
        context["nps_group"] = group
        context["previous_lifecycle"] = previous_stage
        context["previous_lifecycle_days"] = (day - since).days if since else None
        if scores:
            context["rfm_r"], context["rfm_f"], context["rfm_m"] = scores["r"], scores["f"], scores["m"]
            context["rfm_code"], context["rfm_segment"] = scores["code"], scores["segment_id"]
        else:
            context["rfm_r"] = context["rfm_f"] = context["rfm_m"] = context["rfm_code"] = context["rfm_segment"] = None
        raw = next(name for name, _, predicate in stages if predicate is None or predicate(context))
        life = _next_lifecycle(raw, life_memory, min_runs, today)
        context["lifecycle"] = life["stage"]

        first_run = before is None
        tag_memory = memory.get("tags") or no_memory
        new_tag_memory: dict[str, Any] = {}
        on: list[str] = []
        for tag, enter, leave in tags:
            name = tag.name
            state = tag_memory.get(name)
            was_on = state is not None and state.get("on") is True
            wanted = (not leave(context)) if was_on and leave is not None else enter(context)
            if first_run or wanted != was_on or (state is not None and state.get("streak")):
                state = _next_tag(tag, wanted, state, first_run, day, today)
            # else: nothing changed, the remembered state stands as it is
            if state is not None:
                new_tag_memory[name] = state
                if state["on"]:
                    on.append(name)
        on.sort()
        before_tags = (before.get("tags") or ()) if before else ()
        if before_tags == on or (not before_tags and not on):
            entered: list[str] = []
            left: list[str] = []
        else:
            entered = sorted(set(on).difference(before_tags))
            left = sorted(set(before_tags).difference(on))
        results[customer_id] = {
            "lifecycle": life["stage"],
            "lifecycle_since": life["since"],
            "previous_lifecycle": previous_stage,
            "nps_group": group,
            "rfm": scores,
            "tags": on,
            "entered": entered,
            "left": left,
            "memory": {"lifecycle": life, "tags": new_tag_memory},
        }
    return results


def segment_features(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Flat per-customer fields the write-back publishes: lifecycle, nps_group, rfm_code, rfm_segment, tags."""
    return {
        customer_id: {
            "lifecycle": r["lifecycle"],
            "nps_group": r["nps_group"],
            "rfm_code": r["rfm"]["code"] if r["rfm"] else None,
            "rfm_segment": r["rfm"]["segment_id"] if r["rfm"] else None,
            "tags": list(r["tags"]),
        }
        for customer_id, r in results.items()
    }


def segment_distribution(
    results: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Mapping[str, Any]] | None,
    config: SegmentsConfig,
) -> dict[str, Any]:
    """Counts per lifecycle stage, tag, NPS group and RFM segment, with their change since the previous run."""

    def count(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {
            "lifecycle": {name: 0 for name in config.lifecycle.names()},
            "tags": {t.name: 0 for t in config.tags()},
            "nps_group": {"promoter": 0, "passive": 0, "detractor": 0},
            "rfm": {c.label: 0 for c in config.rfm.grid},
        }
        for r in rows.values():
            stage = r.get("lifecycle")
            if stage is not None:
                out["lifecycle"][stage] = out["lifecycle"].get(stage, 0) + 1
            for tag in r.get("tags") or ():
                out["tags"][tag] = out["tags"].get(tag, 0) + 1
            if r.get("nps_group"):
                out["nps_group"][r["nps_group"]] = out["nps_group"].get(r["nps_group"], 0) + 1
            if r.get("rfm"):
                label = r["rfm"]["segment"]
                out["rfm"][label] = out["rfm"].get(label, 0) + 1
        return out

    now = count(results)
    result: dict[str, Any] = dict(now)
    result["customers"] = len(results)
    if previous:
        before = count(previous)
        result["changes"] = {
            family: {key: value - before[family].get(key, 0) for key, value in counts.items()}
            for family, counts in now.items()
        }
    else:
        result["changes"] = {}
    return result
