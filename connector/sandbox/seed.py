"""Seeded generator of a realistic B2B SaaS portal with 24 months of history.

CONTRACT (generator -> portal): ``generate(...)`` returns a ``GeneratedPortal``; ``portal.Portal`` ingests it.
Property values are HubSpot-formatted strings (numbers as "120.5", datetimes as ISO-8601 UTC with ms and Z,
dates as "YYYY-MM-DD", booleans "true"/"false", multi-select ";"-joined); ``properties`` holds the current
values and includes the id, created and last-modified properties of ``schema``; ``history`` holds, for the
properties in ``schema.HISTORICAL``, every (value, timestamp_ms) in ascending order, the last one equal to
the current value.

``generate(seed, contacts, now_ms)`` builds such a portal: companies with contacts, won and lost deals with line
items, commerce subscriptions with upgrades, downgrades, dunning, cancellations and win-backs, and NPS/CSAT/CES
feedback, over 24 months ending at ``now_ms``. Churn is drawn from a monthly hazard driven by usage, NPS, support
load and payment trouble; the ground truth (churn events with their drivers, reactivations, deliberately malformed
values) comes back in ``GeneratedPortal.ground_truth`` and, on request, as JSON lines.
"""

from __future__ import annotations

import gc
import json
import math
import random
import sys
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate
from pathlib import Path

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
class GeneratedPortal:
    records: dict[str, list[SeedRecord]]  # object type -> records, ascending id
    # (from_type, from_id, to_type, to_id, primary); the portal stores both directions with schema.ASSOCIATION_TYPES
    associations: list[tuple[str, int, str, int, bool]]
    now_ms: int  # the generator's "today": every timestamp is at or before it
    ground_truth: list[dict] = field(default_factory=list)  # churn events: customer id, churned_at, drivers …


# ---------------------------------------------------------------------------------------------------------------
# The generator. Everything below draws from one ``random.Random(seed)`` in a fixed order, so a given
# (seed, contacts, now_ms) always yields the same portal. Records are built with placeholder ids and numbered
# per type in creation order at the end, because HubSpot ids grow with creation time.
# ---------------------------------------------------------------------------------------------------------------

DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000
_EPOCH = date(1970, 1, 1)

# First id per object type (HubSpot-like: per-type ascending integers).
ID_BASE = {
    "contacts": 101, "companies": 5001, "deals": 30001, "line_items": 70001,
    "subscriptions": 90001, "feedback_submissions": 120001,
}
MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "annually": 12}
_TERM = {"monthly": "P1M", "quarterly": "P3M", "annually": "P12M"}
# (name, product id, monthly list price per seat in USD); an add-on is a flat monthly fee.
PLANS = (("Starter", 1101, 25), ("Growth", 1102, 49), ("Enterprise", 1103, 89))
ADDON = ("Premium support", 1201, 199)
_FX_LIST = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}  # list prices per currency are rounded conversions
SURVEYS = {"NPS": ("1001", "Quarterly NPS"), "CSAT": ("1002", "Support ticket CSAT"),
           "CES": ("1003", "Onboarding effort (CES)")}
_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin", "contractsent")
# NPS is asked every quarter, in these calendar months.
_NPS_MONTHS = frozenset({1, 4, 7, 10})

