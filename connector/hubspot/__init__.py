"""The one door to HubSpot: typed calls that return plain values, paced, retried, paged and error-translated.

Only this package imports ``hubspot`` (hubspot-api-client 12.0.0), ``requests``, ``urllib3`` and ``tenacity``.

API (others code against exactly this)::

    client = HubSpotClient(settings, sleep=time.sleep, clock=time.monotonic)   # or HubSpotClient.from_settings(settings)

    client.iter_pages(object_type, properties, *, archived=False, after=None) -> Iterator[Page]
        List endpoint, 100 per page. Page(records, next_after, calls). A property list too long for a URL is split:
        what fits goes in the query, the rest comes from one batch read per page, merged per id (2 calls, not N).
    client.iter_modified_since(object_type, since, properties, *, page_size=200) -> Iterator[Page]
        Search on lastmodifieddate (contacts) / hs_lastmodifieddate (others) GTE since, ascending. Before the
        10,000-result cap it restarts from the last timestamp seen and drops ids already yielded at that
        millisecond; a capped window within one millisecond is walked by hs_object_id (paging.py). Records come
        oldest first; the same id may come twice if it was modified again during the pull (at-least-once).
    client.fetch_records(object_type, ids, properties) -> list[dict]                 batch read, 100 per call
    client.fetch_with_history(object_type, ids, properties, historical) -> list[dict] batch read, 50 per call
    client.fetch_associations(from_type, to_type, ids) -> {from_id: [(to_id, typeId | None), ...]}
        v4 batch read (<= 1,000 ids per call, per-input paging followed); one tuple per association type;
        every asked id is a key.
    client.fetch_properties(object_type) -> list[dict]
    client.ensure_property_group(object_type, name, label) -> bool (created)
    client.ensure_properties(object_type, defs) -> {"created": [...], "updated": [...], "unchanged": [...]}
    client.batch_update(object_type, [(record_id, {prop: value})]) -> BatchResult(ok: list[str], failed: list[RecordFailure])
    client.enroll_contact(workflow_id, email) / client.unenroll_contact(workflow_id, email)    v2 enrollment
    client.fetch_workflows() -> list[dict]                                           v4 flows listing
    client.find_list(name, object_type_id) -> dict | None;  client.create_list(name, object_type_id) -> dict
    client.add_to_list(list_id, ids) -> list[str] added;  client.remove_from_list(list_id, ids) -> list[str] removed
    client.iter_list_members(list_id) -> Iterator[str]
    client.check_scopes(required) -> set[str] missing;  client.require_scopes(required) raises MissingScopesError
    client.stats -> ClientStats(calls by kind, rate_limited (429s), retries, token_refreshes, waited_s,
                                burst_remaining/burst_max, daily_used/daily_max)

Behaviour: every call is paced (rolling 10-s burst learnt from x-hubspot-ratelimit-* headers, 10 % left free once
another process is seen on the same app; search at settings.search_per_second; a clean RateLimitedError "DAILY"
before settings.daily_reserve), retried by one tenacity policy (429: wait for the window, bounded by
settings.max_retry_seconds; 5xx/423/timeouts/resets: jittered exponential back-off, bounded by settings.max_retries
and max_retry_seconds; 4xx never), and OAuth tokens are refreshed before expiry and once on a 401.

Records are plain dicts: ``{"id": str, "properties": {name: str | None}, "history": {name: [{"value", "timestamp":
datetime, "sourceType"}]}, "archived": bool, "created_at": datetime, "updated_at": datetime, "archived_at":
datetime | None}`` — all datetimes aware UTC, converted here and nowhere else. Failures raise the classes of
``connector.errors`` (translated once, in ``client.translate_errors``).
"""

from .client import BatchResult, ClientStats, HubSpotClient, Page, translate_errors

__all__ = ["BatchResult", "ClientStats", "HubSpotClient", "Page", "translate_errors"]
