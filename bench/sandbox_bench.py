"""Sandbox figures: list pages/s and batch updates/s at ``unlimited``; 429s for a paced and an unpaced client.

The server runs in its own process (``connector sandbox serve``) and this process is the client, so the figures
include real HTTP on loopback and no shared GIL.
Run: .venv/bin/python bench/sandbox_bench.py [--seconds 5] [--contacts 10000] [--clients 2] [--skip-limits]
Prints figures; asserts nothing (never a timed test).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import urllib3

ROOT = Path(__file__).resolve().parent.parent
PROPERTIES = ("email,firstname,lastname,jobtitle,company,lifecyclestage,createdate,lastmodifieddate,hs_object_id,"
              "associatedcompanyid")  # 10 properties per record


@contextlib.contextmanager
def served(profile: str, contacts: int, seed: int = 1) -> Iterator[tuple[str, str, int]]:
    """Start ``connector sandbox serve`` in a child process; yield (base_url, token, pid); stop it with Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "serve", "--port", "0", "--size", str(contacts),
         "--seed", str(seed), "--profile", profile], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        exports = {}
        for line in process.stdout:
            if line.startswith("export "):
                key, _, value = line[len("export "):].strip().partition("=")
                exports[key] = value
            if line.startswith("Press Ctrl-C"):
                break
        if "CONNECTOR_BASE_URL" not in exports:
            raise SystemExit("the sandbox did not start")
        yield exports["CONNECTOR_BASE_URL"], exports["CONNECTOR_TOKEN"], process.pid
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc): the server's cost per page whatever the machine load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pool(base_url: str) -> urllib3.HTTPConnectionPool:
    # urllib3 is the SDK's transport; one keep-alive connection per client thread.
    return urllib3.connection_from_url(base_url, maxsize=8)


def bench_pages(base_url: str, token: str, pid: int, seconds: float, clients: int) -> None:
    """Page contacts (100 per page x 10 properties) from ``clients`` threads for ``seconds``."""
    pool = _pool(base_url)
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        after, mine = None, []
        while time.monotonic() < stop:
            fields = {"limit": "100", "properties": PROPERTIES}
            if after:
                fields["after"] = after
            t0 = time.perf_counter()
            response = pool.request("GET", "/crm/v3/objects/contacts", fields=fields, headers=headers)
            body = orjson.loads(response.data)
            mine.append(time.perf_counter() - t0)
            assert response.status == 200 and len(body["results"]) > 0, response.status
            after = body.get("paging", {}).get("next", {}).get("after")
        with lock:
            latencies.extend(mine)

    start, server_cpu = time.monotonic(), cpu_seconds(pid)
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    per_page = (cpu_seconds(pid) - server_cpu) / len(latencies)
    p95 = sorted(latencies)[int(len(latencies) * 0.95)]
    print(f"list pages     : {len(latencies) / elapsed:8.1f} pages/s  ({len(latencies)} pages of 100 contacts x 10 "
          f"properties in {elapsed:.1f} s, {clients} client thread(s), "
          f"median {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms)")
    print(f"                 server CPU {per_page * 1000:.2f} ms/page = {1 / per_page:,.0f} pages/s per free core")


def bench_batch_updates(base_url: str, token: str, pid: int, seconds: float, clients: int) -> None:
    """Batch-update 100 companies per call (two properties each) for ``seconds``."""
    pool = _pool(base_url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ids = [r["id"] for r in orjson.loads(pool.request("GET", "/crm/v3/objects/companies", fields={"limit": "100"},
                                                      headers=headers).data)["results"]]
    count = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            body = {"inputs": [{"id": i, "properties": {"support_open_tickets": str((n + offset) % 9),
                                                         "seats_used": str(n % 50)}} for i in ids]}
            response = pool.request("POST", "/crm/v3/objects/companies/batch/update", body=orjson.dumps(body),
                                    headers=headers)
            assert response.status == 200, response.data[:300]
        with lock:
            count[0] += n

    start, server_cpu = time.monotonic(), cpu_seconds(pid)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    print(f"batch updates  : {count[0] / elapsed:8.1f} batches/s ({count[0] * len(ids) / elapsed:,.0f} records/s, "
          f"{len(ids)} records per batch, {clients} client thread(s))")
    per_batch = (cpu_seconds(pid) - server_cpu) / max(1, count[0])
    print(f"                 server CPU {per_batch * 1000:.2f} ms/batch = {1 / per_batch:,.0f} batches/s per free core")


def bench_limits(contacts: int, seconds: float) -> None:
    """At ``enterprise`` (190 per rolling 10 s): a client pacing at 180/10 s vs one firing as fast as it can."""
    for label, interval in (("paced at 180/10 s", 10.0 / 180), ("unpaced", 0.0)):
        with served("enterprise", contacts) as (base_url, token, _):
            pool = _pool(base_url)
            headers = {"Authorization": f"Bearer {token}"}
            statuses: list[int] = []
            start = time.monotonic()
            next_at = start
            while time.monotonic() - start < seconds:
                if interval:
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                statuses.append(pool.request("GET", "/crm/v3/objects/contacts", fields={"limit": "10"},
                                             headers=headers).status)
            elapsed = time.monotonic() - start
            refused = statuses.count(429)
            print(f"enterprise, {label:18}: {len(statuses):5} calls in {elapsed:4.1f} s, {refused:5} x 429 "
                  f"({len(statuses) - refused} answered)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--contacts", type=int, default=10_000, help="portal size for the throughput runs")
    parser.add_argument("--clients", type=int, default=2, help="concurrent client threads (keep-alive connections)")
    parser.add_argument("--limit-seconds", type=float, default=12.0, help="duration of each enterprise run (> 10 s)")
    parser.add_argument("--skip-limits", action="store_true", help="skip the enterprise pacing runs")
    args = parser.parse_args()
    print(f"sandbox bench on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with served("unlimited", args.contacts) as (base_url, token, pid):
        bench_pages(base_url, token, pid, args.seconds, 1)
        bench_pages(base_url, token, pid, args.seconds, args.clients)
        bench_batch_updates(base_url, token, pid, args.seconds, args.clients)
    if not args.skip_limits:
        bench_limits(200, args.limit_seconds)


if __name__ == "__main__":
    main()
