"""Webhooks: events for an app's subscriptions, batched (up to 100) and POSTed, signed, by a background worker that
retries failures with back-off and records every attempt.

HubSpot's documented behaviour (API-NOTES §7, §12): at most 100 events per request, a 5-second timeout, up to 10
retries spread over 24 hours with some randomisation, at-least-once, in any order. ``time_scale`` multiplies the
back-off (0.001 turns the minutes into milliseconds for tests); the timeout is never scaled.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
import requests

from connector.sandbox import schema
from connector.sandbox.platform.project import SubscriptionDef, singular_of
from connector.sandbox.platform.signature import signed_headers
from connector.sandbox.portal import Change

log = logging.getLogger("connector.sandbox.webhooks")

MAX_EVENTS_PER_REQUEST = 100
TIMEOUT_S = 5.0
# Seconds before retry n (1..10): about 22.6 hours in all, each drawn ±20 % (HubSpot randomises its retries).
RETRY_DELAYS_S = (60, 120, 300, 600, 1_200, 2_400, 4_800, 9_600, 19_200, 43_200)
JITTER = 0.2
USER_AGENT = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon"


def retryable(status: int | None) -> bool:
    """No answer (connection error, timeout), a 5xx or a 429 is retried; any other answer is final."""
    return status is None or status >= 500 or status == 429


def events_for(change: Change, subscriptions: list[tuple[int, SubscriptionDef]], hub_id: int, app_id: int,
               next_event_id: Callable[[], int]) -> list[dict[str, Any]]:
    """The events one change makes for one installed app's subscriptions (both ends of an association change)."""
    type_id = schema.OBJECT_TYPES.get(change.object_type)
    other_id = schema.OBJECT_TYPES.get(change.to_type or "")
    out: list[dict[str, Any]] = []
    for sub_id, sub in subscriptions:
        if not sub.active:
            continue
        if change.kind == "associationChange":
            sides = [(type_id, change.object_id, other_id, change.to_id, change.object_type, change.to_type),
                     (other_id, change.to_id, type_id, change.object_id, change.to_type, change.object_type)]
            for from_tid, from_id, to_tid, to_id, from_type, to_type in sides:
                if sub.event == "associationChange" and sub.object_type_id == from_tid:
                    event = _base(sub_id, sub, hub_id, app_id, change, next_event_id())
                    event.update({"associationType": f"{singular_of(from_tid).upper()}_TO_"
                                                     f"{singular_of(to_tid).upper()}",
                                  "fromObjectId": from_id, "toObjectId": to_id,
                                  "associationRemoved": change.removed, "isPrimaryAssociation": change.primary})
                    if not sub.legacy:
                        event.update({"fromObjectTypeId": from_tid, "toObjectTypeId": to_tid,
                                      "associationCategory": "HUBSPOT_DEFINED"})
                    out.append(event)
            continue
        if sub.object_type_id != type_id or sub.event != change.kind:
            continue
        if change.kind == "propertyChange" and sub.property_name != change.property_name:
            continue
        event = _base(sub_id, sub, hub_id, app_id, change, next_event_id())
        event["objectId"] = change.object_id
        if change.kind == "propertyChange":
            event.update({"propertyName": change.property_name, "propertyValue": change.property_value})
        elif change.kind == "creation":
            event["changeFlag"] = "NEW"  # as in the guide's example event
        elif change.kind == "deletion":
            event["changeFlag"] = "DELETED"
        if not sub.legacy:
            event["objectTypeId"] = type_id
        out.append(event)
    return out


def _base(sub_id: int, sub: SubscriptionDef, hub_id: int, app_id: int, change: Change, event_id: int
          ) -> dict[str, Any]:
    source, source_id = change.source
    event = {"eventId": event_id, "subscriptionId": sub_id, "portalId": hub_id, "appId": app_id,
             "occurredAt": change.ms, "subscriptionType": sub.subscription_type, "attemptNumber": 0,
             "changeSource": source}
    if source_id is not None:
        event["sourceId"] = source_id
    return event


@dataclass
class Attempt:
    """One POST of one batch: what a test inspects."""

    delivery_id: int
    app_id: int
    hub_id: int
    url: str
    attempt: int  # attemptNumber of the events: 0 first, then 1..10
    event_ids: list[int]
    started_ms: int
    status: int | None = None  # HTTP status, None when no answer came
    error: str | None = None  # "timeout", "connection error", or the status line
    latency_ms: float = 0.0
    outcome: str = "pending"  # delivered | retrying | failed (final answer refused) | gave_up (retries spent)

    def to_json(self) -> dict[str, Any]:
        return {"deliveryId": self.delivery_id, "appId": self.app_id, "portalId": self.hub_id, "url": self.url,
                "attemptNumber": self.attempt, "eventIds": self.event_ids, "eventCount": len(self.event_ids),
                "startedAt": self.started_ms, "status": self.status, "error": self.error,
                "latencyMs": round(self.latency_ms, 1), "outcome": self.outcome}


