"""Lists (v3): MANUAL, SNAPSHOT and DYNAMIC lists and their memberships."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.sandbox import schema
from connector.sandbox.portal.common import ApiError, bad_request, error_body, int_param, iso, now_ms


@dataclass
class HubList:
    list_id: int
    name: str
    object_type_id: str
    processing_type: str
    created_ms: int
    updated_ms: int
    version: int = 1
    members: dict[int, int] = field(default_factory=dict)  # record id -> membership ms

    def to_json(self) -> dict[str, Any]:
        return {
            "listId": str(self.list_id), "listVersion": self.version, "name": self.name,
            "objectTypeId": self.object_type_id, "processingStatus": "COMPLETE",
            "processingType": self.processing_type, "size": len(self.members), "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.updated_ms), "filtersUpdatedAt": iso(self.created_ms), "createdById": "1",
            "updatedById": "1",
        }

    def to_search_json(self) -> dict[str, Any]:
        """Search hits carry sizes as string ``additionalProperties`` instead of ``size`` (lists spec example)."""
        out = self.to_json()
        del out["size"]
        last_added = max(self.members.values(), default=None)
        out["additionalProperties"] = {"hs_list_size": str(len(self.members)), "hs_list_reference_count": "0",
                                       **({"hs_last_record_added_at": str(last_added)} if last_added else {})}
        return out


class ListsMixin:
    """Lists and their memberships.

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def create_list(self, body: Any) -> HubList:
        with self.lock:
            if not isinstance(body, dict):
                raise bad_request("Invalid JSON input: a request body was expected, but none found")
            missing = [k for k in ("name", "objectTypeId", "processingType") if not body.get(k)]
            if missing:
                raise bad_request(f"Missing required fields: {', '.join(missing)}")
            if not isinstance(body["name"], str) or not isinstance(body["objectTypeId"], str):
                raise bad_request("name and objectTypeId must be strings")
            if body["processingType"] not in ("MANUAL", "SNAPSHOT", "DYNAMIC"):
                raise bad_request("processingType must be MANUAL, SNAPSHOT or DYNAMIC")
            object_type = self.object_type(str(body["objectTypeId"]))
            if any(lst.name.lower() == body["name"].lower() for lst in self.lists.values()):
                raise bad_request(f"A list named '{body['name']}' already exists.",
                                  subCategory="ILS.DUPLICATE_LIST_NAMES")
            ms = now_ms()
            lst = HubList(self._next_list_id, body["name"], schema.OBJECT_TYPES[object_type],
                          body["processingType"], ms, ms)
            self.lists[lst.list_id] = lst
            self._next_list_id += 1
            return lst

    def get_list(self, list_id: str) -> HubList:
        lst = self.lists.get(int(list_id)) if str(list_id).isdigit() else None
        if lst is None:
            raise ApiError(404, error_body(f"List {list_id} does not exist.", "OBJECT_NOT_FOUND",
                                           context={"listId": [str(list_id)]}))
        return lst

    def search_lists(self, body: Any) -> dict[str, Any]:
        """POST /crm/v3/lists/search: name contains ``query``; offset/hasMore/total paging (§11)."""
        if not isinstance(body, dict):
            raise bad_request("Invalid JSON input: expected an object")
        query = str(body.get("query") or "").lower()
        # The spec sets no minimum: a negative offset or count reads as 0 (what HubSpot does is UNVERIFIED).
        offset = max(0, int_param(body.get("offset"), 0, "offset"))
        count = max(0, min(int_param(body.get("count"), 20, "count"), 500))
        types = body.get("processingTypes") or []
        ids = body.get("listIds") or []
        if not isinstance(types, list) or not isinstance(ids, list) or not all(isinstance(t, str) for t in types):
            raise bad_request("processingTypes and listIds must be arrays of strings")
        wanted_ids = {str(i) for i in ids}
        with self.lock:
            found = [lst for lst in sorted(self.lists.values(), key=lambda x: x.list_id)
                     if query in lst.name.lower() and (not types or lst.processing_type in types)
                     and (not wanted_ids or str(lst.list_id) in wanted_ids)]
            page = found[offset:offset + count]
            return {"lists": [lst.to_search_json() for lst in page], "offset": offset + len(page),
                    "hasMore": offset + len(page) < len(found), "total": len(found)}

    def list_by_name(self, object_type_id: str, name: str) -> HubList:
        object_type = self.object_type(object_type_id)
        for lst in self.lists.values():
            if lst.name == name and lst.object_type_id == schema.OBJECT_TYPES[object_type]:
                return lst
        raise ApiError(404, error_body(f"List with name {name} does not exist.", "OBJECT_NOT_FOUND",
                                       context={"listName": [name]}))

    def change_members(self, list_id: str, add: list[Any], remove: list[Any]) -> dict[str, list[str]]:
        """Add and remove records; unknown ids come back in ``recordIdsMissing``, duplicates are ignored (§6)."""
        if not isinstance(add, list) or not isinstance(remove, list):
            raise bad_request("record ids must be arrays of ids")
        with self.lock:
            lst = self.get_list(list_id)
            if lst.processing_type == "DYNAMIC":
                raise bad_request(f"List {list_id} is DYNAMIC: memberships can only change on MANUAL or SNAPSHOT "
                                  "lists.", subCategory="ILS.INVALID_LIST_PROCESSING_TYPE")
            object_type = self.object_type(lst.object_type_id)
            added, removed, missing = [], [], []
            ms = now_ms()
            for raw in add:
                rec = self.find(object_type, str(raw))
                if rec is None:
                    missing.append(str(raw))
                elif rec.id not in lst.members:
                    lst.members[rec.id] = ms
                    added.append(str(rec.id))
            for raw in remove:
                rid = int(raw) if str(raw).isdigit() else None
                if rid is not None and rid in lst.members:
                    del lst.members[rid]
                    removed.append(str(rid))
                elif self.find(object_type, str(raw)) is None:
                    missing.append(str(raw))
            if added or removed:
                lst.updated_ms = ms
            return {"recordsIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}
