"""The per-customer features a health component or segment rule may name (CONTRACT).

``connector.metrics`` computes every one of these for each customer as of a date (value or ``None`` when
unknown); ``health`` and ``segments`` read them by name; the mapping loader checks names against this
catalog so a typo fails with file:line and did-you-mean. Kinds: number (int or float), bool, str, date.
Ratios are 0–1 unless said otherwise; day counts are whole days before ``as_of``.
"""

from __future__ import annotations

FEATURES: dict[str, tuple[str, str]] = {
    # identity and lifecycle
    "customer_id": ("str", "the customer's record id"),
    "customer_name": ("str", "company (or contact) name"),
    "customer_object": ("str", "companies or contacts"),
    "is_active": ("bool", "recurring revenue > 0 as of the date"),
    "was_ever_active": ("bool", "had recurring revenue > 0 at some time up to the date"),
    "customer_since": ("date", "first day as a paying customer"),
    "tenure_days": ("number", "days since customer_since"),
    "days_since_churn": ("number", "days since the last churn, None if never churned or active"),
    "days_since_reactivation": ("number", "days since the customer last came back after a churn, None if never"),
    "churn_count": ("number", "how many times the customer churned"),
    # revenue and billing
    "mrr": ("number", "current MRR (reporting currency)"),
    "arr": ("number", "12 x MRR"),
    "mrr_90d_ago": ("number", "MRR 90 days before the date"),
    "mrr_change_90d": ("number", "relative MRR change over 90 days (0.1 = +10 %), None if MRR was 0"),
    "active_subscriptions": ("number", "live subscriptions"),
    "payment_overdue": ("bool", "a live subscription is past due / unpaid or its last payment failed"),
    "days_past_due": ("number", "days since the oldest unpaid due date, None if nothing overdue"),
    "cancel_requested": ("bool", "a cancellation was requested and the paid period is not over"),
    "days_to_renewal": ("number", "days until the next payment / renewal date"),
    "clv": ("number", "simple CLV of the customer (ARPA-based, capped)"),
    # usage and engagement
    "logins_30d": ("number", "logins in the trailing 30 days"),
    "active_days_30d": ("number", "days with product activity in the trailing 30 days"),
    "usage_frequency": ("number", "active_days_30d / 30"),
    "usage_frequency_prev": ("number", "usage_frequency 30 days before the date"),
    "usage_trend": ("number", "usage_frequency - usage_frequency_prev"),
    "forgettable": ("bool", "used less than once a month (the 'forgettable zone')"),
    "stickiness": ("number", "mean DAU / MAU over the trailing 30 days"),
    "days_since_last_login": ("number", "days since the last login"),
    "seats_purchased": ("number", "seats bought"),
    "seats_used": ("number", "seats in use"),
    "seat_utilisation": ("number", "seats_used / seats_purchased"),
    "onboarding_progress": ("number", "milestones done / milestones in the plan"),
    "onboarding_complete": ("bool", "every onboarding milestone done"),
    "days_to_first_value": ("number", "days from customer_since to first value"),
    "open_tickets": ("number", "open support tickets"),
    "tickets_90d": ("number", "support tickets raised in the trailing 90 days"),
    "days_since_last_engagement": ("number", "days since the last 1:1 touch (call, meeting, e-mail)"),
    # satisfaction
    "nps_latest": ("number", "latest NPS rating 0-10"),
    "nps_previous": ("number", "the NPS rating before the latest"),
    "nps_trend": ("number", "nps_latest - nps_previous"),
    "nps_group": ("str", "promoter | passive | detractor, from the latest NPS rating"),
    "csat_pct": ("number", "share of satisfied CSAT answers in the window, 0-100"),
    "ces_mean": ("number", "mean CES answer 1-7 in the window"),
    "responses_90d": ("number", "survey answers in the trailing 90 days"),
    "days_since_last_survey": ("number", "days since the last survey answer"),
    # profile
    "industry": ("str", "industry as mapped"),
    "acquisition_source": ("str", "original acquisition source as mapped"),
    "country": ("str", "country"),
    "birthday_month": ("number", "month (1-12) of the primary contact's birthday"),
    "anniversary_month": ("number", "month (1-12) of customer_since"),
    "is_birthday_month": ("bool", "the date falls in the birthday month"),
    "is_anniversary_month": ("bool", "the date falls in the customer_since month, tenure >= 1 year"),
    # purchases (RFM)
    "recency_days": ("number", "days since the last purchase (won deal or payment)"),
    "frequency": ("number", "purchases (won deals) in the RFM window"),
    "monetary": ("number", "total spend in the RFM window"),
    # added by the health stage, readable by segments
    "health_score": ("number", "health score 0-100"),
    "health_band": ("str", "health band label"),
    "health_change": ("number", "score change since the previous run"),
    "health_trend": ("str", "up | down | flat"),
}


def feature_kind(name: str) -> str | None:
    entry = FEATURES.get(name)
    return entry[0] if entry else None
