"""Small Portfolios whose subscription histories encode the worked examples of METRICS.md (E2, E3)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from connector.model import Customer, Portfolio, Subscription

UTC = timezone.utc
JAN_START = datetime(2026, 1, 1, tzinfo=UTC)
FEB_START = datetime(2026, 2, 1, tzinfo=UTC)


def at(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def customer(cid: str, *, source: str | None = "organic", since: date | None = None, **kw) -> Customer:
    return Customer(
        id=cid,
        object_type="companies",
        name=f"Customer {cid}",
        created_at=at(1, 1, 2025),
        customer_since=since,
        acquisition_source=source,
        industry="software",
        **kw,
    )


def subscription(
    sid: str,
    cid: str,
    statuses: list[tuple[datetime, str]],
    mrrs: list[tuple[datetime, str]] | None = None,
    *,
    mrr: str = "100",
    **kw,
) -> Subscription:
    mrr_history = tuple((t, Decimal(v)) for t, v in (mrrs or []))
    return Subscription(
        id=sid,
        customer_id=cid,
        name=None,
        status=statuses[-1][1],
        mrr=mrr_history[-1][1] if mrr_history else Decimal(mrr),
        currency="USD",
        billing_frequency="monthly",
        start_date=statuses[0][0].date(),
        next_payment_due=kw.pop("next_payment_due", None),
        last_payment_status=kw.pop("last_payment_status", "succeeded"),
        cancel_requested_at=kw.pop("cancel_requested_at", None),
        created_at=statuses[0][0],
        mrr_history=mrr_history,
        status_history=tuple(statuses),
    )


def e2_portfolio() -> Portfolio:
    """S = 200; 10 of S cancel (2 come back); 5 new stay; 3 lost before t0 return; 1 joins and leaves (January)."""
    customers: list[Customer] = []
    subs: list[Subscription] = []
    long_ago = at(6, 1, 2025)

    def add(cid: str, statuses: list[tuple[datetime, str]], source: str = "organic") -> None:
        customers.append(customer(cid, source=source))
        subs.append(subscription(f"s-{cid}", cid, statuses))

    for i in range(190):
        add(f"stay{i}", [(long_ago, "active")], source="organic" if i < 100 else "paid")
    for i in range(8):
        add(f"lost{i}", [(long_ago, "active"), (at(1, 10), "canceled")], source="paid")
    for i in range(2):
        add(f"back{i}", [(long_ago, "active"), (at(1, 10), "canceled"), (at(1, 20), "active")])
    for i in range(5):
        add(f"new{i}", [(at(1, 5), "active")], source="referral")
    for i in range(3):
        add(f"react{i}", [(long_ago, "active"), (at(10, 1, 2025), "canceled"), (at(1, 15), "active")])
    add("blip", [(at(1, 3), "active"), (at(1, 25), "canceled")], source="referral")
    # Not customers in S/E: a trial that never paid and a company with no subscription at all.
    customers.append(customer("trial"))
    subs.append(subscription("s-trial", "trial", [(at(1, 2), "active")], [(at(1, 2), "0")]))
    customers.append(customer("prospect"))
    return Portfolio(
        customers={c.id: c for c in customers}, subscriptions=tuple(subs), deals=(), line_items=(), feedback=(),
        usage={},
    )


def e3_portfolio() -> Portfolio:
    """Start cohort A 100->150, B 200->120, C 300->0, D 400->400; new E 0->250; F (lost in Q4) returns at 90."""
    long_ago = at(6, 1, 2025)
    subs = [
        # A expands by adding a second subscription in the month.
        subscription("a1", "A", [(long_ago, "active")], mrr="100"),
        subscription("a2", "A", [(at(1, 12), "active")], mrr="50"),
        # B contracts through a price change.
        subscription("b1", "B", [(long_ago, "active")], [(long_ago, "200"), (at(1, 7), "120")]),
        subscription("c1", "C", [(long_ago, "active"), (at(1, 20), "canceled")], mrr="300"),
        # D: two subscriptions, one swapped for another of the same value inside the month.
        subscription("d1", "D", [(long_ago, "active")], mrr="150"),
        subscription("d2", "D", [(long_ago, "active"), (at(1, 9), "canceled")], mrr="250"),
        subscription("d3", "D", [(at(1, 9), "active")], mrr="250"),
        subscription("e1", "E", [(at(1, 4), "active")], mrr="250"),
        subscription("f1", "F", [(at(3, 1, 2025), "active"), (at(11, 15, 2025), "canceled"), (at(1, 22), "active")],
                     [(at(3, 1, 2025), "80"), (at(1, 22), "90")]),
    ]
    customers = {cid: customer(cid) for cid in "ABCDEF"}
    return Portfolio(customers=customers, subscriptions=tuple(subs), deals=(), line_items=(), feedback=(), usage={})


__all__ = ["e2_portfolio", "e3_portfolio", "customer", "subscription", "at"]
