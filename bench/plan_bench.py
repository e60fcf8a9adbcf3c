"""The write plan's cost at scale: from the computed stages (features, health, segments) to the Plan and enrollments.

    .venv/bin/python bench/plan_bench.py --customers 100000 [--mode frames|dicts] [--scenario first|steady]

Generates (untimed) what `pipeline.compute` holds after segments for N company customers (two or three contacts
each, one in twenty shared with the next company, 1.5 deals each of which 40 % open) and the CRM's current values
(``first``: nothing written yet; ``steady``: what the first sync wrote, with a fifth of the customers' scores,
bands, MRR and tags moved since). Then times, as `connector sync --dry-run` runs them: the outputs per customer,
provisioning options, the property plan and the enrollment plan. ``dicts`` hands the stages over as
``{customer_id: {field: value}}``, Customer/Deal objects and ``{(object, id): {property: value}}`` (the only form
before the columnar plan, so this mode also measures the old code when run from an older checkout); ``frames``
as polars frames. Prints one line per stage and, last, ``customers=N mode=… scenario=… wall_s=… peak_rss_mb=…``
(wall: the timed stages only; peak RSS: the whole process, inputs included, with the inputs' own RSS beside it;
in ``frames`` mode the first sync's writes that ``steady`` starts from are planned in a child process).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.mapping.writeback import WritebackConfig  # noqa: E402
from connector.model import Customer, Deal  # noqa: E402
from connector import writeback  # noqa: E402

BANDS = np.array(["red", "yellow", "green"])
STAGES = np.array(["onboarding", "active", "at_risk", "stagnating", "churned"])
TAGS = ["at_risk", "low_usage", "upsell", "welcome", "referral_candidate"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def config() -> WritebackConfig:
    return WritebackConfig.model_validate(yaml.safe_load((ROOT / "mappings" / "writeback.yaml").read_text()))


def stage_frames(n: int, shift: int = 0) -> dict[str, pl.DataFrame]:
    """Features (mrr, clv), health and segment results as frames; ``shift`` moves a fifth of the customers."""
    rng = np.random.default_rng(7)
    ids = pl.int_range(1, n + 1, eager=True).cast(pl.String).alias("customer_id")
    score = rng.integers(0, 101, n)
    moved = (np.arange(n) % 5 == 0) & (shift != 0)
    score = np.where(moved, (score + shift) % 101, score)
    mrr = np.round(rng.gamma(2.0, 150.0, n), 2) + np.where(moved, 10.0, 0.0)
    tag_bits = pl.Series(rng.integers(0, 1 << len(TAGS), n) ^ np.where(moved, 1, 0))
    scored = rng.random(n) > 0.05
    features = pl.DataFrame({"customer_id": ids, "mrr": mrr, "clv": mrr * 0.8 * 37.3})
    health = pl.DataFrame({
        "customer_id": ids,
        "health_score": pl.Series(np.where(scored, score, -1)).cast(pl.Int64).replace(-1, None),
        "health_band": BANDS[np.minimum(score // 34, 2)],
        "health_trend": np.where(moved, "up", "flat"),
        "health_explanation": pl.select(pl.format("usage {}/100", pl.Series(score))).to_series(),
    })
    bits = pl.col("bits")
    tags = pl.DataFrame({"bits": tag_bits}).select(pl.concat_list(
        [pl.when((bits // (1 << k)) % 2 == 1).then(pl.lit(t)) for k, t in enumerate(TAGS)]).list.drop_nulls())
    segments = pl.DataFrame({
        "customer_id": ids,
        "lifecycle": STAGES[score % len(STAGES)],
        "nps_group": np.array(["promoter", "passive", "detractor"])[score % 3],
        "rfm_segment": np.array(["champions", "loyal", "hibernating", "at_risk"])[score % 4],
        "tags": tags.to_series(),
    })
    return {"features": features, "health": health, "segments": segments}


def portfolio_frames(n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Companies with two or three contacts ("<id>-<k>", the first primary), every twentieth sharing the next
    company's primary contact; 1.5 deals per company, 40 % open."""
    rng = np.random.default_rng(11)
    i = pl.int_range(1, n + 1, eager=True).alias("i")
    own = pl.col("i").cast(pl.String)
    contact = [own + f"-{k}" for k in range(3)]
    customers = i.to_frame().select(
        own.alias("id"), pl.lit("companies").alias("object_type"),
        pl.concat_list(contact[0], contact[1], pl.when(pl.col("i") % 2 == 0).then(contact[2]),
                       pl.when((pl.col("i") % 20 == 0) & (pl.col("i") < n)).then(
                           (pl.col("i") + 1).cast(pl.String) + "-0")).list.drop_nulls().alias("contact_ids"),
        contact[0].alias("primary_contact_id"))
    deal_count = n * 3 // 2
    j = pl.int_range(0, deal_count, eager=True).alias("j")
    deals = j.to_frame().select((pl.lit("d") + pl.col("j").cast(pl.String)).alias("id"),
                                (pl.col("j") % n + 1).cast(pl.String).alias("customer_id")).with_columns(
        pl.Series("is_closed", rng.random(deal_count) > 0.4))
    return customers, deals


