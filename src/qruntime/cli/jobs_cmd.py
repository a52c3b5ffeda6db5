"""``qruntime jobs``: your jobs, newest first, as a table."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.job_view import job_json, job_row
from qruntime.cli.paging import LIMIT_HELP, SkipOption, sdk_limit
from qruntime.cli.tables import make_table, print_table
from qruntime.client import RuntimeProgramNotFound, RuntimeService
from qruntime.client.lookup import resolve_program


@reports_errors
def jobs(
    limit: Annotated[int, typer.Option(min=0, help=LIMIT_HELP)] = 10,
    skip: SkipOption = 0,
    pending: Annotated[
        bool | None,
        typer.Option(
            "--pending/--finished",
            help="Only queued and running jobs, or only finished ones. [default: all]",
            show_default=False,
        ),
    ] = None,
    program_id: Annotated[
        str | None,
        typer.Option("--program", help="Only the jobs of this program (id or name)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List your jobs (admins: everyone's): id, program, backend, status, reason, created."""
    with connect(url, token) as service:
        if program_id is not None:
            program_id = _program_filter(service, program_id)
        found = service.jobs(
            limit=sdk_limit(limit), skip=skip, pending=pending, program_id=program_id
        )
        if as_json:
            typer.echo(json.dumps([job_json(job) for job in found], indent=2))
            return
        if not found:
            typer.echo("no jobs", err=True)
            return
        rows = make_table("id", "program", "backend", "status", "reason", "created")
        for job in found:
            rows.add_row(*job_row(job))
        print_table(rows)


def _program_filter(service: RuntimeService, ref: str) -> str:
    """The id of the program ``ref`` names; as given when no program has it (a deleted one's
    jobs are still listed by its id)."""
    try:
        return resolve_program(service, ref).program_id
    except RuntimeProgramNotFound:
        return ref
