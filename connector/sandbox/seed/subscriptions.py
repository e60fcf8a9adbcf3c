"""Commerce subscriptions over time: payments, dunning, repricing, cancellations, churn and win-backs."""

from __future__ import annotations

import math
from bisect import bisect_right

from connector.sandbox.seed.core import (
    ADDON, DAY, HOUR, MONTHS_PER_PERIOD, PLANS, SeedRecord, _GeneratorBase, _money, _num, _sigmoid, date_ms,
    iso_ms,
)


class _Sub:
    """Working state of one commerce subscription while its company is simulated."""

    __slots__ = ("rec", "items", "freq", "months", "anchor_index", "anchor_day", "k", "next_due", "mrr", "status",
                 "last_fail_ms", "plan_item", "price", "discount", "seats")

    def __init__(self, rec, freq, anchor_ms, cal):
        self.rec = rec
        self.items: list[SeedRecord] = []
        self.freq = freq
        self.months = MONTHS_PER_PERIOD[freq]
        self.anchor_index = cal.index_of(anchor_ms)
        self.anchor_day = (anchor_ms - cal.start(self.anchor_index)) // DAY + 1
        self.k = 0  # billing periods already started (the first is paid at start)
        self.next_due = anchor_ms
        self.mrr = 0.0
        self.status = "active"
        self.last_fail_ms = -1
        self.plan_item = None
        self.price = 0.0
        self.discount = 0
        self.seats = 0


