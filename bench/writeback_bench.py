"""Write-back figures: planning speed (pure) and apply throughput against the sandbox with a real ledger.

    .venv/bin/python bench/writeback_bench.py [--customers 100000] [--contacts 2000]

Prints figures; asserts nothing about time (speed is measured here, never in tests).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.mapping.writeback import WritebackConfig  # noqa: E402
from connector.model import Customer  # noqa: E402
from connector.writeback import apply_plan, plan_batches, plan_provisioning, plan_writeback  # noqa: E402


def config() -> WritebackConfig:
    return WritebackConfig.model_validate(yaml.safe_load((ROOT / "mappings" / "writeback.yaml").read_text()))


def outputs(ids: list[str]) -> dict[str, dict]:
    out = {}
    for i, cid in enumerate(ids):
        score = (i * 37) % 101
        out[cid] = {"health_score": score, "health_band": "red" if score < 51 else "green", "health_trend": "flat",
                    "health_explanation": f"usage {score}/100", "lifecycle": "active", "nps_group": "passive",
                    "rfm_segment": "loyal", "tags": ["upsell", "welcome"] if score > 80 else [],
                    "mrr": Decimal(i % 997) + Decimal("0.505"), "clv": score * 12.5}
    return out


def bench_plan(n: int) -> None:
    cfg = config()
    customers = [Customer(id=str(i), object_type="companies", name=None, created_at=None, customer_since=None,
                          acquisition_source=None, industry=None,
                          contact_ids=tuple(f"{i}-{k}" for k in range(5)), primary_contact_id=f"{i}-0")
                 for i in range(1, n + 1)]
    values = outputs([c.id for c in customers])
    t = time.perf_counter()
    plan = plan_writeback(cfg, values, customers, {})
    first = time.perf_counter() - t
    current: dict = {}
    for change in plan.changes:
        current.setdefault((change.object_type, change.record_id), {})[change.property] = change.after
    t = time.perf_counter()
    again = plan_writeback(cfg, values, customers, current)
    second = time.perf_counter() - t
    t = time.perf_counter()
    batches = plan_batches(plan.changes)
    batching = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"plan   {n:>9,} customers x 5 contacts: {len(plan.changes):,} changes on {plan.record_count():,} records "
          f"in {first:.2f} s ({len(plan.changes) / first:,.0f} changes/s)")
    print(f"replan nothing changed: {len(again.changes)} changes in {second:.2f} s; "
          f"batching into {len(batches):,} batches: {batching:.2f} s; peak RSS {rss:,.0f} MB")


def bench_apply(contacts: int) -> None:
    from connector.hubspot import HubSpotClient
    from connector.sandbox.server import running_sandbox
    from connector.settings import Settings
    from connector.state import StateStore
    from connector.writeback import apply_provisioning

    cfg = config()
    with running_sandbox(seed=3, size=contacts, profile="unlimited") as sb, tempfile.TemporaryDirectory() as tmp:
        client = HubSpotClient(Settings(_env_file=None, token=sb.token, base_url=sb.base_url))
        store = StateStore.open(f"sqlite:///{tmp}/state.db")
        ids = sorted(str(i) for i in sb.portal.stores["companies"].ids(False))
        links = client.fetch_associations("companies", "contacts", ids)
        live = {str(i) for i in sb.portal.stores["contacts"].ids(False)}
        customers = []
        for cid in ids:
            mine = [(to, t) for to, t in links.get(cid, []) if to in live]
            customers.append(Customer(id=cid, object_type="companies", name=None, created_at=None, customer_since=None,
                                      acquisition_source=None, industry=None, contact_ids=tuple(to for to, _ in mine),
                                      primary_contact_id=next((to for to, t in mine if t == 2), None)))
        values = outputs(ids)
        apply_provisioning(plan_provisioning(cfg, {o: client.fetch_properties(o) for o in ("companies", "contacts", "deals")},
                                             values), client)
        plan = plan_writeback(cfg, values, customers, {})
        ledger_s = [0.0]
        record_outcomes = store.record_outcomes

        def timed(run_id, outcomes):
            t0 = time.perf_counter()
            record_outcomes(run_id, outcomes)
            ledger_s[0] += time.perf_counter() - t0

        store.record_outcomes = timed  # measure the ledger's share of the apply
        t = time.perf_counter()
        result = apply_plan(store.start_run("bench"), plan, client, store)
        elapsed = time.perf_counter() - t
        print(f"apply  {len(plan.changes):,} changes on {result.records_written:,} records in {result.batches} batches: "
              f"{elapsed:.2f} s ({result.records_written / elapsed:,.0f} records/s, "
              f"{result.changes_written / elapsed:,.0f} changes/s); ledger bookkeeping {ledger_s[0]:.2f} s "
              f"({ledger_s[0] / elapsed:.0%}); failures {len(result.failures)}")
        store.close()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="customers for the planning figure")
    parser.add_argument("--contacts", type=int, default=2_000, help="sandbox size for the apply figure")
    args = parser.parse_args()
    bench_plan(args.customers)
    bench_apply(args.contacts)


if __name__ == "__main__":
    main()
