"""Records of one portal: storage, value coercion and validation, the create/update/archive seams, batches, paging."""

from __future__ import annotations

import bisect
import math
from typing import Any, Iterable

import orjson

from connector.sandbox import schema
from connector.sandbox.portal.common import (
    DAY_MS, MAX_BATCH, TYPE_WORD, ApiError, PropertyProblem, bad_request, error_body, iso, not_found,
    now_ms, parse_ms, property_error, unknown_type,
)


# Properties returned when a request names none (API-NOTES §11, §1 for line items, subscriptions, feedback).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
              "pipeline"),
    "line_items": ("amount", "createdate", "hs_lastmodifieddate", "hs_object_id", "price", "quantity"),
    "subscriptions": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "feedback_submissions": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    # search guide's defaults for tickets, products and quotes; engagements only the system three
    "tickets": ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
                "hs_ticket_category", "hs_ticket_priority", "subject"),
    "products": ("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
    "quotes": ("hs_createdate", "hs_expiration_date", "hs_lastmodifieddate", "hs_object_id", "hs_status", "hs_title"),
    **{t: ("hs_createdate", "hs_lastmodifieddate", "hs_object_id") for t in schema.ENGAGEMENT_TYPES},
}


class Record:
    __slots__ = ("id", "id_str", "props", "created_ms", "updated_ms", "archived", "archived_ms", "history",
                 "created_iso", "updated_iso", "own_history")

    def __init__(self, id: int, props: dict[str, str], created_ms: int, updated_ms: int,
                 history: dict[str, list[tuple]] | None = None,
                 archived: bool = False, archived_ms: int | None = None,
                 created_iso: str | None = None, updated_iso: str | None = None):
        self.id = id
        self.id_str = str(id)
        self.props = props
        self.created_ms = created_ms
        self.created_iso = created_iso or iso(created_ms)
        self.updated_ms = updated_ms
        self.updated_iso = updated_iso or iso(updated_ms)
        self.history = history or {}
        self.own_history = history is None  # seeded history lists are shared with the generator until a write
        self.archived = archived
        self.archived_ms = archived_ms

    def touch(self, ms: int, stamp: str | None = None) -> None:
        self.updated_ms = ms
        self.updated_iso = stamp or iso(ms)


class TypeStore:
    """The records of one object type, with sorted id arrays so a page is a bisect and a slice."""

    def __init__(self) -> None:
        self.records: dict[int, Record] = {}
        self.live_ids: list[int] = []
        self.archived_ids: list[int] = []
        # property -> normalised value -> record id, for unique-value properties (email, custom unique ones)
        self.unique: dict[str, dict[str, int]] = {}

    def ids(self, archived: bool) -> list[int]:
        return self.archived_ids if archived else self.live_ids


def _is_iso_ms(text: str) -> bool:
    """Already HubSpot's form (2024-01-31T12:00:00.000Z)? Then the seeded string is reused as createdAt/updatedAt."""
    return len(text) == 24 and text[-1] == "Z" and text[10] == "T" and text[19] == "."


def _norm_unique(prop: str, value: str) -> str:
    return value.lower() if prop == "email" else value


