"""The 2021 service's JSON shapes for programs and jobs, built from storage records at the edge.

Field names and status words are the ones qiskit-ibmq-provider 0.20 parses (its
``ibm_runtime_service``, ``runtime_job``, ``ibmqjob`` and ``data_mapper`` modules).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from qruntime import __version__
from qruntime.api.schemas import iso
from qruntime.compat.common.backend_names import BackendNames
from qruntime.compat.common.envelopes import from_native_or_note
from qruntime.compat.common.status import StatusWords
from qruntime.compat.ibmq2021.deps import GROUP, HUB, PROJECT
from qruntime.domain.job import JobReason, JobStatus
from qruntime.lazy_module import lazy_module
from qruntime.storage import StoredJob, StoredProgram

# Qiskit's modules, imported when a request first needs them (qruntime/lazy_module.py).
dialect = lazy_module("qruntime.serialization.ibmq2021")

#: ``ibmq_qasm_simulator`` is Aer's ideal simulator, ``ibmq_<device>`` its ``fake_<device>``.
NAMES = BackendNames(
    ideal="ibmq_qasm_simulator", native_ideal="aer_simulator", device_prefix="ibmq_"
)

#: The runtime API's words (``API_TO_JOB_STATUS`` of the client's runtime package).
RUNTIME_STATUS = StatusWords(
    by_status={
        JobStatus.QUEUED: "QUEUED",
        JobStatus.RUNNING: "RUNNING",
        JobStatus.DONE: "COMPLETED",
        JobStatus.ERROR: "FAILED",
        JobStatus.CANCELLED: "CANCELLED",
    },
    by_reason={(JobStatus.CANCELLED, JobReason.RAN_TOO_LONG): "CANCELLED - RAN TOO LONG"},
)
#: The Qobj job API's words (``ApiJobStatus`` of the client).
QOBJ_STATUS = StatusWords(
    by_status={
        JobStatus.QUEUED: "QUEUED",
        JobStatus.RUNNING: "RUNNING",
        JobStatus.DONE: "COMPLETED",
        JobStatus.ERROR: "ERROR_RUNNING_JOB",
        JobStatus.CANCELLED: "CANCELLED",
    },
    by_reason={},
)
#: A Qobj job's kind: the client uploads its Qobj to the "object storage" URL it is given
#: either way; with this kind it reads the result from the job itself (``qObjectResult``).
QOBJ_KIND = "q-object"


def program_json(program: StoredProgram, *, with_source: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": program.id,
        "name": program.name,
        "description": program.description,
        "cost": program.max_execution_time,
        "creation_date": iso(program.created_at) or "",
        "update_date": iso(program.updated_at) or "",
        "is_public": program.is_public,
        "spec": program.spec,
    }
    if with_source:
        body["data"] = base64.b64encode(program.source.encode()).decode()
    return body


def runtime_job_json(job: StoredJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "hub": HUB,
        "group": GROUP,
        "project": PROJECT,
        "backend": NAMES.to_dialect(job.backend),
        "status": RUNTIME_STATUS.of(job),
        "params": from_native_or_note(dialect, job.inputs, what="job's inputs"),
        "program": {"id": job.program_id},
        "created": iso(job.created_at),
        "runtime": "",
    }


def qobj_job_json(job: StoredJob, result: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.id,
        "kind": QOBJ_KIND,
        "status": QOBJ_STATUS.of(job),
        # to the microsecond: the client pages through listings by creation date
        "creationDate": job.created_at.astimezone(dt.UTC).isoformat(),
        "backend": {"name": NAMES.to_dialect(job.backend)},
        "name": None,
        "tags": [],
        "shareLevel": "none",
        "runMode": "fairshare",
        "allowObjectStorage": True,
        "liveDataEnabled": False,
        "timePerStep": _time_per_step(job),
        # the client re-reads the job until this is set; qruntime knows its own version only
        "clientInfo": {"name": "qruntime", "version": __version__},
    }
    if result is not None:
        body["qObjectResult"] = result
    if job.status in (JobStatus.ERROR, JobStatus.CANCELLED) and job.error_message:
        body["error"] = {"message": job.error_message, "code": str(job.reason or job.status)}
    return body


def _time_per_step(job: StoredJob) -> dict[str, str]:
    steps = {"CREATING": iso(job.created_at), "QUEUED": iso(job.created_at)}
    if job.started_at is not None:
        steps["RUNNING"] = iso(job.started_at)
    if job.ended_at is not None:
        steps[QOBJ_STATUS.of(job)] = iso(job.ended_at)
    return {step: moment for step, moment in steps.items() if moment is not None}
