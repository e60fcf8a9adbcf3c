"""Support tickets: one record per ticket the usage simulation counted, so their volume, priority and time to close
follow the account's health (and so the churn hazard, which reads the ticket load)."""

from __future__ import annotations

from bisect import bisect_right

from connector.sandbox.seed.core import DAY, HOUR, SeedRecord, _GeneratorBase, _num, iso_ms

_SUBJECTS = {
    "PRODUCT_ISSUE": ("Dashboard does not load", "Export to CSV fails", "Report shows wrong totals",
                      "Sync stopped overnight", "Error 500 when saving", "Login loop after password reset"),
    "BILLING_ISSUE": ("Invoice shows the wrong seat count", "Card declined at renewal", "Need a VAT number on invoice",
                      "Charged twice this month"),
    "FEATURE_REQUEST": ("Request: SSO with Okta", "Request: more granular permissions", "Request: API rate increase",
                        "Request: custom fields on reports"),
    "GENERAL_INQUIRY": ("How do I add a teammate?", "Question about data retention", "Where is the audit log?",
                        "Onboarding call for new team"),
}
_CATEGORIES = tuple(_SUBJECTS)
# One shared description per subject: a portal holds hundreds of thousands of tickets, and texts cost memory.
_CONTENT = {subject: f"{subject}. Customer reported it through the help centre; details in the thread."
            for subjects in _SUBJECTS.values() for subject in subjects}
_SOURCES = ("EMAIL", "EMAIL", "CHAT", "FORM", "PHONE")


class _Tickets(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``); draws from ``service_rng`` only."""

    def _tickets(self, company: SeedRecord, people: list[SeedRecord], agents: list[str]) -> None:
        """Each month's new tickets as records, owned by one of ``agents`` (owner ids); those the month left open
        close after it (or are open now)."""
        rng, now = self.service_rng, self.now
        people_times = [p.created_ms for p in people]
        for a, b, h, new, still_open in self.months_of[id(company)]:
            risk = 1.0 - h
            for j in range(new):
                created = a + int(rng.random() * (b - a))
                who = people[max(0, bisect_right(people_times, created) - 1) if rng.random() < 0.5 else
                             rng.randrange(max(1, bisect_right(people_times, created)))]
                u = rng.random()
                priority = ("URGENT" if u < 0.02 + 0.10 * risk else "HIGH" if u < 0.10 + 0.40 * risk else
                            "MEDIUM" if u < 0.55 else "LOW")
                category = (_CATEGORIES[0] if rng.random() < 0.35 + 0.3 * risk else rng.choice(_CATEGORIES))
                # Unhealthy accounts wait longer: harder problems, and the back-and-forth drags on.
                days = rng.expovariate(1.0 / (0.4 + 6.0 * risk ** 1.5))
                close = b + int(days * DAY) + HOUR if j < still_open else min(created + int(days * DAY) + HOUR, b - 1)
                subject = rng.choice(_SUBJECTS[category])
                props = {
                    "subject": subject, "content": _CONTENT[subject],
                    "hs_pipeline": "0", "hs_ticket_priority": priority, "hs_ticket_category": category,
                    "source_type": rng.choice(_SOURCES), "hubspot_owner_id": rng.choice(agents),
                }
                ticket = self._record("tickets", created, props)
                self._set(ticket, "hs_pipeline_stage", "1", created)
                asked = min(now, created + (close - created) // 3)
                if rng.random() < 0.5:  # the agent asked the customer something first
                    self._set(ticket, "hs_pipeline_stage", "2", asked)
                if close <= now:
                    self._set(ticket, "hs_pipeline_stage", "4", close)
                    props["closed_date"] = iso_ms(close)
                    props["time_to_close"] = _num(close - created)
                elif rng.random() < 0.5:  # the customer answered: back with the agent
                    self._set(ticket, "hs_pipeline_stage", "3", min(now, asked + HOUR))
                self._link(ticket, company, primary=True)
                self._link(ticket, who)
