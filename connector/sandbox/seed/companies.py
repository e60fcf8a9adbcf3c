"""Companies and their contacts (and newsletter-only contacts): names, domains, sizes, lifecycle stages."""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import accumulate

from connector.sandbox import schema
from connector.sandbox.seed.core import DAY, HOUR, SeedRecord, _GeneratorBase, _day, _num, _stage_at, iso_ms


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


class _Companies(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``)."""

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
        self.accounts.append((company, people))
        self.months_of[id(company)] = []
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