class RecordsMixin:
    """Records: lookup, value validation, writes and reads. The seams: ``create`` makes a record, ``_apply`` writes
    values (every update, upsert and batch write ends there), ``archive`` archives one.

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def _index_unique(self, object_type: str, rec: Record) -> None:
        for prop, index in self.stores[object_type].unique.items():
            value = rec.props.get(prop)
            if value:
                index[_norm_unique(prop, value)] = rec.id

    def object_type(self, name: str) -> str:
        canonical = schema.canonical_type(name)
        if canonical is None:
            raise unknown_type(name)
        return canonical

    def next_write_ms(self) -> int:
        """Wall-clock ms, strictly increasing per portal so tests can rely on write order."""
        ms = now_ms()
        if ms <= self._last_write_ms:
            ms = self._last_write_ms + 1
        self._last_write_ms = ms
        return ms

    def _new_id(self, object_type: str) -> int:
        store = self.stores[object_type]
        if object_type not in self._next_id:
            highest = max(store.records, default=0)
            self._next_id[object_type] = max(highest + 1, 100_000 + 1_000 * len(self._next_id))
        value = self._next_id[object_type]
        self._next_id[object_type] += 1
        return value

    def get(self, object_type: str, record_id: int) -> Record | None:
        return self.stores[object_type].records.get(record_id)

    def find(self, object_type: str, id_text: str, id_property: str | None = None,
             archived: bool = False) -> Record | None:
        """A record by id or by a unique property (``idProperty``); archived ones only when asked."""
        store = self.stores[object_type]
        if id_property is not None and not isinstance(id_property, str):
            raise bad_request("idProperty must be a property name")
        if id_property and id_property != "hs_object_id":
            defn = self.properties[object_type].get(id_property)
            if defn is None or not defn.unique:
                raise bad_request(f"Unable to perform update/upsert by non-unique {schema.OBJECT_TYPES[object_type]} "
                                  f"property: {id_property}" if defn else f"Property {id_property} does not exist")
            rid = store.unique.get(id_property, {}).get(_norm_unique(id_property, id_text))
            rec = store.records.get(rid) if rid is not None else None
        else:
            try:
                rec = store.records.get(int(id_text))
            except ValueError:
                return None
        if rec is None or rec.archived != archived:
            return None
        return rec

    def coerce(self, object_type: str, name: str, raw: Any, *, allow_read_only: bool = False
               ) -> tuple[str | None, PropertyProblem | None]:
        """Validate one written value; return the stored string (None = clear) or the problem."""
        defn = self.properties[object_type].get(name)
        if defn is None or defn.archived:
            return None, PropertyProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if defn.read_only and not allow_read_only:
            return None, PropertyProblem(name, "READ_ONLY_VALUE",
                                         f'"{name}" is a read only property; its value cannot be set.')
        if raw is None:
            return None, None
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, (int, float)):
            text = str(raw)
        elif isinstance(raw, str):
            text = raw
        else:
            text = orjson.dumps(raw).decode()
        if text == "":
            return None, None  # "" clears a value (§1)
        kind = defn.type
        if kind == "number":
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                return None, PropertyProblem(name, "INVALID_INTEGER", f"{text} was not a valid number.")
            return text, None
        if kind in ("enumeration", "bool"):
            if kind == "bool" and text.lower() in ("true", "false"):
                text = text.lower()
            parts = text.split(";") if defn.field_type == "checkbox" else [text]
            allowed = defn.option_values
            for part in parts:
                if part and part not in allowed:
                    return None, PropertyProblem(name, "INVALID_OPTION", f"{part} was not one of the allowed options: "
                                                 f"[{', '.join(o['value'] for o in defn.options)}]")
            return text, None
        if kind == "date":
            ms = parse_ms(text)
            if ms is None:
                return None, PropertyProblem(name, "INVALID_DATE", f"{text} is not a valid date.")
            if ms % DAY_MS:
                at = iso(ms)[11:23]
                return None, PropertyProblem(name, "INVALID_DATE", f"{text} is at {at} UTC, not midnight!")
            return iso(ms)[:10], None
        if kind == "datetime":
            ms = parse_ms(text)
            if ms is None:
                return None, PropertyProblem(name, "INVALID_DATE", f"{text} is not a valid datetime.")
            return iso(ms), None
        if len(text) > 65_536:
            return None, PropertyProblem(name, "INVALID_STRING", "Property values must be 65,536 characters or fewer.")
        return text, None

    def check_values(self, object_type: str, properties: Any) -> tuple[dict[str, str | None], list[PropertyProblem]]:
        """The written values that are valid and the problems of those that are not (a non-object is a 400)."""
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            raise bad_request("properties must be an object of property name to value")
        clean: dict[str, str | None] = {}
        problems: list[PropertyProblem] = []
        for name, raw in properties.items():
            value, problem = self.coerce(object_type, name, raw)
            if problem:
                problems.append(problem)
            else:
                clean[name] = value
        return clean, problems

    def validate(self, object_type: str, properties: Any) -> dict[str, str | None]:
        """All written values or one 400 ApiError naming every invalid property."""
        clean, problems = self.check_values(object_type, properties)
        if problems:
            raise ApiError(400, property_error(problems, self.portal_id))
        return clean

    def validate_batch(self, object_type: str, properties_of_inputs: Iterable[Any]) -> list[dict[str, str | None]]:
        """Every input's clean values, in order; or, as HubSpot checks all values before writing any, one 400
        VALIDATION_ERROR listing every problem of the whole batch, with nothing written (the issue's "a 400 for one
        bad value"; unknown ids and create conflicts stay per-input 207 errors)."""
        cleaned: list[dict[str, str | None]] = []
        problems: list[PropertyProblem] = []
        for properties in properties_of_inputs:
            clean, found = self.check_values(object_type, properties)
            cleaned.append(clean)
            problems.extend(found)
        if problems:
            raise ApiError(400, property_error(problems, self.portal_id))
        return cleaned

    def _conflict(self, object_type: str, values: dict[str, str | None], own_id: int | None) -> ApiError | None:
        store = self.stores[object_type]
        for prop, index in store.unique.items():
            value = values.get(prop)
            if value:
                existing = index.get(_norm_unique(prop, value))
                if existing is not None and existing != own_id:
                    word = TYPE_WORD[object_type].replace("_", " ").title().replace(" ", "")
                    return ApiError(409, error_body(f"{word} already exists. Existing ID: {existing}", "CONFLICT",
                                                    context={"existingId": [str(existing)]}))
        return None

    def check_writable(self, object_type: str) -> None:
        if object_type in schema.READ_ONLY_TYPES:
            raise bad_request(f"Object type {object_type} ({schema.OBJECT_TYPES[object_type]}) is read-only: "
                              "create, update and archive are not supported for it.")

    def _apply(self, object_type: str, rec: Record, values: dict[str, str | None], ms: int) -> None:
        self.version += 1
        store = self.stores[object_type]
        if not rec.own_history:
            rec.history = {k: list(v) for k, v in rec.history.items()}
            rec.own_history = True
        for name, value in values.items():
            old = rec.props.get(name)
            if name in store.unique and old:
                store.unique[name].pop(_norm_unique(name, old), None)
            if value is None:
                rec.props.pop(name, None)
            else:
                rec.props[name] = value
                if name in store.unique:
                    store.unique[name][_norm_unique(name, value)] = rec.id
            rec.history.setdefault(name, []).append((value or "", ms, "INTEGRATION"))
            if value != old:
                self._emit("propertyChange", object_type, rec.id, ms, property_name=name, property_value=value or "")
        stamp = iso(ms)
        rec.props[schema.LAST_MODIFIED[object_type]] = stamp
        rec.touch(ms, stamp)

    def create(self, object_type: str, properties: Any, associations: Any = None) -> Record:
        with self.lock:
            self.check_writable(object_type)
            values = self.validate(object_type, properties)
            conflict = self._conflict(object_type, values, None)
            if conflict:
                raise conflict
            links = self._parse_create_associations(object_type, associations)
            ms = self.next_write_ms()
            rid = self._new_id(object_type)
            props = {"hs_object_id": str(rid), schema.CREATED[object_type]: iso(ms)}
            rec = Record(rid, props, ms, ms)
            self.stores[object_type].records[rid] = rec
            self.stores[object_type].live_ids.append(rid)  # new ids are the highest: the array stays sorted
            self._emit("creation", object_type, rid, ms)
            self._apply(object_type, rec, {k: v for k, v in values.items() if v is not None}, ms)
            self._link_created(object_type, rid, links)
            return rec

    def update(self, object_type: str, id_text: str, properties: Any, id_property: str | None = None) -> Record:
        with self.lock:
            self.check_writable(object_type)
            rec = self.find(object_type, id_text, id_property)
            if rec is None:
                raise not_found(id_text)
            values = self.validate(object_type, properties)
            conflict = self._conflict(object_type, values, rec.id)
            if conflict:
                raise conflict
            self._apply(object_type, rec, values, self.next_write_ms())
            return rec

    def archive(self, object_type: str, id_text: str) -> bool:
        """Archive a record; unknown or already archived ids are no error (HubSpot answers 204 either way)."""
        with self.lock:
            self.check_writable(object_type)
            rec = self.find(object_type, id_text)
            if rec is None:
                return False
            store = self.stores[object_type]
            self.version += 1
            ms = self.next_write_ms()
            rec.archived, rec.archived_ms = True, ms
            rec.touch(ms)
            store.live_ids.remove(rec.id)
            bisect.insort(store.archived_ids, rec.id)
            self._emit("deletion", object_type, rec.id, ms)
            for prop, index in store.unique.items():
                value = rec.props.get(prop)
                if value:
                    index.pop(_norm_unique(prop, value), None)
            return True

    def check_batch(self, inputs: Any, limit: int = MAX_BATCH, key: str | None = "id",
                    required: str | None = None) -> list[dict[str, Any]]:
        """The inputs list, refused whole when too long, not objects, missing ``key`` (or ``required``) on one
        input, or (``key``) holding one id twice."""
        if not isinstance(inputs, list):
            raise bad_request("inputs must be an array", context={"inputs": ["required"]})
        if len(inputs) > limit:
            raise bad_request(f"Batch input size of {len(inputs)} exceeds the maximum of {limit}.",
                              context={"inputs": [str(len(inputs))]})
        if not all(isinstance(i, dict) for i in inputs):
            raise bad_request("each input must be an object")
        needed = required or key
        if needed and any(item.get(needed) is None for item in inputs):
            # The spec requires it on every input; HubSpot's deserializer wording, as for filters (search.py).
            raise bad_request("Invalid input JSON on line 1, column 1: Cannot build batch input, some of "
                              f"required attributes are not set [{needed}]", None)
        if key:
            seen, dups = set(), []
            for item in inputs:
                value = str(item.get(key, ""))
                if value in seen:
                    dups.append(value)
                seen.add(value)
            if dups:
                raise bad_request(f"Duplicate IDs found in batch input: [{', '.join(dups)}]. IDs must be unique")
        return inputs

    def missing_error(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        return {"status": "error", "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {TYPE_WORD[object_type]} objects, they may be deleted or not exist. "
                           "Check that ids are valid.", "context": {"ids": ids}}

    @staticmethod
    def batch_entry_error(exc: ApiError, context: dict[str, list[str]]) -> dict[str, Any]:
        body = exc.body
        entry: dict[str, Any] = {"status": "error", "category": body.get("category", "VALIDATION_ERROR"),
                                 "message": body.get("message", "")}
        if body.get("subCategory"):
            entry["subCategory"] = body["subCategory"]
        merged = dict(body.get("context") or {})
        merged.update(context)
        entry["context"] = merged
        if body.get("errors"):
            entry["errors"] = body["errors"]
        return entry

    def batch_read(self, object_type: str, ids: list[str], id_property: str | None, archived: bool
                   ) -> tuple[list[Record], list[str]]:
        with self.lock:
            found, missing = [], []
            for id_text in ids:
                rec = self.find(object_type, id_text, id_property, archived)
                (found.append(rec) if rec else missing.append(id_text))
            return found, missing

    def batch_update(self, object_type: str, inputs: list[dict[str, Any]]) -> tuple[list[Record], list[dict]]:
        with self.lock:
            self.check_writable(object_type)
            results, errors, missing = [], [], []
            targets: list[tuple[int, str, Record]] = []
            for index, item in enumerate(inputs):
                id_text = str(item.get("id", ""))
                id_property = item.get("idProperty")
                if object_type == "contacts" and id_property == "email":
                    # Observed: HubSpot refuses e-mail as idProperty in batch update (§11).
                    raise bad_request("Unable to perform update/upsert by non-unique 0-1 property")
                rec = self.find(object_type, id_text, id_property)  # a bad idProperty is the whole batch's 400
                if rec is None:
                    missing.append(id_text)
                else:
                    targets.append((index, id_text, rec))
            cleaned = self.validate_batch(object_type, (item.get("properties") for item in inputs))
            for index, id_text, rec in targets:
                values = cleaned[index]
                conflict = self._conflict(object_type, values, rec.id)
                if conflict:  # a unique value another record holds: this input only
                    errors.append(self.batch_entry_error(conflict, {"ids": [id_text]}))
                    continue
                self._apply(object_type, rec, values, self.next_write_ms())
                results.append(rec)
            if missing:
                errors.insert(0, self.missing_error(object_type, missing))
            return results, errors

    def batch_create(self, object_type: str, inputs: list[dict[str, Any]]
                     ) -> tuple[list[tuple[Record, dict[str, Any]]], list[dict]]:
        """Create each input; return (record, its input) pairs and the per-input errors."""
        with self.lock:
            self.check_writable(object_type)
            self.validate_batch(object_type, (item.get("properties") for item in inputs))
            results, errors = [], []
            for item in inputs:
                trace = item.get("objectWriteTraceId")
                try:
                    results.append((self.create(object_type, item.get("properties"), item.get("associations")),
                                    item))
                except ApiError as exc:
                    context = {"objectWriteTraceId": [str(trace)]} if trace is not None else {}
                    errors.append(self.batch_entry_error(exc, context))
            return results, errors

    def batch_upsert(self, object_type: str, inputs: list[dict[str, Any]]
                     ) -> tuple[list[tuple[Record, bool]], list[dict]]:
        with self.lock:
            self.check_writable(object_type)
            self.validate_batch(object_type, (item.get("properties") for item in inputs))
            results, errors = [], []
            for item in inputs:
                id_text = str(item.get("id", ""))
                id_property = item.get("idProperty")
                try:
                    if not id_property:
                        raise bad_request("idProperty is required for upsert")
                    rec = self.find(object_type, id_text, id_property)
                    if rec is not None:
                        results.append((self.update(object_type, str(rec.id), item.get("properties")), False))
                    else:
                        props = dict(item.get("properties") or {})
                        if id_property != "hs_object_id":
                            props[id_property] = id_text
                        results.append((self.create(object_type, props), True))
                except ApiError as exc:
                    errors.append(self.batch_entry_error(exc, {"ids": [id_text]}))
            return results, errors

    def page(self, object_type: str, after: int | None, limit: int, archived: bool) -> tuple[list[Record], int | None]:
        """One list page: records with id >= ``after`` (HubSpot's ``after`` is the next record's id)."""
        with self.lock:
            store = self.stores[object_type]
            ids = store.ids(archived)
            start = bisect.bisect_left(ids, after) if after is not None else 0
            chunk = ids[start:start + limit]
            records = store.records
            nxt = ids[start + limit] if start + limit < len(ids) else None
            return [records[i] for i in chunk], nxt

    def resolve_names(self, object_type: str, requested: list[str] | None) -> list[str]:
        """Requested names that exist (unknown ones are silently absent, like HubSpot) or the default set."""
        if not requested:
            return list(DEFAULT_PROPERTIES[object_type])
        if not isinstance(requested, list) or not all(isinstance(n, str) for n in requested):
            raise bad_request("properties must be an array of property names")
        defs = self.properties[object_type]
        out, seen = [], set()
        for name in requested:
            if name in defs and name not in seen:
                seen.add(name)
                out.append(name)
        return out

    def history_json(self, object_type: str, rec: Record, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Newest first, as HubSpot returns it; a value with no recorded change gets one entry at creation."""
        out = {}
        for name in names:
            entries = rec.history.get(name)
            if entries:
                out[name] = [{"value": e[0], "timestamp": iso(e[1]), "sourceType": e[2] if len(e) > 2 else "CRM_UI"}
                             for e in reversed(entries)]
            elif name in rec.props:
                out[name] = [{"value": rec.props[name], "timestamp": rec.created_iso, "sourceType": "CRM_UI"}]
            else:
                out[name] = []
        return out
