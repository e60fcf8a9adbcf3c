"""HubSpotClient: the typed calls the connector makes, paced, retried, paged, and translated into connector errors."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
import urllib3
from hubspot import HubSpot

from connector.errors import (
    AuthError,
    HubSpotError,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    RecordFailure,
    UnreachableError,
    RejectedError,
    RetryableError,
)
from connector.redact import redact
from connector.settings import Settings

from . import paging
from .auth import TokenProvider, token_provider
from .http import Http, RawResponse, decode
from .pacing import Pacer, header
from .retry import call_with_retry

log = logging.getLogger("connector.hubspot")

LIST_PAGE = 100  # list endpoint maximum
BATCH_READ = 100
BATCH_READ_HISTORY = 50  # "The maximum number of inputs supported in a batch request for property histories is 50"
BATCH_WRITE = 100
ASSOCIATION_BATCH = 1_000  # v4 batch read, effective 2025-02-10
LIST_MEMBERSHIP_BATCH = 1_000
SEARCH_BODY_SLACK = 300  # room left in the 3,000-char body for the restart filters and `after`

# ------------------------------------------------------------------------------------------------------------
# Error translation: one table, keyed on the HTTP status (the SDK's ApiException is a different class per module,
# so we read ``getattr(exc, "status", None)``), refined by HubSpot's category.
# ------------------------------------------------------------------------------------------------------------
STATUS_ERRORS: dict[int, type[HubSpotError]] = {
    400: RejectedError,
    401: AuthError,
    403: MissingScopesError,
    404: NotFoundError,
    409: RejectedError,
    414: RejectedError,
    423: RetryableError,  # locked during bulk upserts: wait >= 2 s
    429: RateLimitedError,
    477: RetryableError,  # portal migration in progress
}
CATEGORY_ERRORS: dict[str, type[HubSpotError]] = {
    "MISSING_SCOPES": MissingScopesError,
    "INVALID_AUTHENTICATION": AuthError,
    "EXPIRED_AUTHENTICATION": AuthError,
    "OBJECT_NOT_FOUND": NotFoundError,
    "RATE_LIMIT": RateLimitedError,
}
# No HTTP answer at all: the network, a timeout or a reset. Safe to retry (every call we retry is idempotent).
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,  # MaxRetryError, ProtocolError, timeouts, NewConnectionError
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionError,
    socket.timeout,
)


def unreachable(exc: BaseException) -> str | None:
    """"connection refused" or "unknown host" when ``exc`` (or what it wraps) says nothing listens at the address,
    else None. Checked before any answer came: then the base URL is wrong, not the network flaky."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror) or type(current).__name__ == "NameResolutionError":
            return "unknown host"
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return None


def _error_body(exc: BaseException) -> dict:
    body = getattr(exc, "body", None)
    parsed = decode(body) if isinstance(body, (bytes, str)) else body
    return parsed if isinstance(parsed, dict) else {}


def _scopes(body: dict) -> list[str]:
    found: list[str] = []
    contexts = [body.get("context") or {}] + [(e or {}).get("context") or {} for e in body.get("errors") or []]
    for context in contexts:
        for scope in context.get("requiredGranularScopes") or context.get("requiredScopes") or []:
            if scope not in found:
                found.append(scope)
    return found


