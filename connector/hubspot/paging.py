"""Pure cursor logic: the search window that restarts before HubSpot's 10,000-result cap, and request splitting."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import quote

T = TypeVar("T")

SEARCH_CAP = 10_000  # search pages past this many results answer 400 (API-NOTES §1)
SEARCH_MAX_PAGE = 200
SEARCH_BODY_MAX = 3_000  # characters; a longer search body answers 400
ID_PROPERTY = "hs_object_id"
# Query-string budget for repeated `properties=` on GET list calls: well under the 8 KiB many proxies allow,
# so a portal with hundreds of custom properties never meets a 414.
URL_PROPERTIES_MAX = 6_000


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def query_length(properties: Iterable[str], name: str = "properties") -> int:
    """Characters the repeated ``name=value`` pairs add to a URL."""
    return sum(len(name) + 2 + len(quote(p, safe="")) for p in properties)


def split_for_url(properties: Sequence[str], budget: int = URL_PROPERTIES_MAX) -> tuple[list[str], list[str]]:
    """(properties that fit in the URL, the rest); the rest is fetched by a batch read in the request body."""
    head: list[str] = []
    used = 0
    for i, prop in enumerate(properties):
        cost = query_length([prop])
        if used + cost > budget:
            return head, list(properties[i:])
        head.append(prop)
        used += cost
    return head, []


@dataclass(frozen=True)
class Seen:
    """One result of a search page, reduced to what the window logic needs."""

    id: str
    modified_ms: int


@dataclass(frozen=True)
class SearchWindow:
    """Where an incremental search stands.

    ``mode == "time"``: filter ``modified GTE since_ms``, sorted ascending on the modified property, paged by
    ``offset``. Before the offset would pass the cap, restart with ``since_ms`` = the last timestamp seen (GTE, so
    records sharing that millisecond are read again and dropped by id: ``boundary`` holds the ids already yielded at
    ``boundary_ms``). If a whole capped window shares one millisecond, the timestamp cannot advance: switch to
    ``mode == "tie"``: filter ``modified EQ since_ms`` sorted by ``hs_object_id`` ascending and restart on
    ``hs_object_id GT`` the last id yielded — ties resolved by id, never by guessing ``id + 1``.
    """

    since_ms: int
    offset: int = 0
    mode: str = "time"
    after_id: int | None = None  # tie mode: ids strictly greater than this one
    last_id: int | None = None  # tie mode: the greatest id read so far (where the next restart begins)
    boundary_ms: int | None = None
    boundary: frozenset[str] = field(default_factory=frozenset)
    restarts: int = 0
    done: bool = False


def plan_search_body(
    window: SearchWindow, modified_property: str, properties: Sequence[str], page_size: int = SEARCH_MAX_PAGE
) -> dict:
    """The JSON body of the next search request for ``window``."""
    if window.mode == "tie":
        filters = [{"propertyName": modified_property, "operator": "EQ", "value": str(window.since_ms)}]
        if window.after_id is not None:
            filters.append({"propertyName": ID_PROPERTY, "operator": "GT", "value": str(window.after_id)})
        sorts = [{"propertyName": ID_PROPERTY, "direction": "ASCENDING"}]
    else:
        filters = [{"propertyName": modified_property, "operator": "GTE", "value": str(window.since_ms)}]
        sorts = [{"propertyName": modified_property, "direction": "ASCENDING"}]
    body: dict = {
        "filterGroups": [{"filters": filters}],
        "sorts": sorts,
        "properties": list(properties),
        "limit": page_size,
    }
    if window.offset:
        body["after"] = str(window.offset)
    return body


def fresh_results(window: SearchWindow, results: Sequence[Seen]) -> list[Seen]:
    """The results not yielded before: a restart re-reads the boundary millisecond, those ids are dropped."""
    if not window.boundary:
        return list(results)
    return [r for r in results if not (r.modified_ms == window.boundary_ms and r.id in window.boundary)]


def advance(
    window: SearchWindow,
    results: Sequence[Seen],
    next_after: str | None,
    *,
    page_size: int = SEARCH_MAX_PAGE,
    cap: int = SEARCH_CAP,
) -> SearchWindow:
    """The window after a page of ``results`` whose ``paging.next.after`` was ``next_after``."""
    boundary_ms, boundary = window.boundary_ms, set(window.boundary)
    for r in results:
        if boundary_ms is None or r.modified_ms > boundary_ms:
            boundary_ms, boundary = r.modified_ms, {r.id}
        elif r.modified_ms == boundary_ms:
            boundary.add(r.id)
    # Tie mode walks one millisecond in id order; its boundary is the last id seen.
    last_id = None
    if window.mode == "tie":
        last_id = max([int(r.id) for r in results] + [i for i in (window.last_id, window.after_id) if i is not None],
                      default=None)
    state = replace(window, boundary_ms=boundary_ms, boundary=frozenset(boundary), last_id=last_id)

    if next_after is None:
        if window.mode == "tie":
            # Every record of that millisecond is read: go on after it (integer ms, so GTE ms+1 == GT ms).
            return replace(state, mode="time", since_ms=window.since_ms + 1, offset=0, after_id=None, last_id=None,
                           restarts=window.restarts + 1)
        return replace(state, done=True)

    offset = int(next_after)
    if offset + page_size <= cap:
        return replace(state, offset=offset, after_id=window.after_id)

    # The next page would cross the cap: restart the query from where we are.
    return restart(state)


def restart(window: SearchWindow) -> SearchWindow:
    """The window re-queried from where it stands (also used when HubSpot refuses a page before our cap)."""
    if window.mode == "tie":
        after_id = window.last_id if window.last_id is not None else window.after_id
        return replace(window, offset=0, after_id=after_id, restarts=window.restarts + 1)
    if window.boundary_ms is not None and window.boundary_ms > window.since_ms:
        return replace(window, since_ms=window.boundary_ms, offset=0, restarts=window.restarts + 1)
    # A whole capped window within one millisecond: the timestamp cannot move; walk that millisecond by id.
    return replace(window, mode="tie", offset=0, after_id=None, restarts=window.restarts + 1)
