"""Seeded generator of a realistic B2B SaaS portal with 24 months of history.

CONTRACT (generator -> portal): ``generate(...)`` returns a ``GeneratedPortal``; ``portal.Portal`` ingests it.
Property values are HubSpot-formatted strings (numbers as "120.5", datetimes as ISO-8601 UTC with ms and Z,
dates as "YYYY-MM-DD", booleans "true"/"false", multi-select ";"-joined); ``properties`` holds the current
values and includes the id, created and last-modified properties of ``schema``; ``history`` holds, for the
properties in ``schema.HISTORICAL``, every (value, timestamp_ms) in ascending order, the last one equal to
the current value.

``generate(seed, contacts, now_ms)`` builds such a portal: companies with contacts, won and lost deals with line
items, commerce subscriptions with upgrades, downgrades, dunning, cancellations and win-backs, and NPS/CSAT/CES
feedback, over 24 months ending at ``now_ms``. Churn is drawn from a monthly hazard driven by usage, NPS, support
load and payment trouble; the ground truth (churn events with their drivers, reactivations, deliberately malformed
values) comes back in ``GeneratedPortal.ground_truth`` and, on request, as JSON lines.

Owners, the product library, tickets and calls/emails/meetings/notes/tasks are drawn afterwards from a second random
stream (``service_rng``) out of the months the simulation logged, so adding them changed no other record.

The package holds ``core`` (records, calendar, formatters, the generator's record helpers), one mixin module per kind
of object (``companies``, ``deals``, ``subscriptions``, ``activity``; ``owners``, ``products``, ``tickets``,
``engagements``) and ``malformed``; ``_Generator`` composes them.
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

from connector.sandbox import schema
from connector.sandbox.seed.activity import _Activity
from connector.sandbox.seed.companies import _FIRST, _LAST, _Companies
from connector.sandbox.seed.core import (
    ADDON, DAY, HOUR, ID_BASE, MINUTE, MONTHS_PER_PERIOD, PLANS, SURVEYS, GeneratedPortal, SeedOwner, SeedRecord,
    _created_key, _poisson, date_ms, iso_ms,
)
from connector.sandbox.seed.deals import _Deals
from connector.sandbox.seed.engagements import _Engagements
from connector.sandbox.seed.malformed import _inject_malformed
from connector.sandbox.seed.owners import _Owners
from connector.sandbox.seed.products import _Products
from connector.sandbox.seed.subscriptions import _Subscriptions
from connector.sandbox.seed.tickets import _Tickets

__all__ = ["ADDON", "DAY", "HOUR", "ID_BASE", "MINUTE", "MONTHS_PER_PERIOD", "PLANS", "SURVEYS", "GeneratedPortal",
           "SeedOwner", "SeedRecord", "date_ms", "generate", "iso_ms", "save_ground_truth",
           "_FIRST", "_LAST", "_poisson"]  # the last three: for generators of other objects (their own random streams)

# ---------------------------------------------------------------------------------------------------------------
# The generator. Everything below draws from one ``random.Random(seed)`` in a fixed order, so a given
# (seed, contacts, now_ms) always yields the same portal. Records are built with placeholder ids and numbered
# per type in creation order at the end, because HubSpot ids grow with creation time.
# ---------------------------------------------------------------------------------------------------------------


class _Generator(_Companies, _Deals, _Subscriptions, _Activity, _Owners, _Tickets, _Engagements, _Products):
    """One portal's generation: ``run`` draws companies (and through them everything else), ``_service`` adds owners,
    tickets and engagements from their own stream, ``_finish`` numbers."""

    def run(self) -> GeneratedPortal:
        rng = self.rng
        remaining = self.n_contacts
        while remaining > 0:
            if rng.random() < 0.03:  # a newsletter subscriber with a personal address and no company
                self._lone_contact()
                remaining -= 1
                continue
            n = min(remaining, 1 + min(19, int(rng.expovariate(0.2))))
            self._company(n)
            remaining -= n
        self._service()
        return self._finish()

    def _service(self) -> None:
        """Owners, the product library, tickets and engagements: all from ``service_rng`` and the months the
        simulation above logged, so the records before them are what they were without them."""
        roster = self._roster()
        self._assign_owners(roster)
        self._products()
        agents, reps = ([str(o.id) for o in roster[team]] for team in ("support", "sales"))
        for company, people in self.accounts:
            self._tickets(company, people, agents)
            self._engagements(company, people, reps)

    def _finish(self) -> GeneratedPortal:
        records = self.records
        for object_type, recs in records.items():
            recs.sort(key=_created_key)
            base = ID_BASE[object_type]
            lm_name = schema.LAST_MODIFIED[object_type]
            created_name = schema.CREATED[object_type]
            for i, rec in enumerate(recs):
                rec.id = base + i
                props = rec.properties
                props["hs_object_id"] = str(rec.id)
                lm = props.pop("_lm")
                props[lm_name] = props[created_name] if lm == rec.created_ms else iso_ms(lm)
                props.pop("_nps_ms", None)
                props.pop("_since", None)
        self._sync_used = set()
        associations, self.assoc = self.assoc, []
        for i, (ft, a, tt, b, primary) in enumerate(associations):  # in place: at 1M contacts a copy costs GBs
            associations[i] = (ft, a.id, tt, b.id, primary)
            if primary and ft == "contacts":
                a.properties["associatedcompanyid"] = b.properties["hs_object_id"]
        truth = []
        for entry in self.truth:
            out = {"kind": entry["kind"], "company_id": entry.pop("_company").id,
                   "subscription_id": entry.pop("_sub").id}
            out.update(entry)
            truth.append(out)
        truth.extend(_inject_malformed(records))
        return GeneratedPortal(records=records, associations=associations, now_ms=self.now, ground_truth=truth,
                               owners=self.owners)


def generate(seed: int = 1, contacts: int = 200, now_ms: int | None = None,
             ground_truth_path: str | Path | None = None) -> GeneratedPortal:
    """A seeded B2B SaaS portal with ``contacts`` contacts and 24 months of history ending at ``now_ms``.

    Deterministic for a given (seed, contacts, now_ms); ``now_ms`` defaults to the current time floored to the
    minute. With ``ground_truth_path`` the ground truth is also written there as JSON lines.

    Ground truth entries (``kind`` first):
    - ``churn``: ``company_id``, ``subscription_id``, ``reason`` (``voluntary``: asked to cancel;
      ``involuntary``: payment failed and was not recovered), ``cancel_requested_at`` (ISO or None),
      ``cancel_effective_on`` (date the paid period ends), ``churned_at`` (ISO when ``hs_status`` became
      ``canceled``; None while the paid period still runs), ``hazard`` (the monthly probability drawn against),
      ``currency``, and ``drivers``: what the account showed at the usage sync before the decision (``at``,
      ``active_days_30d``, ``logins_30d``, ``seats_used``, ``mau``, ``tickets_90d``, ``open_tickets``,
      ``nps_avg_180d``, ``payment_trouble``, ``mrr``).
    - ``reactivation``: ``company_id``, ``subscription_id`` (the new one), ``reactivated_at``, ``previous_churned_at``.
    - ``malformed``: ``object_type``, ``id``, ``property``, ``value``, ``reason``: values spoiled on purpose.
    """
    if contacts < 1:
        raise ValueError("contacts must be at least 1")
    if now_ms is None:
        now_ms = int(time.time() * 1000) // MINUTE * MINUTE
    # Millions of small acyclic objects: the cyclic collector would only rescan them over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        portal = _Generator(seed, contacts, now_ms).run()
    finally:
        if collecting:
            gc.enable()
    if ground_truth_path is not None:
        save_ground_truth(portal, ground_truth_path)
    return portal



def save_ground_truth(portal: GeneratedPortal, path: str | Path) -> None:
    """Write ``portal.ground_truth`` as JSON lines (one event per line)."""
    with open(path, "w", encoding="utf-8") as fh:
        for entry in portal.ground_truth:
            fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
