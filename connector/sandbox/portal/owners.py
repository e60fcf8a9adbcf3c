"""Owners (HubSpot users who own records): the roster, its paging and lookups, and the owner properties' options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from connector.sandbox import schema
from connector.sandbox.portal.common import ApiError, bad_request, error_body, iso

if TYPE_CHECKING:  # the generator's owner type is the portal's too (one vocabulary)
    from connector.sandbox.seed.core import SeedOwner

MAX_OWNERS_PAGE = 500  # owners v3: limit defaults to 100
OWNER_SCOPES = ("crm.objects.owners.read", "automation")  # either, per the owners spec's security


def owner_json(owner: SeedOwner) -> dict[str, Any]:
    """One owner as owners v3 describes it (PublicOwner); the first team is the primary one."""
    out: dict[str, Any] = {
        "id": str(owner.id), "email": owner.email, "type": "PERSON", "firstName": owner.first_name,
        "lastName": owner.last_name, "userIdIncludingInactive": owner.user_id, "createdAt": iso(owner.created_ms),
        "updatedAt": iso(owner.created_ms), "archived": owner.archived,
        "teams": [{"id": tid, "name": name, "primary": i == 0} for i, (tid, name) in enumerate(owner.teams)],
    }
    if not owner.archived:  # a deactivated user keeps only userIdIncludingInactive
        out["userId"] = owner.user_id
    return out


def _owner_not_found(key: str) -> ApiError:
    return ApiError(404, error_body(f"No owner found with id {key}.", "OBJECT_NOT_FOUND", context={"id": [key]}))


class OwnersMixin:
    """The portal's owners, loaded from the generated portal.

    A mixin of ``Portal``, which owns ``lock``, ``owners`` and ``properties``.
    """

    def load_owners(self, owners: Iterable[SeedOwner]) -> None:
        """Take the generator's owners (``seed.SeedOwner``) and offer the live ones as owner-property options."""
        with self.lock:
            for o in owners:
                self.owners[o.id] = o
            options = [{"label": f"{o.first_name} {o.last_name}", "value": str(o.id), "displayOrder": i,
                        "hidden": False}
                       for i, o in enumerate(sorted((o for o in self.owners.values() if not o.archived),
                                                    key=lambda o: o.id))]
            for defs in self.properties.values():
                defn = defs.get(schema.OWNER_PROPERTY)
                if defn is not None:
                    defn.options = list(options)
                    defn.refresh_options()

    def owners_page(self, after: str | None, limit: int, email: str | None, archived: bool
                    ) -> tuple[list[SeedOwner], int | None]:
        """Owners by ascending id from ``after`` (the next page's first id), optionally one email."""
        if after not in (None, "") and not str(after).isdigit():
            raise bad_request(f"after must be the cursor returned in paging.next.after, got {after!r}",
                              context={"after": [str(after)]})
        start = int(after) if after else 0
        with self.lock:
            chosen = [o for _, o in sorted(self.owners.items()) if o.archived == archived and o.id >= start
                      and (email is None or o.email.lower() == email.strip().lower())]
        page = chosen[:limit]
        return page, (chosen[limit].id if len(chosen) > limit else None)

    def owner(self, key: str, id_property: str = "id", archived: bool = False) -> SeedOwner:
        """One owner by owner id or (``id_property="userId"``) by user id; 404 when there is none."""
        if id_property not in ("id", "userId"):
            raise bad_request(f"idProperty must be id or userId, got {id_property!r}",
                              context={"idProperty": [id_property]})
        if not key.isdigit():
            raise _owner_not_found(key)
        wanted = int(key)
        with self.lock:
            for o in self.owners.values():
                if (o.id if id_property == "id" else o.user_id) == wanted and o.archived == archived:
                    return o
        raise _owner_not_found(key)
