"""Calls, emails, meetings, notes and tasks: the account team's activity, which thins out as an account's health
falls (fewer meetings, more rescue calls and risk tasks in the months before a churn)."""

from __future__ import annotations

from bisect import bisect_right

from connector.sandbox.seed.core import DAY, MINUTE, SeedRecord, _GeneratorBase, _num, _poisson, iso_ms

_EMAIL_SUBJECTS = ("Checking in", "Your monthly usage summary", "Re: renewal", "Quick question about seats",
                   "Follow-up from our call", "New features this month", "Re: support ticket")
_MEETINGS = ("Quarterly business review", "Onboarding check-in", "Roadmap preview", "Renewal planning")
_CALLS = ("Check-in call", "Escalation call", "Renewal call", "Discovery call")
_NOTES = tuple(f"<p>{text}</p>" for text in (
    "Customer mentioned budget cuts next quarter.", "Champion is happy with the rollout.",
    "Asked for a discount at renewal.", "New admin on their side; re-onboarding needed.",
    "Escalated ticket resolved; customer calmed down."))
# Shared texts (no per-record strings): hundreds of thousands of engagements at the large sizes.
_BODY = {title: f"<p>{title}: notes in the account plan.</p>" for title in _MEETINGS + _CALLS + ("Product demo",)}
_REPLY = {subject: f"Re: {subject}" for subject in _EMAIL_SUBJECTS + ("Intro",)}
_EMAIL_TEXT = "Hi, following up as promised. Let me know if anything is unclear. Best regards"


class _Engagements(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``); draws from ``service_rng`` only."""

    def _engagements(self, company: SeedRecord, people: list[SeedRecord], reps: list[str]) -> None:
        """The sales conversation by one of ``reps`` (owner ids), then the owner's cadence while a customer."""
        rng = self.service_rng
        owner = company.properties["hubspot_owner_id"]
        people_times = [p.created_ms for p in people]
        # The sales conversation in the first two months: a few emails and calls, a demo now and then.
        start = company.created_ms
        seller = rng.choice(reps)
        for _ in range(_poisson(rng, 1.2)):
            self._email(company, people, people_times, start + int(rng.random() * 60 * DAY), seller, "Intro")
        for _ in range(_poisson(rng, 0.4)):
            self._call(company, people, people_times, start + int(rng.random() * 60 * DAY), seller, "Discovery call")
        if rng.random() < 0.3:
            self._meeting(company, people, people_times, start + int((3 + rng.random() * 40) * DAY), seller,
                          "Product demo", 0.9)
        # As a customer: the success manager's cadence follows the account's health.
        for a, b, h, _, _ in self.months_of[id(company)]:
            span = b - a
            for _ in range(_poisson(rng, 0.1 + 0.25 * h)):
                self._email(company, people, people_times, a + int(rng.random() * span), owner,
                            rng.choice(_EMAIL_SUBJECTS))
            for _ in range(_poisson(rng, 0.04 + 0.22 * h)):
                self._meeting(company, people, people_times, a + int(rng.random() * span), owner,
                              rng.choice(_MEETINGS), 0.6 + 0.35 * h)
            for _ in range(_poisson(rng, 0.03 + 0.25 * (1 - h))):
                self._call(company, people, people_times, a + int(rng.random() * span), owner, rng.choice(_CALLS))
            if rng.random() < 0.06:
                self._note(company, people, people_times, a + int(rng.random() * span), owner)
            if h < 0.35 and rng.random() < 0.5:
                self._task(company, people, people_times, a + int(rng.random() * span), owner)

    def _activity(self, kind: str, company, people, people_times, ms: int, owner: str, props: dict,
                  when: int | None = None) -> SeedRecord:
        """An engagement logged at ``ms`` on the company and a contact who existed then; ``when`` is its activity
        date if not the same (a task's due date)."""
        ms = min(ms, self.now)
        props["hs_timestamp"] = iso_ms(ms if when is None else when)
        props["hubspot_owner_id"] = owner
        rec = self._record(kind, ms, props)
        self._link(rec, company)
        known = bisect_right(people_times, ms)
        if known:
            self._link(rec, people[self.service_rng.randrange(known)])
        return rec

    def _email(self, company, people, people_times, ms, owner, subject) -> None:
        incoming = self.service_rng.random() < 0.35
        self._activity("emails", company, people, people_times, ms, owner, {
            "hs_email_direction": "INCOMING_EMAIL" if incoming else "EMAIL",
            "hs_email_subject": subject if not incoming or subject.startswith("Re:") else _REPLY[subject],
            "hs_email_status": "SENT", "hs_email_text": _EMAIL_TEXT})

    def _call(self, company, people, people_times, ms, owner, title) -> None:
        rng = self.service_rng
        answered = rng.random() < 0.7
        self._activity("calls", company, people, people_times, ms, owner, {
            "hs_call_title": title, "hs_call_direction": "OUTBOUND" if rng.random() < 0.8 else "INBOUND",
            "hs_call_status": "COMPLETED" if answered else "NO_ANSWER",
            "hs_call_duration": _num(int((2 + rng.random() * 40) * MINUTE) if answered else 0),
            "hs_call_body": _BODY[title]})

    def _meeting(self, company, people, people_times, ms, owner, title, p_held) -> None:
        rng = self.service_rng
        length = rng.choice((30, 45, 60)) * MINUTE
        ms = min(ms, self.now - length)  # the portal holds no future dates (meetings booked ahead are not logged)
        end = ms + length
        u = rng.random()
        outcome = "COMPLETED" if u < p_held else "NO_SHOW" if u < p_held + (1 - p_held) / 2 else "CANCELED"
        self._activity("meetings", company, people, people_times, ms, owner, {
            "hs_meeting_title": title, "hs_meeting_start_time": iso_ms(ms), "hs_meeting_end_time": iso_ms(end),
            "hs_meeting_outcome": outcome, "hs_meeting_body": _BODY[title]})

    def _note(self, company, people, people_times, ms, owner) -> None:
        self._activity("notes", company, people, people_times, ms, owner,
                       {"hs_note_body": self.service_rng.choice(_NOTES)})

    def _task(self, company, people, people_times, ms, owner) -> None:
        rng = self.service_rng
        due = min(ms + 7 * DAY, self.now)  # open tasks are due today at the latest: no future dates
        done = due < self.now - 3 * DAY and rng.random() < 0.8
        self._activity("tasks", company, people, people_times, ms, owner, {
            "hs_task_subject": f"Risk check-in: {company.properties['name']}", "hs_task_type": "CALL",
            "hs_task_status": "COMPLETED" if done else "NOT_STARTED", "hs_task_priority": "HIGH",
            "hs_task_body": "<p>Usage dropped; call the champion.</p>"}, when=due)
