"""Pull: per object type, cursor, pages and state (page and cursor in one transaction); associations.

How one object type is pulled (each step resumable: everything it needs to continue is in the store):

1. Records. With no cursor (first run), with ``full=True``, while an interrupted full pass is pending, or
   when the mappings now need a property (or a history) the earlier pulls of the type did not fetch:
   the list endpoint, 100 per page, no 10,000 cap; each page is saved with the ``after`` of the next page in
   one transaction, so a killed run resumes from the last committed page. When the last page is saved the
   cursor becomes incremental, starting at the time the full pass *began* (records changed during a long
   backfill are re-read), and stored records the pass did not see (hard-deleted in HubSpot, so in neither
   the live nor the archived list) are flagged archived in the same transaction. Otherwise: search for
   records modified since ``cursor − lookback`` (at least once: the window is re-read and records are
   upserted on id), paged by last-modified time rather than by offset (an edit during the search would
   shift records past an offset); each page is saved with the cursor
   ``(max last-modified seen, its id)``, never later than ``pass start − margin`` because search indexes
   lag behind writes (API-NOTES §7).
2. History. For the properties the plan marks historical, ``fetch_with_history`` (50 ids per call) for the
   records of each page before the page is saved, so a record and its history land together.
3. Deletions. Every run lists ``archived=true`` (search never returns archived records) and saves those
   records with their archived flag; its ``after`` is saved per page under the cursor named "archived".
4. Associations (policy). HubSpot does not bump a record's last-modified date when only its associations
   change, so reading associations of changed records alone would miss changes. Hence:
   * every record saved by step 1 is flagged "associations stale" in the same transaction as the page;
   * on a full pass, with ``full=True``, and otherwise every ``association_refresh_every`` runs (default 24:
     daily for an hourly schedule), every live record of the type is flagged;
   * flagged records are read in v4 batches of 1,000 ids per to-type; a batch's associations replace the
     stored ones and clear the flags in one transaction, so a killed run picks up the rest next time.
   The runs since the last full refresh are counted in the cursor named "associations".

Memory does not grow with the portal: one page of records, or 1,000 ids, is held at a time.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from connector.errors import ConfigError
from connector.mapping.base import did_you_mean
from connector.state import StateStore

UTC = timezone.utc
ASSOCIATION_BATCH = 1000  # ids per v4 batch read (API-NOTES §3)
HISTORY_BATCH = 50  # ids per batch read with propertiesWithHistory (API-NOTES §1)
SEARCH_PAGE = 200  # search's maximum page (API-NOTES §1)
DEFAULT_LOOKBACK = timedelta(minutes=5)
DEFAULT_MARGIN = timedelta(seconds=60)
DEFAULT_ASSOCIATION_REFRESH_EVERY = 24


class PullSpecLike(Protocol):
    """What the pull reads of one entry of ``MappingPack.pull_plan()`` (``connector.mapping.sources.PullSpec``)."""

    object_type: str
    properties: tuple[str, ...]
    historical: tuple[str, ...]
    associations: tuple[str, ...]


@dataclass(frozen=True)
class PullProgress:
    """Reported after every committed page or association batch (the store already holds it)."""

    object_type: str
    phase: str  # records | archived | associations
    mode: str  # full | incremental
    records: int  # records saved for this object type in this run (all phases)
    total_records: int  # records saved in this run, all object types
    calls: int  # API calls made by this run so far
    rate_limited: int  # 429 answers received so far
    headroom: float | None  # share of the burst budget left, when the client knows it
    elapsed_s: float


@dataclass
class ObjectSummary:
    object_type: str
    mode: str = "incremental"
    resumed: bool = False
    # Why a full pass: "first pull" | "--full" | "resumed" | "new properties: a, b" (None when incremental).
    full_reason: str | None = None
    records: int = 0  # live records saved (new or changed)
    archived: int = 0  # archived records saved
    newly_archived: int = 0  # of those, records the store did not yet hold as archived (deleted since last pull)
    pages: int = 0
    with_history: int = 0
    association_ids: int = 0  # records whose associations were re-read
    associations: int = 0  # association rows written
    associations_full_refresh: bool = False
    cursor: dict[str, Any] | None = None


@dataclass
class PullSummary:
    objects: dict[str, ObjectSummary] = field(default_factory=dict)
    calls: int = 0
    calls_by_kind: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    run_id: str | None = None

    @property
    def records(self) -> int:
        return sum(o.records for o in self.objects.values())

    @property
    def archived(self) -> int:
        return sum(o.archived for o in self.objects.values())

    @property
    def newly_archived(self) -> int:
        return sum(o.newly_archived for o in self.objects.values())

    @property
    def associations(self) -> int:
        return sum(o.associations for o in self.objects.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "records": self.records,
            "archived": self.archived,
            "newly_archived": self.newly_archived,
            "associations": self.associations,
            "calls": self.calls,
            "calls_by_kind": dict(self.calls_by_kind),
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "elapsed_s": round(self.elapsed_s, 3),
            "objects": {name: asdict(o) for name, o in self.objects.items()},
        }

    def line(self) -> str:
        """The one summary line printed when stdout is not a terminal."""
        modes = ", ".join(
            f"{o.object_type} {o.mode}{f' ({o.full_reason})' if o.full_reason else ''} {o.records}"
            for o in self.objects.values()
        )
        return (
            f"pull ok: {self.records} records, {self.newly_archived} newly archived, {self.associations} associations "
            f"({modes}); {self.calls} API calls, {self.rate_limited} rate-limited, {self.elapsed_s:.1f}s"
        )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def client_stats(client: Any) -> dict[str, Any]:
    """The adapter's counters (``HubSpotClient.stats``) as a plain dict: calls by kind, 429s, retries, headroom."""
    stats = getattr(client, "stats", None)
    by_kind = {str(k): int(v) for k, v in dict(getattr(stats, "calls", None) or {}).items()}
    burst_max, burst_remaining = getattr(stats, "burst_max", None), getattr(stats, "burst_remaining", None)
    return {
        "calls": sum(by_kind.values()),
        "calls_by_kind": by_kind,
        "rate_limited": int(getattr(stats, "rate_limited", 0) or 0),
        "retries": int(getattr(stats, "retries", 0) or 0),
        "headroom": burst_remaining / burst_max if burst_max and burst_remaining is not None else None,
    }


