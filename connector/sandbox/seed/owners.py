"""The portal's users who own records: sales reps, customer success managers and support agents, in teams."""

from __future__ import annotations

from connector.sandbox.seed.companies import _FIRST, _LAST
from connector.sandbox.seed.core import DAY, SeedOwner, _GeneratorBase

TEAMS = {"sales": ("41001", "Sales"), "success": ("41002", "Customer Success"), "support": ("41003", "Support")}
OWNER_DOMAIN = "vendor.example"  # the SaaS vendor whose portal this is


class _Owners(_GeneratorBase):
    """Part of the generator (``connector.sandbox.seed._Generator``); draws from ``service_rng`` only."""

    def _roster(self) -> dict[str, list[SeedOwner]]:
        """Active owners by team (about one per 120 companies each, at least one), plus one deactivated former rep."""
        per_team = max(1, min(20, len(self.accounts) // 120))
        self._next_owner = (60_000_000 + self.service_rng.randrange(1_000_000),
                            9_000_000 + self.service_rng.randrange(100_000))
        self._emails: set[str] = set()
        roster = {team: [self._owner(team) for _ in range(per_team)] for team in TEAMS}
        self._owner("sales", archived=True)
        return roster

    def _owner(self, team: str, archived: bool = False) -> SeedOwner:
        rng = self.service_rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        while local in self._emails:
            local += str(rng.randrange(10))
        self._emails.add(local)
        owner_id, user_id = self._next_owner
        self._next_owner = (owner_id + rng.randrange(1, 5_000), user_id + rng.randrange(1, 500))
        # Sales leads also sit in Customer Success (a second, non-primary team), as small vendors run it.
        teams = (TEAMS[team],) + ((TEAMS["success"],) if team == "sales" and not self.owners else ())
        owner = SeedOwner(owner_id, user_id, f"{local}@{OWNER_DOMAIN}", first, last, teams,
                          self.window_start - int((30 + rng.random() * 300) * DAY), archived)
        self.owners.append(owner)
        return owner

    def _assign_owners(self, roster: dict[str, list[SeedOwner]]) -> None:
        """Customers are owned by a customer success manager, everyone else by a sales rep (set at creation)."""
        rng = self.service_rng
        ids = {team: [str(o.id) for o in owners] for team, owners in roster.items()}  # shared strings
        for company, _ in self.accounts:
            team = "success" if self.months_of[id(company)] else "sales"
            company.properties["hubspot_owner_id"] = ids[team][rng.randrange(len(ids[team]))]
