"""Full-sync figures against the sandbox: API calls by kind vs the floor, writes per changed value, wall time.

    .venv/bin/python bench/sync_bench.py                       # medium portal (10,000 contacts), enterprise profile
    .venv/bin/python bench/sync_bench.py --contacts 2000 --profile unlimited

Runs a first sync (everything is new: provision, write, enroll), a second one (the health trend becomes known),
and a third with nothing changed, which must make zero write calls. Floors: pull = one call per 100 records of
each object type (list pages) plus association batches (1,000 ids each) and history batches (50 ids each);
write-back = one batch update per 100 changed records. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector import pipeline  # noqa: E402
from connector.hubspot import HubSpotClient  # noqa: E402
from connector.mapping import load_pack  # noqa: E402
from connector.sandbox.server import running_sandbox  # noqa: E402
from connector.settings import Settings  # noqa: E402


def pull_floor(portal, plan) -> int:
    """The least calls a full pull of ``plan`` can make on this portal."""
    floor = 0
    for object_type, spec in plan.items():
        live = sum(1 for r in portal.stores[object_type].records.values() if not getattr(r, "archived", False))
        floor += max(1, math.ceil(live / 100))  # list pages
        floor += 1  # the archived listing
        floor += len(spec.associations) * math.ceil(live / 1000)
        if spec.historical:
            floor += math.ceil(live / 50)
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--profile", default="enterprise")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with running_sandbox(seed=args.seed, size=args.contacts, profile=args.profile) as sb, \
            tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, token=SecretStr(sb.token), base_url=sb.base_url,
                            state_url=f"sqlite:///{tmp}/state.db", mappings_dir=ROOT / "mappings")
        pack = load_pack(settings.mappings_dir)
        plan = pack.pull_plan(pipeline.pull_extra_properties(pack))
        floor = pull_floor(sb.portal, plan)
        print(f"portal: {args.contacts} contacts, profile {args.profile}; pull floor {floor} calls")
        for run in ("first", "second", "third"):
            client = HubSpotClient.from_settings(settings)
            started = time.monotonic()
            summary, computed, written = pipeline.run_sync(settings, client=client, raise_failures=False)
            wall = time.monotonic() - started
            calls = Counter(dict(client.stats.calls))
            client.close()
            changed_records = len({(c.object_type, c.record_id) for c in written.plan.changes})
            batches = calls.get("batch_update", 0)
            write_floor = math.ceil(changed_records / 100)
            by_kind = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
            print(f"{run} sync: {wall:.1f}s wall, {summary.records_pulled} records pulled, {summary.customers} customers; "
                  f"{summary.api_calls} API calls ({by_kind}); 429s {client.stats.rate_limited}")
            print(f"    write-back: {summary.values_changed} values changed on {changed_records} records, "
                  f"{summary.values_written} written in {batches} update calls (floor {write_floor}); "
                  f"{summary.values_written / summary.values_changed if summary.values_changed else 0:.2f} writes per "
                  f"changed value; {summary.enrollments} enrollments; {summary.failures} failures")


if __name__ == "__main__":
    main()