class _Run:
    """State of one pull across object types: counters, clock and the progress callback."""

    def __init__(
        self,
        client: Any,
        store: StateStore,
        progress: Callable[[PullProgress], None] | None,
        now: Callable[[], datetime],
    ):
        self.client = client
        self.store = store
        self.progress = progress
        self.now = now
        self.started = time.monotonic()
        self.base = client_stats(client)
        self.summary = PullSummary()
        self.total_records = 0

    def stats(self) -> dict[str, Any]:
        current = client_stats(self.client)
        by_kind = {k: v - self.base["calls_by_kind"].get(k, 0) for k, v in current["calls_by_kind"].items()}
        return {
            "calls": current["calls"] - self.base["calls"],
            "calls_by_kind": {k: v for k, v in by_kind.items() if v},
            "rate_limited": current["rate_limited"] - self.base["rate_limited"],
            "retries": current["retries"] - self.base["retries"],
            "headroom": current["headroom"],
        }

    def report(self, obj: ObjectSummary, phase: str) -> None:
        if self.progress is None:
            return
        s = self.stats()
        self.progress(
            PullProgress(
                object_type=obj.object_type,
                phase=phase,
                mode=obj.mode,
                records=obj.records + obj.archived,
                total_records=self.total_records,
                calls=s["calls"],
                rate_limited=s["rate_limited"],
                headroom=s["headroom"],
                elapsed_s=time.monotonic() - self.started,
            )
        )

    def finish(self) -> PullSummary:
        s = self.stats()
        self.summary.calls = s["calls"]
        self.summary.calls_by_kind = s["calls_by_kind"]
        self.summary.rate_limited = s["rate_limited"]
        self.summary.retries = s["retries"]
        self.summary.elapsed_s = time.monotonic() - self.started
        return self.summary


def plan_objects(plan: Mapping[str, PullSpecLike], objects: Iterable[str] | None) -> list[str]:
    """The object types to pull, in plan order; an unknown name is a ConfigError naming the valid ones."""
    if not objects:
        return list(plan)
    wanted = [o.strip() for o in objects if o and o.strip()]
    for name in wanted:
        if name not in plan:
            raise ConfigError(f"--objects: {name!r} is not pulled by the mapping pack{did_you_mean(name, plan)}")
    return [name for name in plan if name in wanted]