@dataclass(order=True)
class _Batch:
    due: float
    delivery_id: int
    app_id: int = field(compare=False)
    hub_id: int = field(compare=False)
    events: list[dict[str, Any]] = field(compare=False)
    attempt: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Target:
    """Where and how one app's webhooks go (from its project's webhooks config)."""

    url: str
    secret: str = field(repr=False)
    max_concurrent: int = 10


class Dispatcher:
    """The background worker: collects events per (app, portal), sends batches, schedules retries, logs attempts."""

    def __init__(self, target_of: Callable[[int, int], Target | None], *, time_scale: float = 1.0,
                 batch_window_s: float = 0.05, seed: int = 0, timeout_s: float = TIMEOUT_S):
        self.target_of = target_of  # (app_id, hub_id) -> Target, or None once the app is uninstalled there
        self.time_scale = time_scale
        self.batch_window_s = batch_window_s
        self.timeout_s = timeout_s
        self.attempts: list[Attempt] = []
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._pending: dict[tuple[int, int], tuple[float, list[dict[str, Any]]]] = {}
        self._due: list[_Batch] = []
        self._in_flight = 0
        self._next_delivery = 1
        self._pools: dict[int, ThreadPoolExecutor] = {}
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ producer side (under the portal's lock: cheap)

    def submit(self, app_id: int, hub_id: int, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        with self._cond:
            first, queued = self._pending.get((app_id, hub_id), (time.monotonic(), []))
            queued.extend(events)
            self._pending[(app_id, hub_id)] = (first, queued)
            self._cond.notify()

    # ------------------------------------------------------------ worker

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                ready = [key for key, (first, _) in self._pending.items() if now - first >= self.batch_window_s]
                for key in ready:
                    _, events = self._pending.pop(key)
                    for i in range(0, len(events), MAX_EVENTS_PER_REQUEST):
                        heapq.heappush(self._due, _Batch(now, self._next_delivery, key[0], key[1],
                                                         events[i:i + MAX_EVENTS_PER_REQUEST]))
                        self._next_delivery += 1
                sending = []
                while self._due and self._due[0].due <= now:
                    sending.append(heapq.heappop(self._due))
                self._in_flight += len(sending)
                waits = [first + self.batch_window_s - now for first, _ in self._pending.values()]
                if self._due:
                    waits.append(self._due[0].due - now)
                if not sending:
                    self._cond.wait(timeout=max(0.001, min(waits)) if waits else None)
                    continue
            for batch in sending:
                target = self.target_of(batch.app_id, batch.hub_id)
                if target is None:  # uninstalled meanwhile: HubSpot stops sending
                    self._done()
                    continue
                pool = self._pools.get(batch.app_id)
                if pool is None:
                    pool = self._pools[batch.app_id] = ThreadPoolExecutor(target.max_concurrent,
                                                                          f"sandbox-webhooks-{batch.app_id}")
                pool.submit(self._send, batch, target)

    def _done(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def _send(self, batch: _Batch, target: Target) -> None:
        try:
            body = orjson.dumps([{**e, "attemptNumber": batch.attempt} for e in batch.events])
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                       **signed_headers(target.secret, "POST", target.url, body)}
            attempt = Attempt(batch.delivery_id, batch.app_id, batch.hub_id, target.url, batch.attempt,
                              [e["eventId"] for e in batch.events], int(time.time() * 1000))
            started = time.perf_counter()
            try:
                response = requests.post(target.url, data=body, headers=headers, timeout=self.timeout_s,
                                         allow_redirects=False)
                attempt.status = response.status_code
                if response.status_code >= 300:
                    attempt.error = f"HTTP {response.status_code}"
            except requests.Timeout:
                attempt.error = "timeout"
            except requests.RequestException as exc:
                attempt.error = f"connection error ({type(exc).__name__})"
            attempt.latency_ms = (time.perf_counter() - started) * 1000
            ok = attempt.status is not None and attempt.status < 300
            again = not ok and retryable(attempt.status) and batch.attempt < len(RETRY_DELAYS_S)
            attempt.outcome = "delivered" if ok else ("retrying" if again else
                                                      ("gave_up" if retryable(attempt.status) else "failed"))
            if not ok:
                log.info("webhook delivery %s attempt %s to app %s: %s", batch.delivery_id, batch.attempt,
                         batch.app_id, attempt.error)
            with self._cond:
                self.attempts.append(attempt)
                if again:
                    delay = RETRY_DELAYS_S[batch.attempt] * self.time_scale * (1 + self._rng.uniform(-JITTER, JITTER))
                    heapq.heappush(self._due, _Batch(time.monotonic() + delay, batch.delivery_id, batch.app_id,
                                                     batch.hub_id, batch.events, batch.attempt + 1))
        except Exception:  # a sandbox bug must not kill the pool's thread silently
            log.exception("webhook delivery %s failed inside the sandbox", batch.delivery_id)
        finally:
            self._done()

    # ------------------------------------------------------------ inspection and shutdown

    def snapshot(self) -> list[Attempt]:
        with self._cond:
            return list(self.attempts)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until nothing is queued, scheduled or in flight (or the timeout); True when idle."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending or self._due or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.05))
            return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
