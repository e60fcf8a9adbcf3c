"""Time and peak memory of the sandbox's portal generator (prints figures; never a test).

    .venv/bin/python bench/seed_bench.py            # 10k and 100k contacts
    .venv/bin/python bench/seed_bench.py --million  # also 1M contacts (about ten minutes, several GB)

Each size runs in a fresh subprocess so its peak RSS (resource.getrusage, ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

NOW_MS = 1_795_000_020_000  # fixed, so figures compare across runs


def measure(contacts: int, seed: int) -> dict:
    from connector.sandbox.seed import generate

    started, cpu_started = time.perf_counter(), time.process_time()
    portal = generate(seed=seed, contacts=contacts, now_ms=NOW_MS)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    counts = {t: len(r) for t, r in portal.records.items()}
    history_points = sum(len(h) for rs in portal.records.values() for r in rs for h in r.history.values())
    return {
        "contacts": contacts, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),  # Linux reports KiB
        "records": counts, "associations": len(portal.associations), "history_points": history_points,
        "ground_truth": len(portal.ground_truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--million", action="store_true", help="also generate 1,000,000 contacts")
    parser.add_argument("--sizes", type=int, nargs="*", help="contact counts to run instead of the defaults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.seed)))
        return
    sizes = args.sizes or [10_000, 100_000] + ([1_000_000] if args.million else [])
    # Wall time suffers when other work shares the two cores; CPU time is the figure to compare.
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'contacts':>10} {'seconds':>8} {'cpu s':>8} {'peak RSS MB':>12} {'records':>10} {'assocs':>10} "
          f"{'history':>10}")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--seed", str(args.seed)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        print(f"{n:>10,} {r['seconds']:>8.2f} {r['cpu_seconds']:>8.2f} {r['peak_rss_mb']:>12,} "
              f"{sum(r['records'].values()):>10,} "
              f"{r['associations']:>10,} {r['history_points']:>10,}")
        print("           " + ", ".join(f"{k} {v:,}" for k, v in r["records"].items()))


if __name__ == "__main__":
    main()