def pull(
    client: Any,
    store: StateStore,
    plan: Mapping[str, PullSpecLike],
    *,
    full: bool = False,
    objects: Iterable[str] | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    progress: Callable[[PullProgress], None] | None = None,
    extra_properties: Mapping[str, Sequence[str]] | None = None,
    margin: timedelta = DEFAULT_MARGIN,
    association_refresh_every: int = DEFAULT_ASSOCIATION_REFRESH_EVERY,
    now: Callable[[], datetime] | None = None,
) -> PullSummary:
    """Bring the store up to date with the portal for the plan's object types (see the module docstring).

    ``extra_properties``: per object type, properties pulled besides the plan's (the output properties
    write-back diffs against). ``progress`` is called after each committed page; if it raises, the run stops
    there and the next run resumes from what was committed. ``now`` is the clock for cursor caps (tests).
    """
    run = _Run(client, store, progress, now or (lambda: datetime.now(UTC)))
    for object_type in plan_objects(plan, objects):
        spec = plan[object_type]
        properties = sorted(set(spec.properties) | set((extra_properties or {}).get(object_type, ())))
        obj = ObjectSummary(object_type)
        run.summary.objects[object_type] = obj
        full_pass = _pull_records(run, obj, spec, properties, full=full, lookback=lookback, margin=margin)
        _pull_archived(run, obj, spec, properties)
        if spec.associations:
            _pull_associations(
                run, obj, spec, full_refresh=full or full_pass, flagged=full_pass, every=association_refresh_every
            )
        obj.cursor = store.load_cursor(object_type)
    return run.finish()


def _with_history(run: _Run, spec: PullSpecLike, properties: list[str], records: list[dict[str, Any]]) -> int:
    """Attach the history of the historical properties to a page of records (in place); returns how many."""
    if not spec.historical or not records:
        return 0
    ids = [str(r["id"]) for r in records]
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), HISTORY_BATCH):
        for rec in run.client.fetch_with_history(
            spec.object_type, ids[start : start + HISTORY_BATCH], properties, list(spec.historical)
        ):
            found[str(rec["id"])] = rec
    for record in records:
        fetched = found.get(str(record["id"]))
        if fetched is not None:
            record["history"] = fetched.get("history") or {}
    return len(found)


def _pull_records(
    run: _Run,
    obj: ObjectSummary,
    spec: PullSpecLike,
    properties: list[str],
    *,
    full: bool,
    lookback: timedelta,
    margin: timedelta,
) -> bool:
    """Step 1 and 2; returns True when this run did (or finished) a full pass."""
    store, client, object_type = run.store, run.client, spec.object_type
    stale = bool(spec.associations)
    cursor = store.load_cursor(object_type)
    # What the stored records hold: a property (or history) the mappings newly need is missing from every record
    # pulled before, and no incremental read would ever fill it in; a full pass does.
    pulled = {"properties": sorted(properties), "historical": sorted(spec.historical)}
    missing = _not_covered(cursor, pulled)
    resuming_full = bool(cursor and cursor.get("phase") == "full" and not missing)
    if full or cursor is None or resuming_full or missing:
        obj.mode = "full"
        obj.resumed = resuming_full
        obj.full_reason = (
            "resumed"
            if resuming_full
            else "--full"
            if full
            else "first pull"
            if cursor is None
            else f"new properties: {', '.join(missing)}"
        )
        started = _parse(cursor["started_at"]) if resuming_full else run.now()
        # Wall clock of this machine, the store's own: records not saved since are gone from HubSpot.
        seen_since = _parse(cursor["seen_since"]) if resuming_full and cursor.get("seen_since") else datetime.now(UTC)
        after = cursor.get("after") if resuming_full else None
        done_cursor = {"phase": "incremental", "since": _iso(started - margin), "id": None, **pulled}
        finished = False
        for page in client.iter_pages(object_type, properties, archived=False, after=after):
            obj.with_history += _with_history(run, spec, properties, page.records)
            if page.next_after:
                next_cursor = {
                    "phase": "full",
                    "after": str(page.next_after),
                    "started_at": _iso(started),
                    "seen_since": _iso(seen_since),
                    **pulled,
                }
                store.save_page(object_type, page.records, next_cursor, associations_stale=stale)
            else:
                finished = True
                store.save_page(
                    object_type, page.records, done_cursor, associations_stale=stale, archive_unseen_before=seen_since
                )
            _count(run, obj, page.records)
            run.report(obj, "records")
        if not finished:  # no page at all: nothing is live
            store.archive_unseen(object_type, seen_since)
            store.save_cursor(object_type, done_cursor)
        return True

    obj.mode = "incremental"
    since = _parse(cursor["since"])
    best: tuple[datetime, str] = (since, str(cursor.get("id") or ""))
    cap = run.now() - margin  # search index lag: never trust "nothing changed" closer to now than this
    # Keyset paging: restart the search after every page from the last modified time read (GTE, boundary ids
    # dropped) instead of paging by offset. An edit made during the search moves a record from before the offset
    # to the end, shifting the next record out of the offset's reach: with offsets it would be skipped, and lost
    # once the cursor passed it. The restart costs no extra call (``search_cap`` is the adapter's window size).
    saved_cap = getattr(client, "search_cap", None)
    if saved_cap is not None:
        client.search_cap = SEARCH_PAGE
    try:
        for page in client.iter_modified_since(object_type, since - lookback, properties, page_size=SEARCH_PAGE):
            obj.with_history += _with_history(run, spec, properties, page.records)
            for record in page.records:
                updated = record.get("updated_at")
                if isinstance(updated, str):
                    updated = _parse(updated)
                if updated is not None and (updated, str(record["id"])) > best:
                    best = (updated, str(record["id"]))
            # Never later than the cap, never earlier than where we started.
            when, rid = best if best[0] <= cap else (max(cap, since), None)
            store.save_page(
                object_type,
                page.records,
                {"phase": "incremental", "since": _iso(when), "id": rid, **pulled},
                associations_stale=stale,
            )
            _count(run, obj, page.records)
            run.report(obj, "records")
    finally:
        if saved_cap is not None:
            client.search_cap = saved_cap
    return False


