"""``qruntime sessions``: your sessions and batches; ``show`` one with its jobs; close, cancel."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.paging import LIMIT_HELP, SkipOption, sdk_limit
from qruntime.cli.tables import make_table, print_table
from qruntime.client import SessionInfo

sessions = typer.Typer(
    name="sessions",
    help="Your sessions and batches (newest first); show one with its jobs, close, cancel.",
    invoke_without_command=True,
)
SessionArg = Annotated[str, typer.Argument(help="The session's id (s-...).")]


@sessions.callback(invoke_without_command=True)
@reports_errors
def list_sessions(
    context: typer.Context,
    limit: Annotated[int, typer.Option(min=0, help=LIMIT_HELP)] = 10,
    skip: SkipOption = 0,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List them: id, mode, backend, state, jobs, max time, created."""
    if context.invoked_subcommand is not None:
        return
    with connect(url, token) as service:
        found = service.sessions(limit=sdk_limit(limit), skip=skip)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(group) for group in found], indent=2))
        return
    if not found:
        typer.echo("no sessions", err=True)
        return
    rows = make_table("id", "mode", "backend", "state", "jobs", "max time", "created")
    for group in found:
        jobs = f"{group.job_count} ({group.pending_jobs} pending)"
        rows.add_row(
            group.id,
            group.mode,
            group.backend,
            group.state,
            jobs,
            f"{group.max_time} s",
            group.creation_date,
        )
    print_table(rows)


@sessions.command("show")
@reports_errors
def show(
    session_id: SessionArg,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """One session or batch: its state and clock, then its jobs in submission order."""
    with connect(url, token) as service:
        _print(service.session(session_id), as_json)


@sessions.command("close")
@reports_errors
def close(
    session_id: SessionArg,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Accept no new jobs; its queued and running jobs still run."""
    with connect(url, token) as service:
        _print(service.close_session(session_id), as_json)


@sessions.command("cancel")
@reports_errors
def cancel(
    session_id: SessionArg,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Accept no new jobs and cancel its queued and running ones."""
    with connect(url, token) as service:
        _print(service.cancel_session(session_id), as_json)


def _print(group: SessionInfo, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(group), indent=2))
        return
    accepting = "accepting jobs" if group.accepting_jobs else "accepts no new jobs"
    typer.echo(f"{group.mode} {group.id} on {group.backend}: {group.state}, {accepting}")
    clock = f"until {group.expiry_date}" if group.expiry_date else "from its first job's start"
    typer.echo(f"max time: {group.max_time} s ({clock}); used {group.usage_seconds:.1f} s")
    if group.jobs is None:
        return
    if not group.jobs:
        typer.echo("no jobs yet", err=True)
        return
    rows = make_table("#", "job", "program", "status", "reason", "started", "ended")
    for number, job in enumerate(group.jobs, start=1):
        rows.add_row(
            str(number),
            job.id,
            job.program_id,
            job.status,
            job.reason or "",
            job.start_date or "",
            job.end_date or "",
        )
    print_table(rows)
