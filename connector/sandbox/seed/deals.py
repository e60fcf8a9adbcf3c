"""Deals and their line items: the sales pipeline that leads to (or fails to lead to) a subscription."""

from __future__ import annotations

from connector.sandbox.seed.core import (
    ADDON, DAY, MONTHS_PER_PERIOD, PLANS, _TERM, SeedRecord, _GeneratorBase, _money, _num, iso_ms,
)


_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin", "contractsent")


class _Deals(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``)."""

    def _line_item(self, currency, product, qty, freq, disc, created) -> SeedRecord:
        name, pid, _ = product
        created = min(created, self.now)
        months = MONTHS_PER_PERIOD[freq]
        price = self.prices[(currency, pid)] * months
        amount = round(qty * price * (100 - disc) / 100, 2)
        props = {
            "name": name, "quantity": _num(qty), "price": _money(price), "amount": _money(amount),
            "hs_discount_percentage": _num(disc), "recurringbillingfrequency": freq,
            "hs_recurring_billing_period": _TERM[freq], "hs_product_id": _num(pid),
            "hs_line_item_currency_code": currency,
        }
        return self._record("line_items", created, props)

    def _deal(self, company, contact, currency, created, close, outcome, dealtype, lines, addon=False):
        """A deal with its stage history and line items; ``lines`` = [(plan index, seats, freq, discount)]."""
        rng, now = self.rng, self.now
        plan = PLANS[lines[0][0]]
        props = {
            "dealname": f"{company.properties['name']} - {plan[0]}"
                        + (" upsell" if dealtype == "existingbusiness" else ""),
            "pipeline": "default", "dealtype": dealtype, "deal_currency_code": currency,
            "closedate": iso_ms(close),
        }
        deal = self._record("deals", created, props)
        span = close - created
        if outcome == "won_imported":
            self._set(deal, "dealstage", "closedwon", created)
        else:
            reached = len(_STAGES) if outcome == "won" else rng.randrange(1, len(_STAGES) + 1)
            if outcome == "open":
                reached = max(1, min(len(_STAGES), int(len(_STAGES) * (now - created) / span) + 1))
            for i in range(reached):
                self._set(deal, "dealstage", _STAGES[i], created + span * i // len(_STAGES))
            if outcome != "open":
                self._set(deal, "dealstage", "closedlost" if outcome == "lost" else "closedwon", close)
        won = outcome in ("won", "won_imported")
        props["hs_is_closed_won"] = "true" if won else "false"
        props["hs_is_closed"] = "false" if outcome == "open" else "true"
        total = 0.0
        items = []
        for plan_i, seats, freq, disc in lines:
            item = self._line_item(currency, PLANS[plan_i], seats, freq, disc, created + rng.randrange(1_000, 60_000))
            items.append(item)
        if addon:
            items.append(self._line_item(currency, ADDON, 1, lines[0][2], 0, created + rng.randrange(1_000, 60_000)))
        for item in items:
            total += float(item.properties["amount"])
            self._link(deal, item)
        props["amount"] = _money(total)
        self._link(deal, company, primary=True)
        if contact is not None:
            self._link(deal, contact)
        if outcome == "lost" and rng.random() < 0.04:  # a duplicate deal someone deleted
            deal.archived = True
            deal.archived_ms = min(now, close + int(rng.random() * 20 * DAY))
            self._touch(deal, deal.archived_ms)
        return deal, items