def _not_covered(cursor: dict[str, Any] | None, pulled: dict[str, list[str]]) -> list[str]:
    """Properties (``name`` or ``name (history)``) the plan needs that the cursor's pulls did not fetch."""
    if not cursor:
        return []
    had = set(cursor.get("properties") or ())
    had_history = set(cursor.get("historical") or ())
    missing = [p for p in pulled["properties"] if p not in had]
    missing += [f"{p} (history)" for p in pulled["historical"] if p not in had_history]
    return missing


def _count(run: _Run, obj: ObjectSummary, records: list[dict[str, Any]]) -> None:
    archived = sum(1 for r in records if r.get("archived"))
    obj.archived += archived
    obj.records += len(records) - archived
    obj.pages += 1
    run.total_records += len(records)


def _pull_archived(run: _Run, obj: ObjectSummary, spec: PullSpecLike, properties: list[str]) -> None:
    """Step 3: archived (deleted) records, saved with their flag; resumable through the "archived" cursor."""
    store, object_type = run.store, spec.object_type
    cursor = store.load_cursor(object_type, "archived") or {}
    after = cursor.get("after") if cursor.get("phase") == "running" else None
    finished = False
    for page in run.client.iter_pages(object_type, properties, archived=True, after=after):
        for record in page.records:
            record["archived"] = True  # the list answers archived=true records; make the flag explicit
        known = store.archived_among(object_type, [r["id"] for r in page.records])
        obj.newly_archived += sum(1 for r in page.records if str(r["id"]) not in known)
        if page.next_after:
            next_cursor: dict[str, Any] = {"phase": "running", "after": str(page.next_after)}
        else:
            next_cursor, finished = {"phase": "done", "at": _iso(run.now())}, True
        store.save_page(object_type, page.records, next_cursor, cursor_name="archived")
        _count(run, obj, page.records)
        run.report(obj, "archived")
    if not finished:
        store.save_cursor(object_type, {"phase": "done", "at": _iso(run.now())}, "archived")


def _pull_associations(
    run: _Run, obj: ObjectSummary, spec: PullSpecLike, *, full_refresh: bool, flagged: bool, every: int
) -> None:
    """Step 4: refresh the associations of flagged records, 1,000 ids per batch, per to-type.

    ``flagged``: a full pass just completed, so every live record is already flagged (no UPDATE of them all).
    """
    store, object_type = run.store, spec.object_type
    state = store.load_cursor(object_type, "associations") or {}
    runs_since = int(state.get("runs_since_full", 0))
    pending_full = bool(state.get("full_pending"))
    if full_refresh or pending_full or runs_since + 1 >= max(every, 1):
        obj.associations_full_refresh = True
        if not pending_full and not flagged:
            # Flag everything and note it first: if killed, the next run finishes this refresh, not another.
            store.mark_associations_stale(object_type)
            store.save_cursor(object_type, {"runs_since_full": runs_since, "full_pending": True}, "associations")
    to_types = list(spec.associations)
    for ids in store.iter_stale_ids(object_type, batch_size=ASSOCIATION_BATCH):
        for index, to_type in enumerate(to_types):
            found = run.client.fetch_associations(object_type, to_type, ids)
            mapping = {i: list(found.get(i, ())) for i in ids}
            obj.associations += store.replace_associations(
                object_type, to_type, mapping, clear_stale=index == len(to_types) - 1
            )
        obj.association_ids += len(ids)
        run.report(obj, "associations")
    done = {"runs_since_full": 0 if obj.associations_full_refresh else runs_since + 1, "full_pending": False}
    store.save_cursor(object_type, done, "associations")