class StubWriter:
    """A portal that has nothing yet: no properties, no lists (the dry run reads only these)."""

    def fetch_properties(self, object_type: str) -> list[dict]:
        return []

    def fetch_workflows(self) -> list[dict]:
        return []

    def find_list(self, name: str, object_type_id: str) -> None:
        return None


class NoLedger:
    def enrollments(self, kind: str, target: str) -> set[str]:
        return set()


# ---------------------------------------------------------------- the two hand-overs


def dict_inputs(stages: dict[str, pl.DataFrame], customers: pl.DataFrame, deals: pl.DataFrame) -> dict[str, Any]:
    """The stages as the pipeline held them before the columnar plan: FeatureTable-like rows, result dicts."""
    features = {r["customer_id"]: r for r in stages["features"].to_dicts()}
    health = {r["customer_id"]: {"score": r["health_score"], "band": r["health_band"], "change": None,
                                 "trend": r["health_trend"], "explanation": r["health_explanation"],
                                 "scorecard": "default"} for r in stages["health"].to_dicts()}
    segments = {r["customer_id"]: {"lifecycle": r["lifecycle"], "nps_group": r["nps_group"],
                                   "rfm": {"code": "44", "segment_id": r["rfm_segment"]}, "tags": r["tags"]}
                for r in stages["segments"].to_dicts()}
    objects = [Customer(id=r["id"], object_type=r["object_type"], name=None, created_at=None, customer_since=None,
                        acquisition_source=None, industry=None, contact_ids=tuple(r["contact_ids"]),
                        primary_contact_id=r["primary_contact_id"]) for r in customers.to_dicts()]
    deal_rows = [Deal(r["id"], r["customer_id"], None, None, None, None, None, False, r["is_closed"], None)
                 for r in deals.to_dicts()]
    return {"features": features, "health": health, "segments": segments, "customers": objects, "deals": deal_rows}


