"""How waiting on a job ends: its result on stdout, or its error on stderr, and the exit status."""

from __future__ import annotations

import json

import typer

from qruntime.cli import exit_codes
from qruntime.cli.values import value_json, value_text
from qruntime.client import RuntimeJob


def report_outcome(job: RuntimeJob, *, as_json: bool) -> int:
    """Print a finished job's result (exit 0) or its error message (exit 1)."""
    status = job.status_name()
    if status == "DONE":
        value = job.result()
        if as_json:
            typer.echo(json.dumps({"type": "result", "data": value_json(value)}))
        else:
            typer.echo(value_text(value))
        return exit_codes.OK
    message = job.error_message() or ""
    if as_json:
        line = {"type": "error", "status": status, "reason": job.reason, "message": message}
        typer.echo(json.dumps(line))
    what = "failed" if status == "ERROR" else "was cancelled"
    typer.echo(f"error: job {job.job_id()} {what} ({job.reason}):\n{message}", err=True)
    return exit_codes.JOB_FAILED


def stopped_following(job_id: str) -> typer.Exit:
    """Ctrl-C: say that the job goes on and how to come back to it; never cancel it."""
    typer.echo(
        f"\nstopped following job {job_id}; it keeps running.\n"
        f"  wait for its result: qruntime result {job_id}\n"
        f"  see its status:      qruntime job {job_id}\n"
        f"  cancel it:           qruntime cancel {job_id}",
        err=True,
    )
    return typer.Exit(exit_codes.INTERRUPTED)
