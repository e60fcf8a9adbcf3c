"""Starlette routes that speak HubSpot's REST API over a Portal, plus the outer layer of faults, auth and limits."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.sandbox import schema
from connector.sandbox.faults import Fault
from connector.sandbox.limits import Refusal
from connector.sandbox.platform import AppPlatform
from connector.sandbox.platform import routes as platform_routes
from connector.sandbox.portal import auth, pipelines
from connector.sandbox.portal.owners import MAX_OWNERS_PAGE, OWNER_SCOPES, owner_json
from connector.sandbox.registry import PortalRegistry
from connector.sandbox.portal import (
    CHANGE_SOURCE, MAX_ASSOCIATION_BATCH, MAX_ASSOCIATIONS_PER_INPUT, MAX_BATCH, MAX_BATCH_WITH_HISTORY,
    SEARCH_MAX_BODY_CHARS, SINGULAR_OF, ApiError, Portal, Record, Token, bad_request, error_body, iso, not_found,
    now_ms,
)
from connector.sandbox.portal.common import int_param

log = logging.getLogger("connector.sandbox")

JSON_TYPE = "application/json;charset=utf-8"  # no space, as HubSpot sends it (§11)
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
Handler = Callable[[Request], Awaitable[Response]]


# ---------------------------------------------------------------- responses


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers={"content-type": JSON_TYPE})


def error_json(status: int, body: dict[str, Any], cid: str, headers: dict[str, str] | None = None) -> Response:
    """HubSpot's envelope: status, message, correlationId first, then category and the rest."""
    ordered = {"status": body.get("status", "error"), "message": body.get("message", ""), "correlationId": cid}
    ordered.update({k: v for k, v in body.items() if k not in ordered})
    return Response(orjson.dumps(ordered), status_code=status, headers={"content-type": JSON_TYPE, **(headers or {})})


def rate_limit_body(refusal: Refusal) -> dict[str, Any]:
    # 429s carry errorType, policyName, groupName and no category (§11).
    return {"status": "error", "message": refusal.message, "errorType": "RATE_LIMIT",
            "policyName": refusal.policy, "groupName": refusal.group}


FAULT_BODIES = {
    423: error_body("The resource is locked by another request. Wait at least 2 seconds and try again.", "LOCKED"),
    500: error_body("internal error", "INTERNAL_ERROR"),
    502: error_body("Bad Gateway: the request timed out while processing.", "BAD_GATEWAY"),
    503: error_body("Service Unavailable", "SERVICE_UNAVAILABLE"),
    504: error_body("Gateway Timeout: the request timed out while processing.", "GATEWAY_TIMEOUT"),
}


# ---------------------------------------------------------------- request helpers


def ctx(request: Request) -> tuple[Portal, Token, str]:
    portal: Portal = request.scope["sandbox.portal"]
    return portal, request.scope.get("sandbox.token"), request.scope["sandbox.cid"]


def multi(request: Request, name: str) -> list[str]:
    """Array query params arrive repeated (the SDK) or comma-separated (people); accept both."""
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(part.strip() for part in raw.split(",") if part.strip())
    return out


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def int_query(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = int_param(raw, default, name)
    if value < 1:
        raise bad_request(f"{name} must be at least 1", context={name: [raw]})
    return min(value, maximum) if maximum else value


async def json_body(request: Request, required: bool = True) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise bad_request("Invalid JSON input: a request body was expected, but none found")
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # HubSpot leaks its Java parser's text here and sends no category (§11).
        raise bad_request(f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}", None) from None


def object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: expected an object")
    return body


def read_scopes(object_type: str) -> tuple[str, ...]:
    return auth.read_scopes(object_type)


def write_scopes(object_type: str) -> tuple[str, ...]:
    if object_type in schema.READ_ONLY_TYPES:  # say "read-only" rather than name a scope that does not exist
        raise bad_request(f"Object type {object_type} ({schema.OBJECT_TYPES[object_type]}) is read-only: "
                          "create, update and archive are not supported for it.")
    return auth.write_scopes(object_type)


def schema_write_scopes(object_type: str) -> tuple[str, ...]:
    return (f"crm.schemas.{object_type}.write",) + (("e-commerce",) if object_type == "line_items" else ())


# The query a list page's paging.next.link repeats, in this order, before the new `after` (API-NOTES §12).
LINK_KEPT = ("properties", "associations", "archived", "propertiesWithHistory")


def next_link(request: Request, limit: int, after: int) -> str:
    """The next page's URL: this request's path and query with the new `after`, so a client following it keeps
    its properties and associations (``?limit=100&properties=listId%2Cname&after=394``)."""
    query = [("limit", str(limit))]
    for name in LINK_KEPT:
        if name in request.query_params:
            values = multi(request, name)
            query.append((name, ",".join(values) if name != "archived" else request.query_params[name]))
    query.append(("after", str(after)))
    return f"{request.base_url}{request.url.path.lstrip('/')}?{urlencode(query)}"


def batch_result(results: list[Any], errors: list[dict[str, Any]], started: int, ok_status: int = 200) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso(started),
                            "completedAt": iso(now_ms())}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return json_response(body, 207)
    return json_response(body, ok_status)