def dict_outputs(cfg: WritebackConfig, inputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """pipeline.compute's per-customer loop as it was (health_features / segment_features, then one dict each)."""
    from connector.health import health_features
    from connector.segments import segment_features

    wanted = {o.field for o in cfg.outputs}
    health_view = health_features(inputs["health"])
    segment_view = segment_features(inputs["segments"])
    outputs: dict[str, dict[str, Any]] = {}
    for customer_id, row in inputs["features"].items():
        values = {name: row.get(name) for name in wanted if name in row}
        values.update(health_view.get(customer_id, {}))
        values.update(segment_view.get(customer_id, {}))
        outputs[customer_id] = values
    return outputs


def current_dicts(plan: Any) -> dict[tuple[str, str], dict[str, str | None]]:
    out: dict[tuple[str, str], dict[str, str | None]] = {}
    for change in plan.changes:
        out.setdefault((change.object_type, change.record_id), {})[change.property] = change.after
    return out


def run(n: int, mode: str, scenario: str) -> None:
    cfg = config()
    customers, deals = portfolio_frames(n)
    stages = stage_frames(n)
    timings: dict[str, float] = {}

    def timed(name: str, call):
        start = time.perf_counter()
        out = call()
        timings[name] = time.perf_counter() - start
        return out

    if mode == "dicts":
        inputs = dict_inputs(stages, customers, deals)
        if scenario == "steady":
            first = dict_outputs(cfg, inputs)
            current = current_dicts(writeback.plan_writeback(cfg, first, inputs["customers"], {},
                                                             deals=inputs["deals"]))
            inputs = {**inputs, **{k: v for k, v in dict_inputs(stage_frames(n, shift=7), customers, deals).items()
                                   if k in ("features", "health", "segments")}}
        else:
            current = {}
        base = rss_mb()
        outputs = timed("outputs", lambda: dict_outputs(cfg, inputs))
        summary = timed("plan", lambda: writeback.apply_writeback(
            "bench", cfg, outputs, inputs["customers"], current, StubWriter(), NoLedger(), deals=inputs["deals"],
            dry_run=True))
    else:
        from connector.writeback import CurrentFrames, output_frame

        if scenario == "steady":
            with tempfile.TemporaryDirectory() as folder:
                # the first sync's writes are planned in a child process: this one's peak RSS stays the stage's own
                subprocess.run([sys.executable, __file__, "--customers", str(n), "--written", folder], check=True)
                current = CurrentFrames({path.stem: pl.read_parquet(path) for path in Path(folder).glob("*.parquet")})
            stages = stage_frames(n, shift=7)
        else:
            current = CurrentFrames()
        base = rss_mb()
        outputs = timed("outputs", lambda: output_frame(stages["features"], stages["health"], stages["segments"],
                                                        cfg))
        summary = timed("plan", lambda: writeback.apply_writeback(
            "bench", cfg, outputs, customers, current, StubWriter(), NoLedger(), deals=deals, dry_run=True))
    for name, seconds in timings.items():
        print(f"  {name:<8} {seconds:7.2f} s")
    enrollments = summary.enrollment_plan
    count = len(enrollments) if hasattr(type(enrollments), "__len__") else len(enrollments.actions)  # older code
    print(f"  changes={len(summary.plan)} enrollments={count} "
          f"conflicts={summary.plan.conflicts} inputs_rss_mb={base:.0f}")
    print(f"customers={n} mode={mode} scenario={scenario} wall_s={sum(timings.values()):.2f} "
          f"peak_rss_mb={rss_mb():.0f}")


def write_first_sync(n: int, folder: Path) -> None:
    """What the CRM holds after the first sync of the generated portal: one parquet file per object type."""
    from connector.writeback import CurrentFrames, output_frame

    cfg = config()
    customers, deals = portfolio_frames(n)
    stages = stage_frames(n)
    first = output_frame(stages["features"], stages["health"], stages["segments"], cfg)
    plan = writeback.plan_writeback(cfg, first, customers, CurrentFrames(), deals=deals)
    for object_type, frame in CurrentFrames.of_changes(plan.frame).frames.items():
        frame.write_parquet(folder / f"{object_type}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--mode", choices=("frames", "dicts"), default="frames")
    parser.add_argument("--scenario", choices=("first", "steady"), default="first")
    parser.add_argument("--written", type=Path, help=argparse.SUPPRESS)  # the steady scenario's child process
    args = parser.parse_args()
    if args.written:
        write_first_sync(args.customers, args.written)
        return
    run(args.customers, args.mode, args.scenario)


if __name__ == "__main__":
    main()
