"""The product library: the plans and add-on that line items name by ``hs_product_id``."""

from __future__ import annotations

from connector.sandbox.seed.core import ADDON, DAY, PLANS, _GeneratorBase, _money


class _Products(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``); draws nothing at random."""

    def _products(self) -> None:
        """One product per plan and the add-on, set up before the CRM; ``hs_product_id`` of line items names them."""
        created = self.window_start - 30 * DAY
        for order, (name, product_id, usd) in enumerate(PLANS + (ADDON,)):
            props = {"name": name, "price": _money(usd), "hs_sku": f"SKU-{product_id}",
                     "description": f"{name}: monthly price per seat in USD" if order < len(PLANS) else
                                    f"{name}: flat monthly fee in USD",
                     "hs_product_type": "service", "recurringbillingfrequency": "monthly",
                     "hs_recurring_billing_period": "P1M"}
            # Created one minute apart in catalogue order, so _finish numbers them with the ids line items name.
            self._record("products", created + order * 60_000, props)
