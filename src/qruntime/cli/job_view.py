"""How a job looks in ``jobs``, ``job`` and ``--json`` output."""

from __future__ import annotations

import datetime as dt
from typing import Any

from qruntime.cli.values import value_json, value_text
from qruntime.client import RuntimeJob
from qruntime.client.wire import format_date

_FAILED = ("ERROR", "CANCELLED")


def job_json(job: RuntimeJob) -> dict[str, Any]:
    """The job's fields, dates in the API's ``...Z`` form and inputs as RuntimeEncoder JSON."""
    status = job.status_name()
    return {
        "id": job.job_id(),
        "program_id": job.program_id,
        "program_name": job.program_name,
        "owner": job.owner,
        "backend": job.backend(),
        "status": status,
        "reason": job.reason,
        "error_message": job.error_message() if status in _FAILED else None,
        "max_execution_time": job.max_execution_time,
        "creation_date": _date(job.creation_date),
        "start_date": _date(job.start_date),
        "end_date": _date(job.end_date),
        "inputs": value_json(job.inputs),
    }


def job_row(job: RuntimeJob) -> tuple[str, ...]:
    """id, program, backend, status, reason, created: one line of ``qruntime jobs``."""
    return (
        job.job_id(),
        job.program_id,
        job.backend(),
        job.status_name(),
        job.reason or "",
        format_date(job.creation_date),
    )


def job_details(job: RuntimeJob) -> str:
    """``qruntime job ID``: one ``Label: value`` line per field, then the error, if any."""
    status = job.status_name()
    lines = [
        f"{job.job_id()}:",
        f"  Program: {job.program_id}",
        f"  Owner: {job.owner}",
        f"  Backend: {job.backend()}",
        f"  Status: {status}" + (f" ({job.reason})" if job.reason else ""),
        f"  Max execution time: {job.max_execution_time}",
        f"  Created: {format_date(job.creation_date)}",
        f"  Started: {format_date(job.start_date)}",
        f"  Ended: {format_date(job.end_date)}",
        f"  Inputs: {value_text(job.inputs)}",
    ]
    if job.session_id:
        lines.insert(4, f"  Session: {job.session_id}")
    message = job.error_message() if status in _FAILED else None
    if message:
        lines.append("  Error message:")
        lines.extend(f"    {line}" for line in message.splitlines())
    return "\n".join(lines)


def _date(value: dt.datetime | None) -> str | None:
    return None if value is None else format_date(value)