_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Lisa",
    "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven",
    "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda",
    "Brian", "Dorothy", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie", "Edward", "Rebecca",
    "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy", "Nicholas",
    "Angela", "Eric", "Shirley", "Jonathan", "Anna", "Stephen", "Brenda", "Larry", "Pamela", "Justin", "Emma",
    "Scott", "Nicole", "Brandon", "Helen", "Benjamin", "Samantha", "Samuel", "Katherine", "Gregory", "Christine",
    "Alexander", "Debra", "Frank", "Rachel", "Patrick", "Carolyn", "Raymond", "Janet", "Jack", "Catherine",
    "Dennis", "Maria", "Jerry", "Heather", "Tyler", "Diane", "Aaron", "Ruth", "Jose", "Julie", "Adam", "Olivia",
    "Nathan", "Joyce", "Henry", "Virginia", "Zachary", "Victoria", "Douglas", "Kelly", "Peter", "Lauren", "Kyle",
    "Christina", "Noah", "Joan", "Ethan", "Evelyn", "Jeremy", "Judith", "Walter", "Megan", "Christian", "Andrea",
    "Keith", "Cheryl", "Roger", "Hannah", "Terry", "Jacqueline", "Austin", "Martha", "Sean", "Gloria", "Gerald",
    "Teresa", "Carl", "Ann", "Harold", "Sara", "Dylan", "Madison", "Arthur", "Frances", "Lawrence", "Kathryn",
    "Jordan", "Janice", "Jesse", "Jean", "Bryan", "Abigail", "Billy", "Alice", "Bruce", "Judy", "Gabriel", "Sophia",
    "Joe", "Grace", "Logan", "Denise", "Alan", "Amber", "Juan", "Doris", "Albert", "Marilyn", "Willie", "Danielle",
    "Elijah", "Beverly", "Wayne", "Isabella", "Randy", "Theresa", "Vincent", "Diana", "Mason", "Natalie", "Roy",
    "Brittany", "Ralph", "Charlotte", "Bobby", "Marie", "Russell", "Kayla", "Bradley", "Alexis", "Philip", "Lori",
    "Lukas", "Sofia", "Mateo", "Chloe", "Lars", "Ingrid", "Pierre", "Camille", "Marco", "Giulia", "Hiroshi", "Yuki",
    "Priya", "Arjun", "Wei", "Mei", "Ahmed", "Fatima", "Olga", "Ivan", "Sven", "Freya", "Diego", "Lucia",
)
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim",
    "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza",
    "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster",
    "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson",
    "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton",
    "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson",
    "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison",
    "Fernandez", "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman",
    "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez",
    "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black",
    "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt",
    "Mueller", "Schneider", "Fischer", "Weber", "Dubois", "Laurent", "Rossi", "Bianchi", "Jansen", "de Vries",
    "Andersson", "Nilsson", "Tanaka", "Sato", "Singh", "Kumar", "Wang", "Li", "Novak", "Kowalski", "O'Brien",
)
_TITLES = (
    "CEO", "CTO", "COO", "CFO", "VP of Sales", "VP of Marketing", "VP of Engineering", "Head of Operations",
    "Head of Customer Success", "Head of Data", "Marketing Manager", "Sales Manager", "Account Executive",
    "Operations Manager", "Product Manager", "Software Engineer", "Data Analyst", "Business Analyst",
    "Customer Success Manager", "Office Manager", "IT Manager", "Finance Manager", "Controller", "Founder",
    "Director of Revenue Operations", "Growth Lead", "Project Manager", "Consultant", "Administrator",
)
_NAME_A = (
    "Blue", "North", "Bright", "Silver", "Rapid", "Clear", "Green", "Summit", "Harbor", "Atlas", "Iron", "Golden",
    "Pioneer", "Quantum", "Cedar", "Maple", "River", "Stone", "Nova", "Apex", "Crimson", "Falcon", "Granite",
    "Horizon", "Lumen", "Meridian", "Oak", "Orbit", "Pine", "Polar", "Prime", "Redwood", "Sage", "Solar", "Spruce",
    "Stellar", "Swift", "Terra", "True", "Urban", "Vertex", "Vista", "Willow", "Zen", "Coastal", "Alpine",
)
_NAME_B = (
    "Analytics", "Logistics", "Health", "Retail", "Foods", "Capital", "Systems", "Works", "Studio", "Labs",
    "Partners", "Solutions", "Networks", "Dynamics", "Ventures", "Holdings", "Media", "Supply", "Builders",
    "Travel", "Learning", "Clinics", "Kitchens", "Freight", "Finance", "Software", "Digital", "Hotels",
)
_NAME_C = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Co", "", "", "", "")
_TLDS = ("com", "com", "com", "io", "co", "net")
_COUNTRIES = (  # (country, currency, weight)
    ("United States", "USD", 52), ("Canada", "USD", 6), ("Australia", "USD", 4), ("United Kingdom", "GBP", 10),
    ("Ireland", "EUR", 2), ("Germany", "EUR", 8), ("France", "EUR", 5), ("Netherlands", "EUR", 4),
    ("Spain", "EUR", 3), ("Sweden", "USD", 2), ("Singapore", "USD", 2), ("India", "USD", 2),
)
_COUNTRY_CUM = tuple(accumulate(w for _, _, w in _COUNTRIES))
_SOURCE_WEIGHTS = tuple(accumulate((22, 14, 10, 8, 16, 5, 12, 8, 5)))  # same order as schema.SOURCES
_COMMENTS = {
    "PROMOTER": ("Great product, the team loves it.", "Saves us hours every week.", "Support is fast and helpful.",
                 "Easy to use and reliable.", "The reports are exactly what we needed."),
    "PASSIVE": ("Does the job, a few rough edges.", "Good, but pricing is getting high.",
                "Would like more integrations.",
                "Onboarding took longer than expected.", "Fine overall."),
    "DETRACTOR": ("Too many bugs lately.", "We barely use it anymore.", "Support took days to answer.",
                  "Too expensive for what we get.", "Missing features we were promised.", "Performance is slow."),
}
_SENTIMENT = {"PROMOTER": "POSITIVE", "PASSIVE": "NEUTRAL", "DETRACTOR": "NEGATIVE"}

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


def _nps_group(v: int) -> str:
    return "PROMOTER" if v >= 9 else ("PASSIVE" if v >= 7 else "DETRACTOR")


def _csat_group(v: int) -> str:  # HubSpot's CSAT is 0/1/2 (METRICS.md §5)
    return ("DETRACTOR", "PASSIVE", "PROMOTER")[v]


def _ces_group(v: int) -> str:
    return "PROMOTER" if v >= 6 else ("PASSIVE" if v >= 4 else "DETRACTOR")


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


class _Sub:
    """Working state of one commerce subscription while its company is simulated."""

    __slots__ = ("rec", "items", "freq", "months", "anchor_index", "anchor_day", "k", "next_due", "mrr", "status",
                 "last_fail_ms", "plan_item", "price", "discount", "seats")

    def __init__(self, rec, freq, anchor_ms, cal):
        self.rec = rec
        self.items: list[SeedRecord] = []
        self.freq = freq
        self.months = MONTHS_PER_PERIOD[freq]
        self.anchor_index = cal.index_of(anchor_ms)
        self.anchor_day = (anchor_ms - cal.start(self.anchor_index)) // DAY + 1
        self.k = 0  # billing periods already started (the first is paid at start)
        self.next_due = anchor_ms
        self.mrr = 0.0
        self.status = "active"
        self.last_fail_ms = -1
        self.plan_item = None
        self.price = 0.0
        self.discount = 0
        self.seats = 0


