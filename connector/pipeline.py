"""Composition root: wires settings, the HubSpot client and the state store through every stage of a run."""

from __future__ import annotations

# ---------------------------------------------------------------- pull (issue 3)
import contextlib as _contextlib  # noqa: E402  (imports kept in each issue's section)
import os as _os  # noqa: E402
import socket as _socket  # noqa: E402
import time as _time  # noqa: E402
from typing import Any as _Any, Callable as _Callable, Iterator as _Iterator  # noqa: E402

PULL_LOCK = "pull"
# A pull heartbeats at least every page; one silent this long died (kill -9, lost host) and its lock is taken over.
PULL_LOCK_STALE_S = 900.0


def pull_extra_properties(pack: _Any) -> dict[str, tuple[str, ...]]:
    """Output properties write-back diffs against, per object type: pulled with the mapped ones."""
    writeback = getattr(pack, "writeback", None)
    out: dict[str, set[str]] = {}
    if writeback is not None:
        for object_type, name in writeback.owned_properties():
            out.setdefault(object_type, set()).add(name)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def run_pull(
    settings: _Any,
    *,
    full: bool = False,
    objects: list[str] | None = None,
    progress: _Callable[[_Any], None] | None = None,
    client: _Any = None,
    store: _Any = None,
    pack: _Any = None,
) -> _Any:
    """settings → HubSpotClient → StateStore → mapping pack's pull plan → extract.pull, under the "pull" lock.

    ``client``, ``store`` and ``pack`` may be passed by a caller that already holds them (sync); otherwise they
    are built from settings and closed here. The run is recorded in the store's runs table.
    """
    from datetime import timedelta

    from connector.errors import StateError
    from connector.extract import pull
    from connector.mapping import load_pack
    from connector.state import StateStore

    if pack is None:
        pack = load_pack(settings.mappings_dir)
    plan = pack.pull_plan(pull_extra_properties(pack))
    own_store = store is None
    own_client = client is None
    with _contextlib.ExitStack() as stack:
        if own_store:
            store = StateStore.open(settings.state_url)
            stack.callback(store.close)
        if own_client:
            from connector.hubspot import HubSpotClient

            client = HubSpotClient.from_settings(settings)
            if hasattr(client, "close"):
                stack.callback(client.close)
        run_id = store.start_run("pull")
        owner = f"{_socket.gethostname()}:{_os.getpid()}:{run_id}"
        if not store.acquire_lock(PULL_LOCK, owner, stale_after_s=PULL_LOCK_STALE_S):
            holder = store.lock_holder(PULL_LOCK) or {}
            store.finish_run(run_id, "refused", {"error": "locked", "holder": holder.get("owner")})
            raise StateError(
                f"another pull holds the state store lock ({holder.get('owner', 'unknown')}, last heartbeat "
                f"{holder.get('heartbeat_at')}); it is taken over after {PULL_LOCK_STALE_S:.0f}s of silence"
            )
        last_beat = [_time.monotonic()]

        def on_page(event: _Any) -> None:
            if _time.monotonic() - last_beat[0] > 15:  # heartbeat at most every 15 s: one tiny write
                store.heartbeat(PULL_LOCK, owner)
                last_beat[0] = _time.monotonic()
            if progress is not None:
                progress(event)

        try:
            summary = pull(
                client,
                store,
                plan,
                full=full,
                objects=objects,
                lookback=timedelta(seconds=settings.lookback_seconds),
                progress=on_page,
            )
        except BaseException as exc:
            store.finish_run(run_id, "failed", {"error": f"{exc.__class__.__name__}: {exc}"[:500]})
            store.release_lock(PULL_LOCK, owner)
            raise
        summary.run_id = run_id
        store.finish_run(run_id, "ok", summary.to_dict())
        store.release_lock(PULL_LOCK, owner)
        return summary


