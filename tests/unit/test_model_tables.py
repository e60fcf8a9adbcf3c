"""The columnar hand-off: dataclass objects → Table columns → the same objects back, exactly."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from decimal import Decimal

import numpy as np
import pytest

from connector.model import Customer, Flat, Portfolio, Subscription, Table, Usage

UTC = timezone.utc


def _sub(sid: str, **kw) -> Subscription:
    base = dict(id=sid, customer_id="c1", name=None, status="active", mrr=Decimal("99.95"), currency="EUR",
                billing_frequency="monthly", start_date=date(2024, 2, 29), next_payment_due=None,
                last_payment_status=None, cancel_requested_at=None,
                created_at=datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC))
    base.update(kw)
    return Subscription(**base)


def test_rows_come_back_equal_to_the_objects_they_were_made_from():
    subs = [
        _sub("s1", mrr_history=((datetime(2024, 1, 1, tzinfo=UTC), Decimal("10")),
                                (datetime(2024, 3, 1, 0, 0, 0, 1000, tzinfo=UTC), None)),
             status_history=((datetime(2024, 1, 1, tzinfo=UTC), "active"),)),
        _sub("s2", customer_id=None, mrr=None, created_at=None, live_statuses=frozenset({"active"}),
             past_due_grace_days=7),
    ]
    table = Table.of(Subscription, subs)
    assert len(table) == 2 and list(table) == subs and table[-1] == subs[1] and table[0:1] == subs[:1]
    assert table.columns["created_at"][0] == subs[0].created_at.timestamp() and math.isnan(table.columns["created_at"][1])
    assert table.columns["start_date"][0] == date(2024, 2, 29).toordinal()
    flat = table.columns["mrr_history"]
    assert flat.offsets.tolist() == [0, 2, 2] and flat.values == [Decimal("10"), None]
    assert table.owners({"c1": 5}).tolist() == [5, -1]
    with pytest.raises(IndexError):
        table[2]


def test_flat_take_picks_rows_in_the_given_order():
    t = [datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3)]
    flat = Flat.of([((t[0], 1), (t[1], 2)), (), ((t[2], 3),)])
    picked = flat.take(np.array([2, 0]))
    assert picked.row(0) == ((t[2], 3),) and picked.row(1) == ((t[0], 1), (t[1], 2))
    assert flat.owners().tolist() == [0, 0, 2]


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
    assert rebuilt.customer_index() == {"c1": 0}
    assert given.frames.histories["mrr_history"]["value"].to_list() == [Decimal("10"), None]
    assert given.replace(usage={}).usage == {} and given.replace(usage={}).customers is customers