class _Generator:
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
        self.domains: set[str] = set()
        self._pairs: dict[tuple[str, int], tuple[str, int]] = {}
        self.prices = {(cur, pid): float(round(usd * fx)) for cur, fx in _FX_LIST.items()
                       for _, pid, usd in PLANS + (ADDON,)}

    # -- record helpers ------------------------------------------------------------------------------------
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

    # -- top level -----------------------------------------------------------------------------------------
    def run(self) -> GeneratedPortal:
        rng = self.rng
        remaining = self.n_contacts
        while remaining > 0:
            if rng.random() < 0.03:  # a newsletter subscriber with a personal address and no company
                self._lone_contact()
                remaining -= 1
                continue
            n = min(remaining, 1 + min(19, int(rng.expovariate(0.2))))
            self._company(n)
            remaining -= n
        return self._finish()

    def _lone_contact(self) -> None:
        rng = self.rng
        created = self.window_start + int(rng.random() * (self.now - self.window_start))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        props = {
            "email": f"{first.lower()}.{last.lower().replace(' ', '').replace(chr(39), '')}{rng.randrange(10, 10_000)}"
                     f"@{rng.choice(('gmail.com', 'outlook.com', 'yahoo.com', 'proton.me'))}",
            "firstname": first, "lastname": last,
            "hs_analytics_source": self._source(),
        }
        rec = self._record("contacts", created, props)
        if rng.random() < 0.7:
            props["date_of_birth"] = _day(rng.randrange(-4400, 11_600))
        self._set(rec, "lifecyclestage", "subscriber", created)
        if rng.random() < 0.3:
            self._set(rec, "lifecyclestage", "lead", created + int(rng.random() * (self.now - created)))
        if rng.random() < 0.08:  # unsubscribed and deleted
            rec.archived = True
            rec.archived_ms = created + int(rng.random() * (self.now - created))
            self._touch(rec, rec.archived_ms)

    def _source(self) -> str:
        return schema.SOURCES[bisect_right(_SOURCE_WEIGHTS, self.rng.random() * _SOURCE_WEIGHTS[-1])]

    # -- companies -----------------------------------------------------------------------------------------
    def _company(self, n_contacts: int) -> None:
        rng, now, cal = self.rng, self.now, self.cal
        imported = rng.random() < 0.3  # the CRM was set up at the window's start with the existing book
        if imported:
            created = self.window_start + int(rng.random() * 10 * DAY)
        else:
            created = self.window_start + int(rng.random() * (now - DAY - self.window_start))
        name, domain = self._company_name()
        country, currency, _ = _COUNTRIES[bisect_right(_COUNTRY_CUM, rng.random() * _COUNTRY_CUM[-1])]
        employees = max(2, min(20_000, int(math.exp(rng.gauss(3.6, 1.3)))))
        source = self._source()
        props = {
            "name": name, "domain": domain, "industry": rng.choice(schema.INDUSTRIES),
            "numberofemployees": _num(employees), "annualrevenue": _num(employees * rng.randrange(60, 260) * 1000),
            "country": country, "hs_analytics_source": source, "num_associated_contacts": _num(n_contacts),
        }
        company = self._record("companies", created, props)
        people = self._contacts(company, n_contacts, created, name, domain, source)
        stages: list[tuple[str, int]] = [("lead", created)]  # company lifecycle, also copied onto its contacts

        sim = None
        if imported and rng.random() < 0.8:
            # Existing customer at import: their customer date predates the CRM.
            since = created - int((30 + rng.random() * 1000) * DAY)
            stages = [("customer", created)]
            sim = self._customer(company, people, currency, employees, since, created, stages, imported=True)
        else:
            deal_created = created + int(rng.random() * 30 * DAY)
            if deal_created < now:
                cycle = int((12 + rng.random() * 90) * DAY)
                close = deal_created + cycle
                stages.append(("opportunity", deal_created))
                if close <= now and rng.random() < 0.62:
                    stages.append(("customer", close))
                    sim = self._customer(company, people, currency, employees, close, deal_created, stages,
                                         imported=False)
                else:
                    outcome = "lost" if close <= now else "open"
                    seats, plan, freq, disc = self._offer(employees)
                    self._deal(company, people[0], currency, deal_created, close, outcome, "newbusiness",
                               [(plan, seats, freq, disc)])
        self._finish_company(company, people, stages, sim)

    def _company_name(self) -> tuple[str, str]:
        rng = self.rng
        a, b, c = rng.choice(_NAME_A), rng.choice(_NAME_B), rng.choice(_NAME_C)
        name = f"{a} {b} {c}".strip()
        base = f"{a}{b}".lower()
        domain = f"{base}.{rng.choice(_TLDS)}"
        while domain in self.domains:
            domain = f"{base}{rng.randrange(2, 100_000)}.{rng.choice(_TLDS)}"
        self.domains.add(domain)
        return name, domain

    def _contacts(self, company, n, created, name, domain, source) -> list[SeedRecord]:
        rng, now = self.rng, self.now
        times = [created + rng.randrange(1_000, 300_000)]
        span = now - created
        times += sorted(created + int(span * rng.random() ** 2) for _ in range(n - 1))
        used: set[str] = set()
        people = []
        for i, t in enumerate(times):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
            if local in used:
                local = f"{local}{len(used)}"
            used.add(local)
            props = {
                "email": f"{local}@{domain}", "firstname": first, "lastname": last,
                "jobtitle": rng.choice(_TITLES), "company": name,
                "hs_analytics_source": source if rng.random() < 0.8 else self._source(),
            }
            if rng.random() < 0.85:
                props["date_of_birth"] = _day(rng.randrange(-4400, 11_600))  # 1957 .. 2001
            rec = self._record("contacts", t, props)
            self._link(rec, company, primary=True)
            people.append(rec)
        return people

    def _offer(self, employees: int) -> tuple[int, int, str, int]:
        """Seats, plan index, billing frequency and discount % of a new contract."""
        rng = self.rng
        seats = max(3, min(400, int(employees * (0.05 + rng.random() * 0.25))))
        plan = 0 if seats < 12 else (1 if seats < 60 else 2)
        if rng.random() < 0.15:
            plan = min(2, plan + 1)
        r = rng.random()
        freq = "monthly" if r < 0.5 else ("quarterly" if r < 0.65 else "annually")
        disc = 0
        if rng.random() < (0.55 if freq == "annually" else 0.2):
            disc = rng.choice((5, 10, 10, 15, 20))
        return seats, plan, freq, disc

    # -- deals and line items ------------------------------------------------------------------------------
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

    # -- the customer simulation ---------------------------------------------------------------------------
    def _new_subscription(self, company, contact, currency, seats, plan_i, freq, disc, addon, start, created):
        rng = self.rng
        plan = PLANS[plan_i]
        props = {
            "hs_name": f"{plan[0]} plan ({freq})", "hs_recurring_billing_frequency": freq,
            "hs_currency_code": currency, "hs_recurring_billing_start_date": date_ms(start),
        }
        rec = self._record("subscriptions", created, props)
        sub = _Sub(rec, freq, start, self.cal)
        sub.price = self.prices[(currency, plan[1])] * sub.months
        sub.discount, sub.seats = disc, seats
        sub.plan_item = self._line_item(currency, plan, seats, freq, disc, created + rng.randrange(1_000, 60_000))
        sub.items.append(sub.plan_item)
        if addon:
            sub.items.append(self._line_item(currency, ADDON, 1, freq, 0, created + rng.randrange(1_000, 60_000)))
        for item in sub.items:
            self._link(rec, item)
        self._link(rec, company)
        if contact is not None:
            self._link(rec, contact)
        self._reprice(sub, created)
        return sub

    def _reprice(self, sub: _Sub, ms: int) -> None:
        """Recompute the plan line item and the subscription's MRR after a seat change."""
        item = sub.plan_item.properties
        item["quantity"] = _num(sub.seats)
        item["amount"] = _money(round(sub.seats * sub.price * (100 - sub.discount) / 100, 2))
        self._touch(sub.plan_item, ms)
        per_period = sum(float(i.properties["amount"]) for i in sub.items)
        sub.mrr = per_period / sub.months
        self._set(sub.rec, "hs_mrr", _money(sub.mrr), ms)
        if sub.status != "canceled" and "cancellation_requested_date" not in sub.rec.properties:
            sub.rec.properties["hs_next_payment_amount"] = _money(per_period)

    def _customer(self, company, people, currency, employees, since, deal_created, stages, imported):
        """Simulate a customer month by month from ``since`` to now; returns the state the company shows."""
        rng, now, cal, steps = self.rng, self.now, self.cal, self.steps
        cp = company.properties
        cp["hs_lifecyclestage_customer_date"] = iso_ms(since)
        cp["_since"] = since
        seats, plan_i, freq, disc = self._offer(employees)
        addon = rng.random() < 0.15
        champion = people[0]
        outcome = "won_imported" if imported else "won"
        deal, _ = self._deal(company, champion, currency, deal_created, since, outcome, "newbusiness",
                             [(plan_i, seats, freq, disc)], addon=addon)
        # Latent account health on the logit scale: persistent per account, drifting monthly, with shocks
        # (a champion leaves, a reorg). Usage, surveys, tickets and payment trouble all read it, and the churn
        # hazard reads what they show, so a score built on them has real signal.
        mu = rng.gauss(1.3, 0.9)
        z = mu + rng.gauss(0, 0.6)
        size = 0.6 + 0.4 * math.log10(seats + 1)
        sub_created = created_at = deal_created if imported else since
        start = since
        scheduled = False
        if not imported and since > now - 7 * DAY and rng.random() < 0.5:
            start = cal.start(cal.index_of(now) + 1)  # starts on the first of next month
            scheduled = True
        sub = self._new_subscription(company, champion, currency, seats, plan_i, freq, disc, addon, start, sub_created)
        self._link(sub.rec, deal)
        if scheduled:
            sub.status = "scheduled"
            self._set(sub.rec, "hs_status", "scheduled", sub_created)
            sub.rec.properties["hs_next_payment_due_date"] = date_ms(start)
            return {"state": "scheduled", "snap": None}
        self._set(sub.rec, "hs_status", "active", sub_created)
        # The first period is paid at start (or, for imported customers, the current period was paid before import).
        while cal.due(sub.anchor_index, sub.anchor_day, (sub.k + 1) * sub.months) <= created_at:
            sub.k += 1
        # Imported customers bring the payment of their current period with them.
        self._pay(sub, created_at if imported else start + 8 * HOUR, ok=True)
        self._next_due(sub)

        onboarding = self._onboarding(company, since if not imported else None, _sigmoid(z))
        people_times = [p.created_ms for p in people]
        state = "active"
        request_ms = churned_ms = -1
        reason = ""
        ticket_months = [0, 0, 0]
        nps_log: list[tuple[int, int]] = []  # (ms, value) of this account's NPS answers
        snap = None  # the last usage sync: dict of driver values
        zeroed = False
        prev = created_at
        requested = True
        for b in steps:
            if b <= created_at:
                continue
            a = prev
            prev = b
            if state == "churned":
                if not zeroed:
                    self._usage_zero(company, self._sync_write(b, max(company.created_ms, churned_ms)))
                    zeroed = True
                # Win-back: churned accounts come back now and then, payment failures more often than quitters.
                p_back = (0.08 if reason == "involuntary" else 0.025) if b - churned_ms < 450 * DAY else 0.0
                if rng.random() < p_back:
                    back = a + int(rng.random() * (b - a - DAY))
                    if back <= churned_ms + DAY:
                        continue
                    z = mu + rng.gauss(0.3, 0.4)
                    seats, plan_i, freq, disc = self._offer(employees)
                    addon = rng.random() < 0.1
                    contact = rng.choice(people[:max(1, bisect_right(people_times, back))])
                    d_created = max(churned_ms + DAY, back - int((5 + rng.random() * 20) * DAY))
                    deal, _ = self._deal(company, contact, currency, d_created, back, "won", "newbusiness",
                                         [(plan_i, seats, freq, disc)], addon=addon)
                    sub = self._new_subscription(company, contact, currency, seats, plan_i, freq, disc, addon,
                                                 back, back)
                    self._link(sub.rec, deal)
                    self._set(sub.rec, "hs_status", "active", back)
                    self._pay(sub, back + HOUR, ok=True)
                    self._next_due(sub)
                    stages.append(("customer", back))
                    self.truth.append({"kind": "reactivation", "_company": company, "_sub": sub.rec,
                                       "reactivated_at": iso_ms(back), "previous_churned_at": iso_ms(churned_ms)})
                    state, request_ms, zeroed, snap = "active", -1, False, None
                    ticket_months = [0, 0, 0]
                continue

            # 1. the churn decision, from what the account showed at the previous sync
            if state == "active" and snap is not None and sub.status == "active":
                nps_recent = [v for t, v in nps_log if a - 180 * DAY < t <= a]
                nps_avg = sum(nps_recent) / len(nps_recent) if nps_recent else None
                trouble = sub.last_fail_ms >= 0 and a - sub.last_fail_ms < 60 * DAY
                x = (-5.6 + 3.4 * (1 - snap["active_days_30d"] / 30)
                     + 0.32 * max(0.0, 7.0 - (nps_avg if nps_avg is not None else 7.5))
                     + 0.12 * min(snap["tickets_90d"], 15) + 1.3 * trouble)
                hazard = _sigmoid(x)
                if rng.random() < hazard:
                    state = "pending"
                    request_ms = a + int(rng.random() * (b - a - HOUR))
                    requested = False  # written once the billing events before it are done
                    z -= 1.0  # once they have decided to leave, they use it less
                    drivers = dict(snap, at=iso_ms(snap["at"]),
                                   nps_avg_180d=None if nps_avg is None else round(nps_avg, 2),
                                   payment_trouble=trouble, mrr=round(sub.mrr, 2))
                    k, effective = sub.k, sub.next_due
                    while effective < request_ms:  # the paid period runs out at the first due date after the request
                        k += 1
                        effective = cal.due(sub.anchor_index, sub.anchor_day, k * sub.months)
                    gt = {"kind": "churn", "_company": company, "_sub": sub.rec, "reason": "voluntary",
                          "currency": currency,
                          "cancel_requested_at": iso_ms(request_ms), "cancel_effective_on": date_ms(effective),
                          "churned_at": None, "hazard": round(hazard, 4),
                          "drivers": drivers}
                    self.truth.append(gt)

            # 2. account health drifts
            z = mu + 0.8 * (z - mu) + rng.gauss(0, 0.55)
            if rng.random() < 0.03:
                z -= 2.0
            h = _sigmoid(z)

            # 3. billing events due in (a, b), and on the last step those due today as well
            while state in ("active", "pending") and (sub.next_due < b or sub.next_due == b == self.today):
                d = sub.next_due
                if state == "pending" and not requested and d >= request_ms:
                    self._request_cancel(sub, request_ms)
                    requested = True
                if state == "pending" and d >= request_ms:
                    churned_ms = d
                    self._cancel(sub, d)
                    stages.append(("other", d))
                    state, reason = "churned", "voluntary"
                    self._set_truth_churned(sub.rec, d)
                    break
                if rng.random() < 0.012 + 0.06 * (1 - h):
                    fail_at = d + 7 * HOUR + rng.randrange(0, HOUR)
                    self._pay(sub, fail_at, ok=False)
                    retry = fail_at + int((3 + rng.random() * 7) * DAY)
                    if rng.random() < 0.7:
                        if retry <= now:
                            self._pay(sub, retry, ok=True)
                        self._next_due(sub)
                        continue
                    end = d + 21 * DAY
                    if end <= now:
                        churned_ms = end
                        reason = "voluntary" if state == "pending" and requested else "involuntary"
                        if reason == "voluntary":
                            self._set_truth_churned(sub.rec, end)
                        else:
                            if state == "pending":  # the card failed before they got round to cancelling
                                self._drop_open_churn(sub.rec)
                            recent = [v for t, v in nps_log if d - 180 * DAY < t <= d]
                            trouble_drivers = dict(snap or {}, payment_trouble=True, mrr=round(sub.mrr, 2),
                                                   nps_avg_180d=round(sum(recent) / len(recent), 2) if recent else None)
                            if snap:
                                trouble_drivers["at"] = iso_ms(snap["at"])
                            self.truth.append({"kind": "churn", "_company": company, "_sub": sub.rec,
                                               "reason": "involuntary", "currency": currency,
                                               "cancel_requested_at": None,
                                               "cancel_effective_on": date_ms(end),
                                               "churned_at": iso_ms(end), "hazard": None, "drivers": trouble_drivers})
                        self._cancel(sub, end)
                        stages.append(("other", end))
                        state = "churned"
                    else:
                        state = "dunning"  # still past due today
                    break
                self._pay(sub, d + 7 * HOUR + rng.randrange(0, HOUR), ok=True)
                # Expansion and contraction are decided at billing dates.
                if state == "active":
                    util = snap["seats_used"] / sub.seats if snap else 0.8
                    if h > 0.6 and rng.random() < 0.03 + 0.2 * (util > 0.9):
                        extra = max(1, int(sub.seats * (0.1 + rng.random() * 0.4)))
                        t = min(d + 9 * HOUR, now)
                        self._deal(company, champion, currency, t - int((7 + rng.random() * 20) * DAY), t, "won",
                                   "existingbusiness", [(plan_i, extra, sub.freq, sub.discount)])
                        sub.seats += extra
                        self._reprice(sub, t)
                    elif h < 0.45 and sub.seats > 3 and rng.random() < 0.1:
                        sub.seats = max(1, int(sub.seats * (0.6 + rng.random() * 0.3)))
                        self._reprice(sub, min(d + 9 * HOUR, now))
                    elif h > 0.5 and rng.random() < 0.01:  # an upsell that did not close
                        t = min(d + 9 * HOUR, now)
                        self._deal(company, champion, currency, t - int(20 * DAY), t, "lost",
                                   "existingbusiness", [(plan_i, max(1, sub.seats // 4), sub.freq, sub.discount)])
                self._next_due(sub)
            if state in ("pending", "dunning") and not requested:
                self._request_cancel(sub, request_ms)
                requested = True
            if state == "churned":
                if churned_ms <= b:
                    self._usage_zero(company, self._sync_write(b, max(company.created_ms, churned_ms)))
                    zeroed = True
                continue

            # 4. usage, tickets and surveys of the month ending at b
            snap = self._usage(company, sub, people, people_times, b, a, h, size, ticket_months, nps_log, onboarding)
        return {"state": state, "snap": snap}

    def _request_cancel(self, sub: _Sub, ms: int) -> None:
        """The customer asks to cancel: no further payments; the subscription ends with the paid period."""
        props = sub.rec.properties
        props["cancellation_requested_date"] = iso_ms(ms)
        props.pop("hs_next_payment_amount", None)
        props.pop("hs_next_payment_due_date", None)
        self._touch(sub.rec, ms)

    def _drop_open_churn(self, sub_rec) -> None:
        for i in range(len(self.truth) - 1, -1, -1):
            entry = self.truth[i]
            if entry.get("_sub") is sub_rec and entry["kind"] == "churn" and entry["churned_at"] is None:
                del self.truth[i]
                return

    def _set_truth_churned(self, sub_rec, ms):
        for entry in reversed(self.truth):
            if entry.get("_sub") is sub_rec and entry["kind"] == "churn":
                entry["churned_at"] = iso_ms(ms)
                return

    def _pay(self, sub: _Sub, ms: int, ok: bool) -> None:
        rec = sub.rec
        ms = min(ms, self.now)  # a payment due today may be collected by now at the latest
        if ok:
            rec.properties["hs_last_payment_amount"] = _money(sub.mrr * sub.months)
            self._set(rec, "hs_last_payment_status", "succeeded", ms)
            if sub.status == "past_due":
                sub.status = "active"
                self._set(rec, "hs_status", "active", ms)
        else:
            sub.last_fail_ms = ms
            self._set(rec, "hs_last_payment_status", "failed", ms)
            sub.status = "past_due"
            self._set(rec, "hs_status", "past_due", ms)

    def _next_due(self, sub: _Sub) -> None:
        sub.k += 1
        due = self.cal.due(sub.anchor_index, sub.anchor_day, sub.k * sub.months)
        sub.next_due = due
        if "cancellation_requested_date" not in sub.rec.properties:
            sub.rec.properties["hs_next_payment_due_date"] = date_ms(due)

    def _cancel(self, sub: _Sub, ms: int) -> None:
        sub.status = "canceled"
        props = sub.rec.properties
        props.pop("hs_next_payment_due_date", None)
        props.pop("hs_next_payment_amount", None)
        self._set(sub.rec, "hs_status", "canceled", ms)

    def _onboarding(self, company, since, h0) -> list[int]:
        """Milestone times (ms, or -1 when not reached) and the first-value date; imported accounts are done."""
        rng = self.rng
        cp = company.properties
        done: list[int] = []
        t = since if since is not None else -1
        for i, _ in enumerate(schema.MILESTONES):
            if since is None:  # imported: onboarded long before the CRM, right after they became customers
                done.append(-1 if i == len(schema.MILESTONES) - 1 and rng.random() < 0.1 else
                            company.properties["_since"] + (i + 1) * 4 * DAY)
                continue
            t += int((1 + rng.random() * (4 + 10 * (1 - h0))) * DAY)
            ok = rng.random() < 0.97 - 0.08 * i - 0.35 * (1 - h0)
            done.append(t if ok and t <= self.now else -1)
        names = [m for m, ms in zip(schema.MILESTONES, done) if ms >= 0]
        if names:
            cp["onboarding_milestones"] = ";".join(names)
        if done[-1] >= 0 and done[1] >= 0:
            cp["onboarding_first_value_date"] = date_ms(done[-1])
        return done

    def _usage_zero(self, company, ms: int) -> None:
        for name in ("product_active_days_30d", "product_logins_30d", "seats_used", "support_open_tickets"):
            if name in company.history:
                self._set(company, name, "0", ms)
        cp = company.properties
        cp["product_active_users_30d"] = cp["product_avg_dau_30d"] = cp["support_tickets_90d"] = "0"
        cp["seats_purchased"] = "0"

    def _usage(self, company, sub, people, people_times, b, a, h, size, ticket_months, nps_log, onboarding):
        rng, now = self.rng, self.now
        seats = sub.seats
        active_days = max(0, min(30, round(30 * h + rng.gauss(0, 2.5))))
        seats_used = max(0, min(seats, round(seats * (0.35 + 0.65 * h) + rng.gauss(0, 0.8))))
        mau = max(0, min(seats_used, round(seats_used * (0.5 + 0.5 * h)))) if active_days else 0
        dau = round(mau * active_days / 30 * (0.55 + 0.35 * rng.random()), 1) if mau else 0.0
        logins = round(dau * 30 * (1.2 + 0.8 * rng.random()))
        new_tickets = _poisson(rng, size * (0.25 + 2.8 * (1 - h) ** 1.5))
        ticket_months.pop(0)
        ticket_months.append(new_tickets)
        tickets_90d = sum(ticket_months)
        open_tickets = sum(1 for _ in range(new_tickets) if rng.random() < 0.15 + 0.35 * (1 - h))
        cp = company.properties
        # The usage sync writes every month even when a value did not move, so each sync is a history point.
        w = self._sync_write(b, company.created_ms)
        shared = w == b
        self._set(company, "product_active_days_30d", _num(active_days), w, every=True, share=shared)
        self._set(company, "product_logins_30d", _num(logins), w, every=True, share=shared)
        self._set(company, "seats_used", _num(seats_used), w, every=True, share=shared)
        self._set(company, "support_open_tickets", _num(open_tickets), w, every=True, share=shared)
        cp["product_active_users_30d"] = _num(mau)
        cp["product_avg_dau_30d"] = f"{dau:.1f}"
        cp["seats_purchased"] = _num(seats)
        cp["support_tickets_90d"] = _num(tickets_90d)
        if logins:
            gap = rng.random() * min(3, 30 / max(1, active_days)) * DAY
            cp["product_last_login_at"] = iso_ms(min(now, b - int(gap)))

        # Surveys answered during (a, b]: quarterly NPS, CSAT after tickets, CES once onboarding is done.
        n_people = bisect_right(people_times, a)
        span = b - a
        if n_people:
            if b in self.nps_steps:
                for p in people[:n_people]:
                    if rng.random() < 0.22:
                        v = max(0, min(10, round(2.0 + 8.0 * h + rng.gauss(0, 1.6))))
                        t = a + int(rng.random() * span)
                        self._feedback(p, "NPS", v, _nps_group(v), t)
                        nps_log.append((t, v))
            for _ in range(new_tickets):
                if rng.random() < 0.3:
                    u = h + rng.gauss(0, 0.25)
                    v = 2 if u > 0.55 else (1 if u > 0.3 else 0)
                    who = people[rng.randrange(n_people)]
                    self._feedback(who, "CSAT", v, _csat_group(v), a + int(rng.random() * span))
            first_value = onboarding[-1]
            if a < first_value <= b and rng.random() < 0.6:
                v = max(1, min(7, 1 + round(6 * (h + rng.gauss(0, 0.18)))))
                self._feedback(people[0], "CES", v, _ces_group(v), min(now, first_value + int(rng.random() * 3 * DAY)))
        return {"at": b, "active_days_30d": active_days, "logins_30d": logins, "seats_used": seats_used,
                "mau": mau, "tickets_90d": tickets_90d, "open_tickets": open_tickets}

    def _feedback(self, contact, kind, value, group, ms) -> None:
        rng = self.rng
        survey_id, survey_name = SURVEYS[kind]
        r = rng.random()
        props = {
            "hs_survey_type": kind, "hs_value": _num(value), "hs_response_group": group,
            "hs_survey_channel": "EMAIL" if r < 0.75 else ("WEB" if r < 0.92 else "LINK"),
            "hs_submission_timestamp": iso_ms(ms), "hs_survey_id": survey_id, "hs_survey_name": survey_name,
            "hs_sentiment": _SENTIMENT[group],
        }
        if rng.random() < 0.3:
            props["hs_content"] = rng.choice(_COMMENTS[group])
        rec = self._record("feedback_submissions", ms, props, props["hs_submission_timestamp"])
        self._link(rec, contact)
        self._touch(contact, ms)  # the roll-ups below are written on the contact
        if kind == "NPS":
            cprops = contact.properties
            if ms >= cprops.get("_nps_ms", -1):
                cprops["_nps_ms"] = ms
                cprops["hs_feedback_last_nps_rating"] = props["hs_value"]
                cprops["hs_feedback_last_survey_date"] = props["hs_submission_timestamp"]

    def _finish_company(self, company, people, stages, sim) -> None:
        rng, now = self.rng, self.now
        stages.sort(key=lambda s: s[1])
        for stage, ms in stages:
            self._set(company, "lifecyclestage", stage, ms)
        cp = company.properties
        # Last touch by the account team: recent for live accounts, long ago for churned ones and prospects.
        last_touch = now - int(rng.expovariate(1 / (20 if sim and sim["state"] != "churned" else 120)) * DAY)
        last_touch = max(company.created_ms + HOUR, last_touch)
        if last_touch <= now:
            cp["notes_last_contacted"] = iso_ms(last_touch)
        live = sim is not None and sim["state"] in ("active", "pending", "dunning")
        snap = sim["snap"] if sim else None
        per_user = (snap["logins_30d"] / snap["mau"]) if (live and snap and snap["mau"]) else 0.0
        share = min(1.0, snap["mau"] / len(people)) if (live and snap) else 0.0
        last_login_company = cp.get("product_last_login_at")
        pre = ("subscriber", "lead", "marketingqualifiedlead")
        for i, p in enumerate(people):
            created = p.created_ms
            stage = _stage_at(stages, created)
            if stage == "lead" and i:  # the first contact came with the company; the others via marketing
                stage = pre[rng.randrange(3)]
            # The company's own (stage, time) tuples serve as the contact's later history: shared, not copied.
            hist = [(stage, created)]
            for pair in stages:
                if pair[1] > created and pair[0] != hist[-1][0]:
                    hist.append(pair)
            p.history["lifecyclestage"] = hist
            p.properties["lifecyclestage"] = hist[-1][0]
            self._touch(p, hist[-1][1])
            if sim is None or sim["state"] == "scheduled":
                continue
            pp = p.properties
            self._touch(p, self._sync_time(hist[-1][1]))  # today's usage sync writes the login fields
            if per_user and rng.random() < share * 0.9 + 0.1 and last_login_company:
                n = max(1, round(per_user * (0.4 + 1.2 * rng.random())))
                pp["logins_last_30_days"] = _num(n)
                login = self.today - int(rng.random() * min(30, 60 / n) * DAY) + rng.randrange(0, DAY)
                pp["last_login_date"] = iso_ms(max(created, min(login, now)))
            else:
                pp["logins_last_30_days"] = "0"
                if rng.random() < 0.6:
                    login = now - int((31 + rng.random() * 300) * DAY)
                    if login > created:
                        pp["last_login_date"] = iso_ms(login)
        if sim is None and rng.random() < 0.03:  # a prospect contact removed by a GDPR request
            p = people[-1]
            p.archived = True
            p.archived_ms = p.created_ms + int(rng.random() * (now - p.created_ms))
            self._touch(p, p.archived_ms)

    # -- finishing -----------------------------------------------------------------------------------------
    def _finish(self) -> GeneratedPortal:
        records = self.records
        for object_type, recs in records.items():
            recs.sort(key=_created_key)
            base = ID_BASE[object_type]
            lm_name = schema.LAST_MODIFIED[object_type]
            created_name = schema.CREATED[object_type]
            for i, rec in enumerate(recs):
                rec.id = base + i
                props = rec.properties
                props["hs_object_id"] = str(rec.id)
                lm = props.pop("_lm")
                props[lm_name] = props[created_name] if lm == rec.created_ms else iso_ms(lm)
                props.pop("_nps_ms", None)
                props.pop("_since", None)
        self._sync_used = set()
        associations, self.assoc = self.assoc, []
        for i, (ft, a, tt, b, primary) in enumerate(associations):  # in place: at 1M contacts a copy costs GBs
            associations[i] = (ft, a.id, tt, b.id, primary)
            if primary and ft == "contacts":
                a.properties["associatedcompanyid"] = b.properties["hs_object_id"]
        truth = []
        for entry in self.truth:
            out = {"kind": entry["kind"], "company_id": entry.pop("_company").id,
                   "subscription_id": entry.pop("_sub").id}
            out.update(entry)
            truth.append(out)
        truth.extend(_inject_malformed(records))
        return GeneratedPortal(records=records, associations=associations, now_ms=self.now, ground_truth=truth)


def _created_key(rec: SeedRecord) -> int:
    return rec.created_ms


def _stage_at(stages: list[tuple[str, int]], ms: int) -> str:
    current = stages[0][0]
    for stage, t in stages:
        if t > ms:
            break
        current = stage
    return current


# Deliberately malformed values, one record each, for the connector's bad-input handling. Each entry:
# (object type, property, bad value, why, which record: a predicate on its properties).
_MALFORMED = (
    ("contacts", "date_of_birth", "1985-02-30", "impossible date", lambda p: "date_of_birth" in p),
    ("contacts", "lifecyclestage", "Customer", "not an option (options are lower case)",
     lambda p: p.get("lifecyclestage") == "customer"),
    ("companies", "numberofemployees", "1,200", "thousands separator in a number", lambda p: True),
    ("companies", "notes_last_contacted", None, "datetime without T, seconds or zone",
     lambda p: "notes_last_contacted" in p),
    ("line_items", "price", "12,50", "decimal comma in a number", lambda p: p.get("hs_product_id") == "1101"),
    ("subscriptions", "hs_last_payment_amount", "1.200,00", "European number format",
     lambda p: "hs_last_payment_amount" in p),
    ("feedback_submissions", "hs_value", "11", "NPS rating out of 0-10",
     lambda p: p.get("hs_survey_type") == "NPS"),
)


def _inject_malformed(records: dict[str, list[SeedRecord]]) -> list[dict]:
    """Spoil one record per kind (the median matching one, so small portals have it too); list them."""
    out = []
    for object_type, name, value, reason, wanted in _MALFORMED:
        candidates = [r for r in records[object_type] if not r.archived and wanted(r.properties)]
        if not candidates:
            continue
        rec = candidates[len(candidates) // 2]
        if value is None:  # keep the date, lose the format
            value = rec.properties[name][:10] + " " + rec.properties[name][11:16]
        rec.properties[name] = value
        if name in rec.history:
            hist = rec.history[name]
            hist[-1] = (value, hist[-1][1])
        out.append({"kind": "malformed", "object_type": object_type, "id": rec.id, "property": name,
                    "value": value, "reason": reason})
    return out


def generate(seed: int = 1, contacts: int = 200, now_ms: int | None = None,
             ground_truth_path: str | Path | None = None) -> GeneratedPortal:
    """A seeded B2B SaaS portal with ``contacts`` contacts and 24 months of history ending at ``now_ms``.

    Deterministic for a given (seed, contacts, now_ms); ``now_ms`` defaults to the current time floored to the
    minute. With ``ground_truth_path`` the ground truth is also written there as JSON lines.

    Ground truth entries (``kind`` first):
    - ``churn``: ``company_id``, ``subscription_id``, ``reason`` (``voluntary``: asked to cancel;
      ``involuntary``: payment failed and was not recovered), ``cancel_requested_at`` (ISO or None),
      ``cancel_effective_on`` (date the paid period ends), ``churned_at`` (ISO when ``hs_status`` became
      ``canceled``; None while the paid period still runs), ``hazard`` (the monthly probability drawn against),
      ``currency``, and ``drivers``: what the account showed at the usage sync before the decision (``at``,
      ``active_days_30d``, ``logins_30d``, ``seats_used``, ``mau``, ``tickets_90d``, ``open_tickets``,
      ``nps_avg_180d``, ``payment_trouble``, ``mrr``).
    - ``reactivation``: ``company_id``, ``subscription_id`` (the new one), ``reactivated_at``, ``previous_churned_at``.
    - ``malformed``: ``object_type``, ``id``, ``property``, ``value``, ``reason``: values spoiled on purpose.
    """
    if contacts < 1:
        raise ValueError("contacts must be at least 1")
    if now_ms is None:
        now_ms = int(time.time() * 1000) // MINUTE * MINUTE
    # Millions of small acyclic objects: the cyclic collector would only rescan them over and over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        portal = _Generator(seed, contacts, now_ms).run()
    finally:
        if collecting:
            gc.enable()
    if ground_truth_path is not None:
        save_ground_truth(portal, ground_truth_path)
    return portal


def save_ground_truth(portal: GeneratedPortal, path: str | Path) -> None:
    """Write ``portal.ground_truth`` as JSON lines (one event per line)."""
    with open(path, "w", encoding="utf-8") as fh:
        for entry in portal.ground_truth:
            fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
