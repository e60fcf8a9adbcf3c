"""Benchmark of the metrics stage on the model's frames: MRR ledger, features, the report's 6 months; wall and peak RSS.

    .venv/bin/python bench/metrics_bench.py                      # 100,000 customers
    .venv/bin/python bench/metrics_bench.py --customers 1000000

The frames come from the sandbox generator (seed 7) through ``connector.model.build_portfolio`` and a
``RecordSource``: a base portal is generated and mapped once in a child process (cached under ``.bench/``), then its
frames are tiled (ids suffixed ``~k``) up to N customers, so every customer has the generator's histories (price
changes, past-due runs, churn, returns, surveys, usage). The measured process reads only those frames. Prints
figures only; the test suite never times anything. Peak RSS is ``resource.getrusage`` (ru_maxrss); the last line is
``customers=N wall_s=… peak_rss_mb=…`` for the metrics stages (ledger, features, 6 months of figures).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from model_bench import Assoc, Rec  # noqa: E402

from connector.model import Frames, Portfolio  # noqa: E402
from connector.model.frames import HISTORIES, IDS  # noqa: E402

CACHE = ROOT / ".bench"
NOW_MS = 1_767_225_600_000  # 2026-01-01, the generator's "today"
AS_OF = datetime.fromtimestamp(NOW_MS / 1000, timezone.utc)
BASE_CONTACTS = 20_000
# Columns that hold record ids (suffixed per copy); list columns hold lists of ids.
ID_COLUMNS = {"id", "customer_id", "contact_id", "primary_contact_id", "deal_id", "subscription_id", "owner",
              "contact_ids", "line_item_ids"}


def make_base(directory: Path, contacts: int) -> None:
    """Generate the sandbox portal, map it through the default pack, write its frames as parquet."""
    from connector.mapping import load_pack
    from connector.model import RecordSource, build_portfolio
    from connector.sandbox.schema import ASSOCIATION_TYPES
    from connector.sandbox.seed import generate

    portal = generate(seed=7, contacts=contacts, now_ms=NOW_MS)

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")

    records = [
        Rec(r.object_type, str(r.id), dict(r.properties),
            {name: [{"value": v, "timestamp": iso(ms), "sourceType": "API"} for v, ms in reversed(points)]
             for name, points in r.history.items()},
            archived=r.archived, created_at=datetime.fromtimestamp(r.created_ms / 1000, timezone.utc))
        for recs in portal.records.values() for r in recs
    ]
    associations = []
    for from_type, from_id, to_type, to_id, primary in portal.associations:
        types = ASSOCIATION_TYPES[(from_type, to_type)]
        type_id = next((t for t, label in types if label == "Primary"), types[0][0]) if primary else types[-1][0]
        associations.append(Assoc(from_type, str(from_id), to_type, str(to_id), type_id))
    portfolio = build_portfolio(RecordSource(records, associations), load_pack(ROOT / "mappings"))
    frames = portfolio.frames
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("customers", "subscriptions", "deals", "line_items", "feedback", "usage", "extras"):
        getattr(frames, name).write_parquet(directory / f"{name}.parquet")
    for name, frame in frames.histories.items():
        frame.write_parquet(directory / f"{name}.parquet")


def _suffixed(frame: pl.DataFrame, copy: int) -> pl.DataFrame:
    if not copy:
        return frame
    tail = f"~{copy}"
    return frame.with_columns([
        (pl.col(c).list.eval(pl.element() + tail) if frame.schema[c] == IDS else pl.col(c) + tail)
        for c in frame.columns if c in ID_COLUMNS
    ])


def tiled_frames(directory: Path, customers: int) -> Frames:
    base = {p.stem: pl.read_parquet(p) for p in directory.glob("*.parquet")}
    copies = -(-customers // base["customers"].height)

    def tile(frame: pl.DataFrame) -> pl.DataFrame:
        return pl.concat([_suffixed(frame, k) for k in range(copies)], rechunk=True)

    customers_frame = tile(base["customers"]).head(customers)
    kept = customers_frame.select("id")

    def owned(frame: pl.DataFrame, key: str) -> pl.DataFrame:
        return frame.join(kept, left_on=key, right_on="id", how="semi", maintain_order="left") \
            if key in frame.columns else frame

    frames = {"customers": customers_frame}
    for name in ("subscriptions", "deals", "feedback", "usage", "extras"):
        frames[name] = owned(tile(base[name]), "customer_id")
    deals = frames["deals"].select("id")
    frames["line_items"] = tile(base["line_items"]).join(deals, left_on="deal_id", right_on="id", how="semi",
                                                         maintain_order="left")
    histories = {}
    for name, (part, _, _) in HISTORIES.items():
        owners = frames[part].select(pl.col("id" if part == "subscriptions" else "customer_id").alias("owner"))
        histories[name] = tile(base[name]).join(owners, on="owner", how="semi", maintain_order="left") \
            .sort(["owner", "at"], maintain_order=True)
    extras = frames.pop("extras")
    return Frames(**frames, histories=histories, extras=extras)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="portfolio size (default 100,000)")
    parser.add_argument("--base-contacts", type=int, default=BASE_CONTACTS, help="contacts of the generated portal")
    parser.add_argument("--make-base", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_base:
        make_base(Path(args.make_base), args.base_contacts)
        return
    directory = CACHE / f"metrics-base-seed7-{args.base_contacts}"
    if not (directory / "customers.parquet").exists():
        subprocess.run([sys.executable, __file__, "--make-base", str(directory), "--base-contacts",
                        str(args.base_contacts)], check=True)

    from connector.metrics import periods
    from connector.metrics.features import customer_features
    from connector.metrics.portfolio import MetricsOptions, portfolio_metrics
    from connector.metrics.revenue import build_mrr_ledger

    frames = tiled_frames(directory, args.customers)
    base = peak_mb()
    rows: list[tuple[str, float, float, float]] = []
    cpu = [time.process_time()]

    def stage(name: str, started: float) -> None:
        now_cpu = time.process_time()  # every thread of this process: robust to a busy box, unlike wall time
        rows.append((name, time.perf_counter() - started, now_cpu - cpu[0], peak_mb()))
        cpu[0] = now_cpu

    started, started_cpu = time.perf_counter(), time.process_time()
    t = started
    cpu[0] = started_cpu
    portfolio = Portfolio(frames=frames)  # before issue 12 this derived the numpy columns the metrics read
    stage("Portfolio of the frames", t)
    t = time.perf_counter()
    ledger = build_mrr_ledger(portfolio)
    stage("MRR ledger", t)
    t = time.perf_counter()
    features = customer_features(portfolio, AS_OF, ledger=ledger)
    stage("per-customer features", t)
    t = time.perf_counter()
    months = [periods.previous(periods.containing(AS_OF, "month"))]  # December 2025 and the 5 before
    for _ in range(5):
        months.insert(0, periods.previous(months[0]))
    figures = [portfolio_metrics(portfolio, p, AS_OF, ledger=ledger, features=features,
                                 options=MetricsOptions(cohorts=p is months[-1])) for p in months]
    stage("6 months of portfolio figures (cohorts in the last)", t)
    total, total_cpu = time.perf_counter() - started, time.process_time() - started_cpu

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"customers: {frames.customers.height:,}  subscriptions: {frames.subscriptions.height:,}  "
          f"feedback: {frames.feedback.height:,}  status changes: {frames.histories['status_history'].height:,}  "
          f"MRR changes: {frames.histories['mrr_history'].height:,}")
    print(f"RSS with the frames loaded {base:,.0f} MB")
    for name, seconds, cpu_seconds, peak in rows:
        print(f"{seconds:8.2f} s wall {cpu_seconds:8.2f} s cpu  peak RSS {peak:8,.0f} MB  {name}")
    print(f"{total:8.2f} s wall {total_cpu:8.2f} s cpu  metrics stages together")
    last = figures[-1]
    print(f"check: {last.period.label} S={last.customers.start:,} E={last.customers.end:,} "
          f"NRR={last.revenue.retention.nrr} MRR={last.revenue.end_mrr} NPS={last.surveys.nps} "
          f"cohorts={len(last.cohorts)}")
    print(f"customers={frames.customers.height} wall_s={total:.2f} peak_rss_mb={peak_mb():.0f}")


if __name__ == "__main__":
    main()
