"""The model's closed vocabularies, defined once: live and overdue subscription statuses, billing frequencies."""

from __future__ import annotations

from decimal import Decimal

# Statuses in which a subscription still earns MRR (past-due counts until churn is recognised, METRICS §1.1).
LIVE_STATUSES = frozenset({"active", "past_due", "unpaid"})
OVERDUE_STATUSES = frozenset({"past_due", "unpaid"})
# Months per billing interval as a fraction: monthly amount = amount × numerator / denominator (METRICS §1.3:
# weekly 52/12).
MONTHLY_FRACTION: dict[str, tuple[int, int]] = {
    "weekly": (52, 12), "biweekly": (26, 12), "monthly": (1, 1), "quarterly": (1, 3), "per_six_months": (1, 6),
    "annually": (1, 12), "per_two_years": (1, 24), "per_three_years": (1, 36), "per_four_years": (1, 48),
    "per_five_years": (1, 60),
}
MONTHLY_FACTOR: dict[str, Decimal] = {name: Decimal(n) / Decimal(d) for name, (n, d) in MONTHLY_FRACTION.items()}