# ---------------------------------------------------------------- record rendering


def render(portal: Portal, object_type: str, rec: Record, names: list[str], history: list[str] | None = None,
           associations: list[str] | None = None) -> dict[str, Any]:
    # dict(zip(map)) runs in C: this is the hot loop of every page (100 records x N properties).
    out: dict[str, Any] = {"id": rec.id_str, "properties": dict(zip(names, map(rec.props.get, names))),
                           "createdAt": rec.created_iso, "updatedAt": rec.updated_iso, "archived": rec.archived}
    if rec.archived and rec.archived_ms is not None:
        out["archivedAt"] = iso(rec.archived_ms)
    if history:
        out["propertiesWithHistory"] = portal.history_json(object_type, rec, history)
    if associations:
        assoc = {}
        for to_type in associations:
            linked = portal.associated_ids(object_type, rec.id, to_type)
            if linked:
                word = f"{SINGULAR_OF[object_type]}_to_{SINGULAR_OF[to_type]}"
                results = []
                labelled_pair = len(schema.ASSOCIATION_TYPES.get((object_type, to_type), ())) > 1
                for to_id, types in sorted(linked.items()):
                    # v3 names: the primary one is "contact_to_company", the plain one "..._unlabeled".
                    if any(_label(object_type, to_type, t) == "Primary" for t in types):
                        results.append({"id": str(to_id), "type": word})
                    results.append({"id": str(to_id), "type": f"{word}_unlabeled" if labelled_pair else word})
                assoc[to_type] = {"results": results}
        if assoc:
            out["associations"] = assoc
    return out


def _label(a: str, b: str, type_id: int) -> str | None:
    for t, label in schema.ASSOCIATION_TYPES.get((a, b), ()):
        if t == type_id:
            return label
    return None


def echo(portal: Portal, object_type: str, rec: Record, written: dict[str, Any] | None) -> dict[str, Any]:
    """Create/update answers echo what was written plus the system properties (§11)."""
    names = [n for n in (written or {}) if n in portal.properties[object_type]]
    for system in ("hs_object_id", schema.CREATED[object_type], schema.LAST_MODIFIED[object_type]):
        if system not in names:
            names.append(system)
    return render(portal, object_type, rec, names)


# ---------------------------------------------------------------- CRM objects


