"""The core's behaviour fingerprint: a first sync of the small seeded portal writes exactly the recorded values,
and the month metrics of the last 12 months are the recorded ones (bench/core_parity.py records and compares)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_first_sync_and_month_metrics_match_the_recorded_fingerprint():
    reference = ROOT / "tests" / "data" / "parity-small-seed7.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "core_parity.py"), "--size", "small", "--compare", str(reference)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    counts = dict(part.split("=") for part in last.split())
    assert int(counts["written"]) > 0 and counts["written"] == counts["identical"]
    assert counts["metric_months"] == counts["identical_months"] == "12"
