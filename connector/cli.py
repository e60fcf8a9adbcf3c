"""Command line: parses arguments, calls the pipeline, maps errors to exit codes (nothing else)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, TypeVar

import typer

from connector.errors import ConfigError, ConnectorError, MappingError

app = typer.Typer(
    help="Retention connector for HubSpot: pull, compute retention metrics and health, write back.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # never print locals: they may hold tokens
    add_completion=False,
    rich_markup_mode=None,  # plain click help: flags shown as flags, nothing cut in a log or a narrow terminal
    context_settings={"help_option_names": ["-h", "--help"]},
)
sandbox_app = typer.Typer(help="The local HubSpot-compatible portal.", no_args_is_help=True)
mappings_app = typer.Typer(help="Check and scaffold the YAML mapping pack.", no_args_is_help=True)
writeback_app = typer.Typer(help="Plan, apply and roll back writes to HubSpot.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(mappings_app, name="mappings")
app.add_typer(writeback_app, name="writeback")

T = TypeVar("T")


# Exit codes (STYLE.md): 0 ok, 1 unexpected, 2 config/mapping, 3 auth, 4 state store, 5 partial write failure.


def guarded(action: Callable[[], T]) -> T:
    """The one except ladder: a ConnectorError becomes its message on stderr and its exit code."""
    try:
        return action()
    except MappingError as exc:
        for problem in exc.problems:
            where = f"{problem.file}:{problem.line}" if problem.line else problem.file
            typer.echo(f"mapping error: {where}: {problem.reason}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except ConnectorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


# The default mapping pack ships beside the package (editable install / source checkout).
_BUNDLED_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def load_settings(**overrides):
    """Settings from arguments, env and .env; every command uses this. Only when no mapping folder was configured
    and ./mappings does not exist is the bundled pack used; a configured folder that does not exist is an error."""
    from connector import settings as settings_module

    settings = settings_module.load_settings(**overrides)
    if settings.mappings_dir.is_dir():
        return settings
    if "mappings_dir" in settings.model_fields_set:
        raise ConfigError(f"CONNECTOR_MAPPINGS_DIR: the mapping folder {settings.mappings_dir} does not exist; "
                          "point it at the folder that holds portal.yaml and sources.yaml "
                          "(`connector mappings init` writes one)")
    if _BUNDLED_MAPPINGS.is_dir():
        return settings.model_copy(update={"mappings_dir": _BUNDLED_MAPPINGS})
    return settings


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM (systemd, Kubernetes, `kill`) stop a run like Ctrl-C: it unwinds, records itself and
    releases its lock. Installed explicitly because a background process inherits SIGINT ignored."""
    import signal

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"connector {version('hubspot-retention-connector')}")
        raise typer.Exit()


