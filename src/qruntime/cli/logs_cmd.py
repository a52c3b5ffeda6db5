"""``qruntime logs``: what a job's program printed."""

from __future__ import annotations

from typing import Annotated

import typer

from qruntime.cli.connection import TokenOption, UrlOption, connect
from qruntime.cli.errors import reports_errors
from qruntime.client.lookup import find_job


@reports_errors
def logs(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Print a job's stdout and stderr lines, as the server keeps them."""
    with connect(url, token) as service:
        text = find_job(service, job_id).logs()
    typer.echo(text, nl=bool(text) and not text.endswith("\n"))
