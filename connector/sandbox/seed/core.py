"""The generator's vocabulary: SeedRecord, GeneratedPortal, id bases, plans, the calendar and value formatters."""

from __future__ import annotations

import math
import random
import sys
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from connector.sandbox import schema


@dataclass(slots=True)
class SeedRecord:
    object_type: str  # plural name from schema.OBJECT_TYPES
    id: int
    created_ms: int
    properties: dict[str, str]
    history: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    archived: bool = False
    archived_ms: int | None = None



@dataclass(slots=True)
class SeedOwner:
    """A HubSpot user who owns records; ``teams`` are (team id, name) pairs, the first the primary team."""

    id: int
    user_id: int
    email: str
    first_name: str
    last_name: str
    teams: tuple[tuple[str, str], ...]
    created_ms: int
    archived: bool = False


@dataclass(slots=True)
class GeneratedPortal:
    records: dict[str, list[SeedRecord]]  # object type -> records, ascending id
    # (from_type, from_id, to_type, to_id, primary); the portal stores both directions with schema.ASSOCIATION_TYPES
    associations: list[tuple[str, int, str, int, bool]]
    now_ms: int  # the generator's "today": every timestamp is at or before it
    ground_truth: list[dict] = field(default_factory=list)  # churn events: customer id, churned_at, drivers …
    owners: list[SeedOwner] = field(default_factory=list)  # the users that hubspot_owner_id values point at



DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000
_EPOCH = date(1970, 1, 1)
# First id per object type (HubSpot-like: per-type ascending integers).
ID_BASE = {
    "contacts": 101, "companies": 5001, "deals": 30001, "line_items": 70001,
    "subscriptions": 90001, "feedback_submissions": 120001,
    "tickets": 150001, "quotes": 180001, "calls": 210001, "emails": 240001, "meetings": 270001, "notes": 300001,
    "tasks": 330001, "products": 1101,  # products: the ids PLANS and ADDON name, in that order
}
MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "annually": 12}
_TERM = {"monthly": "P1M", "quarterly": "P3M", "annually": "P12M"}
# (name, product id, monthly list price per seat in USD); an add-on is a flat monthly fee.
PLANS = (("Starter", 1101, 25), ("Growth", 1102, 49), ("Enterprise", 1103, 89))
ADDON = ("Premium support", 1104, 199)  # product ids are the product library's record ids (seed/products.py)
_FX_LIST = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}  # list prices per currency are rounded conversions
SURVEYS = {"NPS": ("1001", "Quarterly NPS"), "CSAT": ("1002", "Support ticket CSAT"),
           "CES": ("1003", "Onboarding effort (CES)")}
# NPS is asked every quarter, in these calendar months.
_NPS_MONTHS = frozenset({1, 4, 7, 10})
# Small integers as shared strings: most numeric values are counts, and one str object per value saves memory
# at a million contacts.
_INT_STR = tuple(sys.intern(str(i)) for i in range(10_000))
_DAY_STR: dict[int, str] = {}



def _num(i: int) -> str:
    return _INT_STR[i] if 0 <= i < 10_000 else str(i)



def _day(day: int) -> str:
    """Day number since 1970-01-01 → 'YYYY-MM-DD' (memoised: a portal uses a few thousand distinct days)."""
    text = _DAY_STR.get(day)
    if text is None:
        text = _DAY_STR[day] = sys.intern((_EPOCH + timedelta(days=day)).isoformat())
    return text



def iso_ms(ms: int) -> str:
    """Epoch ms → HubSpot's ISO-8601 UTC with milliseconds and Z."""
    day, rest = divmod(ms, DAY)
    return (f"{_day(day)}T{rest // HOUR:02d}:{rest // MINUTE % 60:02d}:"
            f"{rest // 1000 % 60:02d}.{rest % 1000:03d}Z")



def date_ms(ms: int) -> str:
    """Epoch ms → 'YYYY-MM-DD' (UTC)."""
    return _day(ms // DAY)



def _money(x: float) -> str:
    return f"{x:.2f}"



def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))



def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: the means here are small (< 15).
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k



