"""Benchmark of what a sync's compute step reads: pipeline.load_portfolio from a real state store, in one process
and in worker processes.

    .venv/bin/python bench/load_bench.py                          # 100,000 customers, SQLite file
    .venv/bin/python bench/load_bench.py --customers 300000 --workers 1 2
    .venv/bin/python bench/load_bench.py --url postgresql+psycopg://postgres@127.0.0.1:5432/test

The store is filled once with model_bench's records (7 per customer) and associations through the store's own
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

from model_bench import TreeMemory  # noqa: E402
from store_fill import RECORDS_PER_CUSTOMER, ROOT, default_url, filled  # noqa: E402

from connector import pipeline  # noqa: E402
from connector.mapping import load_pack  # noqa: E402
from connector.state import StateStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--url", default=None, help="a state store URL (default: a SQLite file under .bench/)")
    args = parser.parse_args()
    n = args.customers
    url = args.url or default_url(n, "load")
    pack = load_pack(ROOT / "mappings")
    with StateStore.open(url) as store:
        fill_s = filled(store, n)
        if fill_s is not None:
            print(f"filled the store with {RECORDS_PER_CUSTOMER * n:,} records in {fill_s:.1f} s")
        customers = None
        print(f"load_portfolio: {n:,} customers, {RECORDS_PER_CUSTOMER * n:,} stored records ({store.dialect})")
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
