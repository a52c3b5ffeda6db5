"""``qruntime job``: one job's details, with its error message when it failed."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.job_view import job_details, job_json
from qruntime.client.lookup import find_job


@reports_errors
def job(
    job_id: Annotated[str, typer.Argument(help="The job's id (see `qruntime jobs`).")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show a job: program, backend, status and reason, dates, inputs, error message."""
    with connect(url, token) as service:
        found = find_job(service, job_id)
        typer.echo(json.dumps(job_json(found), indent=2) if as_json else job_details(found))
