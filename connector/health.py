"""Health score (pure): weighted components, bands, trend and a one-line explanation, over the feature frame."""

from __future__ import annotations

import re
from functools import reduce
from typing import Any, Mapping

import polars as pl

from connector.mapping.expression import conform, rows_frame, rule_expr, rule_names
from connector.mapping.features import FEATURES
from connector.mapping.health import Component, HealthConfig, explain_template

Features = Mapping[str, Any]
ID = "customer_id"
KINDS: dict[str, str] = {name: kind for name, (kind, _) in FEATURES.items()}
# The health frame's columns, and the names segments read them by.
RESULT_COLUMNS = ("score", "band", "scorecard", "coverage", "trend", "change", "explanation")
FEATURE_NAMES = {"score": "health_score", "band": "health_band", "change": "health_change",
                 "trend": "health_trend", "explanation": "health_explanation", "scorecard": "health_scorecard"}
# What the next run reads of a result (its trend and sticky band), as a store decodes a snapshot's JSON.
SNAPSHOT_SCHEMA: dict[str, pl.DataType] = {"score": pl.Float64(), "band": pl.String()}
# Floating-point sums such as 0.4*75 + 0.2*60 land a hair off the exact value; this keeps "67.5" rounding up.
_EPS = 1e-9


def feature_frame(features: Any, kinds: Mapping[str, str]) -> pl.DataFrame:
    """customer_id plus a typed column for every name of ``kinds`` (and no other: the stage's joins then carry
    only what it reads), from a polars frame, a ``FeatureTable`` (its ``.frame``) or ``{customer_id: {feature:
    value}}`` (tests, one customer)."""
    if isinstance(features, pl.DataFrame):
        frame = features
    elif isinstance(getattr(type(features), "frame", None), property):
        frame = features.frame
    else:
        ids = list(features)
        frame = rows_frame((features[c] for c in ids), kinds).insert_column(0, pl.Series(ID, ids, dtype=pl.String))
    return conform(frame, kinds).select(ID, *kinds)


def one_value(expr: pl.Expr, value: Any, kind: str) -> Any:
    """``expr`` over a one-row frame holding ``value`` as column "x" of ``kind``: the scalar view of a column rule."""
    return rows_frame([{"x": value}], {"x": kind}).select(expr.alias("y")).item()


def _half_up(x: pl.Expr) -> pl.Expr:
    return (x + 0.5 + _EPS).floor().cast(pl.Int64)


def round_half_up(value: float) -> int:
    """67.5 -> 68, 67.4999 -> 67 (Python's round() would send 66.5 to 66)."""
    return one_value(_half_up(pl.col("x")), value, "number")


def _divided(numerator: pl.Expr, denominator: float | pl.Expr) -> pl.Expr:
    """numerator / denominator exactly as Python divides: polars divides by a scalar as a multiplication by its
    reciprocal (a last-bit difference that can move a rounded score), so the divisor is spread to a column."""
    return numerator / (pl.int_range(pl.len()).cast(pl.Float64) * 0.0 + denominator)


def _clamp(x: pl.Expr) -> pl.Expr:
    return pl.when(x < 0).then(0.0).when(x > 100).then(100.0).otherwise(x)


def _normalised(component: Component, dtype: pl.DataType) -> pl.Expr | None:
    """The component's 0-100 value from its feature column (null when missing or of the wrong kind); None for
    percentile components, which rank against the population instead."""
    method, raw = component.method, pl.col(component.feature)
    if method == "percentile":
        return None
    if method == "bool":
        if dtype != pl.Boolean:
            return pl.lit(None, dtype=pl.Float64)
        return pl.when(raw).then(float(component.if_true)).when(~raw).then(float(component.if_false))  # type: ignore[arg-type]
    if not dtype.is_numeric():
        return pl.lit(None, dtype=pl.Float64)
    x = raw.cast(pl.Float64)
    if method == "target_ratio":
        curve = x * (100.0 / component.target)  # type: ignore[operator]
    elif method == "inverse":
        curve = 100.0 - float(component.k) * x  # type: ignore[arg-type]
    elif method == "linear_decay":
        curve = 100.0 * (1.0 - _divided(x, float(component.days)))  # type: ignore[arg-type]
    elif component.scale == "nps":
        curve = x * 10.0
    elif component.scale == "csat":
        curve = x
    else:  # ces on 1-7
        curve = _divided(x - 1.0, 6.0) * 100.0
    return _clamp(curve)


