"""Pull figures against the sandbox: API calls vs the floor, 429s, burst use, wall time vs the rate limit, peak RSS.

    .venv/bin/python bench/pull_bench.py                 # medium and large portals at the enterprise profile
    .venv/bin/python bench/pull_bench.py --sizes medium  # one portal only
    .venv/bin/python bench/pull_bench.py --rss           # peak RSS pulling 100k vs 1M contacts (profile unlimited)

The sandbox runs in this process; each pull runs in a fresh spawned process so its peak RSS (VmHWM) is its own.
Prints figures; asserts nothing (never a timed test). Goals: calls <= 1.02 x floor, zero 429s, >= 90 % of the
allowed burst, flat RSS.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: ru_maxrss survives exec, so a spawned child would report
    the parent's (sandbox's) size at fork time."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pull_child(base_url: str, token: str, state_url: str, objects: list[str] | None, queue) -> None:
    """Run one full pull in a fresh interpreter and report its figures."""
    from connector.extract import pull
    from connector.hubspot import HubSpotClient
    from connector.mapping import load_pack
    from connector.settings import Settings
    from connector.state import StateStore

    plan = load_pack(ROOT / "mappings").pull_plan()
    if objects:
        plan = {k: v for k, v in plan.items() if k in objects}
    client = HubSpotClient.from_settings(Settings(_env_file=None, base_url=base_url, token=token))
    store = StateStore.open(state_url)
    started = time.perf_counter()
    summary = pull(client, store, plan)
    wall = time.perf_counter() - started
    stats = client.stats
    queue.put(
        {
            "wall_s": wall,
            "calls_by_kind": dict(stats.calls),
            "rate_limited": stats.rate_limited,
            "retries": stats.retries,
            "burst_max": stats.burst_max,
            "records": summary.records,
            "archived": summary.archived,
            "associations": summary.associations,
            "peak_rss_mb": peak_rss_mb(),
            "stored": {t: store.count_records(t, include_archived=True) for t in plan},
        }
    )
    store.close()


def run_pull(sb, objects: list[str] | None = None, state_url: str | None = None) -> dict:
    """One pull in a fresh spawned process, into ``state_url`` (a throw-away SQLite file by default)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        url = state_url or f"sqlite:///{tmp}/state.db"
        proc = ctx.Process(target=_pull_child, args=(sb.base_url, sb.token, url, objects, queue))
        proc.start()
        result = queue.get()
        proc.join()
    return result


def _wait_for_sandbox_clock(portal) -> None:
    # The sandbox stamps a burst of writes 1 ms apart, ahead of the wall clock; let the clock pass them.
    while time.time() * 1000 <= portal._last_write_ms + 5:
        time.sleep(0.01)


def floor_calls(portal, plan) -> dict:
    """The fewest calls a full pull can make: 1 per 100 live and archived records (at least one list call each),
    1 per 1,000 ids per association to-type, and 1 per 50 records for types with historical properties."""
    listing = associations = history = 0
    for object_type, spec in plan.items():
        store = portal.stores[object_type]
        live, archived = len(store.live_ids), len(store.archived_ids)
        listing += max(1, math.ceil(live / 100)) + max(1, math.ceil(archived / 100))
        associations += len(spec.associations) * math.ceil(live / 1000)
        if spec.historical:
            history += math.ceil(live / 50)
    return {"list": listing, "associations": associations, "history": history}


