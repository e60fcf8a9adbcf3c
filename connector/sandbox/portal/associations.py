"""Associations between records: both directions, primary companies and the contact/company rollups."""

from __future__ import annotations

from typing import Any, Iterable

from connector.sandbox import schema
from connector.sandbox.portal.common import bad_request, int_param, not_found, now_ms


def _association_lookup() -> dict[tuple[str, int], str]:
    """(from_type, typeId) -> to_type, to resolve create-time association inputs."""
    out = {}
    for (a, b), types in schema.ASSOCIATION_TYPES.items():
        for type_id, _ in types:
            out[(a, type_id)] = b
    return out


_ASSOC_TARGET = _association_lookup()
_ASSOC_LABEL = {(a, b, t): label for (a, b), types in schema.ASSOCIATION_TYPES.items() for t, label in types}
_ROLLUP_PAIR = {"contacts", "companies"}  # the pair whose associations drive associatedcompanyid and the count
_CONTACT_PRIMARY = {t for t, label in schema.ASSOCIATION_TYPES[("contacts", "companies")] if label == "Primary"}


def _primary_owner(a: str, a_id: int, b: str, b_id: int) -> tuple[str, int] | None:
    """The record that has a primary company in an a<->b association (contacts, deals), or None."""
    if b == "companies" and a != "companies" and (a, b) in schema.ASSOCIATION_TYPES:
        owner = (a, a_id)
    elif a == "companies" and b != "companies" and (b, a) in schema.ASSOCIATION_TYPES:
        owner = (b, b_id)
    else:
        return None
    return owner if any(label == "Primary" for _, label in schema.ASSOCIATION_TYPES[(owner[0], "companies")]) \
        else None


def association_type_ids(a: str, b: str, primary: bool) -> list[int]:
    """Primary associations carry both the labelled Primary type and the unlabelled one, as HubSpot returns them."""
    return list(_ASSOC_IDS.get((a, b, primary), ()))


def _association_type_ids(a: str, b: str, primary: bool) -> list[int]:
    types = schema.ASSOCIATION_TYPES.get((a, b), ())
    if not types:
        return []
    unlabeled = [t for t, label in types if label is None] or [types[0][0]]
    labeled = [t for t, label in types if label == "Primary"]
    return (labeled + unlabeled) if primary and labeled else unlabeled


_ASSOC_IDS = {(a, b, p): tuple(_association_type_ids(a, b, p)) for (a, b) in schema.ASSOCIATION_TYPES
              for p in (False, True)}


