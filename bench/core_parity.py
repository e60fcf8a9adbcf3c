"""Behaviour fingerprint of the core: every value the first sync writes and the month metrics of the last 12 months.

    .venv/bin/python bench/core_parity.py --save bench/parity/medium-seed7.json     # record (before a change)
    .venv/bin/python bench/core_parity.py --compare bench/parity/medium-seed7.json  # check (after it)
    .venv/bin/python bench/core_parity.py --size small --compare tests/data/parity-small-seed7.json

A sandbox portal (seed 7, medium by default) generated at a fixed instant is synced once into a fresh SQLite store
with the sync's as-of at that instant; then the figures of `connector metrics --output json` are taken for each of
the 12 months ending there (in-process, through the same pipeline call and `to_dict` the command prints). The
fingerprint is the ledger of that first sync (object, record, property, value written) and those 12 JSON
documents. ``--compare`` prints what differs and, as its last line,
``written=N identical=M metric_months=12 identical_months=K``; it exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr  # noqa: E402

from connector import pipeline  # noqa: E402
from connector.sandbox.server import running_sandbox  # noqa: E402
from connector.settings import Settings  # noqa: E402
from connector.state import StateStore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # the generator's "today" and the sync's as-of
MONTHS = 12


def month_instants(as_of: datetime, months: int) -> list[datetime]:
    """An instant in each of the ``months`` months ending with as_of's: the last day's noon, as_of for its month."""
    out = [as_of]
    first = as_of.replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    for _ in range(months - 1):
        first = first - timedelta(days=1)  # the previous month's last day, at noon
        out.insert(0, first)
        first = first.replace(day=1)
    return out


def fingerprint(size: str, seed: int) -> dict[str, Any]:
    now_ms = int(AS_OF.timestamp() * 1000)
    with tempfile.TemporaryDirectory() as tmp, \
            running_sandbox(seed=seed, size=size, profile="unlimited", now=now_ms) as sandbox:
        settings = Settings(_env_file=None, token=SecretStr(sandbox.token), base_url=sandbox.base_url,
                            state_url=f"sqlite:///{tmp}/state.db", mappings_dir=ROOT / "mappings")
        summary, _computed, _ = pipeline.run_sync(settings, as_of=AS_OF, raise_failures=False)
        with StateStore.open(settings.state_url) as store:
            written = sorted(
                [row["object_type"], row["record_id"], row["property"], row["after"], row["status"]]
                for row in store.ledger(summary.run_id)
            )
        metrics = {}
        for moment in month_instants(AS_OF, MONTHS):
            figures, _pack = pipeline.run_metrics(settings, period="month", as_of=moment)
            metrics[moment.strftime("%Y-%m")] = json.loads(json.dumps(figures.to_dict(), default=str))
    return {"size": size, "seed": seed, "as_of": AS_OF.isoformat(), "written": written, "metrics": metrics}


def compare(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Print every difference, then the counts line; True when identical."""
    old = {tuple(w[:3]): w[3:] for w in before["written"]}
    new = {tuple(w[:3]): w[3:] for w in after["written"]}
    differing = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    for key in differing[:40]:
        print(f"written {'/'.join(key)}: before {old.get(key)} after {new.get(key)}")
    if len(differing) > 40:
        print(f"… and {len(differing) - 40} more written values differ")
    months = sorted(before["metrics"].keys() | after["metrics"].keys())
    same_months = 0
    for month in months:
        a, b = before["metrics"].get(month), after["metrics"].get(month)
        if a == b:
            same_months += 1
            continue
        for path, x, y in _differences(a, b)[:20]:
            print(f"metrics {month} {path}: before {x!r} after {y!r}")
    identical = len(old.keys() | new.keys()) - len(differing)
    print(f"written={len(old)} identical={identical} metric_months={len(months)} identical_months={same_months}")
    return not differing and same_months == len(months) and len(old) == len(new)


def _differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(a.keys() | b.keys(), key=str):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [(path, a, b)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--save", type=Path, help="write the fingerprint to this file")
    parser.add_argument("--compare", type=Path, help="compare with the fingerprint in this file")
    args = parser.parse_args()
    got = fingerprint(args.size, args.seed)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(got, indent=0, sort_keys=True) + "\n", encoding="utf-8")
        print(f"saved {len(got['written'])} written values and {len(got['metrics'])} months to {args.save}")
    if args.compare:
        before = json.loads(args.compare.read_text(encoding="utf-8"))
        sys.exit(0 if compare(before, got) else 1)


if __name__ == "__main__":
    main()
