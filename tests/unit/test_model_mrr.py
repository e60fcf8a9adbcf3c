"""The MRR rule (connector.model.mrr) against the rule spelled out one instant at a time (METRICS §1.1), as an
oracle: live statuses, past-due grace, no history, same-instant changes."""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connector.model import Subscription
from connector.vocabulary import OVERDUE_STATUSES

UTC = timezone.utc
START = datetime(2025, 1, 1, tzinfo=UTC)


def _value_at(timeline, at):
    index = bisect_right(timeline, at, key=lambda point: point[0])
    return timeline[index - 1][1] if index else None


def oracle_mrr_at(sub: Subscription, at: datetime) -> Decimal:
    """The rule as the model wrote it before the frames: one bisect per instant."""
    if sub.status_history:
        status = _value_at(sub.status_history, at)
    else:
        status = None if sub.created_at is not None and at < sub.created_at else sub.status
    if status not in sub.live_statuses:
        return Decimal(0)
    if sub.past_due_grace_days is not None and status in OVERDUE_STATUSES:
        index = bisect_right(sub.status_history, at, key=lambda point: point[0]) - 1
        since = None
        while index >= 0 and sub.status_history[index][1] in OVERDUE_STATUSES:
            since = sub.status_history[index][0]
            index -= 1
        if since is not None and (at - since).days > sub.past_due_grace_days:
            return Decimal(0)
    if sub.mrr_history:
        value = _value_at(sub.mrr_history, at)
        return value if value is not None else Decimal(0)
    return sub.mrr or Decimal(0)


def _random_subscription(rng: random.Random, n: int) -> Subscription:
    statuses = ["active", "past_due", "unpaid", "canceled", "paused", None]
    t = START + timedelta(days=rng.randint(0, 30), microseconds=rng.randint(0, 999_999))
    history = []
    for _ in range(rng.randint(0, 6)):
        history.append((t, rng.choice(statuses)))
        t += timedelta(days=rng.choice([0, 0, 1, 3, 9, 20]), hours=rng.randint(0, 23))  # 0: same instant
    mrrs = sorted(((START + timedelta(days=rng.randint(0, 90)), rng.choice([None, Decimal(0), Decimal("99.99"),
                                                                            Decimal(120)]))
                   for _ in range(rng.randint(0, 3))), key=lambda point: point[0])
    return Subscription(
        id=f"s{n}", customer_id="c", name=None, status=rng.choice(statuses), mrr=rng.choice([None, Decimal(25)]),
        currency="USD", billing_frequency="monthly", start_date=None, next_payment_due=None,
        last_payment_status=None, cancel_requested_at=None,
        created_at=rng.choice([None, START + timedelta(days=rng.randint(0, 40))]),
        mrr_history=tuple(mrrs), status_history=tuple(history),
        live_statuses=rng.choice([frozenset({"active", "past_due", "unpaid"}), frozenset({"active"}),
                                  frozenset({"active", "paused"})]),
        past_due_grace_days=rng.choice([None, 0, 2, 7]),
    )


@pytest.mark.parametrize("seed", range(4))
def test_mrr_rule_equals_the_rule_spelled_out_instant_by_instant(seed):
    rng = random.Random(seed)
    for n in range(40):
        sub = _random_subscription(rng, n)
        instant = START - timedelta(days=1)
        while instant < START + timedelta(days=150):
            assert sub.mrr_at(instant) == oracle_mrr_at(sub, instant), (sub, instant)
            instant += timedelta(hours=rng.randint(1, 40), microseconds=rng.randint(0, 3))
        for at, _ in (*sub.status_history, *sub.mrr_history):  # on the changes themselves and just before them
            for moment in (at, at - timedelta(microseconds=1)):
                assert sub.mrr_at(moment) == oracle_mrr_at(sub, moment), (sub, moment)


def test_grace_ends_on_the_instant_whole_days_run_out():
    sub = replace(_random_subscription(random.Random(0), 0), mrr=Decimal(10), mrr_history=(),
                  status_history=((START, "active"), (START + timedelta(days=1), "past_due")),
                  live_statuses=frozenset({"active", "past_due"}), past_due_grace_days=3)
    lapse = START + timedelta(days=5)  # past_due from day 1; more than 3 whole days from day 5 on
    assert sub.mrr_at(lapse - timedelta(microseconds=1)) == Decimal(10) and sub.mrr_at(lapse) == 0