class _Subscriptions(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``)."""

    def _new_subscription(self, company, contact, currency, seats, plan_i, freq, disc, addon, start, created):
        rng = self.rng
        plan = PLANS[plan_i]
        props = {
            "hs_name": f"{plan[0]} plan ({freq})", "hs_recurring_billing_frequency": freq,
            "hs_currency_code": currency, "hs_recurring_billing_start_date": date_ms(start),
        }
        rec = self._record("subscriptions", created, props)
        sub = _Sub(rec, freq, start, self.cal)
        sub.price = self.prices[(currency, plan[1])] * sub.months
        sub.discount, sub.seats = disc, seats
        sub.plan_item = self._line_item(currency, plan, seats, freq, disc, created + rng.randrange(1_000, 60_000))
        sub.items.append(sub.plan_item)
        if addon:
            sub.items.append(self._line_item(currency, ADDON, 1, freq, 0, created + rng.randrange(1_000, 60_000)))
        for item in sub.items:
            self._link(rec, item)
        self._link(rec, company)
        if contact is not None:
            self._link(rec, contact)
        self._reprice(sub, created)
        return sub

    def _reprice(self, sub: _Sub, ms: int) -> None:
        """Recompute the plan line item and the subscription's MRR after a seat change."""
        item = sub.plan_item.properties
        item["quantity"] = _num(sub.seats)
        item["amount"] = _money(round(sub.seats * sub.price * (100 - sub.discount) / 100, 2))
        self._touch(sub.plan_item, ms)
        per_period = sum(float(i.properties["amount"]) for i in sub.items)
        sub.mrr = per_period / sub.months
        self._set(sub.rec, "hs_mrr", _money(sub.mrr), ms)
        if sub.status != "canceled" and "cancellation_requested_date" not in sub.rec.properties:
            sub.rec.properties["hs_next_payment_amount"] = _money(per_period)

    def _customer(self, company, people, currency, employees, since, deal_created, stages, imported):
        """Simulate a customer month by month from ``since`` to now; returns the state the company shows."""
        rng, now, cal, steps = self.rng, self.now, self.cal, self.steps
        cp = company.properties
        cp["hs_lifecyclestage_customer_date"] = iso_ms(since)
        cp["_since"] = since
        seats, plan_i, freq, disc = self._offer(employees)
        addon = rng.random() < 0.15
        champion = people[0]
        outcome = "won_imported" if imported else "won"
        deal, _ = self._deal(company, champion, currency, deal_created, since, outcome, "newbusiness",
                             [(plan_i, seats, freq, disc)], addon=addon)
        # Latent account health on the logit scale: persistent per account, drifting monthly, with shocks
        # (a champion leaves, a reorg). Usage, surveys, tickets and payment trouble all read it, and the churn
        # hazard reads what they show, so a score built on them has real signal.
        mu = rng.gauss(1.3, 0.9)
        z = mu + rng.gauss(0, 0.6)
        size = 0.6 + 0.4 * math.log10(seats + 1)
        sub_created = created_at = deal_created if imported else since
        start = since
        scheduled = False
        if not imported and since > now - 7 * DAY and rng.random() < 0.5:
            start = cal.start(cal.index_of(now) + 1)  # starts on the first of next month
            scheduled = True
        sub = self._new_subscription(company, champion, currency, seats, plan_i, freq, disc, addon, start, sub_created)
        self._link(sub.rec, deal)
        if scheduled:
            sub.status = "scheduled"
            self._set(sub.rec, "hs_status", "scheduled", sub_created)
            sub.rec.properties["hs_next_payment_due_date"] = date_ms(start)
            return {"state": "scheduled", "snap": None}
        self._set(sub.rec, "hs_status", "active", sub_created)
        # The first period is paid at start (or, for imported customers, the current period was paid before import).
        while cal.due(sub.anchor_index, sub.anchor_day, (sub.k + 1) * sub.months) <= created_at:
            sub.k += 1
        # Imported customers bring the payment of their current period with them.
        self._pay(sub, created_at if imported else start + 8 * HOUR, ok=True)
        self._next_due(sub)

        onboarding = self._onboarding(company, since if not imported else None, _sigmoid(z))
        people_times = [p.created_ms for p in people]
        state = "active"
        request_ms = churned_ms = -1
        reason = ""
        ticket_months = [0, 0, 0]
        nps_log: list[tuple[int, int]] = []  # (ms, value) of this account's NPS answers
        snap = None  # the last usage sync: dict of driver values
        zeroed = False
        prev = created_at
        requested = True
        for b in steps:
            if b <= created_at:
                continue
            a = prev
            prev = b
            if state == "churned":
                if not zeroed:
                    self._usage_zero(company, self._sync_write(b, max(company.created_ms, churned_ms)))
                    zeroed = True
                # Win-back: churned accounts come back now and then, payment failures more often than quitters.
                p_back = (0.08 if reason == "involuntary" else 0.025) if b - churned_ms < 450 * DAY else 0.0
                if rng.random() < p_back:
                    back = a + int(rng.random() * (b - a - DAY))
                    if back <= churned_ms + DAY:
                        continue
                    z = mu + rng.gauss(0.3, 0.4)
                    seats, plan_i, freq, disc = self._offer(employees)
                    addon = rng.random() < 0.1
                    contact = rng.choice(people[:max(1, bisect_right(people_times, back))])
                    d_created = max(churned_ms + DAY, back - int((5 + rng.random() * 20) * DAY))
                    deal, _ = self._deal(company, contact, currency, d_created, back, "won", "newbusiness",
                                         [(plan_i, seats, freq, disc)], addon=addon)
                    sub = self._new_subscription(company, contact, currency, seats, plan_i, freq, disc, addon,
                                                 back, back)
                    self._link(sub.rec, deal)
                    self._set(sub.rec, "hs_status", "active", back)
                    self._pay(sub, back + HOUR, ok=True)
                    self._next_due(sub)
                    stages.append(("customer", back))
                    self.truth.append({"kind": "reactivation", "_company": company, "_sub": sub.rec,
                                       "reactivated_at": iso_ms(back), "previous_churned_at": iso_ms(churned_ms)})
                    state, request_ms, zeroed, snap = "active", -1, False, None
                    ticket_months = [0, 0, 0]
                continue

            # 1. the churn decision, from what the account showed at the previous sync
            if state == "active" and snap is not None and sub.status == "active":
                nps_recent = [v for t, v in nps_log if a - 180 * DAY < t <= a]
                nps_avg = sum(nps_recent) / len(nps_recent) if nps_recent else None
                trouble = sub.last_fail_ms >= 0 and a - sub.last_fail_ms < 60 * DAY
                x = (-5.6 + 3.4 * (1 - snap["active_days_30d"] / 30)
                     + 0.32 * max(0.0, 7.0 - (nps_avg if nps_avg is not None else 7.5))
                     + 0.12 * min(snap["tickets_90d"], 15) + 1.3 * trouble)
                hazard = _sigmoid(x)
                if rng.random() < hazard:
                    state = "pending"
                    request_ms = a + int(rng.random() * (b - a - HOUR))
                    requested = False  # written once the billing events before it are done
                    z -= 1.0  # once they have decided to leave, they use it less
                    drivers = dict(snap, at=iso_ms(snap["at"]),
                                   nps_avg_180d=None if nps_avg is None else round(nps_avg, 2),
                                   payment_trouble=trouble, mrr=round(sub.mrr, 2))
                    k, effective = sub.k, sub.next_due
                    while effective < request_ms:  # the paid period runs out at the first due date after the request
                        k += 1
                        effective = cal.due(sub.anchor_index, sub.anchor_day, k * sub.months)
                    gt = {"kind": "churn", "_company": company, "_sub": sub.rec, "reason": "voluntary",
                          "currency": currency,
                          "cancel_requested_at": iso_ms(request_ms), "cancel_effective_on": date_ms(effective),
                          "churned_at": None, "hazard": round(hazard, 4),
                          "drivers": drivers}
                    self.truth.append(gt)

            # 2. account health drifts
            z = mu + 0.8 * (z - mu) + rng.gauss(0, 0.55)
            if rng.random() < 0.03:
                z -= 2.0
            h = _sigmoid(z)

            # 3. billing events due in (a, b), and on the last step those due today as well
            while state in ("active", "pending") and (sub.next_due < b or sub.next_due == b == self.today):
                d = sub.next_due
                if state == "pending" and not requested and d >= request_ms:
                    self._request_cancel(sub, request_ms)
                    requested = True
                if state == "pending" and d >= request_ms:
                    churned_ms = d
                    self._cancel(sub, d)
                    stages.append(("other", d))
                    state, reason = "churned", "voluntary"
                    self._set_truth_churned(sub.rec, d)
                    break
                if rng.random() < 0.012 + 0.06 * (1 - h):
                    fail_at = d + 7 * HOUR + rng.randrange(0, HOUR)
                    self._pay(sub, fail_at, ok=False)
                    retry = fail_at + int((3 + rng.random() * 7) * DAY)
                    if rng.random() < 0.7:
                        if retry <= now:
                            self._pay(sub, retry, ok=True)
                        self._next_due(sub)
                        continue
                    end = d + 21 * DAY
                    if end <= now:
                        churned_ms = end
                        reason = "voluntary" if state == "pending" and requested else "involuntary"
                        if reason == "voluntary":
                            self._set_truth_churned(sub.rec, end)
                        else:
                            if state == "pending":  # the card failed before they got round to cancelling
                                self._drop_open_churn(sub.rec)
                            recent = [v for t, v in nps_log if d - 180 * DAY < t <= d]
                            trouble_drivers = dict(snap or {}, payment_trouble=True, mrr=round(sub.mrr, 2),
                                                   nps_avg_180d=round(sum(recent) / len(recent), 2) if recent else None)
                            if snap:
                                trouble_drivers["at"] = iso_ms(snap["at"])
                            self.truth.append({"kind": "churn", "_company": company, "_sub": sub.rec,
                                               "reason": "involuntary", "currency": currency,
                                               "cancel_requested_at": None,
                                               "cancel_effective_on": date_ms(end),
                                               "churned_at": iso_ms(end), "hazard": None, "drivers": trouble_drivers})
                        self._cancel(sub, end)
                        stages.append(("other", end))
                        state = "churned"
                    else:
                        state = "dunning"  # still past due today
                    break
                self._pay(sub, d + 7 * HOUR + rng.randrange(0, HOUR), ok=True)
                # Expansion and contraction are decided at billing dates.
                if state == "active":
                    util = snap["seats_used"] / sub.seats if snap else 0.8
                    if h > 0.6 and rng.random() < 0.03 + 0.2 * (util > 0.9):
                        extra = max(1, int(sub.seats * (0.1 + rng.random() * 0.4)))
                        t = min(d + 9 * HOUR, now)
                        self._deal(company, champion, currency, t - int((7 + rng.random() * 20) * DAY), t, "won",
                                   "existingbusiness", [(plan_i, extra, sub.freq, sub.discount)])
                        sub.seats += extra
                        self._reprice(sub, t)
                    elif h < 0.45 and sub.seats > 3 and rng.random() < 0.1:
                        sub.seats = max(1, int(sub.seats * (0.6 + rng.random() * 0.3)))
                        self._reprice(sub, min(d + 9 * HOUR, now))
                    elif h > 0.5 and rng.random() < 0.01:  # an upsell that did not close
                        t = min(d + 9 * HOUR, now)
                        self._deal(company, champion, currency, t - int(20 * DAY), t, "lost",
                                   "existingbusiness", [(plan_i, max(1, sub.seats // 4), sub.freq, sub.discount)])
                self._next_due(sub)
            if state in ("pending", "dunning") and not requested:
                self._request_cancel(sub, request_ms)
                requested = True
            if state == "churned":
                if churned_ms <= b:
                    self._usage_zero(company, self._sync_write(b, max(company.created_ms, churned_ms)))
                    zeroed = True
                continue

            # 4. usage, tickets and surveys of the month ending at b
            snap = self._usage(company, sub, people, people_times, b, a, h, size, ticket_months, nps_log, onboarding)
        return {"state": state, "snap": snap}

    def _request_cancel(self, sub: _Sub, ms: int) -> None:
        """The customer asks to cancel: no further payments; the subscription ends with the paid period."""
        props = sub.rec.properties
        props["cancellation_requested_date"] = iso_ms(ms)
        props.pop("hs_next_payment_amount", None)
        props.pop("hs_next_payment_due_date", None)
        self._touch(sub.rec, ms)

    def _drop_open_churn(self, sub_rec) -> None:
        for i in range(len(self.truth) - 1, -1, -1):
            entry = self.truth[i]
            if entry.get("_sub") is sub_rec and entry["kind"] == "churn" and entry["churned_at"] is None:
                del self.truth[i]
                return

    def _set_truth_churned(self, sub_rec, ms):
        for entry in reversed(self.truth):
            if entry.get("_sub") is sub_rec and entry["kind"] == "churn":
                entry["churned_at"] = iso_ms(ms)
                return

    def _pay(self, sub: _Sub, ms: int, ok: bool) -> None:
        rec = sub.rec
        ms = min(ms, self.now)  # a payment due today may be collected by now at the latest
        if ok:
            rec.properties["hs_last_payment_amount"] = _money(sub.mrr * sub.months)
            self._set(rec, "hs_last_payment_status", "succeeded", ms)
            if sub.status == "past_due":
                sub.status = "active"
                self._set(rec, "hs_status", "active", ms)
        else:
            sub.last_fail_ms = ms
            self._set(rec, "hs_last_payment_status", "failed", ms)
            sub.status = "past_due"
            self._set(rec, "hs_status", "past_due", ms)

    def _next_due(self, sub: _Sub) -> None:
        sub.k += 1
        due = self.cal.due(sub.anchor_index, sub.anchor_day, sub.k * sub.months)
        sub.next_due = due
        if "cancellation_requested_date" not in sub.rec.properties:
            sub.rec.properties["hs_next_payment_due_date"] = date_ms(due)

    def _cancel(self, sub: _Sub, ms: int) -> None:
        sub.status = "canceled"
        props = sub.rec.properties
        props.pop("hs_next_payment_due_date", None)
        props.pop("hs_next_payment_amount", None)
        self._set(sub.rec, "hs_status", "canceled", ms)
