"""N customers' HubSpot-shaped records generated in the store's order, for the benches that fill a real store
(store_fill.py, store_bench.py), and TreeMemory, the peak memory of a process and its children.

Each customer is one company (usage properties, three histories), two contacts, one subscription (MRR and status
histories), one won deal with one line item and one NPS answer, and their associations.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from itertools import islice
from typing import Any, Iterable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


CREATED = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(slots=True)
class Rec:
    object_type: str
    id: str
    properties: dict[str, Any]
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    archived: bool = False
    created_at: datetime | None = CREATED
    updated_at: datetime | None = None


@dataclass(slots=True)
class Assoc:
    from_type: str
    from_id: str
    to_type: str
    to_id: str
    type_id: int | None


def _h(*points: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"value": v, "timestamp": t, "sourceType": "API"} for v, t in points]


TYPES = ("companies", "contacts", "subscriptions", "deals", "line_items", "feedback_submissions")  # store order
PLANS = ("49", "99", "149", "199", "299", "499", "999", "1499")


def _ts(day: int, i: int) -> str:
    """A distinct millisecond timestamp per record, as real histories have (no flattering parse cache hits)."""
    seconds = (day * 86_400 + i * 7) % (730 * 86_400)
    return f"{2024 + seconds // (365 * 86_400)}-{1 + seconds // (31 * 86_400) % 12:02d}-" \
           f"{1 + seconds // 86_400 % 28:02d}T{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:" \
           f"{seconds % 60:02d}.{i % 1000:03d}Z"


def iter_records(n: int) -> Iterator[Rec]:
    """The records in the order the pipeline streams them from the state store: one object type at a time, by id."""
    for object_type in TYPES:
        yield from _records(object_type, n)


def _records(object_type: str, n: int, start: int = 0) -> Iterator[Rec]:
    """The records of customers start..n-1 of one type."""
    for i in range(start, n):
        plan = PLANS[i % len(PLANS)]
        if object_type == "companies":
            yield Rec("companies", str(10_000_000 + i), {
                "name": f"Company {i}", "createdate": _ts(5, i), "industry": "RETAIL",
                "hs_lifecyclestage_customer_date": _ts(9, i), "country": "France",
                "product_active_days_30d": str(i % 31), "product_logins_30d": str(i % 97), "seats_used": "8",
                "seats_purchased": "10", "onboarding_milestones": "account_created;data_imported",
                "product_last_login_at": _ts(700, i), "support_open_tickets": "1",
            }, {
                "product_active_days_30d": _h((str(i % 31), _ts(600, i)), ("20", _ts(500, i))),
                "product_logins_30d": _h((str(i % 97), _ts(601, i))),
                "seats_used": _h(("8", _ts(450, i))),
            })
        elif object_type == "contacts":
            for k in range(2):
                yield Rec("contacts", str(20_000_000 + 2 * i + k), {"firstname": "Ada", "lastname": f"N{i}",
                                                                     "date_of_birth": "1985-12-10",
                                                                     "createdate": _ts(6, 2 * i + k)})
        elif object_type == "subscriptions":
            yield Rec("subscriptions", str(30_000_000 + i), {
                "hs_name": "Pro", "hs_status": "active", "hs_mrr": plan, "hs_currency_code": "EUR" if i % 3 else "USD",
                "hs_recurring_billing_frequency": "monthly", "hs_recurring_billing_start_date": "2023-07-01",
                "hs_next_payment_due_date": "2026-03-01", "hs_createdate": _ts(10, i),
            }, {
                "hs_mrr": _h((plan, _ts(400, i)), ("150", _ts(200, i)), ("100", _ts(10, i))),
                "hs_status": _h(("active", _ts(10, i))),
            })
        elif object_type == "deals":
            yield Rec("deals", str(40_000_000 + i), {"dealname": "Renewal", "amount": "2400",
                                                     "deal_currency_code": "USD", "hs_is_closed_won": "true",
                                                     "hs_is_closed": "true", "closedate": _ts(300, i),
                                                     "dealstage": "closedwon"})
        elif object_type == "line_items":
            yield Rec("line_items", str(50_000_000 + i), {"name": "Annual", "quantity": "1", "price": "2400",
                                                          "amount": "2400", "recurringbillingfrequency": "annually"})
        else:
            yield Rec("feedback_submissions", str(60_000_000 + i), {
                "hs_survey_type": "NPS", "hs_value": str(i % 11), "hs_response_group": "PROMOTER",
                "hs_submission_timestamp": _ts(650, i)})


def iter_associations(n: int) -> Iterator[Assoc]:
    """The associations one at a time, by from-type, in the order they were stored."""
    for i in range(n):
        c = str(10_000_000 + i)
        yield Assoc("contacts", str(20_000_000 + 2 * i), "companies", c, 1)
        yield Assoc("contacts", str(20_000_000 + 2 * i + 1), "companies", c, 279)
    for i in range(n):
        yield Assoc("subscriptions", str(30_000_000 + i), "companies", str(10_000_000 + i), 297)
    for i in range(n):
        yield Assoc("deals", str(40_000_000 + i), "companies", str(10_000_000 + i), 5)
        yield Assoc("deals", str(40_000_000 + i), "line_items", str(50_000_000 + i), 19)
    for i in range(n):
        yield Assoc("feedback_submissions", str(60_000_000 + i), "contacts", str(20_000_000 + 2 * i), 1148)


@dataclass(slots=True)
class Columns:
    """A page of one pair's associations as columns, as ``StateStore.iter_association_columns`` yields them."""
    from_type: str
    to_type: str
    from_ids: list[str]
    to_ids: list[str]
    type_ids: list[int | None]


