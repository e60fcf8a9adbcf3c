"""Command line: parses arguments, calls the pipeline, maps errors to exit codes (nothing else)."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

import typer

from connector.errors import ConnectorError, MappingError

app = typer.Typer(
    help="Retention connector for HubSpot: pull, compute retention metrics and health, write back.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # never print locals: they may hold tokens
    add_completion=False,
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


def main() -> None:
    app()


# ---------------------------------------------------------------- sandbox (issue 2)


# ---------------------------------------------------------------- pull (issue 3)


@app.command("pull")
def pull_command(
    full: bool = typer.Option(
        False, "--full", help="Re-read every record from the list endpoint and refresh all associations."
    ),
    objects: str = typer.Option(
        "", "--objects", help="Comma-separated object types to pull (default: every type the mapping pack uses)."
    ),
    output: str = typer.Option("text", "--output", help="text (progress bars on a terminal, else one line) or json."),
) -> None:
    """Pull HubSpot records into the state store: incremental after the first run, resumable after a crash."""
    import json

    from connector import pipeline
    from connector.errors import ConfigError
    from connector.settings import Settings

    def action():
        if output not in ("text", "json"):
            raise ConfigError(f"--output must be text or json, not {output!r}")
        settings = Settings()
        wanted = [o.strip() for o in objects.split(",") if o.strip()] or None
        with pipeline.pull_progress_display(output == "text" and sys.stdout.isatty()) as progress:
            return pipeline.run_pull(settings, full=full, objects=wanted, progress=progress)

    summary = guarded(action)
    if output == "json":
        typer.echo(json.dumps(summary.to_dict(), default=str))
    else:
        typer.echo(summary.line())


# ---------------------------------------------------------------- mappings, metrics (issue 4)


# ---------------------------------------------------------------- health, segments (issue 5)


# ---------------------------------------------------------------- sync, writeback, report, schedule (issue 6)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