@app.callback()
def global_options(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log lines on stderr (-vv: debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
    log_format: str = typer.Option("text", "--log-format", metavar="<text|json>",
                                   help="Log lines as text or JSON objects."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Retention connector for HubSpot: pull, compute retention metrics and health, write back.

    Example: connector sync --sandbox (a demo against a local HubSpot-compatible portal)."""
    from connector.logs import configure_logging

    if log_format not in ("text", "json"):
        typer.echo(f"error: --log-format must be text or json, not {log_format!r}", err=True)
        raise typer.Exit(2)
    configure_logging(verbose, quiet, log_format)


def main() -> None:
    app()


# ---------------------------------------------------------------- sandbox (issue 2)


@sandbox_app.command("serve")
def sandbox_serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(8765, help="Port to listen on; 0 picks a free one."),
    seed: int = typer.Option(7, help="Seed of the generated portal: the same seed gives the same data."),
    size: str = typer.Option("small", help="small (200 contacts), medium (10,000), large (100,000) or a number."),
    profile: str = typer.Option(
        "unlimited", help="Rate profile: free, starter, professional, enterprise, oauth or unlimited."),
    faults: str = typer.Option(
        "", help="Faults to inject, e.g. '503:0.05,reset:0.01,slow:0.02@2s' or 'seq:200,429,503,200'; "
                 "'path=/crm/v3/objects' restricts them to a path prefix."),
    ground_truth: str = typer.Option("", help="Write the generator's churn ground truth (JSON) to this file."),
    portals: int = typer.Option(
        1, "--portals", min=1, help="Serve this many portals (seeds SEED, SEED+1, …), each with its own hub id, "
                                    "data, tokens and limits; a request goes to the portal whose token it carries."),
    app_dir: str = typer.Option(
        "", "--app", help="A HubSpot developer-platform project folder (hsproject.json, src/app/*-hsmeta.json) to "
                          "register: prints its client id and secret; OAuth installs are approved for this portal."),
    activity: float = typer.Option(
        0.0, help="Simulated changes per minute (usage, seats, tickets, failed payments, cancellations), written "
                  "through the API's write path so webhooks and incremental syncs see them; 0 = none."),
    webhook_time_scale: float = typer.Option(
        1.0, help="Multiplies webhook retry back-off (HubSpot's minutes to hours); 0.001 makes it seconds."),
) -> None:
    """Serve a local HubSpot-compatible portal until Ctrl-C; prints its base URL and a token to paste."""

    def run() -> None:
        import json
        from pathlib import Path

        from connector.errors import ConfigError
        from connector.sandbox.faults import parse_faults
        from connector.sandbox.platform import AppPlatform
        from connector.sandbox.server import SandboxStartError, build_portals, start_sandbox

        try:
            parse_faults(faults)
            if activity < 0 or webhook_time_scale <= 0:
                raise ValueError("--activity must be 0 or more and --webhook-time-scale above 0")
            served = build_portals(portals, seed=seed, size=size, profile=profile, faults=faults or None)
            platform = AppPlatform(seed=seed, time_scale=webhook_time_scale)
            sandbox = start_sandbox(served, host, port, platform=platform, app=app_dir or None,
                                    activity=activity or None)
        except (ValueError, SandboxStartError) as exc:  # ProjectError is a ValueError naming file and field
            raise ConfigError(str(exc)) from None
        portal = sandbox.portal
        interrupt_on_signals()  # before anything is announced, so a signal right after it is never lost
        if ground_truth:  # one portal: its events; several: {hub id: events}
            truth = portal.ground_truth if portals == 1 else {str(p.portal_id): p.ground_truth for p in served}
            Path(ground_truth).write_text(json.dumps(truth, indent=1, default=str))
        for k, each in enumerate(served):
            contacts = len(each.stores["contacts"].live_ids)
            typer.echo(f"Sandbox portal {each.portal_id}: {contacts} contacts, profile {each.profile.name}, "
                       f"seed {seed + k}{', faults ' + faults if faults else ''}")
            if portals > 1:
                typer.echo(f"  hub id {each.portal_id} token {each.token}")
        typer.echo(f"Base URL: {sandbox.base_url}")
        typer.echo(f"Token:    {sandbox.token}")
        typer.echo(f"export CONNECTOR_BASE_URL={sandbox.base_url}")
        typer.echo(f"export CONNECTOR_TOKEN={sandbox.token}")
        if portal.profile.name == "oauth":
            client = portal.oauth_client
            typer.echo(f"export CONNECTOR_CLIENT_ID={client.client_id}")
            typer.echo(f"export CONNECTOR_CLIENT_SECRET={client.client_secret}")
            typer.echo(f"export CONNECTOR_REFRESH_TOKEN={client.refresh_token}")
        if sandbox.app is not None:
            _echo_app(sandbox)
        if activity:
            typer.echo(f"Simulated activity: {activity:g} changes per minute")
        typer.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        try:
            while sandbox.thread.is_alive():
                sandbox.thread.join(timeout=0.5)
        finally:
            sandbox.stop()

    guarded(run)


def _echo_app(sandbox) -> None:
    """The registered app's credentials, as HubSpot's developer pages show them to the app's developer."""
    from urllib.parse import urlencode

    app, hub_id = sandbox.app, sandbox.portal.portal_id
    typer.echo(f"App {app.name} ({app.uid}): app id {app.app_id}, {app.auth_type} auth")
    typer.echo(f"export HUBSPOT_APP_ID={app.app_id}")
    typer.echo(f"export HUBSPOT_CLIENT_ID={app.client_id}")
    typer.echo(f"export HUBSPOT_CLIENT_SECRET={app.client_secret}")
    if app.auth_type == "oauth":
        query = urlencode({"client_id": app.client_id, "redirect_uri": app.redirect_urls[0],
                           "scope": " ".join(app.required_scopes)})
        typer.echo(f"Install (approved for portal {hub_id}): {sandbox.base_url}/oauth/authorize?{query}")
    else:
        typer.echo(f"export HUBSPOT_APP_TOKEN={sandbox.platform.static_token(app.app_id, hub_id)}")


# ---------------------------------------------------------------- pull (issue 3)


@app.command("pull")
def pull_command(
    full: bool = typer.Option(
        False, "--full", help="Re-read every record from the list endpoint and refresh all associations."
    ),
    objects: str = typer.Option(
        "", "--objects", help="Comma-separated object types to pull (default: every type the mapping pack uses)."
    ),
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text (progress bars on a terminal, else one line) or json."),
) -> None:
    """Pull HubSpot records into the state store: incremental after the first run, resumable after a crash."""
    import json

    from connector import pipeline
    from connector.errors import ConfigError

    def action():
        if output not in ("text", "json"):
            raise ConfigError(f"--output must be text or json, not {output!r}")
        settings = load_settings()
        interrupt_on_signals()
        wanted = [o.strip() for o in objects.split(",") if o.strip()] or None
        with pipeline.pull_progress_display(output == "text" and sys.stdout.isatty()) as progress:
            return pipeline.run_pull(settings, full=full, objects=wanted, progress=progress)

    summary = guarded(action)
    if output == "json":
        typer.echo(json.dumps(summary.to_dict(), default=str))
    else:
        typer.echo(summary.line())


# ---------------------------------------------------------------- mappings, metrics (issue 4)

from pathlib import Path  # noqa: E402  (imports kept in each issue's section)
from typing import Optional  # noqa: E402


@mappings_app.command("validate")
def mappings_validate(
    directory: Optional[Path] = typer.Option(
        None, "--dir", help="Folder of the mapping pack (default: CONNECTOR_MAPPINGS_DIR, else mappings/)."
    ),
    online: bool = typer.Option(
        False, "--online", help="Also check every property against the portal's definitions (needs a token)."
    ),
) -> None:
    """Check the mapping pack: every problem is listed with file:line and what would be valid (exit 2)."""
    from connector import pipeline
    from connector.mapping import load_pack
    from connector.mapping.loader import raise_problems

    def action():
        settings = load_settings(**({"mappings_dir": directory} if directory else {}))
        folder = settings.mappings_dir
        pack = load_pack(folder)
        if online:
            raise_problems(pipeline.check_mappings_online(settings, pack))
        return folder, pack

    folder, pack = guarded(action)
    files = ", ".join(sorted(pack.indexes))
    fields = sum(len(source.fields) + len(source.extra) for _, source in pack.sources.entities())
    where = " and against the portal" if online else ""
    typer.echo(f"mappings OK{where}: {folder} ({files}; {fields} fields of {len(pack.sources.entities())} entities)")


@mappings_app.command("init")
def mappings_init(
    from_file: Optional[Path] = typer.Option(
        None, "--from-file", help='JSON property list: {"companies": [<property definitions>], ...} (or per type '
        '{"results": [...]} as GET /crm/v3/properties/{type} returns).'
    ),
    online: bool = typer.Option(False, "--online", help="Read the property list from the portal (needs a token)."),
    out: Path = typer.Option(Path("mappings"), "--out", help="Folder to write sources.yaml and portal.yaml into."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing sources.yaml/portal.yaml."),
) -> None:
    """Scaffold sources.yaml and portal.yaml from a portal's properties; every guess is marked "# REVIEW:"."""
    import json

    from connector import pipeline
    from connector.errors import ConfigError
    from connector.mapping.scaffold import ENTITY_OBJECTS, scaffold_pack

    def action():
        if (from_file is None) == (not online):
            raise ConfigError("give exactly one of --from-file FILE or --online")
        if from_file is not None:
            try:
                raw = json.loads(from_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read {from_file}: {exc}") from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{from_file}: expected an object keyed by object type")
            properties = {k: (v.get("results", []) if isinstance(v, dict) else v) for k, v in raw.items()}
        else:
            wanted = [candidates[0] for candidates in ENTITY_OBJECTS.values()]
            properties = pipeline.fetch_portal_properties(load_settings(), wanted, skip_missing=True)
        try:
            files = scaffold_pack(properties)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        existing = [name for name in files if (out / name).exists()]
        if existing and not force:
            raise ConfigError(f"{out} already has {', '.join(existing)}; pass --force to overwrite")
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
        return files

    files = guarded(action)
    reviews = sum(text.count("# REVIEW:") for text in files.values())
    typer.echo(f"wrote {', '.join(str(out / n) for n in files)}: {reviews} guesses marked REVIEW; then run "
               f"`connector mappings validate --dir {out}{' --online' if online else ''}`")


# ---------------------------------------------------------------- health, segments (issue 5)


def _echo_counts(title: str, counts: dict, changes: dict) -> None:
    typer.echo(f"{title}:")
    width = max((len(str(k)) for k in counts), default=0)
    for key, count in counts.items():
        change = f"  ({changes[key]:+d})" if key in changes else ""
        typer.echo(f"  {key:<{width}}  {count:>9,}{change}")


def _stage_report(kind: str, output: str, customer: Optional[str]) -> None:
    import json

    from connector import pipeline
    from connector.errors import ConfigError

    def action():
        if output not in ("text", "json"):
            raise ConfigError(f"--output must be text or json, not {output!r}")
        return pipeline.load_stage_report(load_settings(), kind, customer=customer)

    report = guarded(action)
    if output == "json":
        typer.echo(json.dumps(report, default=str))
        return
    if report["run_id"] is None:
        typer.echo(f"no {kind} results in the state store yet: run `connector sync` first")
        return
    since = f", change since run {report['previous_run_id']}" if report["previous_run_id"] else ", first run"
    typer.echo(f"{kind} of run {report['run_id']} (as of {report['as_of']}{since})")
    distribution = report["distribution"]
    changes = distribution.get("changes") or {}
    if kind == "health":
        average = distribution.get("average")
        typer.echo(f"{distribution['customers']:,} customers, average score "
                   f"{'-' if average is None else f'{average:.1f}'}")
        _echo_counts("bands", distribution["bands"], changes)
    else:
        typer.echo(f"{distribution['customers']:,} customers")
        for family, title in (("lifecycle", "lifecycle"), ("tags", "tags"), ("nps_group", "NPS groups"),
                              ("rfm", "RFM segments")):
            _echo_counts(title, distribution[family], changes.get(family) or {})
    if customer is not None:
        row = report["customer"]
        if row is None:
            typer.echo(f"error: customer {customer} is not in run {report['run_id']}", err=True)
            raise typer.Exit(2)
        typer.echo(f"customer {customer}:")
        for key, value in row.items():
            shown = json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else value
            typer.echo(f"  {key}: {shown}")


@app.command("health")
def health_command(
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text (counts per band) or json."),
    customer: Optional[str] = typer.Option(None, "--customer", help="Also print one customer's score, "
                                           "components (raw, 0-100, weight) and explanation."),
) -> None:
    """Health bands of the last run (from the state store) and how many customers moved since the run before."""
    _stage_report("health", output, customer)


@app.command("segments")
def segments_command(
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text (counts per stage, tag, NPS group, RFM segment) or json."),
    customer: Optional[str] = typer.Option(None, "--customer", help="Also print one customer's lifecycle, tags, "
                                           "RFM scores and hysteresis memory."),
) -> None:
    """Lifecycle stages, tags, NPS groups and RFM segments of the last run, with the change since the run before."""
    _stage_report("segments", output, customer)


# ---------------------------------------------------------------- sync, writeback, report, schedule (issue 6)


def _output_format(output: str) -> None:
    from connector.errors import ConfigError

    if output not in ("text", "json"):
        raise ConfigError(f"--output must be text or json, not {output!r}")


@writeback_app.command("plan")
def writeback_plan(
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text (counts and a sample) or json (every change)."),
    sample: int = typer.Option(5, "--sample", help="How many example changes the text form shows."),
) -> None:
    """What a sync would write now: pulls, computes and diffs against the CRM, then writes nothing to HubSpot."""
    import json

    from connector import pipeline
    from connector.writeback import format_plan

    def action():
        _output_format(output)
        return pipeline.run_sync(load_settings(), dry_run=True)

    _summary, _computed, written = guarded(action)
    if output == "json":
        typer.echo(json.dumps(written.to_dict(), default=str))
        return
    typer.echo(format_plan(written.plan, sample=sample))
    for target, counts in written.enrollment_plan.counts().items():
        typer.echo(f"  {target}: " + ", ".join(f"{n} to {verb}" for verb, n in sorted(counts.items())))
    for object_type, record_id, reason in written.enrollment_plan.skipped[:sample]:
        typer.echo(f"  skipped {object_type}/{record_id}: {reason}")


@writeback_app.command("rollback")
def writeback_rollback(
    run_id: str = typer.Argument(..., help="The run whose writes to undo (see `connector writeback ledger`)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be restored; write nothing."),
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text or json (every change)."),
) -> None:
    """Restore the values a run overwrote, wherever HubSpot still holds what it wrote; later edits are kept."""
    import json

    from connector import pipeline
    from connector.writeback import format_plan

    def action():
        _output_format(output)
        return pipeline.run_rollback(load_settings(), run_id, dry_run=dry_run)

    plan, result, new_run = guarded(action)
    if output == "json":
        typer.echo(json.dumps({"run_id": new_run, "source_run_id": run_id, "dry_run": dry_run, "plan": plan.to_dict(),
                               "applied": result.to_dict() if result else None}, default=str))
        return
    typer.echo(format_plan(plan))
    if result is not None:
        typer.echo(f"rollback run {new_run}: {result.changes_written} values restored on {result.records_written} records")


@writeback_app.command("ledger")
def writeback_ledger(
    run_id: str = typer.Argument(..., help="A write-back or rollback run id."),
    failed: bool = typer.Option(False, "--failed", help="Only the changes HubSpot refused, with its reason."),
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text (counts and refusals) or json (every row)."),
) -> None:
    """What a run planned and wrote: every property's before and after value, status and HubSpot's message."""
    import json
    from collections import Counter

    from connector import pipeline

    def action():
        _output_format(output)
        return pipeline.load_ledger(load_settings(), run_id)

    rows = guarded(action)
    if failed:
        rows = [r for r in rows if r["status"] == "failed"]
    if output == "json":
        typer.echo(json.dumps(rows, default=str))
        return
    counts = Counter(r["status"] for r in rows)
    typer.echo(f"run {run_id}: {len(rows)} changes " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or ""))
    for row in rows:
        if row["status"] == "failed":
            typer.echo(f"  {row['object_type']}/{row['record_id']} {row['property']}: {row['message']}")


@writeback_app.command("resume")
def writeback_resume() -> None:
    """Finish applies a crash interrupted: sends only the changes not yet recorded as written."""
    from connector import pipeline

    results = guarded(lambda: pipeline.run_resume_writeback(load_settings()))
    if not results:
        typer.echo("no unfinished write-back")
    for result in results:
        typer.echo(f"run {result.run_id}: {result.changes_written} changes written on resume")


@app.command("runs")
def runs_command(
    limit: int = typer.Option(20, "--limit", help="How many of the latest runs."),
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text (a table) or json (every field)."),
) -> None:
    """The latest runs recorded in the state store, newest first, and who holds the sync lease.

    Example: connector runs --limit 5"""
    import json

    from connector import pipeline

    settings = guarded(load_settings)
    found, holder = guarded(lambda: pipeline.load_runs(settings, limit=limit))
    if output == "json":
        typer.echo(json.dumps({"store": _shown_url(settings.state_url), "runs": found, "lock_holder": holder},
                              default=str))
        return
    typer.echo(f"store {_shown_url(settings.state_url)}; sync lease "
               + (f"held by {holder['owner']} since {holder['acquired_at']:%Y-%m-%d %H:%M:%S}" if holder else "free"))
    header = ("run", "kind", "started (UTC)", "took", "status", "records", "written", "failed", "calls", "issues")
    rows = []
    for run in found:
        summary = run["summary"] or {}
        took = (run["finished_at"] - run["started_at"]).total_seconds() if run["finished_at"] else None
        rows.append((run["id"], run["kind"], f"{run['started_at']:%Y-%m-%d %H:%M:%S}",
                     "-" if took is None else f"{took:.1f}s", run["status"],
                     *(str(summary.get(k, "-")) for k in ("records_pulled", "values_written", "failures",
                                                            "api_calls", "data_issues"))))
    _echo_table(header, rows)


def _echo_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A plain table (no box, never cut: it goes to logs as often as to terminals)."""
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


def _shown_url(url: str) -> str:
    from connector.state import shown_url

    return shown_url(url)


SANDBOX_DEMO_CONTACTS = 2000


def _parse_as_of(as_of: str | None):
    from datetime import datetime, time, timezone

    from connector.errors import ConfigError

    if as_of is None:
        return None
    try:
        moment = datetime.fromisoformat(as_of)
    except ValueError:
        raise ConfigError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD) or ISO datetime") from None
    if len(as_of) == 10:  # a date means the end of that day
        moment = datetime.combine(moment.date(), time(23, 59, 59))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _run_sync_with_display(settings, *, dry_run: bool, full: bool, output: str, as_of=None):
    """run_sync with the pull's progress bars and a line per stage on a terminal; nothing but the summary otherwise.

    The pull's live display is closed when the pull ends, so later stage lines are not drawn into it.
    """
    import contextlib

    from connector import pipeline

    if not (output == "text" and sys.stdout.isatty()):
        return pipeline.run_sync(settings, dry_run=dry_run, full=full, as_of=as_of, raise_failures=False)
    with contextlib.ExitStack() as pull_display:
        bars: list = []

        def progress(event) -> None:
            if bars:
                bars[0](event)

        def stage(name: str) -> None:
            if bars:
                pull_display.close()
                bars.clear()
            typer.echo(f"» {name}", err=True)
            if name == "pull":
                bars.append(pull_display.enter_context(pipeline.pull_progress_display(True)))

        return pipeline.run_sync(settings, dry_run=dry_run, full=full, as_of=as_of, progress=progress, stage=stage,
                                 raise_failures=False)


@app.command("sync")
def sync_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Pull and compute, print the write plan, write nothing."),
    full: bool = typer.Option(False, "--full", help="Re-read every record instead of only what changed."),
    sandbox: bool = typer.Option(False, "--sandbox", help="Start the local sandbox portal in-process and sync it (demo)."),
    size: int = typer.Option(SANDBOX_DEMO_CONTACTS, "--size", help="With --sandbox: contacts in the generated portal."),
    as_of: str = typer.Option(None, "--as-of", help="Compute as of this date (YYYY-MM-DD); default now."),
    output: str = typer.Option("text", "--output", metavar="<text|json>", help="text (one summary line) or json."),
    report: bool = typer.Option(None, "--report/--no-report", help="Print the metrics report after the sync (default with --sandbox)."),
) -> None:
    """pull → model → metrics → health → segments → plan → apply → enrollments, one run, under a lock."""
    import json

    from connector import pipeline

    def action():
        _output_format(output)
        moment = _parse_as_of(as_of)
        interrupt_on_signals()
        if not sandbox:
            settings = load_settings()
            _announce(settings, output)
            return _run_sync_with_display(settings, dry_run=dry_run, full=full, output=output, as_of=moment), settings
        from pathlib import Path

        from pydantic import SecretStr

        from connector.sandbox.server import running_sandbox

        state = Path(".connector") / "sandbox-state.db"
        state.parent.mkdir(parents=True, exist_ok=True)
        state.unlink(missing_ok=True)  # each demo portal is generated anew: start from an empty store
        with running_sandbox(seed=1, size=size, profile="enterprise") as sb:
            if output == "text":
                typer.echo(f"sandbox portal at {sb.base_url} ({size} contacts, enterprise rate limits)")
            settings = load_settings(token=SecretStr(sb.token), base_url=sb.base_url, state_url=f"sqlite:///{state}")
            _announce(settings, output)
            return _run_sync_with_display(settings, dry_run=dry_run, full=full, output=output, as_of=moment), settings

    (summary, computed, written), settings = guarded(action)
    if output == "json":
        typer.echo(json.dumps({**summary.to_dict(), "store": _shown_url(settings.state_url),
                               "mappings": str(settings.mappings_dir), "writeback": written.to_dict()}, default=str))
    else:
        if report if report is not None else sandbox:
            from connector.mapping import load_pack
            from connector.report import print_report

            print_report(pipeline.computed_report(computed, load_pack(settings.mappings_dir)))
        typer.echo(summary.line())
        if sandbox:
            typer.echo(f"explore what the demo computed: CONNECTOR_STATE_URL={settings.state_url} connector report "
                       "(or runs, health, segments, writeback ledger RUN_ID)")
    if written.failures:
        guarded(lambda: written.raise_for_failures())


def _announce(settings, output: str) -> None:
    """Which store and mapping pack a run uses, said before it starts (a run from another folder shows here)."""
    if output == "text":
        typer.echo(f"store {_shown_url(settings.state_url)} · mappings {settings.mappings_dir}")


@app.command("metrics")
def metrics_command(
    period: str = typer.Option("month", "--period", metavar="<month|quarter|year>",
                               help="Calendar period in the portal's zone."),
    as_of: str = typer.Option(None, "--as-of", help="Date (YYYY-MM-DD) inside the period; default now."),
    output: str = typer.Option("table", "--output", metavar="<table|json>", help="table or json."),
) -> None:
    """Portfolio metrics of one period from the state store: retention, churn, MRR movements, NRR/GRR, NPS …"""
    import json

    from connector import pipeline
    from connector.errors import ConfigError
    from connector.report import print_report

    def action():
        if output not in ("table", "json"):
            raise ConfigError(f"--output must be table or json, not {output!r}")
        if period not in ("month", "quarter", "year"):
            raise ConfigError(f"--period must be month, quarter or year, not {period!r}")
        return pipeline.run_metrics(load_settings(), period=period, as_of=_parse_as_of(as_of))

    figures, pack = guarded(action)
    if output == "json":
        typer.echo(json.dumps(figures.to_dict(), default=str))
        return
    print_report(pipeline.report_data([figures.to_dict()], title="Portfolio metrics", currency=pack.portal.currency.reporting))


@app.command("report")
def report_command(
    html: str = typer.Option(None, "--html", help="Write a self-contained HTML page with charts to this file."),
) -> None:
    """The last sync's portfolio metrics by month, health and segments: terminal tables or an HTML page."""
    from pathlib import Path

    from connector import pipeline
    from connector.report import print_report, render_html

    data = guarded(lambda: pipeline.load_report_data(load_settings()))
    if html:
        Path(html).write_text(render_html(data), encoding="utf-8")
        typer.echo(f"report written to {html}")
        return
    print_report(data)


@app.command("schedule")
def schedule_command(
    cron: str = typer.Option(..., "--cron", help='Cron expression, e.g. "15 * * * *" (every hour at :15).'),
    max_runs: int = typer.Option(0, "--max-runs", help="Stop after this many syncs (0: run until stopped)."),
) -> None:
    """Run syncs in-process on a cron expression; a sync that would overlap the previous one is skipped."""
    from connector import pipeline

    settings = load_settings()
    interrupt_on_signals()

    def one_sync() -> None:
        try:
            summary, _computed, _written = pipeline.run_sync(settings, raise_failures=False)
            typer.echo(summary.line())
        except ConnectorError as exc:  # one failed run must not stop the schedule
            typer.echo(f"sync failed: {exc}", err=True)

    guarded(lambda: pipeline.run_schedule(cron, one_sync, max_runs=max_runs or None,
                                          announce=lambda text: typer.echo(text, err=True)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