class AssociationsMixin:
    """Associations: ``_link`` stores one (both directions) and is where every association is made.

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def _ingest_rollups(self) -> None:
        """Fill associatedcompanyid / num_associated_contacts where a seeded portal leaves them out (the generator
        sets both; hand-written portals need not), so they agree with the associations from the start."""
        contacts, companies = self.stores["contacts"].records, self.stores["companies"].records
        for contact_id, targets in self.assoc.get(("contacts", "companies"), {}).items():
            rec = contacts.get(contact_id)
            if rec is not None and "associatedcompanyid" not in rec.props:
                primary = next((k for k, types in sorted(targets.items()) if _CONTACT_PRIMARY & set(types)), None)
                if primary is not None:
                    rec.props["associatedcompanyid"] = str(primary)
        for company_id, targets in self.assoc.get(("companies", "contacts"), {}).items():
            rec = companies.get(company_id)
            if rec is not None and "num_associated_contacts" not in rec.props:
                rec.props["num_associated_contacts"] = str(len(targets))

    def _ingest_associations(self, associations: Iterable[tuple[str, int, str, int, bool]]) -> None:
        """Bulk form of ``_associate`` for seeded data (hundreds of thousands of pairs): the generator gives each
        record at most one primary, so no demotion pass is needed."""
        assoc = self.assoc
        for a, a_id, b, b_id, primary in associations:
            for key, frm, to, types in (((a, b), a_id, b_id, _ASSOC_IDS.get((a, b, primary), ())),
                                        ((b, a), b_id, a_id, _ASSOC_IDS.get((b, a, primary), ()))):
                by_from = assoc.get(key)
                if by_from is None:
                    by_from = assoc[key] = {}
                targets = by_from.get(frm)
                if targets is None:
                    targets = by_from[frm] = {}
                existing = targets.get(to)
                if existing is None:
                    targets[to] = list(types)
                else:
                    existing.extend(t for t in types if t not in existing)
                    existing.sort()

    def _link_created(self, object_type: str, rid: int, links: list[tuple[str, int, int]]) -> None:
        """Store the associations given with a create (parsed by ``_parse_create_associations``)."""
        for to_type, to_id, type_id in links:
            if _ASSOC_LABEL.get((object_type, to_type, type_id)) == "Primary":
                owner = _primary_owner(object_type, rid, to_type, to_id)
                if owner is not None:  # one primary company per record: the new one demotes the old
                    self._demote_primary(owner[0], owner[1], "companies")
            self._link(object_type, rid, to_type, to_id, [type_id])

    def _parse_create_associations(self, object_type: str, associations: Any) -> list[tuple[str, int, int]]:
        links = []
        for item in associations or []:
            try:
                to_id = int(item["to"]["id"])
                types = item["types"]
            except (KeyError, TypeError, ValueError):
                raise bad_request("associations must be [{to: {id}, types: [{associationCategory, "
                                  "associationTypeId}]}]") from None
            if not isinstance(types, list) or not all(isinstance(t, dict) for t in types):
                raise bad_request("association types must be [{associationCategory, associationTypeId}]")
            for t in types:
                type_id = int_param(t.get("associationTypeId"), 0, "associationTypeId")
                to_type = _ASSOC_TARGET.get((object_type, type_id))
                if to_type is None:
                    raise bad_request(f"association type id {type_id} is not valid from {object_type}")
                if self.find(to_type, str(to_id)) is None:
                    raise bad_request(f"No {to_type} with id {to_id} exists to associate with.",
                                      context={"id": [str(to_id)]})
                links.append((to_type, to_id, type_id))
        return links

    def associated_ids(self, from_type: str, from_id: int, to_type: str) -> dict[int, list[int]]:
        return self.assoc.get((from_type, to_type), {}).get(from_id, {})

    def _link(self, a: str, a_id: int, b: str, b_id: int, a_to_b_types: list[int]) -> None:
        """Store one association in both directions (the reverse type ids are the matching ones of the schema)."""
        self.version += 1
        primary = any(_ASSOC_LABEL.get((a, b, t)) == "Primary" for t in a_to_b_types)
        is_new = b_id not in self.assoc.get((a, b), {}).get(a_id, {})
        forward = self.assoc.setdefault((a, b), {}).setdefault(a_id, {}).setdefault(b_id, [])
        for t in a_to_b_types + association_type_ids(a, b, False):
            if t not in forward:
                forward.append(t)
        backward = self.assoc.setdefault((b, a), {}).setdefault(b_id, {}).setdefault(a_id, [])
        for t in association_type_ids(b, a, primary):
            if t not in backward:
                backward.append(t)
        forward.sort()
        backward.sort()
        if is_new:
            self._emit("associationChange", a, a_id, now_ms(), to_type=b, to_id=b_id,
                       association_type_id=association_type_ids(a, b, False)[0], primary=primary)
        if {a, b} == _ROLLUP_PAIR:
            self._refresh_rollups(a, a_id, b_id)

    def _refresh_rollups(self, a: str, a_id: int, b_id: int) -> None:
        """Keep the association-driven properties in step after a contact<->company change: a contact's
        ``associatedcompanyid`` is its primary company, a company's ``num_associated_contacts`` counts its contacts.

        Like HubSpot's calculated properties they change without a write to the record: lastmodifieddate, updatedAt
        and history stay as they were. API-NOTES is silent on whether HubSpot bumps them here; the sandbox keeps
        them unchanged (the default associations PUT already leaves updatedAt alone).
        """
        contact_id, company_id = (a_id, b_id) if a == "contacts" else (b_id, a_id)
        contact = self.stores["contacts"].records.get(contact_id)
        if contact is not None:
            primary = next((k for k, types in sorted(self.associated_ids("contacts", contact_id, "companies").items())
                            if _CONTACT_PRIMARY & set(types)), None)
            if primary is None:
                contact.props.pop("associatedcompanyid", None)
            else:
                contact.props["associatedcompanyid"] = str(primary)
        company = self.stores["companies"].records.get(company_id)
        if company is not None:
            company.props["num_associated_contacts"] = str(len(self.associated_ids("companies", company_id,
                                                                                   "contacts")))

    def _associate(self, a: str, a_id: int, b: str, b_id: int, primary: bool) -> None:
        if primary:
            self._demote_primary(a, a_id, b)
        self._link(a, a_id, b, b_id, association_type_ids(a, b, primary))

    def _demote_primary(self, a: str, a_id: int, b: str) -> None:
        """A record has one primary company: a new primary demotes the old one (HubSpot's behaviour)."""
        labeled = {t for t, label in schema.ASSOCIATION_TYPES.get((a, b), ()) if label == "Primary"}
        back_labeled = {t for t, label in schema.ASSOCIATION_TYPES.get((b, a), ()) if label == "Primary"}
        for other_id, types in self.associated_ids(a, a_id, b).items():
            if labeled & set(types):
                types[:] = [t for t in types if t not in labeled]
                reverse = self.assoc.get((b, a), {}).get(other_id, {}).get(a_id)
                if reverse is not None:
                    reverse[:] = [t for t in reverse if t not in back_labeled]

    def associate_default(self, a: str, a_id: int, b: str, b_id: int) -> list[tuple[str, int, str, int, int]]:
        """PUT …/associations/default/…: the unlabelled type both ways, and the Primary one too when the contact (or
        deal) has no primary company yet, as HubSpot's first company becomes the primary; updatedAt is untouched."""
        with self.lock:
            if self.find(a, str(a_id)) is None:
                raise not_found(str(a_id))
            if self.find(b, str(b_id)) is None:
                raise not_found(str(b_id))
            types = association_type_ids(a, b, False)
            if not types:
                raise bad_request(f"No association type exists between {a} and {b}.")
            owner = _primary_owner(a, a_id, b, b_id)
            primary = owner is not None and not any(
                _ASSOC_LABEL.get((owner[0], "companies", t)) == "Primary"
                for linked in self.associated_ids(owner[0], owner[1], "companies").values() for t in linked)
            self._link(a, a_id, b, b_id, association_type_ids(a, b, True) if primary else types)
            made = [(a, a_id, b, b_id, types[0]), (b, b_id, a, a_id, association_type_ids(b, a, False)[0])]
            if primary:
                made += [(a, a_id, b, b_id, association_type_ids(a, b, True)[0]),
                         (b, b_id, a, a_id, association_type_ids(b, a, True)[0])]
            return made

    def disassociate(self, a: str, a_id: int, b: str, b_id: int) -> None:
        with self.lock:
            self.version += 1
            removed = self.assoc.get((a, b), {}).get(a_id, {}).pop(b_id, None)
            self.assoc.get((b, a), {}).get(b_id, {}).pop(a_id, None)
            if removed is not None and association_type_ids(a, b, False):
                self._emit("associationChange", a, a_id, now_ms(), to_type=b, to_id=b_id,
                           association_type_id=association_type_ids(a, b, False)[0], removed=True)
            if {a, b} == _ROLLUP_PAIR:
                self._refresh_rollups(a, a_id, b_id)

    def association_json(self, a: str, b: str, types: list[int]) -> list[dict[str, Any]]:
        return [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": _ASSOC_LABEL.get((a, b, t))} for t in types]
