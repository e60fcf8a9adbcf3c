"""Fault soak: a sync under each fault mix, then one re-run without faults, against a clean sync of the same portal.

A mix "survives" when, after at most that one re-run, every connector-owned value and list membership in the CRM
equals the clean sync's. Default retry settings (120 s budget), real HTTP to an in-process sandbox, real SQLite.
Last line: ``specs=N survived=M lost_values=K``.

    .venv/bin/python bench/soak_bench.py [--contacts 1000] [--only 429]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from pydantic import SecretStr

from connector import pipeline
from connector.errors import ConnectorError
from connector.sandbox.server import running_sandbox
from connector.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NOW_MS = int(datetime(2026, 11, 20, 12, tzinfo=timezone.utc).timestamp() * 1000)
AS_OF = datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)
COMPANY_BATCHES = "/crm/v3/objects/companies/batch/update"
MIXES = {
    "readme-mix": "503:0.05,reset:0.01,slow:0.02@2s",
    "429-15pct": "429:0.15",
    "429-30pct+16pct-others": "429:0.3,503:0.08,reset:0.04,502:0.04",
    "company-batches-60pct-503": f"503:0.6,path={COMPANY_BATCHES}",
    "every-company-batch-503": f"seq:200,503:1.0,path={COMPANY_BATCHES}",
    "startup-12x429": "seq:" + ",".join(["429"] * 12),
    "lists-60pct-5xx": "500:0.3,504:0.3,path=/crm/v3/lists",
    "locked-10pct-423": "423:0.1",
}


def owned(portal) -> dict:
    # the health trend compares with the previous run by design, so a re-run differs from a single run there
    values = {(t, rid, name): value
              for t in ("companies", "contacts", "deals")
              for rid, rec in portal.stores[t].records.items()
              for name, value in rec.props.items()
              if name.startswith("retention_") and name != "retention_health_trend"}
    lists = {(h.name, member) for h in portal.lists.values() for member in h.members}
    return {**values, **{("list", name, member): "member" for name, member in lists}}


def settings_for(sandbox, folder: Path) -> Settings:
    return Settings(_env_file=None, token=SecretStr(sandbox.token), base_url=sandbox.base_url,
                    state_url=f"sqlite:///{folder / 'state.db'}", mappings_dir=ROOT / "mappings")


def sync(settings: Settings) -> tuple[str, dict]:
    try:
        summary, _, _ = pipeline.run_sync(settings, as_of=AS_OF, raise_failures=False)
        return summary.status, summary.to_dict()
    except ConnectorError as exc:
        return f"error ({exc.__class__.__name__})", {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--only", default="", help="run only the mixes whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_sandbox(
            seed=args.seed, size=args.contacts, profile="enterprise", now=NOW_MS) as sandbox:
        started = time.monotonic()
        status, _ = sync(settings_for(sandbox, Path(tempfile.mkdtemp(dir=tmp))))
        clean = owned(sandbox.portal)
        print(f"clean sync: {status}, {len(clean)} owned values and memberships, {time.monotonic() - started:.1f} s")

    mixes = {name: spec for name, spec in MIXES.items() if args.only in name}
    survived = lost_total = 0
    for name, spec in mixes.items():
        with tempfile.TemporaryDirectory() as tmp, running_sandbox(
                seed=args.seed, size=args.contacts, profile="enterprise", now=NOW_MS, faults=spec) as sandbox:
            settings = settings_for(sandbox, Path(tmp))
            started = time.monotonic()
            first, stats = sync(settings)
            first_s = time.monotonic() - started
            injected = len(sandbox.portal.faults.injected)
            sandbox.portal.set_faults(None)
            after_first = owned(sandbox.portal)
            rerun, _ = sync(settings)
            final = owned(sandbox.portal)
        lost = sum(1 for key, value in clean.items() if final.get(key) != value) + sum(1 for k in final if k not in clean)
        missing_after_first = sum(1 for key, value in clean.items() if after_first.get(key) != value)
        ok = lost == 0
        survived += ok
        lost_total += lost
        print(f"{name:28s} {'survived' if ok else 'LOST':8s} first: {first:18s} {first_s:6.1f} s, {injected:4d} faults, "
              f"{stats.get('rate_limited', 0):4d} x 429, {stats.get('retries', 0):4d} retries, "
              f"{missing_after_first:5d} values still to write; re-run: {rerun}, {lost} values differ")
    print(f"specs={len(mixes)} survived={survived} lost_values={lost_total}")


if __name__ == "__main__":
    main()
