"""Composition root: wires settings, the HubSpot client and the state store through every stage of a run."""

from __future__ import annotations

# ---------------------------------------------------------------- pull (issue 3)
import contextlib as _contextlib  # noqa: E402  (imports kept in each issue's section)
import time as _time  # noqa: E402
from typing import Any as _Any, Callable as _Callable, Iterator as _Iterator  # noqa: E402

from connector.lease import Lease  # noqa: E402

PULL_LOCK = "pull"


def open_store_and_client(stack: _contextlib.ExitStack, settings: _Any, store: _Any = None, client: _Any = None) -> tuple[_Any, _Any]:
    """The given store and client, or new ones from settings, closed when ``stack`` closes."""
    from connector.state import StateStore

    if store is None:
        store = stack.enter_context(_contextlib.closing(StateStore.open(settings.state_url)))
    if client is None:
        from connector.hubspot import HubSpotClient

        client = stack.enter_context(_contextlib.closing(HubSpotClient.from_settings(settings)))
    return store, client


def required_scopes(pack: _Any, *, write: bool) -> set[str]:
    """Every scope a run with this mapping pack needs (API-NOTES §8): read each pulled type; with ``write``, write
    each output object, create properties on it, and the lists / workflows enrollment rules name."""
    scopes = {f"crm.objects.{object_type}.read" for object_type in pack.pull_plan()}
    writeback = getattr(pack, "writeback", None)
    if write and writeback is not None:
        for output in writeback.outputs:
            scopes.add(f"crm.objects.{output.object}.write")
            if not output.existing:
                scopes.add(f"crm.schemas.{output.object}.write")
        for rule in writeback.enrollments:
            if rule.workflow_id is not None:
                scopes.add("automation")
            else:
                scopes.update({"crm.lists.read", "crm.lists.write"})
    return scopes


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

    from connector.extract import pull
    from connector.mapping import load_pack

    if pack is None:
        pack = load_pack(settings.mappings_dir)
    plan = pack.pull_plan(pull_extra_properties(pack))
    own_client = client is None
    with _contextlib.ExitStack() as stack:
        store, client = open_store_and_client(stack, settings, store, client)
        run_id = store.start_run("pull")  # recorded before any HubSpot call: a start-up failure leaves its trace
        lease = stack.enter_context(Lease(store, PULL_LOCK, run_id, what="pull"))

        def on_page(event: _Any) -> None:
            lease.check()
            if progress is not None:
                progress(event)

        try:
            if own_client:
                client.require_scopes(required_scopes(pack, write=False))  # every missing scope named, before work
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
            raise
        summary.run_id = run_id
        store.finish_run(run_id, "ok", summary.to_dict())
        return summary


