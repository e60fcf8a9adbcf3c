"""The sandbox portal's in-memory data: records, property definitions, history, associations, lists, workflows, tokens.

Every rule that decides an answer (validation, paging, search, scopes) lives here so tests can drive it without HTTP;
``app.py`` only turns requests into calls and results into HubSpot-shaped responses. All public methods take
``self.lock`` because the server thread and the tests' thread both use one Portal.
"""

from __future__ import annotations

import bisect
import fnmatch
import gc
import math
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Callable, Iterable

import orjson

from connector.sandbox import schema
from connector.sandbox.faults import FaultPlan
from connector.sandbox.limits import Budget, RateProfile, profile_named

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000
MAX_BATCH = 100
MAX_BATCH_WITH_HISTORY = 50
MAX_ASSOCIATION_BATCH = 1_000
MAX_ASSOCIATIONS_PER_INPUT = 500  # v4 batch read: per input and response, then that input's paging.next.after
SEARCH_MAX_LIMIT = 200
SEARCH_MAX_RESULTS = 10_000
SEARCH_MAX_GROUPS, SEARCH_MAX_FILTERS_PER_GROUP, SEARCH_MAX_FILTERS = 5, 6, 18
SEARCH_MAX_BODY_CHARS = 3_000
OAUTH_LIFETIME_S = 1_800.0

