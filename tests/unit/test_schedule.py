"""The in-process scheduler: runs on the cron expression, never two syncs at once, bad expressions refused."""

from __future__ import annotations

import threading
import time

import pytest

from connector.errors import ConfigError
from connector.pipeline import run_schedule


def test_run_schedule_never_overlaps_a_slow_run():
    running, overlaps, starts = [0], [0], []
    guard = threading.Lock()

    def slow_sync() -> None:
        with guard:
            running[0] += 1
            overlaps[0] = max(overlaps[0], running[0])
            starts.append(time.monotonic())
        time.sleep(1.5)  # longer than the one-second schedule
        with guard:
            running[0] -= 1

    runs = run_schedule("* * * * * *", slow_sync, max_runs=2)
    assert runs == 2
    assert overlaps[0] == 1
    assert starts[1] - starts[0] >= 1.5  # the firing during the first run was skipped, not queued in parallel


@pytest.mark.parametrize("cron", [pytest.param("61 * * * *", id="minute-out-of-range"),
                                  pytest.param("every hour", id="words"),
                                  pytest.param("* * * *", id="four-fields")])
def test_run_schedule_refuses_a_bad_expression(cron):
    with pytest.raises(ConfigError) as caught:
        run_schedule(cron, lambda: None, max_runs=1)
    assert "not a cron expression" in str(caught.value)
