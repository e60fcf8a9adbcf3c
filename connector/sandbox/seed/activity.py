"""Product usage, onboarding and NPS/CSAT/CES feedback that drive (and reveal) the churn hazard."""

from __future__ import annotations

from bisect import bisect_right

from connector.sandbox import schema
from connector.sandbox.seed.core import DAY, SURVEYS, _GeneratorBase, _num, _poisson, date_ms, iso_ms


_COMMENTS = {
    "PROMOTER": ("Great product, the team loves it.", "Saves us hours every week.", "Support is fast and helpful.",
                 "Easy to use and reliable.", "The reports are exactly what we needed."),
    "PASSIVE": ("Does the job, a few rough edges.", "Good, but pricing is getting high.",
                "Would like more integrations.",
                "Onboarding took longer than expected.", "Fine overall."),
    "DETRACTOR": ("Too many bugs lately.", "We barely use it anymore.", "Support took days to answer.",
                  "Too expensive for what we get.", "Missing features we were promised.", "Performance is slow."),
}
_SENTIMENT = {"PROMOTER": "POSITIVE", "PASSIVE": "NEUTRAL", "DETRACTOR": "NEGATIVE"}



def _nps_group(v: int) -> str:
    return "PROMOTER" if v >= 9 else ("PASSIVE" if v >= 7 else "DETRACTOR")



def _csat_group(v: int) -> str:  # HubSpot's CSAT is 0/1/2 (METRICS.md §5)
    return ("DETRACTOR", "PASSIVE", "PROMOTER")[v]



def _ces_group(v: int) -> str:
    return "PROMOTER" if v >= 6 else ("PASSIVE" if v >= 4 else "DETRACTOR")


