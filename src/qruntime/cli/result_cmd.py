"""``qruntime result``: wait for a job to finish and print its result."""

from __future__ import annotations

from typing import Annotated

import typer

from qruntime.cli.connection import JsonOption, TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.cli.outcome import report_outcome, stopped_following
from qruntime.client.lookup import find_job

_FINAL = ("DONE", "ERROR", "CANCELLED")


@reports_errors
def result(
    job_id: Annotated[str, typer.Argument(help="The job's id (see `qruntime jobs`).")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Wait for a job and print its result. Exit status as for `qruntime run`."""
    with connect(url, token) as service:
        job = find_job(service, job_id)
        status = job.status_name()
        if status not in _FINAL:
            typer.echo(f"waiting for job {job_id} ({status})...", err=True)
            try:
                job.wait_for_final_state()
            except KeyboardInterrupt:
                raise stopped_following(job_id) from None
            job = service.job(job_id)  # the final record, with the error message
        raise typer.Exit(report_outcome(job, as_json=as_json))
