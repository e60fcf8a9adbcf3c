"""The state store's run lease: a lock whose heartbeat a background thread keeps fresh for as long as the run lives.

A run beats every ``BEAT_S`` seconds whatever it is doing (a long pull page, the compute, an apply of thousands of
batches), so a holder silent for ``STALE_S`` is dead — killed, or its host or pod gone — and the next run takes
the lease over within minutes, marking the dead run failed. A run whose lease was taken over stops at its next
``check()`` instead of writing beside the new holder.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from connector.errors import StateError

BEAT_S = 15.0
# Eight missed beats: a stopped-the-world pause or a slow store does not lose a live run its lease.
STALE_S = 120.0

log = logging.getLogger(__name__)


def _holder_is_dead(owner: str | None) -> bool:
    """True when the lock's owner ("host:pid:run") is a process of this host that no longer exists."""
    host, _, rest = (owner or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _run_of(owner: str | None) -> str | None:
    parts = (owner or "").split(":", 2)
    return parts[2] if len(parts) == 3 and parts[2] else None


class Lease:
    """The lock ``name`` held for ``run_id``; use as a context manager (released, and its thread stopped, on exit)."""

    def __init__(self, store: Any, name: str, run_id: str, *, what: str, stale_after_s: float = STALE_S,
                 beat_s: float = BEAT_S):
        self.store, self.name, self.run_id, self.what = store, name, run_id, what
        self.stale_after_s, self.beat_s = stale_after_s, beat_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{run_id}"
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Lease":
        self._take()
        # An in-memory SQLite store is one connection of this thread: nobody else can take it over, and a second
        # thread may not use it. Every other store is beaten from a thread.
        if getattr(self.store, "reopenable", True):
            self._thread = threading.Thread(target=self._beat_forever, name=f"lease-{self.name}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.beat_s + 5)
        self.store.release_lock(self.name, self.owner)

    def _take(self) -> None:
        store = self.store
        before = store.lock_holder(self.name) or {}
        if store.acquire_lock(self.name, self.owner, stale_after_s=self.stale_after_s) or (
                _holder_is_dead(before.get("owner")) and store.acquire_lock(self.name, self.owner, stale_after_s=0)):
            self._mark_taken_over(before)
            return
        holder = store.lock_holder(self.name) or {}
        store.finish_run(self.run_id, "refused", {"error": "locked", "holder": holder.get("owner")})
        raise StateError(
            f"another {self.what} holds the state store lock ({holder.get('owner', 'unknown')}, last heartbeat "
            f"{holder.get('heartbeat_at')}); it is taken over after {self.stale_after_s:.0f}s of silence"
        )

    def _mark_taken_over(self, before: dict) -> None:
        dead_run = _run_of(before.get("owner"))
        if not dead_run or dead_run == self.run_id:
            return
        run = self.store.get_run(dead_run)
        if run is not None and run["status"] == "running":
            self.store.finish_run(dead_run, "failed", {
                **(run.get("summary") or {}),
                "error": f"lock taken over by run {self.run_id}: no heartbeat since {before.get('heartbeat_at')} "
                         "(the process was killed or its host lost)"})

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.beat_s):
            self.beat()

    def beat(self) -> None:
        """Refresh the heartbeat now (the thread does it on its own; a caller may too)."""
        try:
            self.store.heartbeat(self.name, self.owner)
        except StateError:
            self.lost = True
            self._stop.set()
        except Exception as exc:  # noqa: BLE001 - a busy store: the next beat tries again, well inside STALE_S
            log.debug("lease heartbeat failed (%s); retrying in %.0f s", exc.__class__.__name__, self.beat_s)

    def check(self) -> None:
        """StateError if another run has taken the lease over: this run must stop before it writes anything more."""
        if self.lost:
            raise StateError(f"the {self.name!r} lock of run {self.run_id} was taken over by another run "
                             f"(no heartbeat for {self.stale_after_s:.0f}s); this run stops here")