class _Activity(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``)."""

    def _onboarding(self, company, since, h0) -> list[int]:
        """Milestone times (ms, or -1 when not reached) and the first-value date; imported accounts are done."""
        rng = self.rng
        cp = company.properties
        done: list[int] = []
        t = since if since is not None else -1
        for i, _ in enumerate(schema.MILESTONES):
            if since is None:  # imported: onboarded long before the CRM, right after they became customers
                done.append(-1 if i == len(schema.MILESTONES) - 1 and rng.random() < 0.1 else
                            company.properties["_since"] + (i + 1) * 4 * DAY)
                continue
            t += int((1 + rng.random() * (4 + 10 * (1 - h0))) * DAY)
            ok = rng.random() < 0.97 - 0.08 * i - 0.35 * (1 - h0)
            done.append(t if ok and t <= self.now else -1)
        names = [m for m, ms in zip(schema.MILESTONES, done) if ms >= 0]
        if names:
            cp["onboarding_milestones"] = ";".join(names)
        if done[-1] >= 0 and done[1] >= 0:
            cp["onboarding_first_value_date"] = date_ms(done[-1])
        return done

    def _usage_zero(self, company, ms: int) -> None:
        for name in ("product_active_days_30d", "product_logins_30d", "seats_used", "support_open_tickets"):
            if name in company.history:
                self._set(company, name, "0", ms)
        cp = company.properties
        cp["product_active_users_30d"] = cp["product_avg_dau_30d"] = cp["support_tickets_90d"] = "0"
        cp["seats_purchased"] = "0"

    def _usage(self, company, sub, people, people_times, b, a, h, size, ticket_months, nps_log, onboarding):
        rng, now = self.rng, self.now
        seats = sub.seats
        active_days = max(0, min(30, round(30 * h + rng.gauss(0, 2.5))))
        seats_used = max(0, min(seats, round(seats * (0.35 + 0.65 * h) + rng.gauss(0, 0.8))))
        mau = max(0, min(seats_used, round(seats_used * (0.5 + 0.5 * h)))) if active_days else 0
        dau = round(mau * active_days / 30 * (0.55 + 0.35 * rng.random()), 1) if mau else 0.0
        logins = round(dau * 30 * (1.2 + 0.8 * rng.random()))
        new_tickets = _poisson(rng, size * (0.25 + 2.8 * (1 - h) ** 1.5))
        ticket_months.pop(0)
        ticket_months.append(new_tickets)
        tickets_90d = sum(ticket_months)
        open_tickets = sum(1 for _ in range(new_tickets) if rng.random() < 0.15 + 0.35 * (1 - h))
        # What the month showed, for the ticket and engagement records drawn later from their own stream.
        self.months_of[id(company)].append((a, b, h, new_tickets, open_tickets))
        cp = company.properties
        # The usage sync writes every month even when a value did not move, so each sync is a history point.
        w = self._sync_write(b, company.created_ms)
        shared = w == b
        self._set(company, "product_active_days_30d", _num(active_days), w, every=True, share=shared)
        self._set(company, "product_logins_30d", _num(logins), w, every=True, share=shared)
        self._set(company, "seats_used", _num(seats_used), w, every=True, share=shared)
        self._set(company, "support_open_tickets", _num(open_tickets), w, every=True, share=shared)
        cp["product_active_users_30d"] = _num(mau)
        cp["product_avg_dau_30d"] = f"{dau:.1f}"
        cp["seats_purchased"] = _num(seats)
        cp["support_tickets_90d"] = _num(tickets_90d)
        if logins:
            gap = rng.random() * min(3, 30 / max(1, active_days)) * DAY
            cp["product_last_login_at"] = iso_ms(min(now, b - int(gap)))

        # Surveys answered during (a, b]: quarterly NPS, CSAT after tickets, CES once onboarding is done.
        n_people = bisect_right(people_times, a)
        span = b - a
        if n_people:
            if b in self.nps_steps:
                for p in people[:n_people]:
                    if rng.random() < 0.22:
                        v = max(0, min(10, round(2.0 + 8.0 * h + rng.gauss(0, 1.6))))
                        t = a + int(rng.random() * span)
                        self._feedback(p, "NPS", v, _nps_group(v), t)
                        nps_log.append((t, v))
            for _ in range(new_tickets):
                if rng.random() < 0.3:
                    u = h + rng.gauss(0, 0.25)
                    v = 2 if u > 0.55 else (1 if u > 0.3 else 0)
                    who = people[rng.randrange(n_people)]
                    self._feedback(who, "CSAT", v, _csat_group(v), a + int(rng.random() * span))
            first_value = onboarding[-1]
            if a < first_value <= b and rng.random() < 0.6:
                v = max(1, min(7, 1 + round(6 * (h + rng.gauss(0, 0.18)))))
                self._feedback(people[0], "CES", v, _ces_group(v), min(now, first_value + int(rng.random() * 3 * DAY)))
        return {"at": b, "active_days_30d": active_days, "logins_30d": logins, "seats_used": seats_used,
                "mau": mau, "tickets_90d": tickets_90d, "open_tickets": open_tickets}

    def _feedback(self, contact, kind, value, group, ms) -> None:
        rng = self.rng
        survey_id, survey_name = SURVEYS[kind]
        r = rng.random()
        props = {
            "hs_survey_type": kind, "hs_value": _num(value), "hs_response_group": group,
            "hs_survey_channel": "EMAIL" if r < 0.75 else ("WEB" if r < 0.92 else "LINK"),
            "hs_submission_timestamp": iso_ms(ms), "hs_survey_id": survey_id, "hs_survey_name": survey_name,
            "hs_sentiment": _SENTIMENT[group],
        }
        if rng.random() < 0.3:
            props["hs_content"] = rng.choice(_COMMENTS[group])
        rec = self._record("feedback_submissions", ms, props, props["hs_submission_timestamp"])
        self._link(rec, contact)
        self._touch(contact, ms)  # the roll-ups below are written on the contact
        if kind == "NPS":
            cprops = contact.properties
            if ms >= cprops.get("_nps_ms", -1):
                cprops["_nps_ms"] = ms
                cprops["hs_feedback_last_nps_rating"] = props["hs_value"]
                cprops["hs_feedback_last_survey_date"] = props["hs_submission_timestamp"]