async def objects_collection(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    if request.method == "GET":
        portal.require(token, *read_scopes(object_type))
        # Capped at 100, not refused: API-NOTES §1 and the spec give a maximum but no 400 for more (UNVERIFIED).
        limit = int_query(request, "limit", 10, 100)
        after_raw = request.query_params.get("after")
        try:
            after = int(after_raw) if after_raw else None
        except ValueError:
            raise bad_request(f"after must be the id returned in paging.next.after, got {after_raw!r}") from None
        archived = flag(request, "archived")
        names = portal.resolve_names(object_type, multi(request, "properties"))
        history = portal.resolve_names(object_type, multi(request, "propertiesWithHistory")) \
            if multi(request, "propertiesWithHistory") else None
        assoc = [t for t in (schema.canonical_type(a) for a in multi(request, "associations")) if t]
        if history and limit > MAX_BATCH_WITH_HISTORY:
            # Real HubSpot answers 400 here (hubspot-api-python #143); its get_all pages by 50 with history.
            raise bad_request(f"limit must be at most {MAX_BATCH_WITH_HISTORY} when propertiesWithHistory is "
                              f"requested, got {limit}", context={"limit": [str(limit)]})
        with portal.lock:
            records, nxt = portal.page(object_type, after, limit, archived)
            body: dict[str, Any] = {"results": [render(portal, object_type, r, names, history, assoc) for r in records]}
        if nxt is not None:  # no paging key at all on the last page (§11)
            body["paging"] = {"next": {"after": str(nxt), "link": next_link(request, limit, nxt)}}
        return json_response(body)
    if request.method == "POST":
        portal.require(token, *write_scopes(object_type))
        body = object_body(await json_body(request))
        rec = portal.create(object_type, body.get("properties"), body.get("associations"))
        return json_response(echo(portal, object_type, rec, body.get("properties")), 201)
    raise method_not_allowed(request)


async def object_item(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    id_text = request.path_params["id"]
    id_property = request.query_params.get("idProperty")
    if request.method == "GET":
        portal.require(token, *read_scopes(object_type))
        with portal.lock:
            rec = portal.find(object_type, id_text, id_property, flag(request, "archived"))
            if rec is None:
                raise not_found(id_text)
            names = portal.resolve_names(object_type, multi(request, "properties"))
            history = multi(request, "propertiesWithHistory")
            assoc = [t for t in (schema.canonical_type(a) for a in multi(request, "associations")) if t]
            return json_response(render(portal, object_type, rec, names,
                                        portal.resolve_names(object_type, history) if history else None, assoc))
    if request.method == "PATCH":
        portal.require(token, *write_scopes(object_type))
        body = object_body(await json_body(request))
        rec = portal.update(object_type, id_text, body.get("properties"), id_property)
        return json_response(echo(portal, object_type, rec, body.get("properties")))
    if request.method == "DELETE":
        portal.require(token, *write_scopes(object_type))
        portal.archive(object_type, id_text)
        return Response(status_code=204)
    raise method_not_allowed(request)


async def object_batch(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    op = request.path_params["op"]
    if request.method != "POST":
        raise method_not_allowed(request)
    if op not in ("read", "create", "update", "upsert", "archive"):
        raise route_not_found(request)
    started = now_ms()
    portal.require(token, *(read_scopes(object_type) if op == "read" else write_scopes(object_type)))
    body = object_body(await json_body(request))
    if op == "read":
        history_requested = body.get("propertiesWithHistory") or []
        inputs = portal.check_batch(body.get("inputs"), MAX_BATCH_WITH_HISTORY if history_requested else MAX_BATCH)
        with portal.lock:
            found, missing = portal.batch_read(object_type, [str(i.get("id", "")) for i in inputs],
                                               body.get("idProperty"), flag(request, "archived"))
            names = portal.resolve_names(object_type, body.get("properties") or None)
            history = portal.resolve_names(object_type, history_requested) if history_requested else None
            results = [render(portal, object_type, r, names, history) for r in found]
        errors = [portal.missing_error(object_type, missing)] if missing else []
        return batch_result(results, errors, started)
    if op == "create":
        inputs = portal.check_batch(body.get("inputs"), key=None)
        created, errors = portal.batch_create(object_type, inputs)
        results = [echo(portal, object_type, rec, item.get("properties")) for rec, item in created]
        return batch_result(results, errors, started, ok_status=201)
    if op == "update":
        inputs = portal.check_batch(body.get("inputs"))
        updated, errors = portal.batch_update(object_type, inputs)
        by_id = {str(i.get("id")): i.get("properties") for i in inputs}
        return batch_result([echo(portal, object_type, rec, by_id.get(str(rec.id))) for rec in updated], errors,
                            started)
    if op == "upsert":
        inputs = portal.check_batch(body.get("inputs"))
        upserted, errors = portal.batch_upsert(object_type, inputs)
        results = [{**echo(portal, object_type, rec, None), "new": new} for rec, new in upserted]
        return batch_result(results, errors, started)
    inputs = portal.check_batch(body.get("inputs"))
    for item in inputs:
        portal.archive(object_type, str(item.get("id", "")))
    return Response(status_code=204)


async def object_search(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    if request.method != "POST":
        raise method_not_allowed(request)
    portal.require(token, *read_scopes(object_type))
    raw = await request.body()
    if len(raw) > SEARCH_MAX_BODY_CHARS:
        raise bad_request(f"Search request bodies are limited to {SEARCH_MAX_BODY_CHARS} characters.")
    body = object_body(await json_body(request))
    total, records, nxt = portal.search(object_type, body)
    names = portal.resolve_names(object_type, body.get("properties") or None)
    with portal.lock:
        out: dict[str, Any] = {"total": total, "results": [render(portal, object_type, r, names) for r in records]}
    if nxt is not None:
        out["paging"] = {"next": {"after": str(nxt)}}  # an offset, and no link (§11)
    return json_response(out)


# ---------------------------------------------------------------- properties


SENSITIVITIES = ("non_sensitive", "sensitive", "highly_sensitive")


def _sensitivity(raw: Any) -> str:
    """The spec's dataSensitivity enum (default non_sensitive); anything else is a 400, as Java's enum parsing."""
    if raw is None:
        return "non_sensitive"
    if raw not in SENSITIVITIES:
        raise bad_request(f"dataSensitivity must be one of {', '.join(SENSITIVITIES)}, got {raw!r}",
                          context={"dataSensitivity": [str(raw)]})
    return raw


def _property_or_404(portal: Portal, object_type: str, name: str, archived: bool = False):
    defn = portal.properties[object_type].get(name)
    if defn is None or defn.archived != archived:
        raise ApiError(404, error_body(f"Unable to find property {name} of {object_type}", "OBJECT_NOT_FOUND",
                                       context={"name": [name]}))
    return defn


async def properties_collection(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    if request.method == "GET":
        portal.require(token, *read_scopes(object_type), f"crm.schemas.{object_type}.read")
        archived = flag(request, "archived")
        if _sensitivity(request.query_params.get("dataSensitivity")) != "non_sensitive":
            return json_response({"results": []})  # every sandbox property is non_sensitive
        with portal.lock:
            return json_response({"results": [d.to_json() for d in portal.properties[object_type].values()
                                              if d.archived == archived]})
    if request.method == "POST":
        portal.require(token, *schema_write_scopes(object_type))
        defn = portal.create_property(object_type, await json_body(request))
        return json_response(defn.to_json(), 201)
    raise method_not_allowed(request)


async def property_item(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    name = request.path_params["name"]
    if request.method == "GET":
        portal.require(token, *read_scopes(object_type), f"crm.schemas.{object_type}.read")
        return json_response(_property_or_404(portal, object_type, name, flag(request, "archived")).to_json())
    if request.method == "PATCH":
        portal.require(token, *schema_write_scopes(object_type))
        return json_response(portal.update_property(object_type, name, await json_body(request)).to_json())
    if request.method == "DELETE":
        portal.require(token, *schema_write_scopes(object_type))
        portal.archive_property(object_type, name)
        return Response(status_code=204)
    raise method_not_allowed(request)


async def property_batch(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    op = request.path_params["op"]
    if request.method != "POST":
        raise method_not_allowed(request)
    started = now_ms()
    body = object_body(await json_body(request))
    if op == "create":
        portal.require(token, *schema_write_scopes(object_type))
        inputs = portal.check_batch(body.get("inputs"), key=None)
        portal.check_property_enums(inputs)
        results, errors = [], []
        for item in inputs:
            try:
                results.append(portal.create_property(object_type, item).to_json())
            except ApiError as exc:
                errors.append(portal.batch_entry_error(exc, {}))
        return batch_result(results, errors, started, ok_status=201)
    if op == "read":
        portal.require(token, *read_scopes(object_type), f"crm.schemas.{object_type}.read")
        inputs = portal.check_batch(body.get("inputs"), key="name")
        sensitive = _sensitivity(body.get("dataSensitivity")) != "non_sensitive"
        results, missing = [], []
        for item in inputs:
            defn = portal.properties[object_type].get(str(item.get("name")))
            if defn is None or defn.archived != bool(body.get("archived", False)) or sensitive:
                missing.append(str(item.get("name")))
            else:
                results.append(defn.to_json())
        errors = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Some properties do not exist.",
                   "context": {"names": missing}}] if missing else []
        return batch_result(results, errors, started)
    raise route_not_found(request)


async def property_groups(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    if request.method == "GET":
        portal.require(token, *read_scopes(object_type), f"crm.schemas.{object_type}.read")
        return json_response({"results": list(portal.groups[object_type].values())})
    if request.method == "POST":
        portal.require(token, *schema_write_scopes(object_type))
        return json_response(portal.create_group(object_type, await json_body(request)), 201)
    raise method_not_allowed(request)


async def property_group_item(request: Request) -> Response:
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, *read_scopes(object_type), f"crm.schemas.{object_type}.read")
    group = portal.groups[object_type].get(request.path_params["name"])
    if group is None:
        raise ApiError(404, error_body(f"Unable to find property group {request.path_params['name']}",
                                       "OBJECT_NOT_FOUND"))
    return json_response(group)


# ---------------------------------------------------------------- associations v4


def _record_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise not_found(text) from None


async def associations_batch_read(request: Request) -> Response:
    portal, token, _ = ctx(request)
    from_type = portal.object_type(request.path_params["from"])
    to_type = portal.object_type(request.path_params["to"])
    if request.method != "POST":
        raise method_not_allowed(request)
    portal.require(token, *read_scopes(from_type))
    started = now_ms()
    body = object_body(await json_body(request))
    inputs = portal.check_batch(body.get("inputs"), MAX_ASSOCIATION_BATCH, key=None, required="id")
    results, errors = [], []
    with portal.lock:
        for item in inputs:
            id_text = str(item.get("id", ""))
            linked = portal.associated_ids(from_type, int(id_text), to_type) if id_text.isdigit() else {}
            if not linked:
                # HubSpot reports records without associations as per-input errors (207).
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                               "message": f"No {SINGULAR_OF[to_type]} is associated with "
                                          f"{SINGULAR_OF[from_type]} {id_text}.",
                               "context": {"fromObjectId": [id_text],
                                           "fromObjectType": [SINGULAR_OF[from_type]],
                                           "toObjectType": [SINGULAR_OF[to_type]]}})
                continue
            # At most 500 associations per input and response; the rest by that input's own cursor, which the
            # client sends back as {"id", "after"} (API-NOTES §3). The cursor is an offset, opaque to clients.
            after = item.get("after")
            offset = _association_offset(after)
            ordered = sorted(linked.items())
            chunk = ordered[offset:offset + MAX_ASSOCIATIONS_PER_INPUT]
            result: dict[str, Any] = {"from": {"id": id_text}, "to": [
                {"toObjectId": to_id, "associationTypes": portal.association_json(from_type, to_type, types)}
                for to_id, types in chunk]}
            if offset + MAX_ASSOCIATIONS_PER_INPUT < len(ordered):
                result["paging"] = {"next": {"after": str(offset + MAX_ASSOCIATIONS_PER_INPUT)}}
            results.append(result)
    return batch_result(results, errors, started)


def _association_offset(after: Any) -> int:
    if after is None or after == "":
        return 0
    text = str(after)
    if not text.isdigit():
        raise bad_request(f"after must be the cursor returned in paging.next.after, got {text!r}",
                          context={"after": [text]})
    return int(text)


async def record_associations(request: Request) -> Response:
    portal, token, _ = ctx(request)
    from_type = portal.object_type(request.path_params["type"])
    to_type = portal.object_type(request.path_params["to"])
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, *read_scopes(from_type))
    from_id = _record_id(request.path_params["id"])
    limit = int_query(request, "limit", 500, 500)
    offset = int(request.query_params.get("after") or 0) if (request.query_params.get("after") or "0").isdigit() \
        else 0
    with portal.lock:
        if portal.find(from_type, str(from_id)) is None:
            raise not_found(str(from_id))
        linked = sorted(portal.associated_ids(from_type, from_id, to_type).items())
        chunk = linked[offset:offset + limit]
        body: dict[str, Any] = {"results": [
            {"toObjectId": to_id, "associationTypes": portal.association_json(from_type, to_type, types)}
            for to_id, types in chunk]}
    if offset + limit < len(linked):
        body["paging"] = {"next": {"after": str(offset + limit)}}
    return json_response(body)


async def association_default(request: Request) -> Response:
    portal, token, _ = ctx(request)
    from_type = portal.object_type(request.path_params["type"])
    to_type = portal.object_type(request.path_params["to"])
    if request.method != "PUT":
        raise method_not_allowed(request)
    portal.require(token, *write_scopes(from_type))
    started = now_ms()
    made = portal.associate_default(from_type, _record_id(request.path_params["id"]), to_type,
                                    _record_id(request.path_params["toId"]))
    results = [{"from": {"id": str(a_id)}, "to": {"id": str(b_id)},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}}
               for _, a_id, _, b_id, type_id in made]
    return batch_result(results, [], started)


async def association_item(request: Request) -> Response:
    portal, token, _ = ctx(request)
    from_type = portal.object_type(request.path_params["type"])
    to_type = portal.object_type(request.path_params["to"])
    if request.method != "DELETE":
        raise method_not_allowed(request)
    portal.require(token, *write_scopes(from_type))
    portal.disassociate(from_type, _record_id(request.path_params["id"]), to_type,
                        _record_id(request.path_params["toId"]))
    return Response(status_code=204)


# ---------------------------------------------------------------- workflows


async def workflow_enrollment(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method not in ("POST", "DELETE"):
        raise method_not_allowed(request)
    portal.require(token, "automation")
    portal.enroll(request.path_params["wf"], request.path_params["email"], enroll=request.method == "POST")
    return Response(status_code=204)


async def contact_enrollments(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, "automation")
    vid = request.path_params["vid"]
    with portal.lock:
        if portal.find("contacts", vid) is None:
            raise ApiError(404, error_body(f"Contact {vid} does not exist.", "OBJECT_NOT_FOUND",
                                           context={"vid": [vid]}))
        return json_response([{"id": w.id, "name": w.name, "type": "DRIP_DELAY", "enabled": w.enabled,
                               "portalId": portal.portal_id, "insertedAt": w.created_ms, "updatedAt": w.updated_ms}
                              for w in portal.workflows_of(int(vid))])


async def flows(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, "automation")
    limit = int_query(request, "limit", 100, 100)
    after = request.query_params.get("after")
    with portal.lock:
        ordered = sorted(portal.workflows.values(), key=lambda w: w.id)
        if after and after.isdigit():
            ordered = [w for w in ordered if w.id > int(after)]
        chunk = ordered[:limit]
        body: dict[str, Any] = {"results": [
            {"id": str(w.id), "isEnabled": w.enabled, "flowType": "WORKFLOW", "name": w.name,
             "objectTypeId": w.object_type_id, "revisionId": "1", "createdAt": iso(w.created_ms),
             "updatedAt": iso(w.updated_ms)} for w in chunk]}
    if len(ordered) > limit:
        body["paging"] = {"next": {"after": str(chunk[-1].id)}}
    return json_response(body)


# ---------------------------------------------------------------- lists v3


async def lists_collection(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method == "POST":
        portal.require(token, "crm.lists.write")
        return json_response({"list": portal.create_list(await json_body(request)).to_json()})
    if request.method == "GET":
        portal.require(token, "crm.lists.read")
        ids = multi(request, "listIds")
        with portal.lock:
            found = [portal.lists[int(i)].to_json() for i in ids if i.isdigit() and int(i) in portal.lists]
        return json_response({"lists": found})
    raise method_not_allowed(request)


async def lists_search(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "POST":
        raise method_not_allowed(request)
    portal.require(token, "crm.lists.read")
    return json_response(portal.search_lists(await json_body(request)))


async def list_item(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, "crm.lists.read")
    return json_response({"list": portal.get_list(request.path_params["listId"]).to_json()})


async def list_by_name(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, "crm.lists.read")
    return json_response({"list": portal.list_by_name(request.path_params["typeId"],
                                                      request.path_params["name"]).to_json()})


async def list_memberships(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, "crm.lists.read")
    limit = int_query(request, "limit", 100, 250)
    after = request.query_params.get("after") or "0"
    offset = int(after) if after.isdigit() else 0
    with portal.lock:
        lst = portal.get_list(request.path_params["listId"])
        members = sorted(lst.members.items())
        chunk = members[offset:offset + limit]
        results = [{"recordId": str(rid), "membershipTimestamp": iso(ms)} for rid, ms in chunk]
        body: dict[str, Any] = {"results": results,
                                "total": len(members)}
    if offset + limit < len(members):
        body["paging"] = {"next": {"after": str(offset + limit)}}
    return json_response(body)


async def list_membership_change(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "PUT":
        raise method_not_allowed(request)
    portal.require(token, "crm.lists.write")
    op = request.path_params["op"]
    body = await json_body(request)
    if op in ("add", "remove"):
        if not isinstance(body, list):
            raise bad_request("The body must be a JSON array of record ids.")
        add, remove = (body, []) if op == "add" else ([], body)
    elif op == "add-and-remove":
        body = object_body(body)
        add, remove = body.get("recordIdsToAdd") or [], body.get("recordIdsToRemove") or []
    else:
        raise route_not_found(request)
    return json_response(portal.change_members(request.path_params["listId"], add, remove))


# ---------------------------------------------------------------- owners and pipelines (owners v3, pipelines v3)


async def owners_collection(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, *OWNER_SCOPES)
    limit = int_query(request, "limit", 100, MAX_OWNERS_PAGE)
    owners, nxt = portal.owners_page(request.query_params.get("after"), limit,
                                     request.query_params.get("email") or None, flag(request, "archived"))
    body: dict[str, Any] = {"results": [owner_json(o) for o in owners]}
    if nxt is not None:  # the link repeats the request's query with the new cursor
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"] + [("after", str(nxt))]
        body["paging"] = {"next": {"after": str(nxt), "link": f"{request.base_url}crm/v3/owners?{urlencode(query)}"}}
    return json_response(body)


async def owner_item(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, *OWNER_SCOPES)
    return json_response(owner_json(portal.owner(request.path_params["ownerId"],
                                                 request.query_params.get("idProperty", "id"), flag(request, "archived"))))


async def pipeline_read(request: Request) -> Response:
    """GET of a type's pipelines, one pipeline, its stages or one stage (the route's path params say which)."""
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    object_type = portal.object_type(request.path_params["type"])
    portal.require(token, *read_scopes(object_type), f"crm.schemas.{object_type}.read", "automation")
    params = request.path_params
    if "pipelineId" not in params:
        return json_response({"results": [p.to_json(i) for i, p in enumerate(pipelines.pipelines_of(object_type))]})
    if "stageId" in params:
        order, stage = pipelines.stage(object_type, params["pipelineId"], params["stageId"])
        return json_response(stage.to_json(order))
    found = pipelines.pipeline(object_type, params["pipelineId"])
    if request.url.path.endswith("/stages"):
        return json_response({"results": [s.to_json(i) for i, s in enumerate(found.stages)]})
    return json_response(found.to_json(pipelines.pipelines_of(object_type).index(found)))


SERVICE_ROUTES = [
    ("/crm/v3/owners", owners_collection),
    ("/crm/v3/owners/{ownerId}", owner_item),
    ("/crm/v3/pipelines/{type}", pipeline_read),
    ("/crm/v3/pipelines/{type}/{pipelineId}", pipeline_read),
    ("/crm/v3/pipelines/{type}/{pipelineId}/stages", pipeline_read),
    ("/crm/v3/pipelines/{type}/{pipelineId}/stages/{stageId}", pipeline_read),
]


# ---------------------------------------------------------------- schemas and the legacy properties v2


async def schemas(request: Request) -> Response:
    portal, token, _ = ctx(request)
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, "crm.schemas.custom.read", "crm.objects.custom.read")
    return json_response({"results": []})  # a sandbox portal holds no custom objects (schemas-v3.json)


def _definitions_reader(request: Request) -> tuple[Portal, str]:
    """The portal and object type of a GET of definitions, once its scopes are checked (v3 and v2 alike)."""
    portal, token, _ = ctx(request)
    object_type = portal.object_type(request.path_params["type"])
    if request.method != "GET":
        raise method_not_allowed(request)
    portal.require(token, *read_scopes(object_type), f"crm.schemas.{object_type}.read")
    return portal, object_type


async def legacy_properties(request: Request) -> Response:
    """``/properties/v2/{type}/properties[/named/{name}]``: the v3 definitions in the legacy shape."""
    portal, object_type = _definitions_reader(request)
    with portal.lock:
        if "name" in request.path_params:
            return json_response(_property_or_404(portal, object_type, request.path_params["name"]).to_v2_json())
        return json_response([d.to_v2_json() for d in portal.properties[object_type].values() if not d.archived])


async def legacy_property_groups(request: Request) -> Response:
    """``/properties/v2/{type}/groups[?includeProperties=true]``: groups as ``{name, displayName, …}``."""
    portal, object_type = _definitions_reader(request)
    with portal.lock:
        live = [d for d in portal.properties[object_type].values() if not d.archived]
        out = []
        for group in portal.groups[object_type].values():
            members = [d for d in live if d.group == group["name"]]
            item = {"name": group["name"], "displayName": group["label"], "displayOrder": group["displayOrder"],
                    "hubspotDefined": any(d.hubspot_defined for d in members), "portalId": portal.portal_id}
            if flag(request, "includeProperties"):
                item["properties"] = [d.to_v2_json() for d in members]
            out.append(item)
    return json_response(out)


# ---------------------------------------------------------------- routing


def method_not_allowed(request: Request) -> ApiError:
    return ApiError(405, error_body(f"HTTP {request.method} is not supported by {request.url.path}", None))


def route_not_found(request: Request) -> ApiError:
    return ApiError(404, error_body(f"No resource at {request.method} {request.url.path}", None))


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Turn ApiError into HubSpot's error envelope and anything unexpected into a 500 without a traceback."""

    async def endpoint(request: Request) -> Response:
        cid = request.scope["sandbox.cid"]
        try:
            return await handler(request)
        except ApiError as exc:
            return error_json(exc.status, exc.body, cid)
        except Exception:  # a sandbox bug must still answer like HubSpot, never with a traceback
            log.exception("sandbox handler failed: %s %s", request.method, platform_routes.redacted(request.url.path))
            return error_json(500, error_body("internal error", "INTERNAL_ERROR"), cid)

    return endpoint


def _route(path: str, handler: Handler) -> Route:
    return Route(path, guarded(handler), methods=ALL_METHODS)


ROUTES = [
    _route("/crm/v3/objects/{type}", objects_collection),
    _route("/crm/v3/objects/{type}/search", object_search),
    _route("/crm/v3/objects/{type}/batch/{op}", object_batch),
    _route("/crm/v3/objects/{type}/{id}", object_item),
    _route("/crm/v3/properties/{type}", properties_collection),
    _route("/crm/v3/properties/{type}/groups", property_groups),
    _route("/crm/v3/properties/{type}/groups/{name}", property_group_item),
    _route("/crm/v3/properties/{type}/batch/{op}", property_batch),
    _route("/crm/v3/properties/{type}/{name}", property_item),
    _route("/crm/v4/associations/{from}/{to}/batch/read", associations_batch_read),
    _route("/crm/v4/objects/{type}/{id}/associations/default/{to}/{toId}", association_default),
    _route("/crm/v4/objects/{type}/{id}/associations/{to}", record_associations),
    _route("/crm/v4/objects/{type}/{id}/associations/{to}/{toId}", association_item),
    _route("/automation/v2/workflows/enrollments/contacts/{vid}", contact_enrollments),
    _route("/automation/v2/workflows/{wf}/enrollments/contacts/{email}", workflow_enrollment),
    _route("/automation/v4/flows", flows),
    _route("/crm/v3/lists", lists_collection),
    _route("/crm/v3/lists/search", lists_search),
    _route("/crm/v3/lists/object-type-id/{typeId}/name/{name}", list_by_name),
    _route("/crm/v3/lists/{listId}", list_item),
    _route("/crm/v3/lists/{listId}/memberships", list_memberships),
    _route("/crm/v3/lists/{listId}/memberships/{op}", list_membership_change),
    *(_route(path, handler) for path, handler in SERVICE_ROUTES),
    # ---- app platform (OAuth, action callbacks, /_sandbox controls): connector/sandbox/platform/routes.py
    *(_route(path, handler) for path, handler in platform_routes.ROUTES),
]


def _unauthenticated(path: str) -> bool:
    return path.startswith(platform_routes.UNAUTHENTICATED_PREFIXES)


# -- schemas, legacy properties v2 and the date-versioned paths (issue 13, fidelity) --
ROUTES += [
    _route("/crm/v3/schemas", schemas),
    _route("/crm-object-schemas/v3/schemas", schemas),  # the spec's path for the same list
    _route("/properties/v2/{type}/properties", legacy_properties),
    _route("/properties/v2/{type}/properties/named/{name}", legacy_properties),
    _route("/properties/v2/{type}/groups", legacy_property_groups),
]
# HubSpot's 2026-03 specs give these paths the operations and shapes of their v3/v4 counterparts (differences
# noted in tests/sandbox/test_versioned.py), so they are the same handlers under a second path.
VERSIONED_PREFIXES = (
    ("/crm/v3/objects/", "/crm/objects/2026-03/"), ("/crm/v4/objects/", "/crm/objects/2026-03/"),
    ("/crm/v3/properties/", "/crm/properties/2026-03/"), ("/crm/v4/associations/", "/crm/associations/2026-03/"),
    ("/crm/v3/lists", "/crm/lists/2026-03"),
)
ROUTES += [Route(new + route.path[len(old):], route.endpoint, methods=ALL_METHODS)
           for route in list(ROUTES) for old, new in VERSIONED_PREFIXES if route.path.startswith(old)]
OBJECT_SEARCH_PREFIXES = ("/crm/v3/objects/", "/crm/objects/2026-03/")
# --


class SandboxApp:
    """The outer ASGI layer: correlation id, the portal the token addresses, faults, auth (401), budgets (429) and
    rate headers, then the routes."""

    def __init__(self, portals: Portal | PortalRegistry, platform: AppPlatform):
        self.portals = portals if isinstance(portals, PortalRegistry) else PortalRegistry([portals])
        self.portal = self.portals.primary
        self.platform = platform

        async def unknown(scope: Scope, receive: Receive, send: Send) -> None:
            body = error_body(f"No resource at {scope['method']} {platform_routes.redacted(scope['path'])}", None)
            await error_json(404, body, scope["sandbox.cid"])(scope, receive, send)

        self.router = Router(routes=ROUTES, redirect_slashes=False, default=unknown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        headers = dict(scope["headers"])
        authorization = (headers.get(b"authorization") or b"").decode("latin-1") or None
        portal = self.portals.for_authorization(authorization)
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):  # the SDK calls /crm/v3/lists/ with a trailing slash
            path = path.rstrip("/")
            scope["path"] = path
        cid = str(uuid.uuid4())
        scope["sandbox.cid"] = cid
        scope["sandbox.portal"] = portal
        scope["sandbox.portals"] = self.portals
        scope["sandbox.platform"] = self.platform
        portal.calls.append((scope["method"], path))
        is_search = scope["method"] == "POST" and path.endswith("/search") and path.startswith(OBJECT_SEARCH_PREFIXES)

        fault = portal.faults.decide(path)
        if fault is not None:
            if fault.kind == "reset":
                await _reset(send)
                return
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay_s)
            else:
                await _fault_response(fault, cid, portal.portal_id, is_search)(scope, receive, _with_cid(send, cid))
                return

        if not _unauthenticated(path):
            try:
                token = portal.authenticate(authorization)
            except ApiError as exc:
                response = error_json(401, exc.body, cid, {"x-hubspot-auth-failure": "401 Unauthorized"})
                await response(scope, receive, _with_cid(send, cid))
                return
            scope["sandbox.token"] = token
            CHANGE_SOURCE.set(("INTEGRATION", str(token.app_id)))  # webhooks name the app that wrote
            if is_search:
                refusal, rate_headers = portal.budget.spend_search(), {}
            else:
                refusal, rate_headers = portal.budget.spend(str(token.app_id))
            if refusal is not None:
                await error_json(429, rate_limit_body(refusal), cid)(scope, receive, _with_cid(send, cid))
                return
            await self.router(scope, receive, _with_cid(send, cid, rate_headers))
            return
        await self.router(scope, receive, _with_cid(send, cid))


def _fault_response(fault: Fault, cid: str, portal_id: int, is_search: bool) -> Response:
    """An injected error answers as HubSpot's own would (no rate headers: _with_cid adds none to errors)."""
    if fault.status == 429:
        # Search has its own per-second policy and message (§11), so an injected search 429 says so too.
        refusal = (Refusal("SECONDLY", "You have reached your secondly limit.",
                           f"publicapi:search-api-calls-secondly:{portal_id}") if is_search else
                   Refusal("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.",
                           "publicapi:private_app-api-calls-ten-secondly:injected"))
        return error_json(429, rate_limit_body(refusal), cid)
    return error_json(fault.status, FAULT_BODIES[fault.status], cid)


def _with_cid(send: Send, cid: str, rate_headers: dict[str, str] | None = None) -> Send:
    """Add x-hubspot-correlation-id to every answer, and rate headers to successful ordinary ones (§11)."""
    extra = [(b"x-hubspot-correlation-id", cid.encode())]
    rate = [(k.encode(), v.encode()) for k, v in (rate_headers or {}).items()]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", [])) + extra
            if rate and message["status"] < 400:
                headers += rate
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _reset(send: Send) -> None:
    """Close the connection without an answer (a TCP reset), through uvicorn's transport.

    ASGI has no way to drop a connection, so this reaches for the server's transport behind ``send``.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("connection resets need uvicorn's HTTP protocol")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:  # linger 0 turns the close into a reset, as a crashed load balancer would
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    cycle.disconnected = True  # tell uvicorn not to complain that no response was started
    await asyncio.sleep(0)


def build_app(portals: Portal | PortalRegistry, platform: AppPlatform) -> ASGIApp:
    return SandboxApp(portals, platform)

