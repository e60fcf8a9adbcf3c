"""Validate sandbox responses against HubSpot's official OpenAPI specs with openapi-core.

The specs are read from ``/work/shared/hubspot/specs`` (never copied into the project). Where recorded HubSpot
traffic contradicts the spec (API-NOTES §11 wins), the spec is relaxed here, each relaxation named with its reason.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

# ../shared/hubspot/specs beside the checkout (CI clones with shared/ beside it), else the workplace's copy.
_CANDIDATES = [Path(__file__).resolve().parents[3] / "shared" / "hubspot" / "specs", Path("/work/shared/hubspot/specs")]
SPECS = Path(os.environ["CONNECTOR_HUBSPOT_SPECS"]) if os.environ.get("CONNECTOR_HUBSPOT_SPECS") else next(
    (c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])
SPEC_HOST = "https://api.hubapi.com"


def _drop_required(schema: dict, *names: str) -> None:
    schema["required"] = [r for r in schema.get("required", []) if r not in names]
    if not schema["required"]:
        del schema["required"]


# (spec file, schema name) -> relaxation; each mirrors an API-NOTES observation of real traffic.
def _relax(name: str, spec: dict) -> dict:
    schemas = spec.get("components", {}).get("schemas", {})
    for response in spec.get("components", {}).get("responses", {}).values():
        # The spec types error bodies as */*, which openapi-core leaves undecoded; HubSpot sends them as JSON.
        if "*/*" in response.get("content", {}):
            response["content"]["application/json"] = response["content"].pop("*/*")
    for schema in schemas.values():
        # §1/§11: requested properties without a value come back as null (the spec types them string only)
        values = schema.get("properties", {}).get("properties", {}).get("additionalProperties")
        if isinstance(values, dict) and values.get("type") == "string":
            values["nullable"] = True
    if "StandardError" in schemas:
        # §11: real 207 error entries omit links and errors, and carry subCategory as a string (as Error types it)
        _drop_required(schemas["StandardError"], "links", "errors")
        schemas["StandardError"]["properties"]["subCategory"] = {"type": "string"}
    if "Error" in schemas:  # §11: 429s, malformed JSON and unknown object types carry no category
        _drop_required(schemas["Error"], "category")
    if "MultiAssociatedObjectWithLabel" in schemas:  # §3/§11: toObjectId is a JSON number in real responses
        schemas["MultiAssociatedObjectWithLabel"]["properties"]["toObjectId"] = {"type": "integer", "format": "int64"}
    if "AssociationSpecWithLabel" in schemas:  # unlabelled association types come back with "label": null
        schemas["AssociationSpecWithLabel"]["properties"]["label"]["nullable"] = True
    return spec


@lru_cache(maxsize=None)
def _relaxed(name: str) -> dict:
    path = SPECS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"HubSpot's OpenAPI specs are not at {SPECS} (set CONNECTOR_HUBSPOT_SPECS): "
                    "conformance not checked")
    return _relax(name, json.loads(path.read_text()))


def relaxed_spec(name: str) -> dict:
    """Spec file ``name`` with the relaxations above, as a fresh dict (callers may change it)."""
    return copy.deepcopy(_relaxed(name))


@lru_cache(maxsize=None)
def spec(name: str) -> OpenAPI:
    return OpenAPI.from_dict(relaxed_spec(name))


@dataclass
class _Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    body: bytes | None
    content_type: str = "application/json"
    host_url: str = SPEC_HOST
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = RequestParameters(query=ImmutableMultiDict(self.query), header=Headers(), cookie={})


@dataclass
class _Response:
    data: bytes
    status_code: int
    content_type: str
    headers: Headers


def check(name: str, response: requests.Response, spec_path: str | None = None) -> Any:
    """Validate a live ``requests`` response against spec file ``name``; return its JSON body (or None).

    ``spec_path`` names the spec's path where HubSpot serves the operation under another one too
    (``/crm/v3/schemas`` is the spec's ``/crm-object-schemas/v3/schemas``)."""
    prepared = response.request
    from urllib.parse import parse_qsl, urlsplit

    url = urlsplit(prepared.url)
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    # The SDK calls some paths with a trailing slash (/crm/v3/lists/); the spec names them without.
    path = spec_path or url.path.rstrip("/") or "/"
    req = _Request(prepared.method.lower(), path, parse_qsl(url.query), body)
    content_type = response.headers.get("content-type", "application/json")
    # openapi-core looks the media type up by its bare name; HubSpot sends "application/json;charset=utf-8".
    resp = _Response(response.content, response.status_code, content_type.replace(";charset=utf-8", ""),
                     Headers(dict(response.headers)))
    spec(name).validate_response(req, resp)
    return response.json() if response.content else None


# ---------------------------------------------------------------- schemathesis findings that are HubSpot's own


@dataclass(frozen=True)
class Relaxation:
    """A finding of tests/sandbox/fuzz.py that HubSpot itself gives (the evidence says where that is known)."""

    name: str
    evidence: str
    kind: str  # the Finding.kind it excuses
    text_has: tuple[str, ...]  # the answer's message or schemathesis' reason holds one of these
    operations: tuple[str, ...] = ()  # only operations whose label holds one of these; () = any

    def excuses(self, finding: Any) -> bool:
        text = f"{finding.message} {finding.reason}"
        return (finding.kind == self.kind and any(t in text for t in self.text_has)
                and (not self.operations or any(o in finding.operation for o in self.operations)))


FUZZ_RELAXATIONS: tuple[Relaxation, ...] = (
    Relaxation("unknown-property", "API-NOTES §11: writing or upserting by a property the portal lacks is a 400 "
               "PROPERTY_DOESNT_EXIST; the spec types property names as any string", "valid refused",
               ("does not exist",)),
    Relaxation("search-limits", "API-NOTES §1 (search guide): body at most 3,000 characters, one sort, 5 groups of "
               "6 filters (18 in all), limit at most 200, else 400; the spec states none of these",
               "valid refused", ("Search request bodies are limited", "Only one sort", "Too many filter",
                                 "limit must be between 0 and 200", "Paging past"), ("/search",)),
    Relaxation("duplicate-batch-ids", "API-NOTES §11: duplicate ids in one batch are a 400 'Duplicate IDs found in "
               "batch input'", "valid refused", ("Duplicate IDs found",)),
    Relaxation("property-definition-rules", "API-NOTES §4: create needs name, label, type, fieldType and groupName "
               "(the spec lets them be empty strings), enumerations need options, the group must exist; the name "
               "rule itself is UNVERIFIED", "valid refused",
               ("Missing required fields", "must start with a letter", "Property groups need name and label",
                "need options", "is not valid for type", "Property group '"), ("/crm/v3/properties/",)),
    Relaxation("list-definition-rules", "API-NOTES §6: a list needs name, objectTypeId and a processingType of "
               "MANUAL, SNAPSHOT or DYNAMIC; a duplicate name is a 400 (ILS.DUPLICATE_LIST_NAMES)", "valid refused",
               ("Missing required fields", "processingType must be", "already exists", "Unable to infer object "
                "type"), ("POST /crm/v3/lists",)),
    Relaxation("non-numeric-list-cursor", "UNVERIFIED: HubSpot's list cursor is the next record's id (§1, §11); a "
               "cursor it never gave is refused rather than read as page 1, which would loop a client", "valid "
               "refused", ("after must be the id returned in paging.next.after",)),
    Relaxation("lenient-boolean-query", "UNVERIFIED (inferred): HubSpot's Java endpoints read boolean query "
               "parameters as true or anything else false, never a 400", "invalid accepted",
               ("was boolean, became",)),
    Relaxation("one-element-query-array", "HTTP has no way to tell an array of one element from a scalar in a "
               "query (`?listIds=5`): what schemathesis sends as 'not an array' is a valid one-element array",
               "invalid accepted", ("(was array, became",)),
)


def split_relaxed(findings: list) -> tuple[list, list]:
    """(findings no relaxation excuses, findings one does)."""
    kept = [f for f in findings if not any(r.excuses(f) for r in FUZZ_RELAXATIONS)]
    return kept, [f for f in findings if f not in kept]
