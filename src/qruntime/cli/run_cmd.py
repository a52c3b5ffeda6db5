"""``qruntime run``: start a job on the server and follow it to its result."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.follow import follow_job
from qruntime.cli.job_view import job_json
from qruntime.cli.outcome import report_outcome, stopped_following
from qruntime.cli.values import parse_inputs
from qruntime.client.lookup import resolve_program
from qruntime.client.service import DEFAULT_BACKEND


@reports_errors
def run(
    program_id: Annotated[
        str, typer.Argument(help="The program's id or name (see `qruntime programs`).")
    ],
    backend: Annotated[
        str, typer.Option(help="Backend name (see `qruntime backends`).")
    ] = DEFAULT_BACKEND,
    inputs: Annotated[
        str, typer.Option(help="Inputs as a JSON object, or @FILE to read them from a file.")
    ] = "{}",
    max_execution_time: Annotated[
        int | None,
        typer.Option(help="Seconds before the job is stopped. [default: the program's]"),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Print the job id right after submitting, and exit.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Run a program: interim results as they arrive, then the result.

    Exit status: 0 done, 1 failed or cancelled, 2 refused before running, 3 no server.
    Ctrl-C stops following; the job keeps running.
    """
    values = parse_inputs(inputs)
    with connect(url, token) as service:
        program = resolve_program(service, program_id)
        job = service.run(
            program.program_id,
            values,
            {"backend": backend},
            max_execution_time=max_execution_time,
        )
        job_id = job.job_id()
        if detach:
            typer.echo(json.dumps(job_json(job)) if as_json else job_id)
            return
        if as_json:
            typer.echo(json.dumps({"type": "job", "id": job_id}))
        try:
            follow_job(service, job_id, as_json=as_json)
        except KeyboardInterrupt:
            raise stopped_following(job_id) from None
        code = report_outcome(service.job(job_id), as_json=as_json)
    raise typer.Exit(code)
