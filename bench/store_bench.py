"""Benchmark of a sync's whole compute from a real state store: the columnar read path, then load, model,
metrics (6 months), features, health, segments and the write plan, with peak memory of every process.

    .venv/bin/python bench/store_bench.py                          # 100,000 customers, SQLite file under .bench/
    .venv/bin/python bench/store_bench.py --customers 1000000
    .venv/bin/python bench/store_bench.py --url postgresql+psycopg://postgres@127.0.0.1:5432/test   # schema bench_store

The store is filled once with model_bench's customers (7 records, 6 associations each) through the store's own
write path (``save_page`` with history, ``replace_associations``; bench/store_fill.py); a SQLite file is kept under
.bench/ and reused while it holds N customers' records; a PostgreSQL URL gets a schema of its own (``--schema``,
created if missing, reused likewise). Then, each under its own memory watch:

1. frames: ``records_frame`` + ``history_frame`` + ``associations_frame`` of every mapped type (the new read path);
2. compute: ``pipeline.compute(store, pack, AS_OF, months=6)`` — the sync's own call — and the write plan as the
   sync builds it (``pipeline.current_frames_from_store`` then ``writeback.plan_writeback``; no HubSpot call, so
   no provisioning or enrollment plan). Stage lines come from timing the functions compute calls, where they
   exist under these names (nested calls are inside their caller's time).

Prints the machine's load average before and after, and as its last line
``customers=N wall_s=… peak_rss_mb=…`` (the compute and plan's wall clock and the peak RSS of this process and
its children together, see model_bench.TreeMemory). Prints figures only; nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_bench import TreeMemory  # noqa: E402
from store_fill import RECORDS_PER_CUSTOMER, ROOT, default_url, filled  # noqa: E402

from connector import pipeline, writeback  # noqa: E402
from connector.mapping import load_pack  # noqa: E402
from connector.state import StateStore  # noqa: E402

AS_OF = datetime(2026, 1, 15, tzinfo=timezone.utc)  # model_bench's histories run through 2025
# The functions a sync's compute calls, timed in place when they exist under these names (module, attribute).
STAGES = (
    ("connector.pipeline", "load_portfolio", "load + model"),
    ("connector.metrics.revenue", "build_mrr_ledger", "MRR ledger"),
    ("connector.metrics.features", "customer_features", "features"),
    ("connector.health", "health_scores", "health"),
    ("connector.segments", "customer_segments", "segments"),
    ("connector.metrics.portfolio", "portfolio_metrics", "metrics (each month)"),
    ("connector.writeback", "output_frame", "outputs frame"),
    ("connector.pipeline", "current_frames_from_store", "current values from the store"),
    ("connector.writeback", "plan_writeback", "write plan"),
)


def postgres_url(url: str, schema: str) -> str:
    """The URL with its own schema as search_path (created if missing), unless the URL already sets options."""
    import sqlalchemy as sa

    if "options=" in url:
        return url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


class StageClock:
    """Wall seconds (summed over calls) of named functions, by wrapping the module attributes compute looks up."""

    def __init__(self, stages: tuple[tuple[str, str, str], ...]):
        self.stages, self.seconds, self.calls = stages, {}, {}

    @contextlib.contextmanager
    def timing(self) -> Iterator["StageClock"]:
        undo: list[tuple[Any, str, Any]] = []
        for module_name, attr, label in self.stages:
            module = importlib.import_module(module_name)
            original = getattr(module, attr, None)
            if original is None:
                continue
            undo.append((module, attr, original))
            setattr(module, attr, self._wrap(original, label))
        try:
            yield self
        finally:
            for module, attr, original in undo:
                setattr(module, attr, original)

    def _wrap(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                self.calls[label] = self.calls.get(label, 0) + 1
        return timed


def read_frames(store: StateStore, pack: Any) -> list[tuple[str, int, float, float]]:
    """Every mapped type's records, history and associations as frames: (what, rows, wall s, CPU s of this
    process, its reader threads included)."""
    out = []

    def timed(what: str, read: Callable[[], Any]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        rows = read().height
        out.append((what, rows, time.perf_counter() - wall, time.process_time() - cpu))

    for object_type, spec in pack.pull_plan().items():
        timed(f"records {object_type} ({len(spec.properties)} properties)",
              lambda: store.records_frame(object_type, spec.properties))
        if spec.historical:
            timed(f"history {object_type} ({len(spec.historical)} properties)",
                  lambda: store.history_frame(object_type, spec.historical))
        for to_type in spec.associations:
            timed(f"associations {object_type} → {to_type}", lambda: store.associations_frame(object_type, to_type))
    return out


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--url", default=None, help="a state store URL (default: a SQLite file under .bench/)")
    parser.add_argument("--schema", default="bench_store", help="PostgreSQL schema the bench fills (created)")
    parser.add_argument("--skip-compute", action="store_true", help="only fill and read the frames")
    args = parser.parse_args()
    n = args.customers
    url = args.url or default_url(n)
    if url.startswith("postgresql"):
        url = postgres_url(url, args.schema)
    pack = load_pack(ROOT / "mappings")
    print(f"load average before: {load()}")
    with StateStore.open(url) as store:
        fill_s = filled(store, n)
        where = store.engine.url.render_as_string(hide_password=True)
        if fill_s is None:
            print(f"store: {where} (reused: {RECORDS_PER_CUSTOMER * n:,} records)")
        else:
            print(f"store: {where}: filled with {RECORDS_PER_CUSTOMER * n:,} records in {fill_s:.1f} s")

        with TreeMemory() as memory:
            started = time.perf_counter()
            reads = read_frames(store, pack)
            frames_s = time.perf_counter() - started
        for what, rows, seconds, cpu in reads:
            print(f"  frame {what:52s} {rows:>10,} rows {seconds:6.2f} s ({cpu:6.2f} s CPU) "
                  f"{rows / max(seconds, 1e-9):>10,.0f} rows/s")
        print(f"frames: {frames_s:.2f} s wall, {sum(r[3] for r in reads):.2f} s CPU here (the database server's "
              f"own on PostgreSQL not counted), peak {memory.rss_mb:,.0f} MB RSS")
        if args.skip_compute:
            print(f"load average after: {load()}")
            print(f"customers={n} frames_s={frames_s:.2f} peak_rss_mb={memory.rss_mb:.0f}")
            return

        clock = StageClock(STAGES)
        with TreeMemory() as memory, clock.timing():
            started = time.perf_counter()
            computed = pipeline.compute(store, pack, AS_OF, months=6)
            current = pipeline.current_frames_from_store(store, pack.writeback)
            frames = computed.portfolio.frames
            plan = writeback.plan_writeback(pack.writeback, computed.outputs, frames.customers, current,
                                            deals=frames.deals)
            wall = time.perf_counter() - started
        for _module, _attr, label in STAGES:
            if label in clock.seconds:
                calls = clock.calls[label]
                print(f"  {label:40s} {clock.seconds[label]:7.2f} s" + (f" ({calls} calls)" if calls > 1 else ""))
        print(f"compute + plan: {len(computed.outputs):,} customers, {len(plan):,} changes planned, "
              f"{len(computed.portfolio.issues):,} data issues")
    print(f"load average after: {load()}")
    print(f"customers={n} wall_s={wall:.2f} peak_rss_mb={memory.rss_mb:.0f}")


if __name__ == "__main__":
    main()
