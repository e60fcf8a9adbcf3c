"""Simulated activity on a served portal: usage, seats, tickets, failing payments and cancellations over time.

Every change goes through the portal's own write path (``Portal.update`` / ``create`` / ``associate_default``), as an
API write would, so it has history, moves ``lastmodifieddate`` (incremental syncs see it) and fires webhooks. The
sequence of changes (which kind, which record, which values) is fixed by the seed; only timestamps differ by run.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.portal import CHANGE_SOURCE, ApiError, Portal, iso, now_ms

log = logging.getLogger("connector.sandbox.simulation")

# kind -> weight: what a live portal of subscribers mostly sees is usage moving, now and then a ticket or a payment.
KINDS = {"usage": 40, "seats": 15, "ticket_opened": 15, "ticket_closed": 10, "payment_failed": 8,
         "payment_recovered": 5, "cancellation": 7}
SOURCE = ("INTEGRATION", "sandbox-activity")  # webhooks' changeSource / sourceId of simulated changes
OPEN_STAGE, CLOSED_STAGE = "1", "4"  # HubSpot's default support pipeline: New … Closed


@dataclass
class Activity:
    kind: str
    object_type: str
    object_id: int
    properties: dict[str, str]
    ms: int
    error: str | None = None  # the portal refused the write (kept, never raised)


@dataclass
class Simulator:
    portal: Portal
    rate_per_minute: float
    seed: int = 0
    log: list[Activity] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"activity-{self.seed}")
        self._open_tickets: list[tuple[int, int | None]] = []  # (ticket id or 0, company id)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ one change

    def step(self) -> Activity | None:
        """Make one change (chosen by the seeded generator); None when the portal has nothing to change."""
        kind = self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        token = CHANGE_SOURCE.set(SOURCE)
        try:
            done = getattr(self, f"_{kind}")()
        finally:
            CHANGE_SOURCE.reset(token)
        if done is not None:
            self.log.append(done)
        return done

    def _pick(self, object_type: str, where: Any = None) -> Any:
        with self.portal.lock:
            ids = self.portal.stores[object_type].live_ids if object_type in self.portal.stores else []
            if where is not None:
                ids = [i for i in ids if where(self.portal.get(object_type, i).props)]
            return self.portal.get(object_type, self.rng.choice(ids)) if ids else None

    def _write(self, kind: str, object_type: str, record_id: int, values: dict[str, str]) -> Activity:
        known = self.portal.properties.get(object_type, {})
        values = {k: v for k, v in values.items() if k in known}
        activity = Activity(kind, object_type, record_id, values, now_ms())
        try:
            self.portal.update(object_type, str(record_id), values)
        except ApiError as exc:
            activity.error = exc.body.get("message", "refused")
            log.info("simulated %s on %s %s refused: %s", kind, object_type, record_id, activity.error)
        return activity

    @staticmethod
    def _num(props: dict[str, str], name: str) -> int:
        try:
            return int(float(props.get(name) or 0))
        except ValueError:
            return 0

    def _usage(self) -> Activity | None:
        company = self._pick("companies")
        if company is None:
            return None
        logins = max(0, self._num(company.props, "product_logins_30d") + self.rng.randint(-12, 15))
        days = max(0, min(30, self._num(company.props, "product_active_days_30d") + self.rng.randint(-4, 4)))
        values = {"product_logins_30d": str(logins), "product_active_days_30d": str(days)}
        if logins:
            values["product_last_login_at"] = iso(now_ms())
        return self._write("usage", "companies", company.id, values)

    def _seats(self) -> Activity | None:
        company = self._pick("companies", lambda p: self._num(p, "seats_purchased") > 0)
        if company is None:
            return None
        used = self._num(company.props, "seats_used") + self.rng.choice((-2, -1, 1, 2))
        used = max(0, min(self._num(company.props, "seats_purchased"), used))
        return self._write("seats", "companies", company.id, {"seats_used": str(used)})

    def _ticket_opened(self) -> Activity | None:
        company = self._pick("companies")
        if company is None:
            return None
        ticket_id = 0
        if "tickets" in self.portal.stores:  # the ticket object arrives with the portal's CRM objects
            subject = self.rng.choice(("Cannot log in", "Export fails", "Billing question", "Slow reports"))
            values = {"subject": subject, "hs_pipeline": "0", "hs_pipeline_stage": OPEN_STAGE,
                      "hs_ticket_priority": self.rng.choice(("LOW", "MEDIUM", "HIGH"))}
            known = self.portal.properties.get("tickets", {})
            try:
                ticket = self.portal.create("tickets", {k: v for k, v in values.items() if k in known})
                ticket_id = ticket.id
                self.portal.associate_default("tickets", ticket.id, "companies", company.id)
            except ApiError as exc:
                log.info("simulated ticket refused: %s", exc.body.get("message"))
        self._open_tickets.append((ticket_id, company.id))
        opened = self._num(company.props, "support_open_tickets") + 1
        return self._write("ticket_opened", "companies", company.id, {"support_open_tickets": str(opened)})

    def _ticket_closed(self) -> Activity | None:
        if not self._open_tickets:
            return None
        ticket_id, company_id = self._open_tickets.pop(self.rng.randrange(len(self._open_tickets)))
        if ticket_id:
            self._write("ticket_closed", "tickets", ticket_id, {"hs_pipeline_stage": CLOSED_STAGE})
        company = self.portal.get("companies", company_id)
        left = max(0, self._num(company.props, "support_open_tickets") - 1) if company else 0
        return self._write("ticket_closed", "companies", company_id, {"support_open_tickets": str(left)})

    def _subscription(self, kind: str, status: str, values: dict[str, str]) -> Activity | None:
        sub = self._pick("subscriptions", lambda p: p.get("hs_status") == status)
        return None if sub is None else self._write(kind, "subscriptions", sub.id, values)

    def _payment_failed(self) -> Activity | None:
        return self._subscription("payment_failed", "active",
                                  {"hs_status": "past_due", "hs_last_payment_status": "failed"})

    def _payment_recovered(self) -> Activity | None:
        return self._subscription("payment_recovered", "past_due",
                                  {"hs_status": "active", "hs_last_payment_status": "succeeded"})

    def _cancellation(self) -> Activity | None:
        return self._subscription("cancellation", "active",
                                  {"hs_status": "canceled", "cancellation_requested_date": iso(now_ms())})

    # ------------------------------------------------------------ over time

    def start(self) -> "Simulator":
        if self.rate_per_minute <= 0:
            raise ValueError(f"the activity rate must be above 0 changes per minute, got {self.rate_per_minute}")
        self._thread = threading.Thread(target=self._run, name="sandbox-activity", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = 60.0 / self.rate_per_minute
        while not self._stop.wait(interval):
            try:
                self.step()
            except Exception:  # a simulated change must never take the server down
                log.exception("simulated activity failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
