"""The row views: dataclass objects → the frames → the same objects back, exactly."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal


from connector.model import Customer, Portfolio, Subscription, Usage

UTC = timezone.utc


def _sub(sid: str, **kw) -> Subscription:
    base = dict(id=sid, customer_id="c1", name=None, status="active", mrr=Decimal("99.95"), currency="EUR",
                billing_frequency="monthly", start_date=date(2024, 2, 29), next_payment_due=None,
                last_payment_status=None, cancel_requested_at=None,
                created_at=datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC))
    base.update(kw)
    return Subscription(**base)


def test_a_portfolio_of_frames_reads_like_one_of_objects():
    customers = {"c1": Customer(id="c1", object_type="companies", name="A", created_at=None,
                                customer_since=date(2023, 1, 2), acquisition_source=None, industry=None,
                                birthday=date(1980, 5, 6), contact_ids=("p1", "p2"), primary_contact_id="p1",
                                extra=(("employees", 12),))}
    usage = {"c1": Usage(customer_id="c1", logins_30d=4, onboarding_milestones_done=("a", "b"),
                         logins_history=((datetime(2024, 1, 1, tzinfo=UTC), 3), (datetime(2024, 2, 1, tzinfo=UTC), 4)))}
    given = Portfolio(customers=customers, subscriptions=[_sub("s1", mrr_history=(
        (datetime(2024, 1, 1, tzinfo=UTC), Decimal("10")), (datetime(2024, 3, 1, tzinfo=UTC), None)))], usage=usage)
    rebuilt = Portfolio(frames=given.frames, issues=given.issues)
    assert dict(rebuilt.customers) == customers and dict(rebuilt.usage) == usage
    assert list(rebuilt.subscriptions) == list(given.subscriptions) and "c1" in rebuilt.customers
    assert given.frames.histories["mrr_history"]["value"].to_list() == [Decimal("10"), None]
    assert given.replace(usage={}).usage == {} and given.replace(usage={}).customers is customers
