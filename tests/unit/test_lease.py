"""The run lease on a real store (SQLite file and PostgreSQL): kept fresh by its thread, taken over from a dead
holder (whose run is then marked failed), and lost by a run that another run took it from."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from connector.errors import StateError
from connector.lease import Lease
from tests.unit.test_state import store, store_url  # noqa: F401 - the SQLite/PostgreSQL store fixtures

UTC = timezone.utc


def _age_heartbeat(store, name: str, seconds: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE locks SET heartbeat_at = :t WHERE name = :n"),
                     {"t": (datetime.now(UTC) - timedelta(seconds=seconds)).replace(tzinfo=None), "n": name})


def test_lease_thread_keeps_a_long_run_alive(store):
    run = store.start_run("sync")
    with Lease(store, "sync", run, what="sync", stale_after_s=0.6, beat_s=0.1) as lease:
        time.sleep(1.5)  # a long apply, no explicit beat: only the thread refreshes the heartbeat
        assert not store.acquire_lock("sync", "other-host:1:x", stale_after_s=0.6)
        lease.check()
    assert store.lock_holder("sync") is None


def test_lease_without_thread_would_go_stale(store):
    # the control for the test above: the same wait with no heartbeat lets another run take the lock over
    assert store.acquire_lock("sync", "other-host:1:a", stale_after_s=0.6)
    time.sleep(1.0)
    assert store.acquire_lock("sync", "other-host:2:b", stale_after_s=0.6)


def test_lease_takes_over_a_dead_holder_and_marks_its_run_failed(store):
    dead_run = store.start_run("sync")
    assert store.acquire_lock("sync", f"pod-7:12:{dead_run}", stale_after_s=120)
    _age_heartbeat(store, "sync", 300)  # its pod was killed five minutes ago

    new_run = store.start_run("sync")
    with Lease(store, "sync", new_run, what="sync"):
        assert store.lock_holder("sync")["owner"].endswith(new_run)
    dead = store.get_run(dead_run)
    assert dead["status"] == "failed"
    assert f"taken over by run {new_run}" in dead["summary"]["error"]


def test_lease_refuses_a_live_holder_and_records_the_refusal(store):
    assert store.acquire_lock("sync", "pod-8:13:20261204T000000Z-aaaa", stale_after_s=120)
    run = store.start_run("sync")
    with pytest.raises(StateError, match="another sync holds the state store lock"):
        with Lease(store, "sync", run, what="sync"):
            pass
    assert store.get_run(run)["status"] == "refused"
    assert store.lock_holder("sync")["owner"].startswith("pod-8:13")


def test_lease_lost_to_another_run_stops_at_the_next_check(store):
    run = store.start_run("sync")
    with Lease(store, "sync", run, what="sync", stale_after_s=0.3, beat_s=0.05) as lease:
        # another run took it over (this one looked dead to it, e.g. a long stop-the-world pause)
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE locks SET owner = 'other:1:r' WHERE name = 'sync'"))
        deadline = time.monotonic() + 5
        while not lease.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(StateError, match="was taken over by another run"):
            lease.check()
    assert store.lock_holder("sync")["owner"] == "other:1:r"  # the lost lease does not release the new holder's


def test_lease_thread_stops_on_exit(store):
    run = store.start_run("pull")
    before = {t.name for t in threading.enumerate()}
    with Lease(store, "pull", run, what="pull", beat_s=0.05):
        assert "lease-pull" in {t.name for t in threading.enumerate()} - before
    assert "lease-pull" not in {t.name for t in threading.enumerate()}
