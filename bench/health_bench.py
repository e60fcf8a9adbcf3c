"""Benchmark of the health and segments stages on a synthetic feature table: prints time per stage and peak RSS.

    .venv/bin/python bench/health_bench.py                                  # 100,000 customers, the dict results
    .venv/bin/python bench/health_bench.py --customers 1000000 --form frame # the frame forms

``--form dict`` times what the pipeline calls today (health_scores, customer_segments: a dict per customer, on the
FeatureTable; last run's results as dicts, as ``store.load_snapshots`` gives them); ``--form frame`` times
health_frame and segments_frame on the feature frame, last run's results read back as frames (JSON per customer
decoded with SNAPSHOT_SCHEMA / snapshot_schema, as a frame reader of the store would). Both run twice: a first run,
then a second with the first's results (trend and hysteresis). One form per process, so that the peak RSS is
that form's. Last line: ``customers=N form=F wall_s=… cpu_s=…
peak_rss_mb=…`` for the second run (health + segments).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.health import (  # noqa: E402
    SNAPSHOT_SCHEMA, health_distribution, health_features, health_frame, health_scores)
from connector.mapping.health import HealthConfig  # noqa: E402
from connector.mapping.loader import load_yaml_model  # noqa: E402
from connector.mapping.segments import SegmentsConfig  # noqa: E402
from connector.metrics.features import FeatureTable  # noqa: E402
from connector.segments import (  # noqa: E402
    customer_segments, segment_distribution, segments_frame, snapshot_schema)

INDUSTRIES = ["COMPUTER_SOFTWARE", "RETAIL", "HOSPITALITY", "FINANCIAL_SERVICES", "LEISURE_TRAVEL_TOURISM"]


def synthetic_table(n: int, seed: int, drift: float = 0.0) -> FeatureTable:
    """Plausible feature columns; ``drift`` moves usage a little, as between two daily runs."""
    rng = np.random.default_rng(seed)

    def with_gaps(values: np.ndarray, share: float) -> np.ndarray:
        values = values.astype(float)
        values[rng.random(n) < share] = np.nan
        return values

    def flags(p: float, missing: float = 0.0) -> np.ndarray:
        out = (rng.random(n) < p).astype(np.int8)
        out[rng.random(n) < missing] = -1
        return out

    usage = np.clip(rng.beta(2, 3, n) + drift * rng.normal(0, 1, n), 0, 1)
    ids = [str(100000 + i) for i in range(n)]
    columns = {
        "is_active": flags(0.9), "was_ever_active": flags(0.97), "tenure_days": rng.integers(1, 1500, n).astype(float),
        "onboarding_complete": flags(0.8), "onboarding_progress": rng.random(n),
        "days_since_reactivation": with_gaps(rng.integers(0, 400, n), 0.9),
        "usage_frequency": usage, "usage_trend": rng.normal(0, 0.08, n), "forgettable": flags(0.05),
        "seat_utilisation": with_gaps(rng.random(n) * 1.1, 0.1), "open_tickets": rng.poisson(0.7, n).astype(float),
        "nps_latest": with_gaps(rng.integers(0, 11, n), 0.4), "payment_overdue": flags(0.05, 0.02),
        "days_since_last_engagement": with_gaps(rng.integers(0, 200, n), 0.1),
        "days_since_last_login": with_gaps(rng.integers(0, 60, n), 0.05),
        "is_anniversary_month": flags(0.08), "is_birthday_month": flags(0.08, 0.5), "cancel_requested": flags(0.02),
        "industry": [INDUSTRIES[i] for i in rng.integers(0, len(INDUSTRIES), n)],
        "recency_days": with_gaps(rng.integers(0, 365, n), 0.2), "frequency": rng.integers(1, 12, n).astype(float),
        "monetary": rng.gamma(2, 500, n),
    }
    return FeatureTable(ids, columns)


def stored(frame: pl.DataFrame, schema: dict) -> pl.DataFrame:
    """A result frame as JSON text per customer (as the store keeps snapshots), decoded again with the schema."""
    text = frame.select("customer_id", pl.struct(list(schema)).struct.json_encode().alias("data"))
    return text.select("customer_id", pl.col("data").str.json_decode(pl.Struct(schema))).unnest("data")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--form", choices=("dict", "frame"), default="dict")
    args = parser.parse_args()
    n = args.customers
    health_cfg = load_yaml_model(ROOT / "mappings" / "health.yaml", HealthConfig)
    segments_cfg = load_yaml_model(ROOT / "mappings" / "segments.yaml", SegmentsConfig)
    timings: list[tuple[str, float, float, float]] = []

    def timed(label, fn):
        # CPU time of this process besides wall time: the machine is shared, CPU time depends less on the others;
        # and the peak RSS after each stage, to see which one raised it
        start, cpu = time.perf_counter(), time.process_time()
        value = fn()
        timings.append((label, time.perf_counter() - start, time.process_time() - cpu, peak_rss_mb()))
        return value

    day1 = timed("build synthetic table", lambda: synthetic_table(n, seed=1))
    day2 = synthetic_table(n, seed=1, drift=0.02)
    if args.form == "dict":
        health1 = timed("health_scores (run 1)", lambda: health_scores(day1, health_cfg))
        flat1 = timed("health_features", lambda: health_features(health1))
        seg1 = timed("customer_segments (run 1)",
                     lambda: customer_segments(day1, segments_cfg, date(2026, 11, 1), health=flat1))
        snapshot = timed("snapshot JSON round trip", lambda: (json.loads(json.dumps(health1)), json.loads(json.dumps(seg1))))
        del health1, flat1, seg1  # a run holds last run's snapshots (as loaded from the store) and its own results
        health2 = timed("health_scores (run 2, trend)", lambda: health_scores(day2, health_cfg, snapshot[0]))
        seg2 = timed("customer_segments (run 2, hysteresis)", lambda: customer_segments(
            day2, segments_cfg, date(2026, 11, 2), snapshot[1], health=health_features(health2)))
        bands = health_distribution(health2, snapshot[0], health_cfg.band_labels())
        segments = segment_distribution(seg2, snapshot[1], segments_cfg)
        lifecycle, tags = segments["lifecycle"], segments["tags"]
    else:
        frame1 = timed("feature frame (run 1)", lambda: day1.frame)
        health1 = timed("health_frame (run 1)", lambda: health_frame(frame1, health_cfg))
        seg1 = timed("segments_frame (run 1)",
                     lambda: segments_frame(frame1, segments_cfg, date(2026, 11, 1), health=health1))
        # the store keeps a snapshot per customer as JSON; the next run decodes what it reads with the schemas
        snapshot = timed("snapshot JSON round trip", lambda: (
            stored(health1, SNAPSHOT_SCHEMA), stored(seg1, snapshot_schema(segments_cfg))))
        del frame1, health1, seg1
        frame2 = timed("feature frame (run 2)", lambda: day2.frame)
        health2 = timed("health_frame (run 2, trend)", lambda: health_frame(frame2, health_cfg, snapshot[0]))
        seg2 = timed("segments_frame (run 2, hysteresis)", lambda: segments_frame(
            frame2, segments_cfg, date(2026, 11, 2), snapshot[1], health=health2))
        counts = health2.group_by("band").len()
        bands = {"bands": {b or "unscored": c for b, c in counts.iter_rows()}, "changes": "-"}
        lifecycle = dict(seg2.group_by("lifecycle").len().iter_rows())
        tags = dict(seg2.select(pl.col("tags").explode()).drop_nulls().group_by("tags").len().iter_rows())

    print(f"customers: {n:,}  form: {args.form}")
    print(f"  {'stage':<40} {'wall s':>8} {'CPU s':>8} {'peak MB':>8}")
    for label, seconds, cpu, peak in timings:
        print(f"  {label:<40} {seconds:8.2f} {cpu:8.2f} {peak:8.0f}")
    wall = sum(s for label, s, _, _ in timings if "run 2" in label)
    cpu = sum(c for label, _, c, _ in timings if "run 2" in label)
    print(f"  {'health + segments, one run':<40} {wall:8.2f} {cpu:8.2f}")
    print(f"bands run 2: {bands['bands']}  (change {bands['changes']})")
    print(f"lifecycle: {lifecycle}")
    print(f"tags: {tags}")
    print(f"customers={n} form={args.form} wall_s={wall:.2f} cpu_s={cpu:.2f} peak_rss_mb={peak_rss_mb():.0f}")


if __name__ == "__main__":
    main()