def normalise(component: Component, value: Any) -> float | None:
    """One component's 0-100 score from one raw feature value (None when missing or unusable, and for percentile
    components, which are ranked against the population)."""
    frame = rows_frame([{component.feature: value}], {component.feature: KINDS[component.feature]})
    expr = _normalised(component, frame.schema[component.feature])
    return None if expr is None else frame.select(expr.alias("y")).item()


# ---------------------------------------------------------------- percentile within a peer group


def _percentile(component: Component, member: pl.Expr) -> pl.Expr:
    """Percentile of the component's feature among the members sharing its ``peer`` value: lowest 0, highest 100,
    ties share their mid rank. Members without a peer value, and peer groups smaller than ``min_peers``, rank among
    all members, so a two-company industry does not hand out 0 and 100."""
    peer, min_peers, higher_is_better = component.percentile_settings()
    ranked = member & pl.col(component.feature).is_not_null()
    value = pl.when(ranked).then(pl.col(component.feature).cast(pl.Float64))

    def among(group: str | None) -> pl.Expr:
        rank, n = value.rank("average"), ranked.sum().cast(pl.Float64)
        if group is not None:
            rank, n = rank.over(group), n.over(group)
        return pl.when(n >= 2).then(_divided(100.0 * (rank - 1.0), n - 1.0))

    result = among(None)
    if peer:
        own_group = pl.col(peer).is_not_null() & (ranked.sum().over(peer) >= min_peers)
        result = pl.when(own_group).then(among(peer)).otherwise(result)
    result = pl.when(ranked).then(result)
    return result if higher_is_better else 100.0 - result


def peer_percentiles(features: Any, component: Component, members: set[str] | None = None) -> dict[str, float]:
    """customer_id -> percentile of the component's feature among its peers (``members`` only; default everyone)."""
    names = [component.feature] + [p for p in [component.peer] if p]
    frame = feature_frame(features, {n: KINDS[n] for n in names})
    member = pl.lit(True) if members is None else pl.col(ID).is_in(pl.Series(sorted(members), dtype=pl.String).implode())
    ranked = frame.select(ID, _percentile(component, member).alias("p")).drop_nulls("p")
    return dict(ranked.iter_rows())


# ---------------------------------------------------------------- explanation text


def _age(days: pl.Expr) -> pl.Expr:
    """A day count as a coarse age ("2 weeks", "3 months"): an explanation that names it changes weekly at most."""
    whole = days.cast(pl.Int64, strict=False)

    def unit(size: int, name: str) -> pl.Expr:
        count = whole // size
        return pl.format("{} " + name + "{}", count, pl.when(count > 1).then(pl.lit("s")).otherwise(pl.lit("")))

    return (pl.when(whole.is_null()).then(pl.lit("n/a")).when(whole < 7).then(pl.lit("under a week"))
            .when(whole < 30).then(unit(7, "week")).when(whole < 365).then(unit(30, "month"))
            .otherwise(unit(365, "year")))


def format_age(days: Any) -> str:
    """A day count as "under a week", "2 weeks", "3 months", "1 year"; "n/a" when unknown."""
    return one_value(_age(pl.col("x")), days, "number")


