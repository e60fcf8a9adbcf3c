"""Segment tags (pure): lifecycle, NPS group, RFM, playbook tags and custom rules, over the feature frame."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from itertools import chain
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import polars as pl

from connector.health import FEATURE_NAMES, ID, feature_frame, one_value
from connector.mapping.expression import DTYPES, rule_expr, rule_names
from connector.mapping.segments import TAG_KINDS, Rfm, SegmentsConfig

Features = Mapping[str, Any]
# Names the segments stage computes itself; rules read them, features do not provide them.
_DERIVED = {"nps_group", "previous_lifecycle", "previous_lifecycle_days", "rfm_r", "rfm_f", "rfm_m", "rfm_code",
            "rfm_segment", "lifecycle"}
# The segment frame's columns (plus the RFM label, for distributions and the dict view).
RESULT_COLUMNS = ("lifecycle", "lifecycle_since", "previous_lifecycle", "nps_group", "rfm_r", "rfm_f", "rfm_m",
                  "rfm_code", "rfm_segment", "rfm_label", "tags", "entered", "left", "memory")


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _days_since(day: date, text: pl.Expr) -> pl.Expr:
    """Whole days from an ISO date (the first 10 characters of a remembered timestamp) to ``day``."""
    return (pl.lit(day) - text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)).dt.total_days()


# ---------------------------------------------------------------- NPS group


def _nps_group(rating: pl.Expr) -> pl.Expr:
    return (pl.when(rating >= 9).then(pl.lit("promoter")).when(rating >= 7).then(pl.lit("passive"))
            .when(rating.is_not_null()).then(pl.lit("detractor")).otherwise(pl.lit(None, dtype=pl.String)))


def nps_group(rating: Any) -> str | None:
    """promoter 9-10, passive 7-8, detractor 0-6 (Reichheld); None without a rating."""
    return one_value(_nps_group(pl.col("x")), rating, "number")


# ---------------------------------------------------------------- RFM


def _id_keys(ids: pl.Expr) -> list[pl.Expr]:
    """Sort keys for customer ids: HubSpot's numeric ids numerically (as digit strings without leading zeros,
    shorter first), anything else after them as text."""
    digits = ids.str.contains(r"^[0-9]+$")
    number = ids.str.strip_chars_start("0")
    return [~digits, pl.when(digits).then(number.str.len_chars()).otherwise(0),
            pl.when(digits).then(number).otherwise(pl.lit("")), pl.when(digits).then(pl.lit("")).otherwise(ids)]


def id_order(customer_id: str) -> tuple[Any, ...]:
    """The sort key of one customer id (numeric ids numerically, anything else after them as text)."""
    frame = pl.DataFrame({ID: [customer_id]})
    return frame.select([k.alias(str(i)) for i, k in enumerate(_id_keys(pl.col(ID)))]).row(0)


def _bins(values: np.ndarray, bins: int) -> np.ndarray:
    if not values.size:
        return values.astype(np.int64)
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    return np.searchsorted(edges[1:-1], values, side="left")


def quantile_bins(values: Any, bins: int) -> list[int]:
    """0-based quantile bin of each value, as pandas.qcut(values, bins) cuts them.

    Edges are the linear-interpolation quantiles; a value lands in the first bin whose upper edge it does
    not exceed (right-closed bins, lowest edge included). Tied edges leave a bin empty instead of failing.
    """
    return _bins(np.asarray(values, dtype=float), bins).tolist()


def _rfm(frame: pl.DataFrame, rfm: Rfm) -> pl.DataFrame:
    """customer_id, rfm_r, rfm_f, rfm_m, rfm_code, rfm_segment (grid name), rfm_label for the customers with recency,
    frequency and monetary. R = quintile of recency_days reversed (most recent = 5); F = quintile of the frequency
    rank with ties broken by customer id (rank(method="first") after sorting by id); M = quintile of monetary.
    Fewer than ``min_customers`` such customers: no one is scored."""
    rows = frame.select(ID, "recency_days", "frequency", "monetary").drop_nulls()
    rows = rows.sort(_id_keys(pl.col(ID)), maintain_order=True) if rows.height >= rfm.min_customers else rows.clear()
    bins = rfm.bins
    scores = pl.DataFrame({
        ID: rows[ID],
        "rfm_r": bins - _bins(rows["recency_days"].cast(pl.Float64).to_numpy(), bins),
        "rfm_f": _bins(rows["frequency"].rank("ordinal").cast(pl.Float64).to_numpy(), bins) + 1,
        "rfm_m": _bins(rows["monetary"].cast(pl.Float64).to_numpy(), bins) + 1,
    }, schema={ID: pl.String, "rfm_r": pl.Int64, "rfm_f": pl.Int64, "rfm_m": pl.Int64})
    grid = pl.DataFrame([(r, f, cell.name, cell.label) for cell in rfm.grid
                         for r in range(cell.r[0], cell.r[1] + 1) for f in range(cell.f[0], cell.f[1] + 1)],
                        schema={"rfm_r": pl.Int64, "rfm_f": pl.Int64, "rfm_segment": pl.String,
                                "rfm_label": pl.String}, orient="row")
    return scores.join(grid, on=["rfm_r", "rfm_f"], how="left", maintain_order="left").with_columns(
        pl.concat_str(["rfm_r", "rfm_f", "rfm_m"]).alias("rfm_code"))


def _rfm_dicts(rows: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """customer_id -> {r, f, m, code, segment (label), segment_id}; one shared dict per code."""
    by_code: dict[str, dict[str, Any]] = {}
    for code, r, f, m, name, label in rows.select("rfm_code", "rfm_r", "rfm_f", "rfm_m", "rfm_segment",
                                                  "rfm_label").unique("rfm_code").iter_rows():
        by_code[code] = {"r": r, "f": f, "m": m, "code": code, "segment": label, "segment_id": name}
    return {cid: by_code[code] for cid, code in rows.select(ID, "rfm_code").iter_rows() if code is not None}


def rfm_scores(features: Any, rfm: Rfm) -> dict[str, dict[str, Any]]:
    """customer_id -> {r, f, m, code, segment (label), segment_id} for customers with recency, frequency, monetary."""
    frame = feature_frame(features, {n: "number" for n in ("recency_days", "frequency", "monetary")})
    return _rfm_dicts(_rfm(frame, rfm))


# ---------------------------------------------------------------- lifecycle and tags


def _overlay(frame: pl.DataFrame, health: Any, kinds: Mapping[str, str]) -> pl.DataFrame:
    """The health stage's values laid over the features: a customer's value from ``health`` replaces the
    feature's (a dict row without a key keeps the feature's). ``health`` is a frame with customer_id and
    health_* columns (or the health frame's own names), or ``{customer_id: {health_*: value}}``."""
    if isinstance(health, pl.DataFrame):
        over = health.rename({k: v for k, v in FEATURE_NAMES.items() if k in health.columns})
        names = [n for n in kinds if n in over.columns]
        over = over.select(ID, *names, *[pl.lit(True).alias(f"_has_{n}") for n in names])
    else:
        rows = list(health.values())
        counts = Counter(chain.from_iterable(rows))  # how many rows hold each key, counted in C
        names = [n for n in kinds if counts[n]]
        over = pl.from_dicts(rows, schema={n: DTYPES[kinds[n]] for n in names}, strict=False) if rows else None
        has = [pl.lit(True).alias(f"_has_{n}") for n in names]
        if any(counts[n] < len(rows) for n in names):  # a row without a key keeps the feature's value
            has = [pl.Series(f"_has_{n}", [n in row for row in rows], dtype=pl.Boolean) for n in names]
        if over is not None:
            over = over.with_columns(has).insert_column(0, pl.Series(ID, list(health), dtype=pl.String))
    if not names:
        return frame
    frame = frame.join(over.rename({n: f"_over_{n}" for n in names}), on=ID, how="left", maintain_order="left")
    return frame.with_columns([pl.when(pl.col(f"_has_{n}")).then(pl.col(f"_over_{n}")).otherwise(pl.col(n)).alias(n)
                               for n in names]).drop([f"_{p}_{n}" for n in names for p in ("has", "over")])


_STATE = pl.Struct({"on": pl.Boolean, "since": pl.String, "streak": pl.Int64, "last_entered": pl.String})
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_PREVIOUS = {ID: pl.String, "_stage": pl.String, "_since": pl.String, "_pending_stage": pl.String,
             "_pending_runs": pl.Int64}


def snapshot_schema(config: SegmentsConfig) -> dict[str, pl.DataType]:
    """The columns of a segments result that the next run reads (tags, memory), as a store decodes a snapshot's
    JSON: ``pl.col("data").str.json_decode(pl.Struct(snapshot_schema(config)))``; segments_frame gives them too."""
    memory = {"lifecycle": pl.Struct({"stage": pl.String, "since": pl.String,
                                      "pending": pl.Struct({"stage": pl.String, "runs": pl.Int64})})}
    if config.tags():
        memory["tags"] = pl.Struct({t.name: _STATE for t in config.tags()})
    return {"tags": pl.List(pl.String), "memory": pl.Struct(memory)}


def _previous_frame(previous: pl.DataFrame, config: SegmentsConfig) -> tuple[pl.DataFrame, list[tuple[str, ...]]]:
    """``_previous`` of last run's results as a frame: customer_id and the columns of ``snapshot_schema``."""
    previous = previous.select(ID, *[pl.col(c).cast(t) for c, t in snapshot_schema(config).items()])
    keys = previous.select(pl.col("tags").list.join("\x1f").fill_null("")).to_series()
    distinct = keys.unique(maintain_order=True)
    life = pl.col("memory").struct.field("lifecycle")
    frame = previous.select(
        ID, pl.lit(True).alias("_seen"), life.struct.field("stage").alias("_stage"),
        life.struct.field("since").alias("_since"),
        life.struct.field("pending").struct.field("stage").alias("_pending_stage"),
        life.struct.field("pending").struct.field("runs").alias("_pending_runs"),
        keys.replace_strict(distinct, pl.int_range(distinct.len(), eager=True), return_dtype=pl.Int64).alias("_before"),
        *[pl.col("memory").struct.field("tags").struct.field(t.name).alias(f"_state{i}")
          for i, t in enumerate(config.tags())])
    return frame, [tuple(key.split("\x1f")) if key else () for key in distinct]


def _previous(previous: Mapping[str, Mapping[str, Any]] | pl.DataFrame | None,
              config: SegmentsConfig) -> tuple[pl.DataFrame, list[tuple[str, ...]]]:
    """Last run's results (as the state store gives them) read into a frame once: _seen, _before (the number of
    the list of tags then on, in the returned list of distinct lists), the lifecycle memory and, per tag, its
    remembered state (a struct, null when nothing is remembered; gathered as long columns, few customers
    remember any). The loop appends values to columns and makes no container per customer: with a million
    snapshots alive, every new dict or tuple brings the garbage collector's full passes nearer."""
    if isinstance(previous, pl.DataFrame):
        return _previous_frame(previous, config)
    tags = config.tags()
    ids, stages, since, pending_stages, pending_runs, before_ids = [], [], [], [], [], []
    states: list[list[Any]] = [[] for _ in range(6)]
    owner, tag, on, state_since, streak, last = states
    before: dict[str, int] = {}  # the distinct lists of tags then on ("\x1f"-joined), numbered
    wanted = {t.name for t in tags}
    for customer_id, result in (previous or _EMPTY).items():
        result = result or _EMPTY
        memory = result.get("memory") or _EMPTY
        life = memory.get("lifecycle") or _EMPTY
        pending = life.get("pending") or _EMPTY
        ids.append(customer_id)
        stages.append(life.get("stage"))
        since.append(life.get("since"))
        pending_stages.append(pending.get("stage"))
        pending_runs.append(pending.get("runs"))
        before_ids.append(before.setdefault("\x1f".join(result.get("tags") or ()), len(before)))
        for name, state in (memory.get("tags") or _EMPTY).items():
            if name in wanted and state is not None:
                owner.append(customer_id)
                tag.append(name)
                on.append(state.get("on"))
                state_since.append(state.get("since"))
                streak.append(state.get("streak"))
                last.append(state.get("last_entered"))
    frame = pl.DataFrame([ids, stages, since, pending_stages, pending_runs], schema=_PREVIOUS, orient="col",
                         strict=False)
    frame = frame.with_columns(pl.lit(True).alias("_seen"), pl.Series("_before", before_ids, dtype=pl.Int64))
    long = pl.DataFrame(states, schema={ID: pl.String, "tag": pl.String, **_STATE.to_schema()}, orient="col",
                        strict=False)
    for i, t in enumerate(tags):
        state = long.filter(pl.col("tag") == t.name).select(ID, pl.struct(*_STATE.to_schema()).alias(f"_state{i}"))
        frame = frame.join(state, on=ID, how="left", maintain_order="left")
    return frame, [tuple(key.split("\x1f")) if key else () for key in before]


def _lifecycle(config: SegmentsConfig, today: str) -> list[pl.Expr]:
    """This run's stage: the rule's, unless it needs more runs in a row first (hysteresis); with since and pending."""
    stages = config.lifecycle.stages
    raw = pl.lit(stages[-1].name)  # the last stage has no rule and takes everyone else
    for stage in reversed(stages[:-1]):
        raw = pl.when(rule_expr(stage.rule)).then(pl.lit(stage.name)).otherwise(raw)
    remembered, since = pl.col("_stage"), pl.col("_since")
    known = remembered.is_in(pl.Series([s.name for s in stages], dtype=pl.String).implode())
    at_once = remembered.is_null() | ~known | (remembered == raw)
    runs = pl.when(pl.col("_pending_stage") == raw).then(pl.col("_pending_runs").fill_null(0) + 1).otherwise(1)
    needed = raw.replace_strict({s.name: s.min_runs for s in stages}, return_dtype=pl.Int64)
    moves = at_once | (runs >= needed)
    return [
        pl.when(moves).then(raw).otherwise(remembered).alias("lifecycle"),
        pl.when(at_once).then(pl.when(remembered == raw).then(since).otherwise(pl.lit(today)))
        .when(moves).then(pl.lit(today)).otherwise(since).alias("lifecycle_since"),
        pl.when(moves).then(None).otherwise(raw).alias("_next_pending_stage"),
        pl.when(moves).then(None).otherwise(runs).alias("_next_pending_runs"),
    ]


def _tag_outcome(index: int, tag: Any, day: date) -> list[pl.Expr]:
    """The tag's rule outcome this run (_wanted: the exit rule while it is on, then a cooldown since it was last
    put on) and whether its remembered state must be worked out again (_changes)."""
    state = pl.col(f"_state{index}")
    was_on, last = state.struct.field("on").eq_missing(True), state.struct.field("last_entered")
    wanted = rule_expr(tag.rule)
    if tag.exit_rule is not None:
        wanted = pl.when(was_on).then(~rule_expr(tag.exit_rule)).otherwise(wanted)
    streaking = state.is_not_null() & (state.struct.field("streak").fill_null(0) != 0)
    changes = pl.col("_seen").is_null() | (wanted != was_on) | streaking
    if tag.cooldown_days:
        recent = last.is_not_null() & (last != "") & (_days_since(day, last) < tag.cooldown_days).fill_null(False)
        wanted = wanted & ~(~was_on & recent)
    return [wanted.alias(f"_wanted{index}"), changes.alias(f"_changes{index}")]


def _tag_state(index: int, tag: Any, today: str) -> list[pl.Expr]:
    """The tag's state after this run (present, on, since, streak, last_entered). Streak: runs in a row the outcome
    has differed (for min_runs); last_entered is kept only for a cooldown; a tag off with nothing to remember is
    not present; an unchanged outcome leaves the remembered state as it is."""
    state, wanted, changes = pl.col(f"_state{index}"), pl.col(f"_wanted{index}"), pl.col(f"_changes{index}")
    present, first = state.is_not_null(), pl.col("_seen").is_null()
    was_on = state.struct.field("on").eq_missing(True)
    stored_streak, last = state.struct.field("streak"), state.struct.field("last_entered")
    streak = pl.when(present).then(stored_streak.fill_null(0)).otherwise(0) + 1
    moves = first | ((wanted != was_on) & (streak >= tag.min_runs))
    on = pl.when(moves).then(wanted).otherwise(was_on)
    since = pl.when(moves).then(pl.when(wanted | ~first).then(pl.lit(today))).otherwise(state.struct.field("since"))
    streak = pl.when(~moves & (wanted != was_on)).then(streak).otherwise(0)
    last = pl.when(moves & wanted).then(pl.lit(today)).otherwise(last)
    last = pl.when(last != "").then(last) if tag.cooldown_days else pl.lit(None, dtype=pl.String)
    keep = on | (streak != 0) | last.is_not_null()
    return [pl.when(changes).then(keep).otherwise(present).alias(f"_present{index}"),
            pl.when(changes).then(on).otherwise(state.struct.field("on")).alias(f"_on{index}"),
            pl.when(changes).then(since).otherwise(state.struct.field("since")).alias(f"_since{index}"),
            pl.when(changes).then(streak).otherwise(stored_streak).alias(f"_streak{index}"),
            pl.when(changes).then(last).otherwise(state.struct.field("last_entered")).alias(f"_last{index}")]


def _segments(features: Any, config: SegmentsConfig, as_of: date | datetime, previous: Any = None,
              health: Any = None) -> pl.DataFrame:
    """customer_id, RESULT_COLUMNS and the memory columns (_next_pending_*, per tag _present/_on/_since/_streak/_last)."""
    day = _as_date(as_of)
    today = day.isoformat()
    tags = config.tags()
    rules = [s.rule for s in config.lifecycle.stages if s.rule is not None]
    rules += [r for t in tags for r in (t.rule, t.exit_rule) if r is not None]
    names = {n for rule in rules for n in rule_names(rule)} - _DERIVED
    kinds = {n: TAG_KINDS[n] for n in sorted(names)}
    kinds.update({n: "number" for n in ("nps_latest", "recency_days", "frequency", "monetary")})
    frame = feature_frame(features, kinds)
    if health is not None:
        frame = _overlay(frame, health, kinds)
    before, before_lists = _previous(previous, config)
    frame = frame.join(before, on=ID, how="left", maintain_order="left")
    frame = frame.join(_rfm(frame, config.rfm), on=ID, how="left", maintain_order="left").with_columns(
        _nps_group(pl.col("nps_latest")).alias("nps_group"),
        pl.col("_stage").alias("previous_lifecycle"),
        _days_since(day, pl.col("_since")).alias("previous_lifecycle_days"))
    frame = frame.with_columns(_lifecycle(config, today))
    frame = frame.with_columns([e for i, t in enumerate(tags) for e in _tag_outcome(i, t, day)])
    frame = frame.with_columns([e for i, t in enumerate(tags) for e in _tag_state(i, t, today)])
    return _tag_lists(frame, [t.name for t in tags], before_lists)


def _tag_lists(frame: pl.DataFrame, names: list[str], before: list[tuple[str, ...]]) -> pl.DataFrame:
    """tags (on, sorted), entered and left (since the previous run): worked out once per distinct pair of this
    run's tags (a key of 0/1 per tag, "_key") and the previous run's (its number "_before", -1 on a first run)."""
    order = sorted(range(len(names)), key=names.__getitem__)
    bits = [pl.when(pl.col(f"_present{i}") & pl.col(f"_on{i}").eq_missing(True)).then(pl.lit("1")).otherwise(pl.lit("0"))
            for i in order]
    frame = frame.with_columns((pl.concat_str(bits) if bits else pl.lit("")).alias("_key"),
                               pl.col("_before").fill_null(-1))
    rows = []
    for key, number in frame.select("_key", "_before").unique().iter_rows():
        on = [names[i] for i, bit in zip(order, key) if bit == "1"]
        then = before[number] if number >= 0 else ()
        rows.append((key, number, on, sorted(set(on).difference(then)), sorted(set(then).difference(on))))
    lists = pl.DataFrame(rows, orient="row", schema={"_key": pl.String, "_before": pl.Int64, "tags": pl.List(pl.String),
                                                     "entered": pl.List(pl.String), "left": pl.List(pl.String)})
    return frame.join(lists, on=["_key", "_before"], how="left", maintain_order="left")


def segments_frame(features: Any, config: SegmentsConfig, as_of: date | datetime, previous: Any = None,
                   health: Any = None) -> pl.DataFrame:
    """customer_id and RESULT_COLUMNS per customer (the frame form of ``customer_segments``; ``memory`` is a struct
    of ``snapshot_schema``: a tag with nothing to remember is null in it)."""
    tags = config.tags()
    pending = pl.struct(pl.col("_next_pending_stage").alias("stage"), pl.col("_next_pending_runs").alias("runs"))
    memory = {"lifecycle": pl.struct(pl.col("lifecycle").alias("stage"), pl.col("lifecycle_since").alias("since"),
                                     pl.when(pl.col("_next_pending_stage").is_not_null()).then(pending).alias("pending"))}
    if tags:
        memory["tags"] = pl.struct([pl.when(pl.col(f"_present{i}")).then(pl.struct(
            *[pl.col(f"_{k}{i}").alias(name) for k, name in zip(("on", "since", "streak", "last"), _STATE.to_schema())]))
            .alias(t.name) for i, t in enumerate(tags)])
    frame = _segments(features, config, as_of, previous, health)
    return frame.with_columns(pl.struct([e.alias(k) for k, e in memory.items()]).alias("memory")).select(
        ID, *RESULT_COLUMNS)


def customer_segments(
    features: Any,
    config: SegmentsConfig,
    as_of: date | datetime,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    health: Any = None,
) -> dict[str, dict[str, Any]]:
    """customer_id -> segments result (JSON-serialisable): the dict view of the segment frame.

    ``health`` is ``health.health_features(...)`` per customer (or the health frame), laid over ``features``
    (which may instead hold the health_* values already); ``previous`` is last run's result per customer (its
    ``memory`` drives hysteresis and re-engagement). Result keys: lifecycle, lifecycle_since, previous_lifecycle,
    nps_group, rfm ({r, f, m, code, segment, segment_id} or None), tags (sorted), entered / left (tags that
    changed this run), memory (to snapshot and pass back next run).
    """
    tags = config.tags()
    frame = _segments(features, config, as_of, previous, health)
    rfm = _rfm_dicts(frame.filter(pl.col("rfm_code").is_not_null()))
    remembered: dict[str, dict[str, Any]] = {}
    if tags:
        states = pl.concat([frame.filter(pl.col(f"_present{i}")).select(
            ID, pl.lit(t.name).alias("tag"), *[pl.col(f"_{k}{i}").alias(k) for k in ("on", "since", "streak", "last")])
            for i, t in enumerate(tags)])
        for cid, name, on, since, streak, last in states.iter_rows():
            state = {"on": on, "since": since, "streak": streak}
            if last is not None:
                state["last_entered"] = last
            remembered.setdefault(cid, {})[name] = state
    lists = {(key, number): (on, entered, left) for key, number, on, entered, left in frame.select(
        "_key", "_before", "tags", "entered", "left").unique(["_key", "_before"]).iter_rows()}
    results: dict[str, dict[str, Any]] = {}
    for cid, stage, since, previous_stage, group, key, number, pending_stage, pending_runs in frame.select(
            ID, "lifecycle", "lifecycle_since", "previous_lifecycle", "nps_group", "_key", "_before",
            "_next_pending_stage", "_next_pending_runs").iter_rows():
        on, entered, left = lists[key, number]
        pending = None if pending_stage is None else {"stage": pending_stage, "runs": pending_runs}
        results[cid] = {
            "lifecycle": stage, "lifecycle_since": since, "previous_lifecycle": previous_stage, "nps_group": group,
            "rfm": rfm.get(cid), "tags": list(on), "entered": list(entered), "left": list(left),
            "memory": {"lifecycle": {"stage": stage, "since": since, "pending": pending},
                       "tags": remembered.get(cid, {})},
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
