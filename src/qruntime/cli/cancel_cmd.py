"""``qruntime cancel``: stop a queued or running job."""

from __future__ import annotations

from typing import Annotated

import typer

from qruntime.cli.connection import TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.client.lookup import find_job


@reports_errors
def cancel(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Cancel a job; refused (exit 2) when it has already finished."""
    with connect(url, token) as service:
        job = find_job(service, job_id)
        job.cancel()
        reason = f" ({job.reason})" if job.reason else ""
        status = job.status_name()
        if status == "RUNNING":  # another replica runs it and has not stopped it yet
            reason = " (cancel requested; it ends CANCELLED once its server stops it)"
        typer.echo(f"job {job_id}: {status}{reason}")