# Every scope a default token holds (API-NOTES §8).
ALL_SCOPES: frozenset[str] = frozenset(
    [f"crm.objects.{t}.{rw}" for t in schema.OBJECT_TYPES for rw in ("read", "write") if t != "feedback_submissions"]
    + ["crm.objects.feedback_submissions.read", "e-commerce", "crm.lists.read", "crm.lists.write", "automation"]
    + [f"crm.schemas.{t}.{rw}" for t in schema.OBJECT_TYPES for rw in ("read", "write")]
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
}
# Words HubSpot uses in messages ("Could not get some CONTACT objects").
TYPE_WORD = {
    "contacts": "CONTACT", "companies": "COMPANY", "deals": "DEAL", "line_items": "LINE_ITEM",
    "subscriptions": "SUBSCRIPTION", "feedback_submissions": "FEEDBACK_SUBMISSION",
}
SINGULAR_OF = {plural: singular for singular, plural in schema.SINGULAR.items()}
FIELD_TYPES = {
    "string": {"text", "textarea", "file", "html", "phonenumber", "calculation_equation"},
    "phone_number": {"phonenumber", "text"},
    "number": {"number", "calculation_equation"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "date": {"date", "calculation_equation"},
    "datetime": {"date", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
}
SEEDED_WORKFLOWS = ((1001, "At-risk save play"), (1002, "Referral ask"), (1003, "Welcome"), (1004, "Renewal reminder"))
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TOKEN_SPLIT = re.compile(r"[^\w@.*-]+")


# ---------------------------------------------------------------- time


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.")


def iso(ms: int) -> str:
    """Epoch ms -> ISO-8601 UTC with milliseconds and Z, HubSpot's datetime form (writes share seconds: cached)."""
    return f"{_iso_second(ms // 1000)}{ms % 1000:03d}Z"


@lru_cache(maxsize=1 << 18)  # search parses the same stored values page after page
def parse_ms(text: str) -> int | None:
    """Epoch ms (string of digits) or ISO-8601 / YYYY-MM-DD -> epoch ms; None if neither."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(round((parsed - _EPOCH).total_seconds() * 1000))


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: status and HubSpot's JSON body without correlationId (the app adds it and the header)."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def error_body(message: str, category: str | None = "VALIDATION_ERROR", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message}
    if category:
        body["category"] = category
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def bad_request(message: str, category: str | None = "VALIDATION_ERROR", **extra: Any) -> ApiError:
    return ApiError(400, error_body(message, category, **extra))


def not_found(object_id: str) -> ApiError:
    # Two spaces after the full stop, as HubSpot sends it (API-NOTES §5).
    return ApiError(404, error_body("Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                                    context={"id": [str(object_id)]}))


def unknown_type(name: str) -> ApiError:
    return bad_request(f"Unable to infer object type from: {name}", None)


@dataclass(frozen=True)
class PropertyProblem:
    name: str
    code: str
    message: str


def property_error(problems: list[PropertyProblem], portal_id: int) -> dict[str, Any]:
    """HubSpot's property-validation body: a JSON array inside ``message`` plus ``errors[]`` (§11)."""
    inner = [{"isValid": False, "message": p.message, "error": p.code, "name": p.name,
              "localizedErrorMessage": p.message, "portalId": portal_id} for p in problems]
    return error_body(
        "Property values were not valid: " + orjson.dumps(inner).decode(),
        errors=[{"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}} for p in problems],
    )


# ---------------------------------------------------------------- data


@dataclass
class PropDef:
    name: str
    label: str
    type: str
    field_type: str
    group: str
    options: list[dict[str, Any]]
    hubspot_defined: bool
    read_only: bool
    unique: bool
    description: str
    display_order: int
    created_ms: int
    updated_ms: int
    archived: bool = False
    hidden: bool = False
    form_field: bool = True
    option_values: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.refresh_options()

    def refresh_options(self) -> None:
        self.option_values = frozenset(o["value"] for o in self.options)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "updatedAt": iso(self.updated_ms), "createdAt": iso(self.created_ms), "name": self.name,
            "label": self.label, "type": self.type, "fieldType": self.field_type, "description": self.description,
            "groupName": self.group, "options": self.options, "displayOrder": self.display_order,
            "calculated": False, "externalOptions": False, "archived": self.archived,
            "hasUniqueValue": self.unique, "hidden": self.hidden,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined, "readOnlyValue": self.read_only},
            "formField": self.form_field, "dataSensitivity": "non_sensitive",
        }
        if self.hubspot_defined:  # only built-ins carry the flag (§11)
            out["hubspotDefined"] = True
        return out


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


@dataclass
class Token:
    value: str
    scopes: frozenset[str]
    kind: str = "private"  # private | oauth
    expires_ms: int | None = None
    app_id: int = 1


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


@dataclass
class Workflow:
    id: int
    name: str
    enabled: bool
    created_ms: int
    updated_ms: int
    object_type_id: str = "0-1"


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    refresh_token: str


def _norm_unique(prop: str, value: str) -> str:
    return value.lower() if prop == "email" else value


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


def _is_iso_ms(text: str) -> bool:
    """Already HubSpot's form (2024-01-31T12:00:00.000Z)? Then the seeded string is reused as createdAt/updatedAt."""
    return len(text) == 24 and text[-1] == "Z" and text[10] == "T" and text[19] == "."


# ---------------------------------------------------------------- the portal


class Portal:
    """One HubSpot account: data, definitions, tokens, budgets and faults."""

    def __init__(self, *, seed: int = 0, profile: str | RateProfile = "unlimited", faults: str | None = None,
                 search_lag_ms: int = 0, oauth_lifetime_s: float = OAUTH_LIFETIME_S, portal_id: int | None = None):
        self.lock = threading.RLock()
        self.seed = seed
        self.portal_id = portal_id if portal_id is not None else 48_000_000 + seed % 1_000_000
        self.profile = profile if isinstance(profile, RateProfile) else profile_named(profile)
        self.budget = Budget(self.profile, self.portal_id)
        self.faults = FaultPlan(faults, seed)
        self.search_lag_ms = search_lag_ms
        self.oauth_lifetime_s = oauth_lifetime_s
        self.now_ms = now_ms()  # the generator's "today" once a GeneratedPortal is ingested
        self.ground_truth: list[dict] = []
        self._rng = random.Random(seed)
        self._last_write_ms = 0
        self.version = 0  # bumped by every change of records or associations (search cache key)
        self._search_cache: dict[bytes, tuple[int, list[Record]]] = {}
        self._next_id: dict[str, int] = {}
        self.stores: dict[str, TypeStore] = {t: TypeStore() for t in schema.OBJECT_TYPES}
        self.properties: dict[str, dict[str, PropDef]] = {}
        self.groups: dict[str, dict[str, dict[str, Any]]] = {}
        # (from_type, to_type) -> from_id -> to_id -> association type ids
        self.assoc: dict[tuple[str, str], dict[int, dict[int, list[int]]]] = {}
        self.lists: dict[int, HubList] = {}
        self._next_list_id = 1
        self.workflows: dict[int, Workflow] = {}
        self.enrollments: dict[int, dict[int, int]] = {}  # workflow id -> contact id -> enrolled ms
        self.enrollment_log: list[tuple[str, int, int]] = []  # (enroll|unenroll, workflow id, contact id)
        self.tokens: dict[str, Token] = {}
        # (method, path) of the latest requests, for assertions; bounded so a long benchmark does not grow it
        self.calls: deque[tuple[str, str]] = deque(maxlen=100_000)
        self._load_definitions()
        for wf_id, name in SEEDED_WORKFLOWS:
            self.workflows[wf_id] = Workflow(wf_id, name, True, self.now_ms, self.now_ms)
            self.enrollments[wf_id] = {}
        self.token = self.create_token(kind="oauth" if self.profile.name == "oauth" else "private")
        self.oauth_client = OAuthClient(str(self._uuid()), str(self._uuid()), f"na1-{self._uuid()}")

    # ------------------------------------------------------------ set-up

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def _load_definitions(self) -> None:
        created = 1_420_070_400_000  # 2015-01-01: built-ins predate any seeded record
        for object_type, props in schema.PROPERTIES.items():
            defs: dict[str, PropDef] = {}
            groups: dict[str, dict[str, Any]] = {}
            for order, p in enumerate(props):
                options = [{"label": o.replace("_", " ").capitalize() if p.type != "bool" else o.capitalize(),
                            "value": o, "displayOrder": i, "hidden": False} for i, o in enumerate(p.options)]
                defs[p.name] = PropDef(p.name, p.label, p.type, p.field_type, p.group, options, p.hubspot_defined,
                                       p.read_only, p.has_unique_value, p.description, order, created, created)
                if p.group not in groups:
                    groups[p.group] = {"name": p.group, "label": p.group.replace("_", " ").capitalize(),
                                       "displayOrder": len(groups), "archived": False}
            self.properties[object_type] = defs
            self.groups[object_type] = groups
            self.stores[object_type].unique = {name: {} for name, d in defs.items() if d.unique}

    def ingest(self, generated: Any) -> None:
        """Load a ``seed.GeneratedPortal``: records, their history and both directions of every association."""
        # Hundreds of thousands of small dicts and lists: the cyclic GC would rescan them all again and again
        # while they are built, and later during serving. Pause it; for big portals also freeze the loaded data
        # out of its sight (not for small ones: freezing also pins whatever garbage cycles exist at that moment).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._ingest(generated)
        finally:
            if enabled:
                gc.enable()
            if sum(len(records) for records in generated.records.values()) >= 20_000:
                gc.freeze()

    def _ingest(self, generated: Any) -> None:
        with self.lock:
            self.version += 1
            self.now_ms = generated.now_ms
            self.ground_truth = list(generated.ground_truth)
            for object_type, seeds in generated.records.items():
                store = self.stores[object_type]
                last_modified = schema.LAST_MODIFIED[object_type]
                created_name = schema.CREATED[object_type]
                for s in seeds:
                    props = dict(s.properties)
                    values = props.values()
                    if "" in values or None in values:  # no value: absent, so it reads back as null
                        for key in [k for k, v in props.items() if v is None or v == ""]:
                            del props[key]
                    if "hs_object_id" not in props:
                        props["hs_object_id"] = str(s.id)
                    if created_name not in props:
                        props[created_name] = iso(s.created_ms)
                    updated = parse_ms(props[last_modified]) if last_modified in props else None
                    if updated is None:
                        updated = s.created_ms
                        props[last_modified] = iso(updated)
                    # Seeded history stays the generator's (value, ms) lists (copied on the first write, see
                    # _apply); writes append (value, ms, "INTEGRATION").
                    history = s.history
                    created_text, updated_text = props[created_name], props[last_modified]
                    rec = Record(s.id, props, s.created_ms, updated, history, s.archived, s.archived_ms,
                                 created_text if _is_iso_ms(created_text) and parse_ms(created_text) == s.created_ms
                                 else None,
                                 updated_text if _is_iso_ms(updated_text) else None)
                    store.records[s.id] = rec
                    (store.archived_ids if s.archived else store.live_ids).append(s.id)
                    if not s.archived:
                        self._index_unique(object_type, rec)
                    self._last_write_ms = max(self._last_write_ms, updated)
                store.live_ids.sort()
                store.archived_ids.sort()
            self._ingest_associations(generated.associations)
            self._ingest_rollups()

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

    def _index_unique(self, object_type: str, rec: Record) -> None:
        for prop, index in self.stores[object_type].unique.items():
            value = rec.props.get(prop)
            if value:
                index[_norm_unique(prop, value)] = rec.id

    # ------------------------------------------------------------ tokens and scopes

    def create_token(self, scopes: Iterable[str] | None = None, *, kind: str = "private",
                     lifetime_s: float | None = None) -> str:
        """Mint a token (all scopes unless given); OAuth tokens expire after ``lifetime_s`` (default the portal's)."""
        with self.lock:
            if kind == "oauth":
                value = f"CN{self._uuid().hex}{self._uuid().hex}"
                life = self.oauth_lifetime_s if lifetime_s is None else lifetime_s
                expires = now_ms() + int(life * 1000)
            else:
                value = f"pat-na1-{self._uuid()}"
                expires = None if lifetime_s is None else now_ms() + int(lifetime_s * 1000)
            self.tokens[value] = Token(value, frozenset(ALL_SCOPES if scopes is None else scopes), kind, expires)
            return value

    def expire_token(self, value: str) -> None:
        with self.lock:
            self.tokens[value].expires_ms = now_ms() - 1

    def authenticate(self, authorization: str | None) -> Token:
        """Bearer token -> Token, or the 401 HubSpot sends (§5, §11)."""
        value = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else None
        token = self.tokens.get(value) if value else None
        if token is None:
            raise ApiError(401, error_body(
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION"))
        if token.expires_ms is not None and token.expires_ms <= now_ms():
            minutes = (now_ms() - token.expires_ms) // 60_000
            raise ApiError(401, error_body(f"The OAuth token used to make this call expired {minutes} minute(s) ago.",
                                           "EXPIRED_AUTHENTICATION", context={"expire time": [iso(token.expires_ms)]}))
        return token

    @staticmethod
    def require(token: Token, *any_of: str) -> None:
        """403 MISSING_SCOPES unless the token holds one of ``any_of`` (§5, §11 newer form plus errors[])."""
        if any(s in token.scopes for s in any_of):
            return
        context = {"requiredGranularScopes": list(any_of)}
        raise ApiError(403, error_body(
            "One or more of the following scopes are required.", "MISSING_SCOPES", context=context,
            errors=[{"message": "One or more of the following scopes are required.", "context": context}],
            links={"scopes": "https://developers.hubspot.com/scopes"}))

    def refresh_oauth(self, form: dict[str, str]) -> dict[str, Any]:
        """POST /oauth/v1/token with grant_type=refresh_token."""
        c = self.oauth_client
        if form.get("grant_type") != "refresh_token":
            raise bad_request("grant_type must be refresh_token in the sandbox", "BAD_GRANT_TYPE")
        if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
            raise bad_request("missing or unknown client id", "BAD_CLIENT_ID")
        if form.get("refresh_token") != c.refresh_token:
            raise bad_request("missing or unknown refresh token", "BAD_REFRESH_TOKEN")
        access = self.create_token(kind="oauth")
        # token_use, hub_id and scopes: the spec's AccessTokenResponse; older answers had only the first four
        return {"token_type": "bearer", "refresh_token": c.refresh_token, "access_token": access,
                "expires_in": int(self.oauth_lifetime_s), "token_use": "access_token", "hub_id": self.portal_id,
                "scopes": sorted(ALL_SCOPES)}

    # ------------------------------------------------------------ helpers

    def object_type(self, name: str) -> str:
        canonical = schema.canonical_type(name)
        if canonical is None:
            raise unknown_type(name)
        return canonical

    def set_faults(self, spec: str | None) -> None:
        """Script faults on a running sandbox (see faults.py for the grammar); None or "" clears them."""
        self.faults.replace(spec)

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

    # ------------------------------------------------------------ values

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

    # ------------------------------------------------------------ writes

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
            self._apply(object_type, rec, {k: v for k, v in values.items() if v is not None}, ms)
            for to_type, to_id, type_id in links:
                if _ASSOC_LABEL.get((object_type, to_type, type_id)) == "Primary":
                    owner = _primary_owner(object_type, rid, to_type, to_id)
                    if owner is not None:  # one primary company per record: the new one demotes the old
                        self._demote_primary(owner[0], owner[1], "companies")
                self._link(object_type, rid, to_type, to_id, [type_id])
            return rec

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
                type_id = _int_param(t.get("associationTypeId"), 0, "associationTypeId")
                to_type = _ASSOC_TARGET.get((object_type, type_id))
                if to_type is None:
                    raise bad_request(f"association type id {type_id} is not valid from {object_type}")
                if self.find(to_type, str(to_id)) is None:
                    raise bad_request(f"No {to_type} with id {to_id} exists to associate with.",
                                      context={"id": [str(to_id)]})
                links.append((to_type, to_id, type_id))
        return links

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
            for prop, index in store.unique.items():
                value = rec.props.get(prop)
                if value:
                    index.pop(_norm_unique(prop, value), None)
            return True

    # ------------------------------------------------------------ batches

    def check_batch(self, inputs: Any, limit: int = MAX_BATCH, key: str | None = "id") -> list[dict[str, Any]]:
        if not isinstance(inputs, list):
            raise bad_request("inputs must be an array", context={"inputs": ["required"]})
        if len(inputs) > limit:
            raise bad_request(f"Batch input size of {len(inputs)} exceeds the maximum of {limit}.",
                              context={"inputs": [str(len(inputs))]})
        if not all(isinstance(i, dict) for i in inputs):
            raise bad_request("each input must be an object")
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

    # ------------------------------------------------------------ reads

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

    def associated_ids(self, from_type: str, from_id: int, to_type: str) -> dict[int, list[int]]:
        return self.assoc.get((from_type, to_type), {}).get(from_id, {})

    # ------------------------------------------------------------ associations

    def _link(self, a: str, a_id: int, b: str, b_id: int, a_to_b_types: list[int]) -> None:
        """Store one association in both directions (the reverse type ids are the matching ones of the schema)."""
        self.version += 1
        primary = any(_ASSOC_LABEL.get((a, b, t)) == "Primary" for t in a_to_b_types)
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
            self.assoc.get((a, b), {}).get(a_id, {}).pop(b_id, None)
            self.assoc.get((b, a), {}).get(b_id, {}).pop(a_id, None)
            if {a, b} == _ROLLUP_PAIR:
                self._refresh_rollups(a, a_id, b_id)

    def association_json(self, a: str, b: str, types: list[int]) -> list[dict[str, Any]]:
        return [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": _ASSOC_LABEL.get((a, b, t))} for t in types]

    # ------------------------------------------------------------ search

    def search(self, object_type: str, body: dict[str, Any]) -> tuple[int, list[Record], int | None]:
        """Filter, sort and page one search request (API-NOTES §1): (total, page, next offset)."""
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            raise bad_request("filterGroups must be an array")
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
        limit = _int_param(body.get("limit"), 10, "limit")
        if limit > SEARCH_MAX_LIMIT or limit < 0:
            raise bad_request(f"limit must be between 0 and {SEARCH_MAX_LIMIT}.", context={"limit": [str(limit)]})
        offset = _int_param(body.get("after"), 0, "after")
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

    # ------------------------------------------------------------ properties

    def create_property(self, object_type: str, body: Any) -> PropDef:
        with self.lock:
            defn = self._property_from(object_type, body)
            existing = self.properties[object_type].get(defn.name)
            if existing is not None and not existing.archived:
                raise ApiError(409, error_body(f"A property named '{defn.name}' already exists.",
                                               "OBJECT_ALREADY_EXISTS",
                                               subCategory="Properties.PROPERTY_WITH_NAME_EXISTS",
                                               context={"name": [defn.name]}))
            self.properties[object_type][defn.name] = defn
            if defn.unique:
                self.stores[object_type].unique.setdefault(defn.name, {})
            return defn

    def _property_from(self, object_type: str, body: Any) -> PropDef:
        if not isinstance(body, dict):
            raise bad_request("Invalid JSON input: a request body was expected, but none found")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise bad_request(f"Missing required fields: {', '.join(missing)}",
                              context={k: ["required"] for k in missing})
        wrong = [k for k in ("name", "label", "type", "fieldType", "groupName") if not isinstance(body[k], str)]
        if wrong:
            raise bad_request(f"These fields must be strings: {', '.join(wrong)}",
                              context={k: ["string"] for k in wrong})
        name, kind, field_type = body["name"], body["type"], body["fieldType"]
        if not _NAME_RE.match(name):
            raise bad_request(f"Property name '{name}' must start with a letter and hold only lower-case letters, "
                              "digits and underscores.", context={"name": [name]})
        if kind not in FIELD_TYPES:
            raise bad_request(f"Invalid property type '{kind}'; use one of {', '.join(FIELD_TYPES)}.",
                              context={"type": [kind]})
        if field_type not in FIELD_TYPES[kind]:
            raise bad_request(f"fieldType '{field_type}' is not valid for type '{kind}'; use one of "
                              f"{', '.join(sorted(FIELD_TYPES[kind]))}.", context={"fieldType": [field_type]})
        if body["groupName"] not in self.groups[object_type]:
            raise bad_request(f"Property group '{body['groupName']}' does not exist.",
                              context={"groupName": [body["groupName"]]})
        options = self._options(kind, body.get("options"))
        unique = bool(body.get("hasUniqueValue", False))
        if unique and sum(d.unique for d in self.properties[object_type].values()) >= 10:
            raise bad_request("An object can have at most 10 unique-value properties.")
        ms = now_ms()
        order = _int_param(body.get("displayOrder"), -1, "displayOrder")
        return PropDef(name, body["label"], kind, field_type, body["groupName"], options, False, False, unique,
                       str(body.get("description", "")), order, ms, ms,
                       hidden=bool(body.get("hidden", False)), form_field=bool(body.get("formField", False)))

    @staticmethod
    def _options(kind: str, raw: Any) -> list[dict[str, Any]]:
        if kind not in ("enumeration", "bool"):
            return []
        if kind == "bool" and not raw:
            raw = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
        if not isinstance(raw, list) or not raw:
            raise bad_request("Enumeration properties need options [{label, value}].",
                              context={"options": ["required"]})
        options = []
        for i, o in enumerate(raw):
            if not isinstance(o, dict) or "label" not in o or "value" not in o:
                raise bad_request("Each option needs label and value.", context={"options": [str(i)]})
            options.append({"label": str(o["label"]), "value": str(o["value"]),
                            "displayOrder": _int_param(o.get("displayOrder"), i, "displayOrder"),
                            "hidden": bool(o.get("hidden", False)),
                            **({"description": str(o["description"])} if o.get("description") else {})})
        return options

    def update_property(self, object_type: str, name: str, body: Any) -> PropDef:
        with self.lock:
            defn = self.properties[object_type].get(name)
            if defn is None or defn.archived:
                raise ApiError(404, error_body(f"Unable to find property {name} of {object_type}", "OBJECT_NOT_FOUND",
                                               context={"name": [name]}))
            if not isinstance(body, dict):
                raise bad_request("Invalid JSON input: a request body was expected, but none found")
            wrong = [k for k in ("type", "fieldType", "groupName", "label", "description")
                     if k in body and not isinstance(body[k], str)]
            if wrong:
                raise bad_request(f"These fields must be strings: {', '.join(wrong)}")
            kind = body.get("type", defn.type)
            field_type = body.get("fieldType", defn.field_type)
            if kind not in FIELD_TYPES or field_type not in FIELD_TYPES[kind]:
                raise bad_request(f"fieldType '{field_type}' is not valid for type '{kind}'.")
            if "groupName" in body and body["groupName"] not in self.groups[object_type]:
                raise bad_request(f"Property group '{body['groupName']}' does not exist.")
            if "options" in body:
                defn.options = self._options(kind, body["options"])
                defn.refresh_options()
            defn.type, defn.field_type = kind, field_type
            for attr, key in (("label", "label"), ("description", "description"), ("group", "groupName"),
                              ("display_order", "displayOrder"), ("hidden", "hidden"), ("form_field", "formField")):
                if key in body:
                    setattr(defn, attr, body[key])
            defn.updated_ms = now_ms()
            return defn

    def archive_property(self, object_type: str, name: str) -> None:
        """DELETE a custom property (HubSpot keeps it archived); built-ins cannot be archived."""
        with self.lock:
            defn = self.properties[object_type].get(name)
            if defn is None or defn.archived:
                raise ApiError(404, error_body(f"Unable to find property {name} of {object_type}", "OBJECT_NOT_FOUND",
                                               context={"name": [name]}))
            if defn.hubspot_defined:
                raise bad_request(f"Property {name} is defined by HubSpot and cannot be archived.",
                                  context={"name": [name]})
            defn.archived = True
            defn.updated_ms = now_ms()

    def create_group(self, object_type: str, body: Any) -> dict[str, Any]:
        with self.lock:
            if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
                raise bad_request("Property groups need name and label.")
            if not isinstance(body["name"], str) or not isinstance(body["label"], str):
                raise bad_request("Property group name and label must be strings.")
            if body["name"] in self.groups[object_type]:
                raise ApiError(409, error_body(f"A property group named '{body['name']}' already exists.",
                                               "OBJECT_ALREADY_EXISTS", context={"name": [body["name"]]}))
            group = {"name": body["name"], "label": body["label"],
                     "displayOrder": _int_param(body.get("displayOrder"), -1, "displayOrder"), "archived": False}
            self.groups[object_type][body["name"]] = group
            return group

    # ------------------------------------------------------------ lists

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
        offset = _int_param(body.get("offset"), 0, "offset")
        count = min(_int_param(body.get("count"), 20, "count"), 500)
        types = body.get("processingTypes") or []
        wanted_ids = {str(i) for i in body.get("listIds") or []}
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

    # ------------------------------------------------------------ workflows

    def create_workflow(self, name: str, enabled: bool = True) -> int:
        with self.lock:
            wf_id = max(self.workflows, default=1000) + 1
            ms = now_ms()
            self.workflows[wf_id] = Workflow(wf_id, name, enabled, ms, ms)
            self.enrollments[wf_id] = {}
            return wf_id

    def workflow_named(self, name: str) -> int:
        return next(w.id for w in self.workflows.values() if w.name == name)

    def enroll(self, workflow_id: str, email: str, enroll: bool = True) -> None:
        with self.lock:
            wf = self.workflows.get(int(workflow_id)) if workflow_id.isdigit() else None
            if wf is None:
                raise ApiError(404, error_body(f"Workflow {workflow_id} does not exist.", "OBJECT_NOT_FOUND",
                                               context={"workflowId": [workflow_id]}))
            rec = self.find("contacts", email, "email")
            if rec is None:
                raise ApiError(404, error_body(f"Contact with email {email} does not exist.", "OBJECT_NOT_FOUND",
                                               context={"email": [email]}))
            if enroll:
                self.enrollments[wf.id].setdefault(rec.id, now_ms())
            else:
                self.enrollments[wf.id].pop(rec.id, None)
            self.enrollment_log.append(("enroll" if enroll else "unenroll", wf.id, rec.id))

    def enrolled(self, workflow_id: int) -> set[int]:
        """Contact ids currently enrolled in a workflow (for tests' assertions)."""
        with self.lock:
            return set(self.enrollments.get(workflow_id, {}))

    def workflows_of(self, contact_id: int) -> list[Workflow]:
        with self.lock:
            return [self.workflows[w] for w, members in self.enrollments.items() if contact_id in members]


def _to_float(text: Any) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _int_param(raw: Any, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be an integer, got {raw!r}", context={name: [str(raw)]}) from None
