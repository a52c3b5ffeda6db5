"""Today's service's JSON shapes for jobs, built from storage records at the edge.

Field names and status words are the ones qiskit-ibm-runtime parses (``runtime_job_v2``,
``qiskit_runtime_service._decode_job``): ``state.status`` in the API's words, ``reason_code``
1305 for a job that ran too long (the client raises ``RuntimeJobMaxTimeoutError`` for it).
"""

from __future__ import annotations

from typing import Any

from qruntime.api.schemas import iso
from qruntime.compat.common.envelopes import from_native_or_note
from qruntime.compat.common.status import StatusWords
from qruntime.compat.ibm_runtime.names import to_dialect
from qruntime.domain.instances import instance_crn
from qruntime.domain.job import JobReason, JobStatus
from qruntime.lazy_module import lazy_module
from qruntime.storage import StoredJob

# Qiskit's modules, imported when a request first needs them (qruntime/lazy_module.py).
dialect = lazy_module("qruntime.serialization.ibm_runtime")

#: The API's words (``API_TO_JOB_STATUS`` of the client).
STATUS = StatusWords(
    by_status={
        JobStatus.QUEUED: "Queued",
        JobStatus.RUNNING: "Running",
        JobStatus.DONE: "Completed",
        JobStatus.ERROR: "Failed",
        JobStatus.CANCELLED: "Cancelled",
    },
    by_reason={},  # a job that ran too long is Cancelled with reason_code 1305
)
#: IBM's reason code of a job stopped at its maximum execution time.
RAN_TOO_LONG_CODE = 1305


def job_json(job: StoredJob, *, with_params: bool = False) -> dict[str, Any]:
    state: dict[str, Any] = {"status": STATUS.of(job)}
    if job.reason is not None:
        state["reason"] = job.error_message or job.reason.value
        if job.reason is JobReason.RAN_TOO_LONG:
            state["reason_code"] = RAN_TOO_LONG_CODE
    body: dict[str, Any] = {
        "id": job.id,
        "backend": to_dialect(job.backend),
        "state": state,
        "status": state["status"],
        "program": {"id": job.program_name},
        "created": iso(job.created_at),
        "runtime": "",
        "user_id": job.owner_name,
        "cost": job.max_execution_time,
        "tags": list(job.tags),
        "session_id": job.session_id,
        "private": False,
        "instance": instance_crn(job.owner_id),
        "estimated_running_time_seconds": None,
    }
    if with_params:
        body["params"] = from_native_or_note(dialect, job.inputs, what="job's inputs")
    return body


def metrics_json(job: StoredJob) -> dict[str, Any]:
    """Timestamps and usage: qruntime meters wall-clock seconds of the job's run."""
    seconds = 0.0
    if job.started_at is not None:
        end = job.ended_at or job.started_at
        seconds = max((end - job.started_at).total_seconds(), 0.0)
    final = job.status.is_terminal()
    return {
        "timestamps": {
            "created": iso(job.created_at),
            "running": iso(job.started_at),
            "finished": iso(job.ended_at),
        },
        "bss": {"seconds": seconds},
        "usage": {
            "quantum_seconds": seconds,
            "seconds": seconds,
            "qpu_charge_time_seconds": seconds,
            "status": "final" if final else "pending",
        },
        "qiskit_version": None,
        "caller": "qiskit-ibm-runtime",
    }