def translate_errors(exc: BaseException, *, path: str | None = None) -> HubSpotError:
    """The connector error for ``exc`` (SDK ApiException of any module, requests/urllib3 failure, HttpStatusError)."""
    if isinstance(exc, HubSpotError):
        return exc
    path = redact(path) if path else None
    status = getattr(exc, "status", None)
    if status is None and isinstance(exc, TRANSPORT_ERRORS):
        return RetryableError(f"No answer from HubSpot ({type(exc).__name__})", path=path)
    if not status:
        return HubSpotError(f"HubSpot call failed ({type(exc).__name__})", path=path)

    body = _error_body(exc)
    headers = getattr(exc, "headers", None)
    category = body.get("category") or body.get("errorType")
    correlation_id = body.get("correlationId") or header(headers, "x-hubspot-correlation-id")
    message = redact(str(body.get("message") or getattr(exc, "reason", None) or f"HTTP {status}"))
    common = {"status": status, "category": category, "correlation_id": correlation_id, "path": path}

    cls = CATEGORY_ERRORS.get(category or "") or STATUS_ERRORS.get(status)
    if cls is None:
        cls = RetryableError if status >= 500 else HubSpotError
    if status == 403 and cls is MissingScopesError and category not in (None, "MISSING_SCOPES") and not _scopes(body):
        cls = AuthError
    if cls is NotFoundError and status != 404:
        cls = RejectedError  # OBJECT_NOT_FOUND inside a 400/207 names bad inputs, not a missing endpoint
    if cls is RateLimitedError:
        policy = body.get("policyName") or "TEN_SECONDLY_ROLLING"
        retry_after = header(headers, "retry-after")
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        return RateLimitedError(message, policy=policy, retry_after=seconds, **common)
    if cls is MissingScopesError:
        return MissingScopesError(message, scopes=_scopes(body), **common)
    if cls is AuthError and status == 401:
        # HubSpot's own text here is about OAuth internals; say what to change instead
        message = ("HubSpot refused the credentials: set CONNECTOR_TOKEN to a valid Service Key or private-app "
                   "token (or CONNECTOR_CLIENT_ID, CONNECTOR_CLIENT_SECRET and CONNECTOR_REFRESH_TOKEN for OAuth)")
    if cls is RejectedError:
        return RejectedError(message, failures=_failures(body), **common)
    return cls(message, **common)


def _failures(body: dict) -> list[RecordFailure]:
    failures = []
    for error in body.get("errors") or []:
        context = error.get("context") or {}
        ids = context.get("ids") or context.get("id") or [None]
        for record_id in ids:
            failures.append(RecordFailure(record_id, redact(str(error.get("message") or "")), error.get("category") or
                                          error.get("code"), context))
    return failures