@_contextlib.contextmanager
def pull_progress_display(enabled: bool) -> _Iterator[_Callable[[_Any], None] | None]:
    """Rich progress lines per object type (records, records/s, API calls, burst headroom); None when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # No bar: an incremental pull cannot know its total. A row per object type (and phase) that fits 80 columns;
    # the pull reads one type after the other, so a row is finished (a tick, its clock stopped) once the next type
    # starts. Rate headroom is a row of its own, apart from the counts.
    columns = (
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("[bold]{task.description:<32}"),
        TextColumn("{task.fields[count]:>11}"),
        TextColumn("{task.fields[rate]:>8}"),
        TextColumn("{task.fields[calls]:>11}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as bars:
        tasks: dict[str, _Any] = {}
        budget = bars.add_task("rate headroom -", total=None, count="", rate="", calls="", visible=False)

        def finish_others(current: str) -> None:
            for key, task in tasks.items():
                if key != current and not bars.tasks[task].finished:
                    bars.update(task, total=bars.tasks[task].completed)

        def update(event: _Any) -> None:
            key = event.object_type
            if key not in tasks:
                finish_others(key)
                tasks[key] = bars.add_task(key, total=None, count="", rate="", calls="")
            rate = event.total_records / event.elapsed_s if event.elapsed_s > 0 else 0.0
            bars.update(tasks[key], completed=event.records, description=f"{key} {event.mode} {event.phase}"[:32],
                        count=f"{event.records:,} rec", rate=f"{rate:,.0f}/s", calls=f"{event.calls:,} calls")
            if event.headroom is not None:
                bars.update(budget, visible=True,
                            description=f"rate headroom {float(event.headroom):.0%} (burst budget left)")

        try:
            yield update
        finally:
            finish_others("")


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

    from connector.writeback import provisioning_problems

    object_types = [source.object for _, source in pack.sources.entities()]
    if pack.writeback is not None:
        object_types += [o.object for o in pack.writeback.outputs if o.object not in object_types]
    properties = fetch_portal_properties(settings, list(dict.fromkeys(object_types)), client=client)
    problems = check_against_portal(pack, properties)
    if pack.writeback is not None:  # the outputs a sync would refuse to provision, refused here with file:line
        problems += [pack.error("writeback.yaml", ("outputs", index, "property", "name"), f"outputs[{index}]: {why}")
                     for index, why in provisioning_problems(pack.writeback, properties)]
    return problems


def load_portfolio(store: _Any, pack: _Any) -> _Any:
    """Stored records and associations of every mapped object type → model.Portfolio (polars frames)."""
    from connector.model import build_portfolio

    return build_portfolio(store, pack)  # the store is the model's Source: it reads its records as frames


# ---------------------------------------------------------------- health, segments (issue 5)


def load_stage_report(settings: _Any, kind: str, *, customer: str | None = None, store: _Any = None,
                      pack: _Any = None) -> dict[str, _Any]:
    """The latest "health" or "segments" snapshot as a distribution with the change since the run before it.

    Result: run_id, as_of, previous_run_id (None without an earlier run), distribution (counts per band or per
    lifecycle stage, tag, NPS group and RFM segment, each with its change), and with ``customer`` that
    customer's full row (None when the snapshot does not hold it). run_id is None when nothing was saved yet.
    """
    from connector.health import health_distribution
    from connector.mapping import load_pack
    from connector.segments import segment_distribution
    from connector.state import StateStore

    if kind not in ("health", "segments"):
        raise ValueError(f"kind must be health or segments, not {kind!r}")
    own_store = store is None
    store = store or StateStore.open(settings.state_url)
    try:
        pack = pack or load_pack(settings.mappings_dir)
        runs = store.snapshot_runs(kind)
        report: dict[str, _Any] = {"kind": kind, "run_id": None, "as_of": None, "previous_run_id": None,
                                   "distribution": None, "customer": None}
        if not runs:
            return report
        run_id, as_of = runs[-1]
        current = store.load_snapshots(kind)
        previous = store.load_snapshots(kind, before_run_id=run_id) if len(runs) > 1 else None
        if kind == "health":
            labels = [band.label for band in pack.health.bands] if pack.health is not None else []
            distribution = health_distribution(current, previous, labels)
        else:
            if pack.segments is None:
                from connector.errors import ConfigError

                raise ConfigError(f"no segments.yaml in {settings.mappings_dir}: cannot name the segments")
            distribution = segment_distribution(current, previous, pack.segments)
        report.update(run_id=run_id, as_of=as_of.isoformat() if as_of else None,
                      previous_run_id=runs[-2][0] if len(runs) > 1 else None, distribution=distribution)
        if customer is not None:
            report["customer"] = current.get(customer)
        return report
    finally:
        if own_store:
            store.close()


# ---------------------------------------------------------------- writeback, sync (issue 6)

WRITEBACK_LOCK = "sync"  # the same lock as sync: a rollback or resume never interleaves with a sync's apply


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


def current_frames_from_store(store: _Any, config: _Any) -> _Any:
    """The output properties' values as last pulled, as columns (writeback.CurrentFrames): one frame per object
    type of ``id`` + the properties write-back diffs against (only those, to keep memory small)."""
    from connector.writeback import CurrentFrames, output_properties

    return CurrentFrames({object_type: store.records_frame(object_type, names).select("id", *names)
                          for object_type, names in output_properties(config).items()})


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
    with _contextlib.ExitStack() as stack:
        store, client = open_store_and_client(stack, settings, store, client)
        run_id = store.start_run(kind)
        lease = stack.enter_context(Lease(store, WRITEBACK_LOCK, run_id, what="sync or write-back"))

        def beat(_event: _Any = None) -> None:
            lease.check()  # the lease's thread keeps the heartbeat fresh; stop if another run took it over

        yield client, store, run_id, beat


def run_writeback(
    settings: _Any,
    outputs: _Any,
    portfolio: _Any,
    *,
    pack: _Any = None,
    client: _Any = None,
    store: _Any = None,
    dry_run: bool = False,
) -> _Any:
    """Finish any apply a crash left, then provision, plan, apply and enroll (writeback.apply_writeback).

    ``outputs``: the computed fields (health, segments, metrics) as a frame with ``customer_id`` (``Computed.outputs``)
    or per customer id as dicts; ``portfolio``: model.Portfolio (its customers and deals frames). Current CRM values are the pulled ones in the store. Returns the WritebackSummary; the
    run is recorded (kind "writeback"); raises WritebackError (exit 5) after recording when HubSpot refused records.
    """
    from connector import writeback

    config = load_writeback_config(settings, pack)
    with _writeback_session(settings, "writeback", client, store) as (client, store, run_id, beat):
        try:
            if not dry_run:
                writeback.resume_unfinished(client, store, batch_size=config.batch_size)
            current = current_frames_from_store(store, config)
            summary = writeback.apply_writeback(run_id, config, outputs, portfolio.frames.customers, current, client,
                                                store, deals=portfolio.frames.deals, dry_run=dry_run)
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

    from connector.errors import ConfigError

    with _contextlib.closing(StateStore.open(settings.state_url)) as store:
        if store.get_run(run_id) is None:
            recent = ", ".join(r["id"] for r in store.list_runs(limit=3)) or "none yet"
            raise ConfigError(f"no run {run_id!r} in the state store {settings.state_url} (latest: {recent}; "
                              "`connector runs` lists them)")
        return store.ledger(run_id)


def load_runs(settings: _Any, *, limit: int = 20) -> tuple[list[dict[str, _Any]], dict[str, _Any] | None]:
    """The latest runs of the store, newest first (id, kind, status, start, end, summary), and who holds the sync
    lease now (None when free)."""
    from connector.state import StateStore

    with _contextlib.closing(StateStore.open(settings.state_url)) as store:
        return store.list_runs(limit=limit), store.lock_holder(SYNC_LOCK)


import dataclasses as _dataclasses  # noqa: E402
from datetime import datetime as _datetime, timezone as _timezone  # noqa: E402

SYNC_LOCK = "sync"
REPORT_MONTHS = 6  # the report and the metric snapshots cover the current month and the five before it


def metrics_options(pack: _Any) -> _Any:
    """The metric conventions portal.yaml chose (METRICS.md's recommendations by default)."""
    from connector.metrics.features import FeatureOptions
    from connector.metrics.portfolio import MetricsOptions

    portal = pack.portal
    features = FeatureOptions(
        tz=portal.periods.time_zone,
        gross_margin=portal.clv.gross_margin,
        clv_cap_months=portal.clv.cap_months,
    )
    return MetricsOptions(
        churn_method=portal.conventions.churn,
        net_mrr_churn=portal.conventions.nrr,
        gross_margin=portal.clv.gross_margin,
        clv_cap_months=portal.clv.cap_months,
        features=features,
    )


@_dataclasses.dataclass
class Computed:
    """What one run computed from the store: the inputs of the write-back and of the report."""

    as_of: _datetime
    portfolio: _Any
    features: _Any
    health: dict[str, dict[str, _Any]]
    segments: dict[str, dict[str, _Any]]
    outputs: _Any  # pl.DataFrame: customer_id + every output field (and tags), one row per customer
    metrics: list[_Any]  # PortfolioMetrics of the last REPORT_MONTHS months, oldest first
    health_distribution: dict[str, _Any]
    segment_distribution: dict[str, _Any]


def compute(store: _Any, pack: _Any, as_of: _datetime, *, months: int = REPORT_MONTHS) -> Computed:
    """model → metrics → health → segments, with last run's snapshots for trends and hysteresis."""
    from connector.health import health_distribution, health_features, health_scores
    from connector.metrics.periods import containing, previous
    from connector.metrics.portfolio import portfolio_metrics
    from connector.metrics.revenue import build_mrr_ledger
    from connector.metrics.features import customer_features
    from connector.segments import customer_segments, segment_distribution, segment_features
    from connector.writeback import output_frame

    options = metrics_options(pack)
    portfolio = load_portfolio(store, pack)
    ledger = build_mrr_ledger(portfolio)
    features = customer_features(portfolio, as_of, options=options.features, ledger=ledger)

    previous_health = store.load_snapshots("health")
    health = health_scores(features, pack.health, previous_health)
    health_view = health_features(health)
    previous_segments = store.load_snapshots("segments")
    segments = customer_segments(features, pack.segments, as_of, previous_segments, health=health_view)

    outputs = output_frame(features, health_view, segment_features(segments), pack.writeback)

    tz = pack.portal.periods.time_zone
    period = containing(as_of, "month", tz)
    periods = [period]
    for _ in range(months - 1):
        periods.insert(0, previous(periods[0], "month", tz))
    metrics = [
        portfolio_metrics(portfolio, p, as_of, options=_dataclasses.replace(options, cohorts=(p is period)),
                          ledger=ledger, features=features)
        for p in periods
    ]
    band_labels = [band.label for band in pack.health.bands] if hasattr(pack.health, "bands") else []
    return Computed(
        as_of=as_of, portfolio=portfolio, features=features, health=health, segments=segments, outputs=outputs,
        metrics=metrics,
        health_distribution=health_distribution(health, previous_health, band_labels),
        segment_distribution=segment_distribution(segments, previous_segments, pack.segments),
    )


def save_computed(store: _Any, run_id: str, computed: Computed) -> None:
    """Snapshots for the next run's trends and hysteresis, and the period figures for reports."""
    store.save_snapshots(run_id, "health", computed.as_of, computed.health)
    store.save_snapshots(run_id, "segments", computed.as_of, computed.segments)
    for figures in computed.metrics:
        data = figures.to_dict()
        data["health"] = computed.health_distribution
        data["segments"] = computed.segment_distribution
        store.save_metrics(run_id, figures.period.label, data)


def _f(value: _Any) -> float | None:
    return None if value is None else float(value)


def report_data(metrics: list[dict[str, _Any]], *, title: str = "Retention report", currency: str = "USD") -> dict[str, _Any]:
    """ReportData (connector.report) from metric snapshots (PortfolioMetrics.to_dict), oldest period first."""
    periods = []
    for m in metrics:
        customers = m["customers"]
        revenue = m["revenue"]
        movements = revenue["movements"]
        periods.append({
            "key": m["period"]["label"],
            "customers": {"start": customers["start"], "end": customers["end"], "new": customers["new"],
                          "lost": customers["lost"], "reactivated": customers["reactivated"]},
            "customer_retention_rate": customers["retention_rate"],
            "customer_churn_rate": m["churn"],
            "mrr_start": _f(revenue["start_mrr"]),
            "mrr_end": _f(revenue["end_mrr"]),
            "movements": {k: _f(movements[k]) for k in ("new", "expansion", "contraction", "churned", "reactivation")},
            "net_revenue_retention": revenue["retention"]["nrr"],
            "gross_revenue_retention": revenue["retention"]["grr"],
            "arpa": _f(m["arpa"]),
            "nps": m["surveys"]["nps"],
            "csat": m["surveys"]["csat"],
            "ces": m["surveys"]["ces_mean"],
        })
    latest = metrics[-1] if metrics else {}
    cohorts = [{"cohort": c["cohort"], "size": c["size"], "retention": list(c["rates"])} for c in latest.get("cohorts", [])]
    return {
        "title": title,
        "as_of": latest.get("as_of", ""),
        "currency": currency,
        "periods": periods,
        "cohorts": cohorts[-12:],
        "health": latest.get("health") or {},
        "segments": latest.get("segments") or {},
    }


@_dataclasses.dataclass
class SyncSummary:
    """The one-line (or JSON) account of a sync a scheduler's log keeps."""

    run_id: str
    dry_run: bool
    records_pulled: int = 0
    customers: int = 0
    values_changed: int = 0
    values_written: int = 0
    records_written: int = 0
    failures: int = 0
    enrollments: int = 0
    api_calls: int = 0
    calls_by_kind: dict[str, int] = _dataclasses.field(default_factory=dict)
    rate_limited: int = 0  # 429s met (each waited out, not failed)
    retries: int = 0
    rate_headroom: float | None = None
    duration_s: float = 0.0
    data_issues: int = 0
    status: str = "ok"

    def to_dict(self) -> dict[str, _Any]:
        return _dataclasses.asdict(self)

    def line(self) -> str:
        headroom = "-" if self.rate_headroom is None else f"{self.rate_headroom:.0%}"
        mode = " (dry run: nothing written)" if self.dry_run else ""
        return (
            f"sync {self.run_id} {self.status}{mode}: {self.records_pulled} records pulled, {self.customers} customers, "
            f"{self.values_changed} values changed, {self.values_written} written, {self.failures} failures, "
            f"{self.enrollments} enrollments, {self.api_calls} API calls, rate headroom {headroom}, "
            f"{self.data_issues} data issues, {self.duration_s:.1f}s"
        )


def _record_stats(summary: SyncSummary, client: _Any) -> None:
    from connector.extract import client_stats

    stats = client_stats(client)
    summary.api_calls = int(stats.get("calls") or 0)
    summary.calls_by_kind = dict(stats.get("calls_by_kind") or {})
    summary.rate_limited, summary.retries = int(stats.get("rate_limited") or 0), int(stats.get("retries") or 0)
    summary.rate_headroom = stats.get("headroom")


def run_sync(
    settings: _Any,
    *,
    dry_run: bool = False,
    full: bool = False,
    as_of: _datetime | None = None,
    progress: _Callable[[_Any], None] | None = None,
    stage: _Callable[[str], None] | None = None,
    client: _Any = None,
    store: _Any = None,
    raise_failures: bool = True,
) -> tuple[SyncSummary, Computed, _Any]:
    """pull → model → metrics → health → segments → plan → apply → enrollments, under the sync lock.

    Returns the summary, what was computed and the write-back summary. Raises ConfigError/MappingError before
    any write, StateError when another sync holds the lock, and (with ``raise_failures``) WritebackError after
    recording everything when HubSpot refused some records.
    """
    from connector.errors import ConfigError
    from connector.mapping import load_pack
    from connector.writeback import apply_writeback, resume_unfinished

    started = _time.monotonic()
    note = stage or (lambda _name: None)
    pack = load_pack(settings.mappings_dir)  # a wrong mapping fails here, before any call or write
    missing = [name for name, part in (("health.yaml", pack.health), ("segments.yaml", pack.segments),
                                       ("writeback.yaml", pack.writeback)) if part is None]
    if missing:
        raise ConfigError(
            f"sync needs {', '.join(missing)} in {settings.mappings_dir} (`connector pull` works without them); "
            "copy the documented defaults from the project's mappings/ folder and adapt them"
        )
    with _contextlib.ExitStack() as stack:
        store, client = open_store_and_client(stack, settings, store, client)
        # Recorded and locked before any HubSpot call: a start-up failure leaves its trace, and a second sync finds
        # the lock without spending the rate budget on probes first.
        run_id = store.start_run("sync")
        lease = stack.enter_context(Lease(store, SYNC_LOCK, run_id, what="sync"))
        summary = SyncSummary(run_id=run_id, dry_run=dry_run)
        try:
            client.require_scopes(required_scopes(pack, write=not dry_run))  # every missing scope named, first
            if not dry_run:
                note("resume")
                resume_unfinished(client, store)  # a killed apply finishes before anything is planned anew
            note("pull")
            pulled = run_pull(settings, full=full, progress=progress, client=client, store=store, pack=pack)
            summary.records_pulled = pulled.records
            lease.check()

            note("compute")
            moment = as_of or _datetime.now(_timezone.utc)
            computed = compute(store, pack, moment)
            summary.customers = computed.outputs.height
            summary.data_issues = len(computed.portfolio.issues)
            lease.check()

            note("write-back")
            current = current_frames_from_store(store, pack.writeback)
            frames = computed.portfolio.frames
            written = apply_writeback(run_id, pack.writeback, computed.outputs, frames.customers, current, client,
                                      store, deals=frames.deals, dry_run=dry_run)
            summary.values_changed = len(written.plan)
            if written.applied is not None:
                summary.values_written = written.applied.changes_written
                summary.records_written = written.applied.records_written
            summary.failures = len(written.failures)
            if written.enrolled is not None:
                summary.enrollments = written.enrolled.done
            if not dry_run:
                save_computed(store, run_id, computed)
        except BaseException as exc:
            summary.status = "failed"
            _record_stats(summary, client)
            summary.duration_s = _time.monotonic() - started
            store.finish_run(run_id, "failed", {**summary.to_dict(), "error": f"{exc.__class__.__name__}: {exc}"[:500]})
            raise
        _record_stats(summary, client)
        summary.duration_s = _time.monotonic() - started
        summary.status = "partial" if summary.failures else "ok"
        store.finish_run(run_id, summary.status, summary.to_dict())
    if raise_failures:
        written.raise_for_failures()  # exit 5, after everything is recorded
    return summary, computed, written


def computed_report(computed: Computed, pack: _Any, *, title: str = "Retention report") -> dict[str, _Any]:
    """ReportData straight from a run's computation (what `sync` prints at the end)."""
    rows = []
    for figures in computed.metrics:
        data = figures.to_dict()
        data["health"] = computed.health_distribution
        data["segments"] = computed.segment_distribution
        rows.append(data)
    return report_data(rows, title=title, currency=pack.portal.currency.reporting)


def load_report_data(settings: _Any, *, title: str = "Retention report") -> dict[str, _Any]:
    """ReportData of the last sync that saved metrics, from the state store (no HubSpot call)."""
    from connector.errors import StateError
    from connector.state import StateStore

    with _contextlib.closing(StateStore.open(settings.state_url)) as store:
        rows = store.load_metrics()
    if not rows:
        raise StateError("no metrics in the state store yet: run `connector sync` first")
    latest = max(r["run_id"] for r in rows)
    ordered = sorted((r for r in rows if r["run_id"] == latest), key=lambda r: r["period_key"])
    currency = "USD"
    try:
        from connector.mapping import load_pack

        currency = load_pack(settings.mappings_dir).portal.currency.reporting
    except Exception:  # the report is read from the store; a broken pack must not hide it
        pass
    return report_data([r["data"] for r in ordered], title=title, currency=currency)


def run_metrics(settings: _Any, *, period: str = "month", as_of: _datetime | None = None) -> _Any:
    """Portfolio figures of the period containing ``as_of`` (default now), from what the store holds."""
    from connector.metrics.periods import containing
    from connector.metrics.portfolio import portfolio_metrics
    from connector.mapping import load_pack
    from connector.state import StateStore

    pack = load_pack(settings.mappings_dir)
    moment = as_of or _datetime.now(_timezone.utc)
    with _contextlib.closing(StateStore.open(settings.state_url)) as store:
        portfolio = load_portfolio(store, pack)
    window = containing(moment, period, pack.portal.periods.time_zone)
    return portfolio_metrics(portfolio, window, moment, options=metrics_options(pack)), pack


def run_schedule(cron: str, job: _Callable[[], None], *, max_runs: int | None = None,
                 announce: _Callable[[str], None] | None = None) -> int:
    """Run ``job`` on a cron expression (APScheduler), never two at once; returns how many runs happened.

    Overlap is impossible twice over: APScheduler's max_instances=1 skips a firing while the last run is
    still going, and the sync lock in the state store refuses a second process.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    from connector.errors import ConfigError

    fields = cron.split()
    try:
        if len(fields) == 6:  # seconds first, as in Quartz/Spring-style cron: "*/30 * * * * *"
            second, minute, hour, day, month, day_of_week = fields
            trigger = CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                                  day_of_week=day_of_week, timezone="UTC")
        else:
            trigger = CronTrigger.from_crontab(cron, timezone="UTC")
    except ValueError as exc:
        raise ConfigError(f"--cron {cron!r} is not a cron expression (5 fields, or 6 with seconds first): {exc}") from None
    scheduler = BlockingScheduler(timezone="UTC")
    runs = [0]

    def wrapped() -> None:
        job()
        runs[0] += 1
        if max_runs is not None and runs[0] >= max_runs:
            scheduler.shutdown(wait=False)

    job_ref = scheduler.add_job(wrapped, trigger, max_instances=1, coalesce=True, misfire_grace_time=300)
    if announce is not None:
        announce(f"scheduled sync on '{cron}' (UTC); next at {trigger.get_next_fire_time(None, _datetime.now(_timezone.utc))}")
    del job_ref
    scheduler.start()
    return runs[0]