def _format_number(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _raw_text(column: pl.Series) -> pl.Series:
    """How {raw} shows a feature value: yes/no, a whole number as such, else two decimals; n/a when unknown.

    Whole numbers are formatted by polars; other numbers once per distinct value (Python's correctly rounded
    ``.2f``: polars' round() sends 2.675 up where ``f"{2.675:.2f}"`` gives 2.67)."""
    frame = pl.DataFrame({"x": column})
    x = pl.col("x")
    if column.dtype == pl.Boolean:
        return frame.select(pl.when(x).then(pl.lit("yes")).when(~x).then(pl.lit("no"))
                            .otherwise(pl.lit("n/a"))).to_series()
    if not column.dtype.is_numeric():
        return column.cast(pl.String).fill_null("n/a")
    x = x.cast(pl.Float64)
    whole = (x == x.floor()) & (x.abs() < 2.0**53)
    odd = frame.select(x.filter(~whole).unique().drop_nulls()).to_series()
    texts = pl.when(whole).then(x.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(
        x.replace_strict(odd, [_format_number(v) for v in odd], default=None, return_dtype=pl.String))
    return frame.select(texts.fill_null("n/a")).to_series()


_PLACEHOLDER = re.compile(r"(\{(?:name|raw|score|s|age)\})")


def _render(component: Component, dtype: pl.DataType, value: str, raw_text: str | None) -> pl.Expr:
    """The component's explain template with its placeholders filled, substituted literally (no str.format)."""
    number = pl.col(component.feature).cast(pl.Float64) if dtype.is_numeric() else pl.lit(None, dtype=pl.Float64)
    pieces: list[pl.Expr] = []
    for piece in _PLACEHOLDER.split(explain_template(component)):
        if piece == "{name}":
            pieces.append(pl.lit(component.name))
        elif piece == "{raw}":
            pieces.append(pl.col(raw_text))  # type: ignore[arg-type]
        elif piece == "{score}":
            pieces.append(_half_up(pl.col(value)).cast(pl.String))
        elif piece == "{s}":
            pieces.append(pl.when(number == 1.0).then(pl.lit("")).otherwise(pl.lit("s")))
        elif piece == "{age}":
            pieces.append(_age(number))
        elif piece:
            pieces.append(pl.lit(piece))
    return pl.concat_str(pieces) if pieces else pl.lit("")


def _fit(frame: pl.DataFrame, pieces: list[str], max_length: int, out: str) -> pl.DataFrame:
    """Join the piece columns with ", " while the whole stays within max_length (a null piece ends the list); a
    first piece too long is cut with an ellipsis."""
    text, stop = pl.col(out), pl.col("_stop")
    frame = frame.with_columns(pl.lit("").alias(out), pl.lit(False).alias("_stop"))
    for name in pieces:
        piece = pl.col(name)
        candidate = pl.when(text == "").then(piece).otherwise(pl.concat_str([text, pl.lit(", "), piece]))
        fits = candidate.str.len_chars() <= max_length
        frame = frame.with_columns(
            pl.when(stop | piece.is_null()).then(text).when(fits).then(candidate)
            .when(text == "").then(pl.concat_str([piece.str.slice(0, max_length - 1), pl.lit("…")]))
            .otherwise(text).alias(out),
            (stop | piece.is_null() | ~fits).alias("_stop"))
    return frame.drop("_stop")


# ---------------------------------------------------------------- score


def _per_card(config: HealthConfig, by_card: list[pl.Expr], default: Any = None) -> pl.Expr:
    """One value per customer from the expression of its scorecard."""
    expr: Any = pl
    for card, value in zip(config.scorecards, by_card):
        expr = expr.when(pl.col("scorecard") == card.name).then(value)
    return expr.otherwise(default)


def _previous_frame(previous: Any, columns: Mapping[str, pl.DataType]) -> pl.DataFrame | None:
    """Last run's results ``{customer_id: {key: value}}`` (as the state store gives them) read into a frame once:
    customer_id plus ``columns`` (keys, typed; a missing key is null)."""
    if previous is None or len(previous) == 0:
        return None
    if isinstance(previous, pl.DataFrame):
        return previous.select(ID, *[pl.col(c).cast(t) for c, t in columns.items()])
    rows = list(previous.values())
    return pl.DataFrame([list(previous), *[[r.get(c) if r else None for r in rows] for c in columns]],
                        schema={ID: pl.String, **columns}, orient="col", strict=False)


def _health(features: Any, config: HealthConfig, previous: Any = None) -> tuple[pl.DataFrame, list[list[str]]]:
    """The health frame (customer_id and RESULT_COLUMNS) plus, per scorecard, its components' value and share
    columns ("_v<card>_<i>", "_w<card>_<i>") that the dict view lists."""
    cards = config.scorecards
    kinds = {n: KINDS[n] for card in cards if card.rule is not None for n in sorted(rule_names(card.rule))}
    for card in cards:
        for c in card.components:
            kinds.update({n: KINDS[n] for n in [c.feature, c.peer] if n})
    frame = feature_frame(features, kinds)
    choice: Any = pl
    for card in cards:
        choice = choice.when(rule_expr(card.rule) if card.rule is not None else pl.lit(True)).then(pl.lit(card.name))
    frame = frame.with_columns(choice.otherwise(pl.lit(None, dtype=pl.String)).alias("scorecard"))

    # each component's 0-100 value; percentiles rank only the customers of their own scorecard (churned accounts
    # with no logins must not lift everyone else's usage rank)
    values, columns = [], []
    for k, card in enumerate(cards):
        member = pl.col("scorecard") == card.name
        columns.append([f"_v{k}_{i}" for i in range(len(card.components))])
        for c, name in zip(card.components, columns[-1]):
            value = _normalised(c, frame.schema[c.feature])
            values.append((value if value is not None else _percentile(c, member)).alias(name))
    frame = frame.with_columns(values)

    def chain(terms: list[pl.Expr]) -> pl.Expr:  # left to right, as a Python loop adds them (same float result)
        return reduce(lambda a, b: a + b, terms, pl.lit(0.0))

    present = _per_card(config, [chain([pl.when(pl.col(v).is_not_null()).then(c.weight).otherwise(0.0)
                                        for c, v in zip(card.components, cols)])
                                 for card, cols in zip(cards, columns)], 0.0)
    weighted = _per_card(config, [chain([(c.weight * pl.col(v)).fill_null(0.0) for c, v in zip(card.components, cols)])
                                  for card, cols in zip(cards, columns)], 0.0)
    totals = [float(sum(c.weight for c in card.components)) for card in cards]
    frame = frame.with_columns(present.alias("_present"), weighted.alias("_weighted"),
                               _per_card(config, [pl.lit(t) for t in totals], None).alias("_total"))
    present, scored = pl.col("_present"), pl.col("_scored")
    frame = frame.with_columns(pl.when(pl.col("_total").is_not_null()).then(present / pl.col("_total"))
                               .otherwise(0.0).alias("coverage"))
    frame = frame.with_columns(((present > 0) & (pl.col("coverage") >= config.coverage_min - _EPS)).alias("_scored"))
    frame = frame.with_columns(
        pl.when(scored).then(_half_up(_clamp(pl.col("_weighted") / present))).alias("score"),
        *[pl.when(scored & pl.col(v).is_not_null()).then(c.weight / present).otherwise(0.0).alias(f"_w{v[2:]}")
          for card, cols in zip(cards, columns) for c, v in zip(card.components, cols)])
    frame = frame.with_columns(_explain(frame, config, columns))

    before = _previous_frame(previous, SNAPSHOT_SCHEMA)
    if before is None:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("_before"),
                                   pl.lit(None, dtype=pl.String).alias("_before_band"))
    else:
        frame = frame.join(before.select(ID, pl.col("score").cast(pl.Int64, strict=False).alias("_before"),
                                         pl.col("band").alias("_before_band")),
                           on=ID, how="left", maintain_order="left")
    change = pl.col("score") - pl.col("_before")
    tolerance = config.trend.tolerance
    frame = frame.with_columns(change.alias("change"),
                               pl.when(change > tolerance).then(pl.lit("up")).when(change < -tolerance)
                               .then(pl.lit("down")).when(change.is_not_null()).then(pl.lit("flat")).alias("trend"),
                               _band(config).alias("band"))
    return frame, columns


def _band(config: HealthConfig) -> pl.Expr:
    """The score's band, kept at last run's while the score is within ``band_margin`` points of that band's range."""
    score, before = pl.col("score"), pl.col("_before_band")
    band: Any = pl
    for b in config.bands:
        band = band.when(score.is_between(b.min, b.max)).then(pl.lit(b.label))
    band = band.otherwise(pl.lit(None, dtype=pl.String))
    if not config.band_margin:
        return band
    sticky: Any = pl
    for b in config.bands:
        near = score.is_between(b.min - config.band_margin, b.max + config.band_margin)
        sticky = sticky.when((before == b.label) & near).then(pl.lit(b.label))
    return sticky.otherwise(band)


def _explain(frame: pl.DataFrame, config: HealthConfig, columns: list[list[str]]) -> pl.Series:
    """The one line a CSM reads: the components that cost the most points, weakest first (ties by name). Worked
    out on a frame of its own, so that its helper columns are gone once the text is there."""
    top, limit = config.explanation.components, config.explanation.max_length
    raw_texts: dict[str, str] = {}
    for card in config.scorecards:
        for c in card.components:
            if "{raw}" in explain_template(c) and c.feature not in raw_texts:
                raw_texts[c.feature] = f"_raw_{len(raw_texts)}"
                frame = frame.with_columns(_raw_text(frame[c.feature]).alias(raw_texts[c.feature]))
    # per component (columns "_v<card>_<i>" etc.): points lost, rounded so that ties (E8: 10 and 10) go by name,
    # not by float noise; whether it lost any; then its place among the lost ones
    parts = [(card.name, c, v, v.replace("_v", "_p", 1), v.replace("_v", "_l", 1))
             for cols, card in zip(columns, config.scorecards) for c, v in zip(card.components, cols)]
    frame = frame.with_columns(
        [(pl.col(v.replace("_v", "_w", 1)) * (100.0 - pl.col(v))).round(6).alias(p) for _, _, v, p, _ in parts])
    frame = frame.with_columns(
        [((pl.col("scorecard") == card) & pl.col("score").is_not_null() & pl.col(v).is_not_null() & (pl.col(p) > 0.005))
         .alias(lost) for card, _, v, p, lost in parts])
    placed = []
    for card, c, v, p, lost in parts:
        # lost components of its scorecard before this one: more points lost, or as many and an earlier name
        ahead = [pl.col(was) & ((pl.col(q) > pl.col(p)) | ((pl.col(q) == pl.col(p)) & pl.lit(d.name < c.name)))
                 for other, d, _, q, was in parts if other == card and d is not c]
        placed.append((pl.sum_horizontal(ahead) if ahead else pl.lit(0)).alias(v.replace("_v", "_r", 1)))
    frame = frame.with_columns(placed).with_row_index("_row")
    # each named component's text, rendered only on the rows that name it (a text per component and customer
    # would be most of the stage's memory at a million customers)
    texts = pl.concat([frame.filter(pl.col(lost) & (pl.col(v.replace("_v", "_r", 1)) < top)).select(
        "_row", pl.col(v.replace("_v", "_r", 1)).cast(pl.Int64).alias("_rank"),
        _render(c, frame.schema[c.feature], v, raw_texts.get(c.feature)).alias("_text")) for _, c, v, _, lost in parts])
    missing = [pl.concat_str([pl.when(pl.col(v).is_null()).then(pl.lit(c.name)) for c, v in zip(card.components, cols)],
                             separator=", ", ignore_nulls=True) for card, cols in zip(config.scorecards, columns)]
    head = (pl.when(pl.col("scorecard").is_null()).then(pl.lit("no scorecard applies"))
            .when(pl.col("score").is_null())
            .then(pl.format("not enough data ({}% of weight): missing {}", _half_up(pl.col("coverage") * 100),
                            _per_card(config, missing)))
            .when(~pl.any_horizontal([pl.col(lost) for *_, lost in parts])).then(pl.lit("all components at 100/100")))
    pieces = frame.select("_row", head.alias("_head"))
    for r in range(top):
        pieces = pieces.join(texts.filter(pl.col("_rank") == r).select("_row", pl.col("_text").alias(f"_piece{r}")),
                             on="_row", how="left", maintain_order="left")
    pieces = pieces.with_columns(pl.coalesce("_head", "_piece0").alias("_piece0"),
                                 *[pl.when(pl.col("_head").is_null()).then(pl.col(f"_piece{r}")).alias(f"_piece{r}")
                                   for r in range(1, top)])
    return _fit(pieces, [f"_piece{r}" for r in range(top)], limit, "explanation")["explanation"]


def health_frame(features: Any, config: HealthConfig, previous: Any = None) -> pl.DataFrame:
    """customer_id and RESULT_COLUMNS per customer, given the feature frame and last run's results (a frame with
    customer_id, score, band, or ``{customer_id: result}`` as the state store keeps them)."""
    frame, _ = _health(features, config, previous)
    return frame.select(ID, *RESULT_COLUMNS)


def health_scores(features: Any, config: HealthConfig, previous: Mapping[str, Mapping[str, Any]] | None = None,
                  ) -> dict[str, dict[str, Any]]:
    """customer_id -> health result (JSON-serialisable): the dict view of ``health_frame`` with each component.

    Result keys: score (int 0-100, or None below the coverage minimum), band, scorecard (name), coverage (share
    of the scorecard's weight with a value), components ``{name: [raw value, normalised 0-100, weight]}`` where
    weight is the component's share of the score after re-weighting (0 when missing; lists, not dicts, keep a
    million snapshots small), trend (up | down | flat; None on the first run), change (points since the last
    run) and explanation.
    """
    frame, columns = _health(features, config, previous)
    components: dict[str, dict[str, list[Any]]] = {}
    for card, cols in zip(config.scorecards, columns):
        names = [c.name for c in card.components]
        part = frame.filter(pl.col("scorecard") == card.name).select(
            ID, *[x for c, v in zip(card.components, cols) for x in (pl.col(c.feature), v, f"_w{v[2:]}")])
        at = [(name, 1 + 3 * i) for i, name in enumerate(names)]
        for row in part.iter_rows():
            components[row[0]] = {name: [row[j], row[j + 1], row[j + 2]] for name, j in at}
    return {cid: {"score": score, "band": band, "scorecard": card, "coverage": coverage,
                  "components": components.get(cid, {}), "trend": trend, "change": change, "explanation": text}
            for cid, score, band, card, coverage, trend, change, text in frame.select(ID, *RESULT_COLUMNS).iter_rows()}


def health_features(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The health_* features segments read, plus the explanation and scorecard the write-back can publish."""
    return {customer_id: {feature: r[key] for key, feature in FEATURE_NAMES.items()}
            for customer_id, r in results.items()}


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
    0.5 = no signal. Mann-Whitney U on mid-ranks.
    """
    frame = pl.DataFrame({"score": list(scores.values()), "churned": [c in churned for c in scores]},
                         schema={"score": pl.Float64, "churned": pl.Boolean}).drop_nulls("score")
    positives = int(frame["churned"].sum())
    negatives = frame.height - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC needs churned and retained customers with a score "
                         f"(have {positives} churned, {negatives} retained)")
    # rank by risk = -score: the lowest score has the highest rank
    rank_sum = frame.select((-pl.col("score")).rank("average").filter(pl.col("churned")).sum()).item()
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
