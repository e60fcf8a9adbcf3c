"""CRM search: request limits, filter compiling, sorting and the per-version result cache."""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable

import orjson

from connector.sandbox import schema
from connector.sandbox.portal.common import bad_request, int_param, now_ms, parse_ms
from connector.sandbox.portal.records import Record


SEARCH_MAX_LIMIT = 200
SEARCH_MAX_RESULTS = 10_000
SEARCH_MAX_GROUPS, SEARCH_MAX_FILTERS_PER_GROUP, SEARCH_MAX_FILTERS = 5, 6, 18
SEARCH_MAX_BODY_CHARS = 3_000
_TOKEN_SPLIT = re.compile(r"[^\w@.*-]+")


def _to_float(text: Any) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


class SearchMixin:
    """CRM search over one type's live records (``POST /crm/v3/objects/{type}/search``).

    A mixin of ``Portal``, which owns ``lock`` and the state these methods use.
    """

    def search(self, object_type: str, body: dict[str, Any]) -> tuple[int, list[Record], int | None]:
        """Filter, sort and page one search request (API-NOTES §1): (total, page, next offset)."""
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            raise bad_request("filterGroups must be an array")
        top = body.get("filters")
        if top:
            # HubSpot also takes a top-level `filters` list as one AND group, beside or instead of filterGroups
            # (API-NOTES §12). Beside them it is one more (OR-ed) group: how HubSpot combines the two is UNVERIFIED.
            if not isinstance(top, list):
                raise bad_request("filters must be an array")
            groups = [*groups, {"filters": top}]
        if len(groups) > SEARCH_MAX_GROUPS:
            raise bad_request(f"Too many filter groups: {len(groups)} (maximum {SEARCH_MAX_GROUPS}).")
        total_filters = 0
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("filters") or [], list):
                raise bad_request("each filter group must be {filters: [...]}")
            filters = group.get("filters") or []
            if len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
                raise bad_request(f"Too many filters in a group: {len(filters)} "
                                  f"(maximum {SEARCH_MAX_FILTERS_PER_GROUP}).")
            total_filters += len(filters)
        if total_filters > SEARCH_MAX_FILTERS:
            raise bad_request(f"Too many filters: {total_filters} (maximum {SEARCH_MAX_FILTERS} in all).")
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise bad_request("Only one sort is supported.")
        limit = int_param(body.get("limit"), 10, "limit")
        if limit > SEARCH_MAX_LIMIT or limit < 0:
            raise bad_request(f"limit must be between 0 and {SEARCH_MAX_LIMIT}.", context={"limit": [str(limit)]})
        offset = int_param(body.get("after"), 0, "after")
        if offset + limit > SEARCH_MAX_RESULTS or offset < 0:
            raise bad_request(f"Paging past {SEARCH_MAX_RESULTS} results is not supported: "
                              f"after={offset} limit={limit}.", context={"after": [str(offset)]})
        compiled = [[self._compile_filter(object_type, f) for f in ((g or {}).get("filters") or [])] for g in groups]
        query = body.get("query") or ""
        if not isinstance(query, str):
            raise bad_request("query must be a string")
        query = query.strip().lower()
        with self.lock:
            # Paging re-runs the same query with another offset: keep its sorted matches until the data changes
            # (not with an index lag, whose horizon moves with the clock).
            key = orjson.dumps([object_type, groups, sorts, query], default=str)
            cached = self._search_cache.get(key)
            if cached is not None and cached[0] == self.version and not self.search_lag_ms:
                matches = cached[1]
                total = len(matches)
                nxt = offset + limit if offset + limit < total else None
                return total, matches[offset:offset + limit], nxt
            store = self.stores[object_type]
            horizon = now_ms() - self.search_lag_ms if self.search_lag_ms else None
            matches = []
            for rid in store.live_ids:
                rec = store.records[rid]
                if horizon is not None and rec.updated_ms > horizon:
                    continue  # not indexed yet: HubSpot's search lags writes
                if compiled and not any(all(f(rec) for f in group) for group in compiled):
                    continue
                if query and not any(query in v.lower() for v in rec.props.values()):
                    continue
                matches.append(rec)
            if sorts:
                matches = self._sorted(object_type, matches, sorts[0])
            else:
                matches.sort(key=lambda r: (r.created_ms, r.id))  # default: creation date, oldest first
            if not self.search_lag_ms:
                if len(self._search_cache) >= 32:
                    self._search_cache.pop(next(iter(self._search_cache)))
                self._search_cache[key] = (self.version, matches)
            total = len(matches)
            chunk = matches[offset:offset + limit]
            nxt = offset + limit if offset + limit < total else None
            return total, chunk, nxt

    def _sorted(self, object_type: str, records: list[Record], sort: Any) -> list[Record]:
        if isinstance(sort, str):  # the SDK types sorts as strings; "-prop" / "prop"
            name, descending = sort.lstrip("-"), sort.startswith("-")
        elif isinstance(sort, dict) and isinstance(sort.get("propertyName", ""), str):
            name = sort.get("propertyName", "")
            descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
        else:
            raise bad_request("sorts must be [{propertyName, direction}]")
        key = self._sort_key(object_type, name)
        present = [r for r in records if key(r) is not None]
        absent = [r for r in records if key(r) is None]
        present.sort(key=lambda r: (key(r), r.id), reverse=descending)
        return present + absent

    def _sort_key(self, object_type: str, name: str) -> Callable[[Record], Any]:
        if name in ("hs_object_id", "id"):
            return lambda r: r.id
        if name == schema.LAST_MODIFIED[object_type]:  # the incremental-sync sort: no parsing
            return lambda r: r.updated_ms
        if name == schema.CREATED[object_type]:
            return lambda r: r.created_ms
        defn = self.properties[object_type].get(name)
        kind = defn.type if defn else "string"
        if kind == "number":
            return lambda r: _to_float(r.props.get(name))
        if kind in ("date", "datetime"):
            return lambda r: parse_ms(r.props[name]) if name in r.props else None
        return lambda r: r.props[name].lower() if name in r.props else None

    def _compile_filter(self, object_type: str, f: Any) -> Callable[[Record], bool]:
        if not isinstance(f, dict):
            raise bad_request("each filter must be an object {propertyName, operator, value}")
        missing = [k for k in ("propertyName", "operator") if not f.get(k)]
        if missing:  # HubSpot's deserializer wording, without a category like other JSON-shape errors
            raise bad_request("Invalid input JSON on line 1, column 1: Cannot build Filter, some of required "
                              f"attributes are not set [{', '.join(missing)}]", None)
        name = str(f["propertyName"])
        op = str(f["operator"]).upper()
        if name.startswith("associations."):
            to_type = schema.canonical_type(name.split(".", 1)[1])
            if to_type is None or op not in ("EQ", "IN"):
                raise bad_request(f"Unsupported association filter {name} {op}")
            wanted = {int(v) for v in (f.get("values") or [f.get("value")]) if str(v).isdigit()}
            return lambda r: bool(wanted & set(self.associated_ids(object_type, r.id, to_type)))
        defn = self.properties[object_type].get(name)
        kind = "number" if name == "hs_object_id" else (defn.type if defn else "string")
        enum = kind in ("enumeration", "bool")
        # created / last-modified are kept as ms on the record: the incremental-sync filter needs no parsing
        own_ms: Callable[[Record], int] | None = (
            (lambda r: r.updated_ms) if name == schema.LAST_MODIFIED[object_type]
            else (lambda r: r.created_ms) if name == schema.CREATED[object_type] else None)

        def norm(value: Any) -> Any:
            text = str(value)
            if kind == "number":
                number = _to_float(text)
                if number is None:
                    raise bad_request(f"{text} is not a valid number for {name}")
                return number
            if kind in ("date", "datetime"):
                ms = parse_ms(text)
                if ms is None:
                    raise bad_request(f"{text} is not a valid date for {name}")
                return ms
            return text if enum else text.lower()

        def current(r: Record) -> Any:
            if own_ms is not None:
                return own_ms(r)
            raw = r.props.get(name)
            if raw is None:
                return None
            if kind == "number":
                return _to_float(raw)
            if kind in ("date", "datetime"):
                return parse_ms(raw)
            return raw if enum else raw.lower()

        def value() -> Any:
            if f.get("value") is None:
                raise bad_request(f"Operator {op} needs a value", context={"propertyName": [name]})
            return norm(f["value"])

        if op == "HAS_PROPERTY":
            return lambda r: name in r.props
        if op == "NOT_HAS_PROPERTY":
            return lambda r: name not in r.props
        if op in ("EQ", "NEQ"):
            v = value()
            multi = defn is not None and defn.field_type == "checkbox"

            def eq(r: Record) -> bool:
                c = current(r)
                return c is not None and (c == v or (multi and v in str(c).split(";")))
            return eq if op == "EQ" else (lambda r: not eq(r))
        if op in ("LT", "LTE", "GT", "GTE"):
            v = value()
            cmp = {"LT": lambda c: c < v, "LTE": lambda c: c <= v, "GT": lambda c: c > v, "GTE": lambda c: c >= v}[op]
            return lambda r: (c := current(r)) is not None and cmp(c)
        if op == "BETWEEN":
            low = value()
            if f.get("highValue") is None:
                raise bad_request("BETWEEN needs value and highValue", context={"propertyName": [name]})
            high = norm(f["highValue"])
            return lambda r: (c := current(r)) is not None and low <= c <= high
        if op in ("IN", "NOT_IN"):
            values = f.get("values")
            if not isinstance(values, list):
                raise bad_request(f"Operator {op} needs values", context={"propertyName": [name]})
            wanted = {norm(v) for v in values}
            if op == "IN":
                return lambda r: (c := current(r)) is not None and c in wanted
            return lambda r: current(r) not in wanted
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = str(f.get("value") or "").lower()

            def contains(r: Record) -> bool:
                raw = r.props.get(name)
                if raw is None:
                    return False
                tokens = [t for t in _TOKEN_SPLIT.split(raw.lower()) if t] + [raw.lower()]
                return any(fnmatch.fnmatchcase(t, pattern) for t in tokens)
            return contains if op == "CONTAINS_TOKEN" else (lambda r: not contains(r))
        raise bad_request(f"Unknown operator {op}; use one of LT, LTE, GT, GTE, EQ, NEQ, BETWEEN, IN, NOT_IN, "
                          "HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN",
                          context={"operator": [op]})
