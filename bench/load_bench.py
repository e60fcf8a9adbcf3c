"""Benchmark of what a sync's compute step reads: pipeline.load_portfolio from a real state store, in one process
and in worker processes.

    .venv/bin/python bench/load_bench.py                          # 100,000 customers, SQLite file
    .venv/bin/python bench/load_bench.py --customers 300000 --workers 1 2
    .venv/bin/python bench/load_bench.py --url postgresql+psycopg://postgres@127.0.0.1:5432/test

The store is filled once with model_bench's records (6 per customer) and associations through the store's own
``save_page`` / ``replace_associations`` (a SQLite file is kept under .bench/ and reused while its size matches);
then load_portfolio reads it with each worker count. Unlike scale_bench, reading and decoding the stored rows is
part of the figure here, as in a real sync. Prints wall-clock seconds and peak memory of every process; asserts
only that each run gives the same customers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_bench import TYPES, TreeMemory, _records, iter_associations  # noqa: E402

from connector import pipeline  # noqa: E402
from connector.mapping import load_pack  # noqa: E402
from connector.state import StateStore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def fill(store: StateStore, n: int) -> None:
    """model_bench's records and associations for n customers, saved as a pull would save them."""
    for object_type in TYPES:
        page: list[dict] = []
        for r in _records(object_type, n):
            page.append({"id": r.id, "properties": r.properties, "history": r.history or None,
                         "archived": r.archived, "created_at": r.created_at})
            if len(page) == 1000:
                store.save_page(object_type, page, None)
                page = []
        if page:
            store.save_page(object_type, page, None)
    pairs: dict[tuple[str, str], dict[str, list[tuple[str, int | None]]]] = {}
    for a in iter_associations(n):
        mapping = pairs.setdefault((a.from_type, a.to_type), {})
        mapping.setdefault(a.from_id, []).append((a.to_id, a.type_id))
        if len(mapping) == 5000:
            store.replace_associations(a.from_type, a.to_type, mapping)
            mapping.clear()
    for (from_type, to_type), mapping in pairs.items():
        if mapping:
            store.replace_associations(from_type, to_type, mapping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--url", default=None, help="a state store URL (default: a SQLite file under .bench/)")
    args = parser.parse_args()
    n = args.customers
    url = args.url or f"sqlite:///{ROOT / '.bench' / f'load-{n}.db'}"
    pack = load_pack(ROOT / "mappings")
    with StateStore.open(url) as store:
        if store.count_records() != 6 * n:
            started = time.perf_counter()
            fill(store, n)
            print(f"filled the store with {6 * n:,} records in {time.perf_counter() - started:.1f} s")
        customers = None
        print(f"load_portfolio: {n:,} customers, {6 * n:,} stored records ({store.dialect})")
        for workers in args.workers:
            with TreeMemory() as memory:
                started = time.perf_counter()
                portfolio = pipeline.load_portfolio(store, pack, workers=workers)
                wall = time.perf_counter() - started
            assert len(portfolio.customers) == n and not portfolio.issues
            got = list(portfolio.customers)
            assert customers is None or got == customers
            customers = got
            print(f"  workers {workers}: {wall:6.2f} s wall; all processes together peak {memory.rss_mb:,.0f} MB RSS, "
                  f"{memory.pss_mb:,.0f} MB PSS")
            del portfolio, got
            pipeline.release_freed_memory()


if __name__ == "__main__":
    main()
