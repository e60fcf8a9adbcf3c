"""The sandbox portal's in-memory data: records, property definitions, history, associations, lists, workflows, tokens.

Every rule that decides an answer (validation, paging, search, scopes) lives in this package so tests can drive it
without HTTP; ``app.py`` only turns requests into calls and results into HubSpot-shaped responses. All public methods
take ``self.lock`` because the server thread and the tests' thread both use one Portal.

``Portal`` is a facade: it owns the lock and the shared state (set up here, with ``ingest``) and takes its methods
from one mixin per concern (records, search, properties, associations, lists, workflows, auth, owners; pipelines
are the same in every portal and live in ``pipelines``). A record is created
in ``RecordsMixin.create``, changed in ``RecordsMixin._apply`` (every update and batch write), archived in
``RecordsMixin.archive`` and associated in ``AssociationsMixin._link``: the seams for hooks on changes.
"""

from __future__ import annotations

import gc
import random
import threading
from collections import deque
from typing import Any, Callable

from connector.sandbox import schema
from connector.sandbox.faults import FaultPlan
from connector.sandbox.limits import Budget, RateProfile, profile_named
from connector.sandbox.portal.associations import AssociationsMixin, association_type_ids
from connector.sandbox.portal.auth import ALL_SCOPES, OAUTH_LIFETIME_S, AuthMixin, OAuthClient, Token
from connector.sandbox.portal.common import (
    CHANGE_SOURCE, DAY_MS, MAX_ASSOCIATION_BATCH, MAX_ASSOCIATIONS_PER_INPUT, MAX_BATCH, MAX_BATCH_WITH_HISTORY, SINGULAR_OF,
    TYPE_WORD, ApiError, Change, PropertyProblem, bad_request, error_body, iso, not_found, now_ms, parse_ms, property_error,
    unknown_type,
)
from connector.sandbox.portal.lists import HubList, ListsMixin
from connector.sandbox.portal.owners import OwnersMixin, owner_json
from connector.sandbox.portal.properties import FIELD_TYPES, PropDef, PropertiesMixin
from connector.sandbox.portal.records import DEFAULT_PROPERTIES, Record, RecordsMixin, TypeStore, _is_iso_ms
from connector.sandbox.portal.search import (
    SEARCH_MAX_BODY_CHARS, SEARCH_MAX_FILTERS, SEARCH_MAX_FILTERS_PER_GROUP, SEARCH_MAX_GROUPS, SEARCH_MAX_LIMIT,
    SEARCH_MAX_RESULTS, SearchMixin,
)
from connector.sandbox.portal.workflows import SEEDED_WORKFLOWS, Workflow, WorkflowsMixin

__all__ = [
    "ALL_SCOPES", "CHANGE_SOURCE", "Change", "DAY_MS", "DEFAULT_PROPERTIES", "FIELD_TYPES", "MAX_ASSOCIATION_BATCH", "MAX_ASSOCIATIONS_PER_INPUT",
    "MAX_BATCH", "MAX_BATCH_WITH_HISTORY", "OAUTH_LIFETIME_S", "SEARCH_MAX_BODY_CHARS", "SEARCH_MAX_FILTERS",
    "SEARCH_MAX_FILTERS_PER_GROUP", "SEARCH_MAX_GROUPS", "SEARCH_MAX_LIMIT", "SEARCH_MAX_RESULTS", "SEEDED_WORKFLOWS",
    "SINGULAR_OF", "TYPE_WORD", "ApiError", "HubList", "OAuthClient", "Portal", "PropDef", "PropertyProblem", "Record",
    "Token", "TypeStore", "Workflow", "association_type_ids", "bad_request", "error_body", "iso", "not_found",
    "now_ms", "owner_json", "parse_ms", "property_error", "unknown_type",
]


class Portal(RecordsMixin, SearchMixin, PropertiesMixin, AssociationsMixin, ListsMixin, WorkflowsMixin, AuthMixin,
             OwnersMixin):
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
        self.owners: dict[int, Any] = {}  # owner id -> seed.SeedOwner
        # (method, path) of the latest requests, for assertions; bounded so a long benchmark does not grow it
        self.calls: deque[tuple[str, str]] = deque(maxlen=100_000)
        # Called with every Change under the lock (the app platform queues webhook events): keep them cheap.
        self.observers: list[Callable[[Change], None]] = []
        self._load_definitions()
        for wf_id, name in SEEDED_WORKFLOWS:
            self.workflows[wf_id] = Workflow(wf_id, name, True, self.now_ms, self.now_ms)
            self.enrollments[wf_id] = {}
        self.token = self.create_token(kind="oauth" if self.profile.name == "oauth" else "private")
        self.oauth_client = OAuthClient(str(self._uuid()), str(self._uuid()), f"na1-{self._uuid()}")

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
            self.load_owners(generated.owners)

    def _emit(self, kind: str, object_type: str, object_id: int, ms: int, **details: Any) -> None:
        if self.observers:
            change = Change(kind, object_type, object_id, ms, source=CHANGE_SOURCE.get(), **details)
            for observer in self.observers:
                observer(change)

    def set_faults(self, spec: str | None) -> None:
        """Script faults on a running sandbox (see faults.py for the grammar); None or "" clears them."""
        self.faults.replace(spec)