@_contextlib.contextmanager
def pull_progress_display(enabled: bool) -> _Iterator[_Callable[[_Any], None] | None]:
    """Rich progress bars (records, records/s, API calls, rate headroom) per object type; None when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(bar_width=None),
        TextColumn("{task.completed:>9,.0f} records"),
        TextColumn("{task.fields[rate]:>7} rec/s"),
        TextColumn("{task.fields[calls]:>6} calls"),
        TextColumn("headroom {task.fields[headroom]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as bars:
        tasks: dict[str, _Any] = {}

        def update(event: _Any) -> None:
            key = event.object_type
            if key not in tasks:
                tasks[key] = bars.add_task(key, total=None, rate="-", calls=0, headroom="-")
            rate = event.total_records / event.elapsed_s if event.elapsed_s > 0 else 0.0
            headroom = "-" if event.headroom is None else f"{float(event.headroom):.0%}"
            bars.update(
                tasks[key],
                completed=event.records,
                description=f"{key} ({event.mode}, {event.phase})",
                rate=f"{rate:,.0f}",
                calls=event.calls,
                headroom=headroom,
            )

        yield update


# ---------------------------------------------------------------- model, metrics (issue 4)


def fetch_portal_properties(
    settings: _Any, object_types: list[str], *, client: _Any = None, skip_missing: bool = False
) -> dict[str, list[dict]]:
    """Property definitions of each object type, from the portal (one call per type).

    ``skip_missing``: leave out object types the portal lacks or the token may not read (for `mappings init`).
    """
    from connector.errors import MissingScopesError, NotFoundError, RejectedError
    from connector.hubspot import HubSpotClient

    own = client is None
    client = client or HubSpotClient.from_settings(settings)
    out: dict[str, list[dict]] = {}
    try:
        for object_type in dict.fromkeys(object_types):
            try:
                out[object_type] = client.fetch_properties(object_type)
            except (NotFoundError, RejectedError, MissingScopesError):
                if not skip_missing:
                    raise
        return out
    finally:
        if own and hasattr(client, "close"):
            client.close()


def check_mappings_online(settings: _Any, pack: _Any, *, client: _Any = None) -> list[_Any]:
    """The pack's problems against the live portal's property definitions (exist, types, enumeration values)."""
    from connector.mapping.check import check_against_portal

    object_types = [source.object for _, source in pack.sources.entities()]
    return check_against_portal(pack, fetch_portal_properties(settings, object_types, client=client))


def load_portfolio(store: _Any, pack: _Any) -> _Any:
    """Stored records and associations of every mapped object type → model.Portfolio (streamed, one pass)."""
    import itertools

    from connector.model import build_portfolio

    plan = pack.pull_plan()
    records = itertools.chain.from_iterable(store.iter_records(object_type) for object_type in plan)
    associations = itertools.chain.from_iterable(
        store.iter_associations(from_type=object_type) for object_type, spec in plan.items() if spec.associations
    )
    return build_portfolio(records, associations, pack)


# ---------------------------------------------------------------- health, segments (issue 5)


# ---------------------------------------------------------------- writeback, sync (issue 6)

WRITEBACK_LOCK = "writeback"
WRITEBACK_LOCK_STALE_S = 900.0


def load_writeback_config(settings: _Any, pack: _Any = None) -> _Any:
    """The pack's WritebackConfig, or mappings_dir/writeback.yaml alone (rollback needs no other file)."""
    from pathlib import Path

    from connector.errors import ConfigError
    from connector.mapping.loader import load_yaml_model
    from connector.mapping.writeback import WritebackConfig

    if pack is not None and getattr(pack, "writeback", None) is not None:
        return pack.writeback
    path = Path(settings.mappings_dir) / "writeback.yaml"
    if not path.exists():
        raise ConfigError(f"{path} not found: write-back needs it (`connector mappings init` writes a default)")
    return load_yaml_model(path, WritebackConfig)


def current_values_from_store(store: _Any, config: _Any) -> dict[tuple[str, str], dict[str, str | None]]:
    """(object_type, id) -> the output properties' values as last pulled (only those, to keep memory small)."""
    from connector.writeback import output_properties

    out: dict[tuple[str, str], dict[str, str | None]] = {}
    for object_type, names in output_properties(config).items():
        for record in store.iter_records(object_type):
            out[(object_type, record.id)] = {n: record.properties.get(n) for n in names}
    return out


def fetch_current_values(client: _Any, rows: _Any) -> dict[tuple[str, str], dict[str, str | None]]:
    """Fresh values from HubSpot of the (object_type, record_id, property) the ledger rows name (batch reads)."""
    wanted: dict[str, tuple[set[str], set[str]]] = {}
    for row in rows:
        ids, props = wanted.setdefault(row["object_type"], (set(), set()))
        ids.add(str(row["record_id"]))
        props.add(row["property"])
    out: dict[tuple[str, str], dict[str, str | None]] = {}
    for object_type, (ids, props) in wanted.items():
        for record in client.fetch_records(object_type, sorted(ids, key=lambda i: (len(i), i)), sorted(props)):
            out[(object_type, str(record["id"]))] = dict(record.get("properties") or {})
    return out