# ------------------------------------------------------------------------------------------------------------
# Plain values out: records as dicts, timestamps as UTC datetimes (here and nowhere else).
# ------------------------------------------------------------------------------------------------------------
def to_datetime(value: Any) -> datetime | None:
    """ISO-8601 (``…Z``) or epoch-milliseconds (number or digit string) → aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_record(raw: dict) -> dict:
    """HubSpot's SimplePublicObject JSON → the adapter's record dict (values stay strings)."""
    history = {
        name: [
            {"value": _string(h.get("value")), "timestamp": to_datetime(h.get("timestamp")),
             "sourceType": h.get("sourceType")}
            for h in entries or []
        ]
        for name, entries in (raw.get("propertiesWithHistory") or {}).items()
    }
    return {
        "id": str(raw["id"]),
        "properties": {k: _string(v) for k, v in (raw.get("properties") or {}).items()},
        "history": history,
        "archived": bool(raw.get("archived", False)),
        "created_at": to_datetime(raw.get("createdAt")),
        "updated_at": to_datetime(raw.get("updatedAt")),
        "archived_at": to_datetime(raw.get("archivedAt")),
    }


def modified_property(object_type: str) -> str:
    """The "last modified" property search filters on: contacts differ from every other type (API-NOTES §7)."""
    return "lastmodifieddate" if object_type.lower() in ("contacts", "contact", "0-1") else "hs_lastmodifieddate"


def _next_after(body: Any) -> str | None:
    paging_ = (body or {}).get("paging") or {}
    after = (paging_.get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass
class Page:
    """One page of records and the cursor after it; ``calls`` = API calls it cost."""

    records: list[dict]
    next_after: str | None
    calls: int


@dataclass
class BatchResult:
    ok: list[str] = field(default_factory=list)
    failed: list[RecordFailure] = field(default_factory=list)


@dataclass
class ClientStats:
    """API calls by kind, 429s received, retries, and the rate headroom from the latest headers."""

    calls: Counter = field(default_factory=Counter)
    rate_limited: int = 0
    retries: int = 0
    token_refreshes: int = 0
    waited_s: float = 0.0
    burst_remaining: int | None = None
    burst_max: int | None = None
    daily_used: int | None = None
    daily_max: int | None = None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict:
        return {
            "calls": dict(self.calls), "total_calls": self.total_calls, "rate_limited": self.rate_limited,
            "retries": self.retries, "token_refreshes": self.token_refreshes, "waited_s": round(self.waited_s, 3),
            "burst_remaining": self.burst_remaining, "burst_max": self.burst_max, "daily_used": self.daily_used,
            "daily_max": self.daily_max,
        }


# Cheap probes, one per scope: a 403 means the scope is missing; any other answer (200, 400, 404) means granted.
# Write probes send an empty or unknown target so nothing can change.
_READ_TYPES = {"contacts", "companies", "deals", "line_items", "subscriptions", "feedback_submissions", "tickets"}


def _scope_probe(scope: str) -> tuple[str, str, dict | None, Any] | None:
    parts = scope.split(".")
    if len(parts) == 4 and parts[:2] == ["crm", "objects"] and parts[2] in _READ_TYPES | {"line_items"}:
        kind, access = parts[2], parts[3]
        if access == "read":
            return "GET", f"/crm/v3/objects/{kind}", {"limit": 1}, None
        if access == "write":
            return "POST", f"/crm/v3/objects/{kind}/batch/update", None, {"inputs": []}
    if len(parts) == 4 and parts[:2] == ["crm", "schemas"]:
        kind, access = parts[2], parts[3]
        if access == "read":
            return "GET", f"/crm/v3/properties/{kind}/groups", None, None
        if access == "write":
            return "POST", f"/crm/v3/properties/{kind}/batch/create", None, {"inputs": []}
    if scope == "crm.lists.read":
        return "GET", "/crm/v3/lists/object-type-id/0-1/name/connector-scope-probe", None, None
    if scope == "crm.lists.write":
        return "PUT", "/crm/v3/lists/0/memberships/add", None, []
    if scope == "automation":
        return "GET", "/automation/v4/flows", {"limit": 1}, None
    return None


class HubSpotClient:
    """The one door to HubSpot. See ``connector/hubspot/__init__.py`` for the API contract."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        auth: TokenProvider | None = None,
    ):
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.timeout = settings.request_timeout
        self._sleep = sleep
        self._clock = clock
        self.http = Http(self.base_url, self.timeout)
        self._auth = auth or token_provider(settings, self.http, clock=clock, sleep=sleep)
        self.pacer = Pacer(
            burst_limit=settings.burst_limit,
            search_per_second=settings.search_per_second,
            daily_reserve=settings.daily_reserve,
            sleep=sleep,
            clock=clock,
        )
        self._stats = ClientStats()
        self._answered = False  # any HTTP answer yet: before one, a refused connection means a wrong base URL
        self.search_cap = paging.SEARCH_CAP  # tests may lower it to exercise the restart quickly
        self.url_budget = paging.URL_PROPERTIES_MAX  # characters of `properties=` a list URL may carry
        self._apis: dict[tuple[str, str], Any] = {}
        # The SDK builds a new ApiClient (and connection pool) on every attribute access; the factory caches one per
        # API so connections are reused. retries=False: tenacity is the only retrier (urllib3 would retry silently
        # and raise MaxRetryError); the SDK's own retry= stays unused.
        self.sdk = HubSpot(access_token=None, host=self.base_url, base_url=self.base_url, api_factory=self._api_factory)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kw: Any) -> HubSpotClient:
        return cls(settings or Settings(), **kw)

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self.http.close()
        for api in self._apis.values():
            api.api_client.rest_client.pool_manager.clear()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _api_factory(self, package: Any, api_name: str, config: dict) -> Any:
        key = (package.__name__, api_name)
        if key not in self._apis:
            configuration = package.Configuration()
            configuration.host = self.base_url
            configuration.retries = False
            api_client = package.ApiClient(configuration=configuration)
            api_client.user_agent = "hubspot-api-client-python; 12.0.0"
            self._apis[key] = getattr(package, api_name)(api_client=api_client)
        return self._apis[key]

    def _sdk_api(self, api: Any, token: str) -> Any:
        api.api_client.configuration.access_token = token
        return api

    def _sdk(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> RawResponse:
        response = call(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        try:
            return RawResponse(response.status, response.headers, decode(response.data))
        finally:
            response.release_conn()

    @property
    def stats(self) -> ClientStats:
        headroom = self.pacer.headroom
        self._stats.burst_remaining = headroom.burst_remaining
        self._stats.burst_max = headroom.burst_max
        self._stats.daily_used = headroom.daily_used
        self._stats.daily_max = headroom.daily_max
        self._stats.waited_s = self.pacer.waited_s
        self._stats.token_refreshes = getattr(self._auth, "refreshes", 0)
        return self._stats

    def _call(self, kind: str, path: str, send: Callable[[str], RawResponse], *, search: bool = False) -> RawResponse:
        """One logical call: paced, retried under the policy, refreshed once on a 401, errors translated."""

        def attempt() -> RawResponse:
            refreshed = False
            while True:
                self.pacer.acquire("search" if search else "call")
                self._stats.calls[kind] += 1
                try:
                    raw = send(self._auth.token())
                except Exception as exc:  # noqa: BLE001 - every failure leaves through the translation table
                    why = None if self._answered or getattr(exc, "status", None) else unreachable(exc)
                    if why is not None:
                        raise UnreachableError(
                            f"cannot reach HubSpot at {self.base_url} ({why}): check CONNECTOR_BASE_URL "
                            "(https://api.hubapi.com for HubSpot; for the sandbox, the URL `connector sandbox serve` "
                            "prints, and is it running?)") from None
                    self._answered = self._answered or bool(getattr(exc, "status", None))
                    error = translate_errors(exc, path=path)
                    self.pacer.observe(getattr(exc, "headers", None))
                    if isinstance(error, RateLimitedError):
                        self._stats.rate_limited += 1
                    if error.status == 401 and self._auth.can_refresh and not refreshed:
                        refreshed = True
                        self._auth.refresh()
                        continue
                    raise error from exc
                self._answered = True
                self.pacer.observe(raw.headers)
                return raw

        def on_retry(exc: BaseException, sleep_for: float) -> None:
            self._stats.retries += 1
            # str() of our errors holds no tokens or e-mails (redacted at translation).
            log.warning("HubSpot %s failed (%s); retrying in %.1f s", kind, exc, sleep_for)

        return call_with_retry(
            attempt,
            max_attempts=self.settings.max_retries,
            max_seconds=self.settings.max_retry_seconds,
            sleep=self._sleep,
            clock=self._clock,
            window_wait=self.pacer.penalize,
            on_retry=on_retry,
        )

    def _raw(self, kind: str, method: str, path: str, *, params: dict | None = None, body: Any = None,
             search: bool = False) -> RawResponse:
        """A call through requests (endpoints the SDK lacks, scope probes)."""

        def send(token: str) -> RawResponse:
            return self.http.request(method, path, token=token, params=params, json_body=body)

        return self._call(kind, path, send, search=search)

    # -- objects: list, search, batch read ----------------------------------------------------------------------
    def iter_pages(
        self, object_type: str, properties: list[str], *, archived: bool = False, after: str | None = None
    ) -> Iterator[Page]:
        """Every record of ``object_type`` (100 per page, ``after`` = next id); archived ones when ``archived``."""
        in_url, in_body = paging.split_for_url(_unique(properties), self.url_budget)
        path = f"/crm/v3/objects/{object_type}"
        api = self.sdk.crm.objects.basic_api
        while True:
            cursor = after
            kwargs: dict[str, Any] = {"limit": LIST_PAGE, "properties": in_url}
            if cursor:
                kwargs["after"] = cursor
            if archived:
                kwargs["archived"] = "true"
            raw = self._call("list", path, lambda token: self._sdk(self._sdk_api(api, token).get_page, object_type,
                                                                  **kwargs))
            records = [to_record(r) for r in (raw.body or {}).get("results") or []]
            calls = 1
            if in_body and records:
                calls += self._merge_properties(object_type, records, in_body, archived=archived)
            after = _next_after(raw.body)
            yield Page(records, after, calls)
            if after is None:
                return

    def _merge_properties(self, object_type: str, records: list[dict], properties: list[str], *,
                          archived: bool = False) -> int:
        """Fetch ``properties`` of ``records`` by batch read and merge them in per id; return the calls made."""
        by_id = {r["id"]: r for r in records}
        calls = 0
        for chunk in paging.chunked(list(by_id), BATCH_READ):
            calls += 1
            for extra in self._batch_read(object_type, chunk, properties, [], archived=archived):
                if extra["id"] in by_id:
                    by_id[extra["id"]]["properties"].update(extra["properties"])
        return calls

    def _batch_read(self, object_type: str, ids: Sequence[str], properties: Sequence[str],
                    historical: Sequence[str], *, archived: bool = False) -> list[dict]:
        api = self.sdk.crm.objects.batch_api
        body = {"properties": list(properties), "propertiesWithHistory": list(historical),
                "inputs": [{"id": str(i)} for i in ids]}
        extra = {"archived": "true"} if archived else {}
        path = f"/crm/v3/objects/{object_type}/batch/read"
        raw = self._call("batch_read", path, lambda token: self._sdk(self._sdk_api(api, token).read, object_type,
                                                                    body, **extra))
        # A 207 lists unknown/deleted ids under `errors`; the caller sees them as absent.
        return [to_record(r) for r in (raw.body or {}).get("results") or []]

    def fetch_records(self, object_type: str, ids: Sequence[str], properties: list[str]) -> list[dict]:
        """Current values of ``properties`` for ``ids`` (batch read, 100 per call); unknown ids are left out."""
        records: list[dict] = []
        for chunk in paging.chunked(_unique(str(i) for i in ids), BATCH_READ):
            records.extend(self._batch_read(object_type, chunk, properties, []))
        return records

    def fetch_with_history(self, object_type: str, ids: Sequence[str], properties: list[str],
                           historical: list[str]) -> list[dict]:
        """Values of ``properties`` plus the full history of ``historical`` (batch read, 50 per call)."""
        records: list[dict] = []
        for chunk in paging.chunked(_unique(str(i) for i in ids), BATCH_READ_HISTORY):
            records.extend(self._batch_read(object_type, chunk, properties, historical))
        return records

    def iter_modified_since(
        self, object_type: str, since: datetime, properties: list[str], *, page_size: int = paging.SEARCH_MAX_PAGE
    ) -> Iterator[Page]:
        """Records modified at or after ``since``, oldest first, across the 10,000-result cap (see paging.py)."""
        prop = modified_property(object_type)
        wanted = _unique([*properties, prop])
        window = paging.SearchWindow(since_ms=to_ms(since))
        in_search, by_batch = wanted, []
        probe = paging.plan_search_body(window, prop, wanted, page_size)
        if len(json.dumps(probe)) > paging.SEARCH_BODY_MAX - SEARCH_BODY_SLACK:
            # HubSpot refuses search bodies over 3,000 chars: search for ids and timestamps, batch-read the rest.
            in_search, by_batch = [prop], [p for p in wanted if p != prop]
        api = self.sdk.crm.objects.search_api
        path = f"/crm/v3/objects/{object_type}/search"
        while not window.done:
            body = paging.plan_search_body(window, prop, in_search, page_size)
            try:
                raw = self._call("search", path, lambda token, body=body: self._sdk(
                    self._sdk_api(api, token).do_search, object_type, body), search=True)
            except RejectedError:
                if window.offset == 0:
                    raise
                # HubSpot refused a deep page before our own cap (a lower cap than documented): restart here.
                window = paging.restart(window)
                continue
            results = (raw.body or {}).get("results") or []
            seen = [paging.Seen(str(r["id"]), self._modified_ms(r, prop)) for r in results]
            fresh = {s.id for s in paging.fresh_results(window, seen)}
            records = [to_record(r) for r in results if str(r["id"]) in fresh]
            next_after = _next_after(raw.body)
            calls = 1
            if by_batch and records:
                calls += self._merge_properties(object_type, records, by_batch)
            window = paging.advance(window, seen, next_after, page_size=page_size, cap=self.search_cap)
            yield Page(records, next_after, calls)

    @staticmethod
    def _modified_ms(raw: dict, prop: str) -> int:
        value = (raw.get("properties") or {}).get(prop) or raw.get("updatedAt")
        moment = to_datetime(value)
        return to_ms(moment) if moment else 0

    # -- associations ---------------------------------------------------------------------------------------------
    def fetch_associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[tuple[str, int | None]]]:
        """For each id, its associated ``to_type`` records as (id, typeId) — one tuple per association type.

        v4 batch read, up to 1,000 ids per call, following each input's own ``paging.next.after``. Every asked id
        is a key (an empty list when it has none or is unknown).
        """
        api = self.sdk.crm.associations.v4.batch_api
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
        out: dict[str, list[tuple[str, int | None]]] = {str(i): [] for i in ids}
        pending: list[dict] = [{"id": i} for i in out]
        while pending:
            chunk, pending = pending[:ASSOCIATION_BATCH], pending[ASSOCIATION_BATCH:]
            body = {"inputs": chunk}
            raw = self._call("associations", path, lambda token, body=body: self._sdk(
                self._sdk_api(api, token).get_page, from_type, to_type, body))
            for result in (raw.body or {}).get("results") or []:
                from_id = str((result.get("from") or {}).get("id"))
                bucket = out.setdefault(from_id, [])
                for to in result.get("to") or []:
                    to_id = str(to.get("toObjectId"))  # a JSON number in real responses
                    types = to.get("associationTypes") or []
                    if not types:
                        bucket.append((to_id, None))
                    for t in types:
                        type_id = t.get("typeId")
                        bucket.append((to_id, int(type_id) if type_id is not None else None))
                after = _next_after(result)
                if after:
                    pending.append({"id": from_id, "after": after})
        return out

    # -- properties -----------------------------------------------------------------------------------------------
    def fetch_properties(self, object_type: str) -> list[dict]:
        """Every property definition of ``object_type`` as HubSpot returns it (camelCase keys)."""
        api = self.sdk.crm.properties.core_api
        path = f"/crm/v3/properties/{object_type}"
        raw = self._call("properties", path, lambda token: self._sdk(self._sdk_api(api, token).get_all, object_type))
        return list((raw.body or {}).get("results") or [])

    def ensure_property_group(self, object_type: str, name: str, label: str) -> bool:
        """Create the property group unless it exists (409 is fine); True when created."""
        api = self.sdk.crm.properties.groups_api
        path = f"/crm/v3/properties/{object_type}/groups"
        body = {"name": name, "label": label, "displayOrder": -1}
        try:
            self._call("properties_write", path, lambda token: self._sdk(self._sdk_api(api, token).create,
                                                                        object_type, body))
        except RejectedError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def ensure_properties(self, object_type: str, defs: list[dict]) -> dict:
        """Create missing properties (one batch call), add missing enumeration options to existing ones (PATCH).

        ``defs`` are HubSpot property bodies (``name, label, type, fieldType, groupName, options…``). Existing options
        are never removed, relabelled or reordered. Returns ``{"created": [...], "updated": [...], "unchanged": [...]}``.
        """
        existing = {p["name"]: p for p in self.fetch_properties(object_type)}
        missing = [d for d in defs if d["name"] not in existing]
        result: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
        if missing:
            api = self.sdk.crm.properties.batch_api
            path = f"/crm/v3/properties/{object_type}/batch/create"
            body = {"inputs": missing}
            raw = self._call("properties_write", path, lambda token: self._sdk(self._sdk_api(api, token).create,
                                                                              object_type, body))
            failures = [f for f in _failures(raw.body or {})
                        if f.category not in ("OBJECT_ALREADY_EXISTS", "Properties.PROPERTY_WITH_NAME_EXISTS")]
            if failures:
                raise RejectedError(f"{len(failures)} properties could not be created on {object_type}",
                                    failures=failures, status=raw.status, path=path)
            created = {r.get("name") for r in (raw.body or {}).get("results") or []}
            result["created"] = [d["name"] for d in missing if d["name"] in created]
            result["unchanged"] += [d["name"] for d in missing if d["name"] not in created]
        core = self.sdk.crm.properties.core_api
        for d in defs:
            current = existing.get(d["name"])
            if current is None:
                continue
            have = {o.get("value") for o in current.get("options") or []}
            new = [o for o in d.get("options") or [] if o.get("value") not in have]
            if not new:
                result["unchanged"].append(d["name"])
                continue
            options = list(current.get("options") or [])
            top = max((o["displayOrder"] for o in options if isinstance(o.get("displayOrder"), int)), default=-1)
            for i, option in enumerate(new, start=1):
                options.append({"displayOrder": top + i, "hidden": False, **option})
            path = f"/crm/v3/properties/{object_type}/{d['name']}"
            patch = {"options": options}
            self._call("properties_write", path, lambda token, name=d["name"], patch=patch: self._sdk(
                self._sdk_api(core, token).update, object_type, name, patch))
            result["updated"].append(d["name"])
        return result

    # -- writes -----------------------------------------------------------------------------------------------------
    def batch_update(self, object_type: str, updates: list[tuple[str, dict[str, str]]]) -> BatchResult:
        """Write property values, 100 records per call; refusals per record, never for the whole batch.

        A 207 is split into ok/failed from HubSpot's own messages; a whole-batch 400 (one bad value refuses all
        100) is bisected until the bad records stand alone, so the good ones still go through.
        """
        merged: dict[str, dict[str, str]] = {}
        for record_id, props in updates:
            # HubSpot answers 400 "Duplicate IDs found in batch input": merge repeats (later values win).
            merged.setdefault(str(record_id), {}).update({k: _string(v) or "" for k, v in props.items()})
        result = BatchResult()
        items = list(merged.items())
        for chunk in paging.chunked(items, BATCH_WRITE):
            self._update_chunk(object_type, chunk, result)
        return result

    def _update_chunk(self, object_type: str, chunk: list[tuple[str, dict[str, str]]], result: BatchResult) -> None:
        api = self.sdk.crm.objects.batch_api
        path = f"/crm/v3/objects/{object_type}/batch/update"
        body = {"inputs": [{"id": rid, "objectWriteTraceId": rid, "properties": props} for rid, props in chunk]}
        try:
            raw = self._call("batch_update", path, lambda token: self._sdk(self._sdk_api(api, token).update,
                                                                          object_type, body))
        except RejectedError as exc:
            if len(chunk) == 1:
                result.failed.append(RecordFailure(chunk[0][0], exc.message, exc.category))
                return
            if exc.status != 400 or exc.category != "VALIDATION_ERROR":
                raise  # about the request, not a value (e.g. an unknown object type): bisecting cannot help
            middle = len(chunk) // 2
            self._update_chunk(object_type, chunk[:middle], result)
            self._update_chunk(object_type, chunk[middle:], result)
            return
        body_out = raw.body or {}
        done = {str(r.get("id")) for r in body_out.get("results") or []}
        asked = [rid for rid, _ in chunk]
        if raw.status != 207 and not body_out.get("errors"):
            result.ok.extend(asked)
            return
        attributed: dict[str, RecordFailure] = {}
        loose: list[dict] = []
        for error in body_out.get("errors") or []:
            context = error.get("context") or {}
            ids = [*(context.get("ids") or []), *(context.get("id") or []), *(context.get("objectWriteTraceId") or [])]
            message = redact(str(error.get("message") or "refused"))
            if not ids:
                loose.append(error)
            for rid in ids:
                attributed[str(rid)] = RecordFailure(str(rid), message, error.get("category"), context)
        for rid in asked:
            if rid in done and rid not in attributed:
                result.ok.append(rid)
            elif rid in attributed:
                result.failed.append(attributed[rid])
            else:
                message = redact(str(loose[0].get("message"))) if len(loose) == 1 else "not in HubSpot's results"
                category = loose[0].get("category") if len(loose) == 1 else None
                result.failed.append(RecordFailure(rid, message, category))

    # -- workflows (v2 enrollment, v4 listing: plain requests) ------------------------------------------------------
    def enroll_contact(self, workflow_id: int | str, email: str) -> None:
        """Enroll a contact (by e-mail) in a workflow: v2 ``POST /automation/v2/workflows/{id}/enrollments/contacts/{email}``."""
        self._raw("enroll", "POST", f"/automation/v2/workflows/{workflow_id}/enrollments/contacts/{quote(email)}")

    def unenroll_contact(self, workflow_id: int | str, email: str) -> None:
        """Take a contact out of a workflow (v2 DELETE on the same path)."""
        self._raw("enroll", "DELETE", f"/automation/v2/workflows/{workflow_id}/enrollments/contacts/{quote(email)}")

    def fetch_workflows(self) -> list[dict]:
        """Every workflow (v4 flows listing: ``id``, ``name``, ``isEnabled``, …), following ``paging.next.after``."""
        flows: list[dict] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            raw = self._raw("workflows", "GET", "/automation/v4/flows", params=params)
            flows.extend((raw.body or {}).get("results") or [])
            after = _next_after(raw.body)
            if not after:
                return flows

    # -- lists --------------------------------------------------------------------------------------------------------
    def find_list(self, name: str, object_type_id: str) -> dict | None:
        """The list called ``name`` for ``object_type_id`` (``0-1`` contacts, ``0-2`` companies), or None."""
        api = self.sdk.crm.lists.lists_api
        path = f"/crm/v3/lists/object-type-id/{object_type_id}/name/{name}"
        try:
            raw = self._call("lists", path, lambda token: self._sdk(self._sdk_api(api, token).get_by_name, name,
                                                                   object_type_id))
        except NotFoundError:
            return None
        return (raw.body or {}).get("list")

    def create_list(self, name: str, object_type_id: str) -> dict:
        """Create a MANUAL list (or return the existing one of that name, so a retried create is harmless)."""
        api = self.sdk.crm.lists.lists_api
        body = {"name": name, "objectTypeId": object_type_id, "processingType": "MANUAL"}
        try:
            raw = self._call("lists_write", "/crm/v3/lists/", lambda token: self._sdk(
                self._sdk_api(api, token).create, body))
        except RejectedError as exc:
            found = self.find_list(name, object_type_id) if exc.status == 400 else None
            if found is None:
                raise
            return found
        return (raw.body or {}).get("list") or {}

    def _membership(self, op: str, list_id: str, ids: Sequence[str]) -> list[str]:
        api = self.sdk.crm.lists.memberships_api
        changed: list[str] = []
        for chunk in paging.chunked(_unique(str(i) for i in ids), LIST_MEMBERSHIP_BATCH):
            path = f"/crm/v3/lists/{list_id}/memberships/{op}"
            raw = self._call("lists_write", path, lambda token, chunk=chunk: self._sdk(
                getattr(self._sdk_api(api, token), op), list_id, chunk))
            body = raw.body or {}
            # HubSpot's own key is misspelt `recordsIdsAdded`; accept the regular spelling too.
            keys = ("recordsIdsAdded", "recordIdsAdded") if op == "add" else ("recordIdsRemoved", "recordsIdsRemoved")
            for key in keys:
                changed.extend(str(i) for i in body.get(key) or [])
        return changed

    def add_to_list(self, list_id: str, ids: Sequence[str]) -> list[str]:
        """Add records to a MANUAL list; returns the ids HubSpot reports added (already-members are not)."""
        return self._membership("add", str(list_id), ids)

    def remove_from_list(self, list_id: str, ids: Sequence[str]) -> list[str]:
        """Remove records from a MANUAL list; returns the ids HubSpot reports removed."""
        return self._membership("remove", str(list_id), ids)

    def iter_list_members(self, list_id: str) -> Iterator[str]:
        """Record ids in a list, 100 per call."""
        api = self.sdk.crm.lists.memberships_api
        path = f"/crm/v3/lists/{list_id}/memberships"
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 100}
            if after:
                kwargs["after"] = after
            raw = self._call("lists", path, lambda token, kwargs=kwargs: self._sdk(
                self._sdk_api(api, token).get_page, str(list_id), **kwargs))
            for member in (raw.body or {}).get("results") or []:
                yield str(member.get("recordId"))
            after = _next_after(raw.body)
            if not after:
                return

    # -- start-up check -----------------------------------------------------------------------------------------------
    def check_scopes(self, required: set[str]) -> set[str]:
        """The scopes of ``required`` the token lacks (one cheap probe per scope; empty set when all are granted).

        Scopes without a probe are assumed granted (the first real call would name them in a 403 anyway).
        """
        missing: set[str] = set()
        for scope in sorted(required):
            probe = _scope_probe(scope)
            if probe is None:
                continue
            method, path, params, body = probe
            try:
                self._raw("scope_probe", method, path, params=params, body=body)
            except MissingScopesError:
                missing.add(scope)
            except AuthError:
                raise
            except (RejectedError, NotFoundError):
                pass  # the call got past the scope check: granted
        return missing

    def require_scopes(self, required: set[str]) -> None:
        """Raise ``MissingScopesError`` naming every missing scope at once."""
        missing = self.check_scopes(required)
        if missing:
            raise MissingScopesError(
                "The HubSpot token lacks scopes this run needs; add them to the private app (or OAuth app) and retry",
                scopes=sorted(missing),
            )