class _Calendar:
    """Month starts around the 24-month window, as epoch ms; month index 0 is the window's first month."""

    __slots__ = ("m0", "starts", "lengths", "offset")

    def __init__(self, now_ms: int, months_back: int = 24):
        now = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc)
        total = now.year * 12 + now.month - 1 - months_back
        self.m0 = total % 12  # calendar month (0-based) of the window's first month
        self.offset = 60  # index i lives at starts[i + offset]; covers imported customers up to 5 years back
        self.starts: list[int] = []
        self.lengths: list[int] = []
        for i in range(-self.offset, months_back + 40):
            y, m = divmod(total + i, 12)
            first = date(y, m + 1, 1)
            nxt = date(y + (m + 1) // 12, (m + 1) % 12 + 1, 1)
            self.starts.append((first - _EPOCH).days * DAY)
            self.lengths.append((nxt - first).days)

    def start(self, index: int) -> int:
        return self.starts[index + self.offset]

    def index_of(self, ms: int) -> int:
        """Month index containing ``ms``."""
        return bisect_right(self.starts, ms) - 1 - self.offset

    def due(self, anchor_index: int, anchor_day: int, k_months: int) -> int:
        """Midnight of the billing date ``k_months`` after the anchor (day clamped to the month's length)."""
        i = anchor_index + k_months + self.offset
        return self.starts[i] + (min(anchor_day, self.lengths[i]) - 1) * DAY



def _created_key(rec: SeedRecord) -> int:
    return rec.created_ms



def _stage_at(stages: list[tuple[str, int]], ms: int) -> str:
    current = stages[0][0]
    for stage, t in stages:
        if t > ms:
            break
        current = stage
    return current


class _GeneratorBase:
    """The generator's state and record helpers; the object mixins build on it."""

    def __init__(self, seed: int, contacts: int, now_ms: int):
        self.rng = random.Random(seed)
        self.n_contacts = contacts
        self.now = now_ms
        self.today = now_ms // DAY * DAY
        self.cal = _Calendar(now_ms)
        self.window_start = self.cal.start(0)
        # Usage syncs: the first of every month in the window, plus today's nightly sync.
        self.steps = [self.cal.start(i) for i in range(1, 25) if self.cal.start(i) <= self.today]
        if self.steps[-1] < self.today:
            self.steps.append(self.today)
        # NPS goes out every quarter; the survey month is the one ending at that month's first-day sync.
        self.nps_steps = frozenset(self.cal.start(i) for i in range(1, 25)
                                   if self.cal.start(i) <= self.today and (self.cal.m0 + i - 1) % 12 + 1 in _NPS_MONTHS)
        # Today's sync is not one instant: integrations write usage properties all day, so each record gets its
        # own millisecond in the last 24 hours. A separate stream keeps every other draw (and so the rest of the
        # portal) as it was; ``_sync_used`` keeps those milliseconds distinct across records.
        self.sync_rng = random.Random(f"sync-{seed}")
        self._sync_used: set[int] = set()
        self.records: dict[str, list[SeedRecord]] = {t: [] for t in schema.OBJECT_TYPES}
        self.assoc: list[tuple] = []  # (from_type, from_rec, to_type, to_rec, primary), resolved to ids at the end
        self.truth: list[dict] = []
        # For the service and activity records (tickets, engagements, owners), drawn after the rest from their
        # own stream so that adding them changed no other record: each company with its contacts, and per company
        # the months it was simulated as (start ms, end ms, health, new tickets, tickets open at the end).
        self.service_rng = random.Random(f"service-{seed}")
        self.accounts: list[tuple[SeedRecord, list[SeedRecord]]] = []
        self.months_of: dict[int, list[tuple[int, int, float, int, int]]] = {}
        self.owners: list[SeedOwner] = []
        self.domains: set[str] = set()
        self._pairs: dict[tuple[str, int], tuple[str, int]] = {}
        self.prices = {(cur, pid): float(round(usd * fx)) for cur, fx in _FX_LIST.items()
                       for _, pid, usd in PLANS + (ADDON,)}

    def _record(self, object_type: str, created: int, props: dict, created_iso: str | None = None) -> SeedRecord:
        props[schema.CREATED[object_type]] = created_iso or iso_ms(created)
        props["_lm"] = created  # last-modified ms, turned into the property at the end
        rec = SeedRecord(object_type, 0, created, props)
        self.records[object_type].append(rec)
        return rec

    def _set(self, rec: SeedRecord, name: str, value: str, ms: int, every: bool = False, share: bool = True) -> None:
        """Set a historical property: append to its history (on change, or ``every`` write) and make it current.

        ``every`` marks the monthly usage sync: its (value, time) pairs repeat across thousands of companies,
        so they are shared tuples (a third of the memory at a million contacts otherwise); not ``share`` when the
        time is the record's own (today's sync), which no other record repeats.
        """
        pair = (value, ms)
        if every and share:
            pair = self._pairs.setdefault(pair, pair)
        hist = rec.history.get(name)
        if hist is None:
            rec.history[name] = [pair]
        elif every or hist[-1][0] != value:
            hist.append(pair)
        rec.properties[name] = value
        if ms > rec.properties["_lm"]:
            rec.properties["_lm"] = ms

    def _sync_time(self, floor: int) -> int:
        """A distinct millisecond in the last 24 hours (and not before ``floor``) for one record's share of today's
        usage sync."""
        now, rng, used = self.now, self.sync_rng, self._sync_used
        low = min(max(floor, now - DAY + 1), now)
        span = now - low + 1
        ms = low + int(rng.random() * span)
        for _ in range(min(span, 64)):  # a taken millisecond: walk to the next free one (wrapping inside the span)
            if ms not in used:
                break
            ms = low + (ms - low + 1) % span
        used.add(ms)
        return ms

    def _sync_write(self, b: int, floor: int) -> int:
        """When the sync of step ``b`` writes a record: the step itself, except today's spread-out sync."""
        return self._sync_time(floor) if b == self.today else b

    @staticmethod
    def _touch(rec: SeedRecord, ms: int) -> None:
        if ms > rec.properties["_lm"]:
            rec.properties["_lm"] = ms

    def _link(self, a: SeedRecord, b: SeedRecord, primary: bool = False) -> None:
        self.assoc.append((a.object_type, a, b.object_type, b, primary))