def iter_association_columns(n: int, page: int = 5_000) -> Iterator[Columns]:
    """The same associations as iter_associations, as the pipeline reads them: per pair, a page of columns at a
    time."""
    for start in range(0, n, page):
        i = range(start, min(n, start + page))
        companies = [str(10_000_000 + k) for k in i]
        yield Columns("contacts", "companies", [str(20_000_000 + 2 * k + j) for k in i for j in (0, 1)],
                      [c for c in companies for _ in (0, 1)], [1, 279] * len(i))
    # one association per customer: (from type, to type, from id base, to id base, to id step, type id)
    for from_type, to_type, from_base, to_base, step, type_id in (
        ("subscriptions", "companies", 30_000_000, 10_000_000, 1, 297),
        ("deals", "companies", 40_000_000, 10_000_000, 1, 5),
        ("deals", "line_items", 40_000_000, 50_000_000, 1, 19),
        ("feedback_submissions", "contacts", 60_000_000, 20_000_000, 2, 1148),
    ):
        for start in range(0, n, page):
            i = range(start, min(n, start + page))
            yield Columns(from_type, to_type, [str(from_base + k) for k in i], [str(to_base + step * k) for k in i],
                          [type_id] * len(i))


class Timed:
    """An iterator whose every step (making the next item) is timed in place: ``cpu`` / ``wall``."""

    def __init__(self, source: Iterable[Any]):
        self.source = source
        self.cpu = self.wall = 0.0

    def __iter__(self) -> Iterator[Any]:
        stream = iter(self.source)
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            item = next(stream, None)
            self.cpu += time.process_time() - cpu
            self.wall += time.perf_counter() - wall
            if item is None:
                return
            yield item


class Paged:
    """Records handed over a page (list) at a time, as the state store reads them (``iter_record_pages``, pages of
    1,000 rows; wrapped in model.Pages for the builder); the time spent
    producing each page is measured where it happens and kept in ``cpu`` / ``wall``, so the builder's own time is the
    total minus it, exactly, whatever the heap size does to the generator's speed."""

    def __init__(self, source: Iterable[Any], page: int = 1_000):
        self.source, self.page = source, page
        self.cpu = self.wall = 0.0

    def __iter__(self) -> Iterator[list[Any]]:
        stream = iter(self.source)
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            page = list(islice(stream, self.page))
            self.cpu += time.process_time() - cpu
            self.wall += time.perf_counter() - wall
            if not page:
                return
            yield page


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0



class TreeMemory:
    """Peak memory of this process and its children together, from /proc: the sum of their RSS every 50 ms (pages
    a forked worker still shares with this process counted in each: an upper bound) and of their PSS every second
    (shared pages split between the processes sharing them). Linux only; the peaks stay 0 elsewhere."""

    def __init__(self) -> None:
        import threading

        self.pss_mb = self.rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import os

        page = os.sysconf("SC_PAGE_SIZE") / 2**20
        tick = 0
        while not self._stop.wait(0.05):
            pids = [os.getpid()]
            try:
                for task in os.listdir("/proc/self/task"):
                    with open(f"/proc/self/task/{task}/children") as f:
                        pids += [int(p) for p in f.read().split()]
            except OSError:
                return
            rss = pss = 0.0
            for pid in pids:  # RSS every 50 ms (cheap); PSS every second (the kernel walks every mapping for it)
                try:
                    with open(f"/proc/{pid}/statm") as f:
                        rss += int(f.read().split()[1]) * page
                    if tick % 20 == 0:
                        with open(f"/proc/{pid}/smaps_rollup") as f:
                            pss += sum(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024
                except OSError:
                    continue  # a child that just ended
            self.rss_mb, self.pss_mb = max(self.rss_mb, rss), max(self.pss_mb, pss)
            tick += 1