@_contextlib.contextmanager
def _writeback_session(settings: _Any, kind: str, client: _Any = None, store: _Any = None) -> _Iterator[tuple[_Any, _Any, str, _Callable[[_Any], None]]]:
    """Client, store, a new run id and a heartbeat, under the "writeback" lock (two applies never interleave)."""
    from connector.errors import StateError
    from connector.state import StateStore

    with _contextlib.ExitStack() as stack:
        if store is None:
            store = StateStore.open(settings.state_url)
            stack.callback(store.close)
        if client is None:
            from connector.hubspot import HubSpotClient

            client = HubSpotClient.from_settings(settings)
            stack.callback(client.close)
        run_id = store.start_run(kind)
        owner = f"{_socket.gethostname()}:{_os.getpid()}:{run_id}"
        if not store.acquire_lock(WRITEBACK_LOCK, owner, stale_after_s=WRITEBACK_LOCK_STALE_S):
            holder = store.lock_holder(WRITEBACK_LOCK) or {}
            store.finish_run(run_id, "refused", {"error": "locked", "holder": holder.get("owner")})
            raise StateError(f"another write-back holds the state store lock ({holder.get('owner', 'unknown')})")
        stack.callback(store.release_lock, WRITEBACK_LOCK, owner)
        last_beat = [_time.monotonic()]

        def beat(_event: _Any = None) -> None:
            if _time.monotonic() - last_beat[0] > 15:
                store.heartbeat(WRITEBACK_LOCK, owner)
                last_beat[0] = _time.monotonic()

        yield client, store, run_id, beat


def run_writeback(
    settings: _Any,
    outputs: dict[str, dict[str, _Any]],
    portfolio: _Any,
    *,
    pack: _Any = None,
    client: _Any = None,
    store: _Any = None,
    dry_run: bool = False,
) -> _Any:
    """Finish any apply a crash left, then provision, plan, apply and enroll (writeback.apply_writeback).

    ``outputs``: per customer id the computed fields (health, segments, metrics); ``portfolio``: model.Portfolio
    (customers and deals). Current CRM values are the pulled ones in the store. Returns the WritebackSummary; the
    run is recorded (kind "writeback"); raises WritebackError (exit 5) after recording when HubSpot refused records.
    """
    from connector import writeback

    config = load_writeback_config(settings, pack)
    with _writeback_session(settings, "writeback", client, store) as (client, store, run_id, beat):
        try:
            if not dry_run:
                writeback.resume_unfinished(client, store, batch_size=config.batch_size)
            current = current_values_from_store(store, config)
            summary = writeback.apply_writeback(run_id, config, outputs, portfolio.customers, current, client, store,
                                                deals=portfolio.deals, dry_run=dry_run)
        except BaseException as exc:
            store.finish_run(run_id, "failed", {"error": f"{exc.__class__.__name__}: {exc}"[:500]})
            raise
        store.finish_run(run_id, "partial" if summary.failures else "ok", summary.to_dict())
    summary.raise_for_failures()
    return summary


def run_rollback(settings: _Any, source_run_id: str, *, dry_run: bool = False, client: _Any = None,
                 store: _Any = None) -> tuple[_Any, _Any, str]:
    """Restore the values ``source_run_id`` wrote where HubSpot still holds them: (plan, result or None, run id).

    Reads the current values fresh from HubSpot (not the store, which may be older than a human's edit).
    """
    from connector import writeback
    from connector.errors import ConfigError

    with _writeback_session(settings, "rollback", client, store) as (client, store, run_id, beat):
        try:
            rows = store.ledger(source_run_id)
            if not rows:
                raise ConfigError(f"run {source_run_id} wrote nothing (no ledger rows); see `connector writeback ledger`")
            try:
                config = load_writeback_config(settings)
                props = {(o.object, o.property.name): o.property for o in config.outputs}
            except ConfigError:
                props = None  # compare as plain strings/numbers: rollback must work without the mapping
            plan = writeback.plan_rollback(rows, fetch_current_values(client, rows), properties=props)
            result = None
            if not dry_run:
                result = writeback.apply_rollback(run_id, source_run_id, plan, client, store, progress=beat)
        except BaseException as exc:
            store.finish_run(run_id, "failed", {"error": f"{exc.__class__.__name__}: {exc}"[:500]})
            raise
        summary = {"source_run_id": source_run_id, "dry_run": dry_run, "plan": plan.to_dict(),
                   "applied": result.to_dict() if result else None}
        store.finish_run(run_id, "partial" if result and result.failures else "ok", summary)
    if result is not None:
        result.raise_for_failures()
    return plan, result, run_id


def run_resume_writeback(settings: _Any, *, client: _Any = None, store: _Any = None) -> list[_Any]:
    """Finish every apply a crash left with planned rows (what `sync` also does before planning)."""
    from connector import writeback

    with _writeback_session(settings, "resume", client, store) as (client, store, run_id, beat):
        results = writeback.resume_unfinished(client, store)
        store.finish_run(run_id, "partial" if any(r.failures for r in results) else "ok",
                         {"resumed": [r.to_dict() for r in results]})
    for result in results:
        result.raise_for_failures()
    return results


def load_ledger(settings: _Any, run_id: str) -> list[dict[str, _Any]]:
    """Every ledger row of a run (before, after, status, HubSpot's message)."""
    from connector.state import StateStore

    with _contextlib.closing(StateStore.open(settings.state_url)) as store:
        return store.ledger(run_id)
