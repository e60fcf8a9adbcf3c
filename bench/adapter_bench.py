"""Adapter figures against the sandbox: burst use and 429s under pacing, search pace, API calls per operation.

Run: .venv/bin/python bench/adapter_bench.py [--seconds 30] [--contacts 2000]
Prints figures; asserts nothing (never a timed test).
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime

from connector.hubspot import HubSpotClient
from connector.sandbox.server import running_sandbox
from connector.settings import Settings

TYPES = ["contacts", "companies", "deals", "line_items", "subscriptions", "feedback_submissions"]


def _client(sb, **kw) -> HubSpotClient:
    return HubSpotClient(Settings(_env_file=None, token=sb.token, base_url=sb.base_url, **kw))


def bench_burst(seconds: float, contacts: int) -> None:
    """Page records as fast as the pacer allows at the Free/Starter profile (100 calls per rolling 10 s)."""
    with running_sandbox(seed=1, size=contacts, profile="free") as sb:
        client = _client(sb)
        stamps: list[float] = []
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            for page in client.iter_pages("contacts", ["email"]):
                stamps.append(time.monotonic() - start)
                if stamps[-1] >= seconds:
                    break
        elapsed = stamps[-1]
        stats = client.stats
        worst = max(sum(1 for s in stamps if a <= s < a + 10.0) for a in stamps)
        settled = [s for s in stamps if s >= 10.0]
        steady = (len(settled) - 1) / (settled[-1] - settled[0]) if len(settled) > 1 else 0.0
        allowed = stats.burst_max / 10.0
        print(f"burst (profile free, {seconds:.0f} s): {len(stamps)} calls in {elapsed:.1f} s, "
              f"429s={stats.rate_limited}, retries={stats.retries}, max calls in any 10 s={worst} "
              f"(limit {stats.burst_max}), steady rate after the first window {steady:.2f}/s = "
              f"{100 * steady / allowed:.1f} % of the allowed {allowed:.1f}/s")


def bench_shared(seconds: float, contacts: int) -> None:
    """Two processes' clients on the same app token: they learn each other from the headers and leave room."""
    with running_sandbox(seed=1, size=contacts, profile="free") as sb:
        clients = [_client(sb) for _ in range(2)]
        stop = time.monotonic() + seconds

        def run(client: HubSpotClient) -> None:
            while time.monotonic() < stop:
                for _ in client.iter_pages("contacts", ["email"]):
                    if time.monotonic() > stop:
                        break

        threads = [threading.Thread(target=run, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        calls = [c.stats.total_calls for c in clients]
        print(f"shared app (2 clients, profile free, {seconds:.0f} s): calls {calls} = {sum(calls)}, "
              f"429s={[c.stats.rate_limited for c in clients]}, limits now {[c.pacer.burst.limit for c in clients]}")


def bench_search(calls: int, contacts: int) -> None:
    """Search pages at the default 4/s (HubSpot allows 5/s per account)."""
    with running_sandbox(seed=1, size=contacts, profile="free") as sb:
        client = _client(sb)
        start = time.monotonic()
        done = 0
        while done < calls:
            for _ in client.iter_modified_since("contacts", datetime(2000, 1, 1, tzinfo=UTC), ["email"], page_size=10):
                done += 1
                if done >= calls:
                    break
        elapsed = time.monotonic() - start
        print(f"search: {done} calls in {elapsed:.1f} s = {done / elapsed:.2f}/s (setting 4/s, HubSpot 5/s), "
              f"429s={client.stats.rate_limited}")


def bench_calls_per_operation(contacts: int) -> None:
    """What one full pull costs in API calls, per operation, on an unlimited profile."""
    with running_sandbox(seed=1, size=contacts, profile="unlimited") as sb:
        client = _client(sb)
        print(f"calls per operation ({contacts} contacts):")
        ids: dict[str, list[str]] = {}
        for object_type in TYPES:
            before = client.stats.total_calls
            records = [r["id"] for p in client.iter_pages(object_type, ["hs_object_id"]) for r in p.records]
            ids[object_type] = records
            print(f"  list {object_type:22s} {len(records):6d} records  {client.stats.total_calls - before:4d} calls")
        before = client.stats.total_calls
        many = [f"prop_{i:03d}_with_a_long_internal_name" for i in range(300)]  # a portal with many properties
        client_props = ["name", "domain", *many]
        n = sum(len(p.records) for p in client.iter_pages("companies", client_props))
        print(f"  list companies, 302 properties  {n:6d} records  {client.stats.total_calls - before:4d} calls "
              "(URL split: list + one batch read per page)")
        before = client.stats.total_calls
        n = len(client.fetch_with_history("companies", ids["companies"], ["name"], ["lifecyclestage"]))
        print(f"  batch read with history        {n:6d} records  {client.stats.total_calls - before:4d} calls (50/call)")
        before = client.stats.total_calls
        n = len(client.fetch_records("contacts", ids["contacts"], ["email"]))
        print(f"  batch read                     {n:6d} records  {client.stats.total_calls - before:4d} calls (100/call)")
        before = client.stats.total_calls
        links = client.fetch_associations("contacts", "companies", ids["contacts"])
        print(f"  associations contacts→companies {len(links):5d} ids      {client.stats.total_calls - before:4d} calls "
              "(1,000/call)")
        before = client.stats.total_calls
        n = sum(len(p.records) for p in client.iter_modified_since("contacts", datetime(2000, 1, 1, tzinfo=UTC),
                                                                     ["email"]))
        print(f"  search modified since (contacts) {n:5d} records  {client.stats.total_calls - before:4d} calls "
              "(200/call)")
        before = client.stats.total_calls
        result = client.batch_update("contacts", [(i, {"jobtitle": "Bench"}) for i in ids["contacts"][:1000]])
        print(f"  batch update                   {len(result.ok):6d} records  {client.stats.total_calls - before:4d} calls "
              "(100/call)")


def bench_search_ties(contacts: int) -> None:
    """Search across the 10k cap when more than 10,000 records share one millisecond (the id-ordered walk)."""
    with running_sandbox(seed=1, size=contacts) as sb:
        portal = sb.portal
        live = {str(i) for i in portal.stores["contacts"].ids(False)}
        stamps: dict[str, int] = {}
        for i in portal.stores["contacts"].ids(False):
            stamp = portal.get("contacts", i).props.get("lastmodifieddate") or ""
            stamps[stamp] = stamps.get(stamp, 0) + 1
        client = _client(sb, search_per_second=50)  # the sandbox's unlimited profile
        start = time.monotonic()
        ids = [r["id"] for p in client.iter_modified_since("contacts", datetime(2000, 1, 1, tzinfo=UTC), [])
               for r in p.records]
        print(f"search across the cap with ties ({len(live)} contacts, {max(stamps.values())} on one ms): "
              f"{len(ids)} yielded, {len(set(ids))} unique, {len(live - set(ids))} missing, "
              f"{client.stats.calls['search']} calls, {time.monotonic() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--ties", type=int, default=0, metavar="CONTACTS",
                        help="also walk a portal this large whose biggest same-millisecond group passes 10,000 "
                             "(17000 does with seed 1)")
    args = parser.parse_args()
    if args.ties:
        bench_search_ties(args.ties)
    bench_calls_per_operation(args.contacts)
    bench_search(40, 500)
    bench_burst(args.seconds, 500)
    bench_shared(args.seconds, 500)


if __name__ == "__main__":
    main()