def bench_portal(size: str, profile: str) -> None:
    from connector.mapping import load_pack
    from connector.sandbox.server import running_sandbox

    plan = load_pack(ROOT / "mappings").pull_plan()
    t0 = time.perf_counter()
    with running_sandbox(seed=1, size=size, profile=profile) as sb, tempfile.TemporaryDirectory() as tmp:
        gen_s = time.perf_counter() - t0
        floor = floor_calls(sb.portal, plan)
        state_url = f"sqlite:///{tmp}/state.db"
        r = run_pull(sb, state_url=state_url)
        # Then an incremental run after 1 % of the contacts and companies changed.
        changed = 0
        for object_type, prop in (("contacts", "firstname"), ("companies", "name")):
            live = sb.portal.stores[object_type].live_ids
            for rid in live[:: max(1, 100)][: max(1, len(live) // 100)]:
                sb.portal.update(object_type, str(rid), {prop: f"Changed {rid}"})
                changed += 1
        _wait_for_sandbox_clock(sb.portal)
        inc = run_pull(sb, state_url=state_url)
    calls = r["calls_by_kind"]
    total = sum(calls.values())
    search = calls.get("search", 0)
    paced = total - search  # search has its own per-second limit and is exempt from the 10-s burst
    floor_total = sum(floor.values())
    floor_no_history = floor["list"] + floor["associations"]
    burst = r["burst_max"] or 0
    achieved = paced / r["wall_s"] * 10
    # Steady state: `burst` calls per 10 s. At best the first window's burst is spent at once, saving 10 s.
    steady_s = paced / burst * 10 if burst else 0.0
    limit_s = max(0.0, steady_s - 10)
    print(f"\n== {size} portal, profile {profile} (generated in {gen_s:.1f} s) ==")
    print(f"records: {r['records']:,} live + {r['archived']:,} archived, {r['associations']:,} associations")
    print(f"API calls: {total:,} {dict(sorted(calls.items()))}")
    print(
        f"floor: {floor_total:,} {floor} -> calls / floor = {total / floor_total:.3f} "
        f"(list+associations only: {(total - calls.get('batch_read', 0)) / floor_no_history:.3f})"
    )
    print(f"429s received: {r['rate_limited']}, retries: {r['retries']}")
    print(
        f"requests per 10 s: {achieved:.1f} achieved vs {burst} allowed = {100 * achieved / burst:.1f} %"
        if burst
        else "requests per 10 s: no burst limit learnt"
    )
    print(
        f"wall time: {r['wall_s']:.1f} s vs {steady_s:.1f} s imposed by the rate limit alone at {burst}/10 s "
        f"({limit_s:.1f} s if the first burst went at once); wall / limit = {r['wall_s'] / steady_s:.2f}"
        if burst
        else f"wall time: {r['wall_s']:.1f} s"
    )
    print(f"peak RSS of the pull process: {r['peak_rss_mb']:.0f} MB")
    inc_calls = inc["calls_by_kind"]
    print(
        f"incremental after {changed:,} records changed: {sum(inc_calls.values())} calls "
        f"{dict(sorted(inc_calls.items()))}, {inc['records']:,} records re-read (look-back and margin included), "
        f"{inc['wall_s']:.1f} s"
    )


def _contacts_only_portal(contacts: int):
    """A portal holding just `contacts` contacts (fast to build, light on the sandbox's own memory)."""
    from connector.sandbox.portal import Portal, iso
    from connector.sandbox.seed import GeneratedPortal, SeedRecord

    now = 1_795_000_020_000
    records = []
    for i in range(1, contacts + 1):
        created = now - (i % 700) * 86_400_000
        records.append(
            SeedRecord(
                "contacts",
                i,
                created,
                {
                    "firstname": f"First{i}",
                    "lastname": f"Last{i}",
                    "email": f"c{i}@example.com",
                    "lastmodifieddate": iso(created + 3_600_000),
                    "date_of_birth": "1980-01-01",
                    "hs_analytics_source": "ORGANIC_SEARCH",
                },
            )
        )
    portal = Portal(seed=1, profile="unlimited")
    portal.ingest(GeneratedPortal(records={"contacts": records}, associations=[], now_ms=now))
    return portal


def bench_rss(sizes: list[int]) -> None:
    from connector.sandbox.server import running_sandbox

    print("\n== peak RSS of the pull process, contacts only, profile unlimited ==")
    for n in sizes:
        portal = _contacts_only_portal(n)
        with running_sandbox(portal=portal) as sb:
            r = run_pull(sb, objects=["contacts"])
        print(
            f"{n:>9,} contacts: peak RSS {r['peak_rss_mb']:.0f} MB, stored {r['stored']['contacts']:,}, "
            f"{sum(r['calls_by_kind'].values()):,} calls, {r['wall_s']:.0f} s ({n / r['wall_s']:,.0f} records/s)"
        )
        del portal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="medium,large", help="comma-separated: small, medium, large")
    parser.add_argument("--profile", default="enterprise")
    parser.add_argument("--rss", action="store_true", help="peak RSS at 100k vs 1M contacts instead")
    parser.add_argument("--rss-sizes", default="100000,1000000")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.rss:
        bench_rss([int(s) for s in args.rss_sizes.split(",")])
        return
    for size in args.sizes.split(","):
        bench_portal(size.strip(), args.profile)


if __name__ == "__main__":
    main()
