"""A project's ``Jobs``: ``backend.run`` and ``qiskit.execute`` of the 2021 client, as qruntime
jobs of the catalogue's ``circuit-runner``.

The client creates a job, uploads its Qobj to the "object storage" URL it was given, and
confirms; here the create step only picks the job's id (nothing is stored), the upload
translates the Qobj into circuits and submits the job under that id, and the confirmation
reads it back. A done job carries its result in the 2021 ``Result`` shape.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.compat.common import backend_documents
from qruntime.compat.common.urls import base_url
from qruntime.compat.ibmq2021 import loopback
from qruntime.compat.ibmq2021.deps import PROJECT_PATH, TAGS, ProjectCaller
from qruntime.compat.ibmq2021.wire import NAMES, QOBJ_KIND, qobj_job_json
from qruntime.domain.errors import DuplicateError, InvalidStateError, Problem, ValidationFailed
from qruntime.domain.job import JobStatus
from qruntime.lazy_module import lazy_module
from qruntime.serialization import decode, encode
from qruntime.service.container import Services
from qruntime.service.jobs import new_job_id
from qruntime.service.principal import Principal

# Qiskit's modules, imported when a request first needs them (qruntime/lazy_module.py).
circuit_runner = lazy_module("qruntime.compat.ibmq2021.circuit_runner")
qobj_reader = lazy_module("qruntime.compat.ibmq2021.qobj")

router = APIRouter(
    prefix=PROJECT_PATH + "/Jobs",
    tags=TAGS,
    strict_content_type=False,
    route_class=CheckedJsonRoute,
)
JobId = Annotated[str, Path(max_length=100)]
FOUND = error_responses(401, 404, 422)
#: Jobs a listing looks through at most (newest first) before it applies its filter.
MAX_SCANNED = 10_000


class RemoteJobCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    backend: dict[str, Any] = Field(description='{"name": backend}')
    name: str | None = Field(None, description="Not kept by qruntime.")
    tags: list[str] | None = Field(None, description="Not kept by qruntime.")


def _job_url(request: Request, job_id: str, tail: str) -> str:
    prefix = PROJECT_PATH.format(**request.path_params)
    return f"{base_url(request)}/api{prefix}/Jobs/{job_id}/{tail}"


@router.post("", responses=error_responses(400, 401, 404, 413, 422))
def create_job(
    request: Request, body: RemoteJobCreate, caller: ProjectCaller, services: ServicesDep
) -> dict[str, Any]:
    """Name the job and say where its Qobj goes; the job exists once the Qobj has arrived."""
    name = body.backend.get("name")
    if not isinstance(name, str):
        raise ValidationFailed(Problem("backend.name", "must be a backend name"))
    NAMES.require(services.registry, name)
    job_id = new_job_id()
    upload = _job_url(request, job_id, f"qobj?backend={name}")
    return {
        "id": job_id,
        "kind": QOBJ_KIND,
        "status": "CREATING",
        "backend": {"name": name},
        "objectStorageInfo": {"uploadUrl": upload},
    }


@router.get("/status/v/1", responses=error_responses(400, 401, 404, 422))
def list_jobs(
    caller: ProjectCaller,
    services: ServicesDep,
    filter: Annotated[str | None, Query(max_length=4096)] = None,
) -> list[dict[str, Any]]:
    """The caller's circuit-runner jobs, newest first, through the client's LoopBack query."""
    query = _query(filter)
    where = query.get("where") or {}
    loopback.check(where)
    skip, limit = _count(query, "skip", 0), _count(query, "limit", 10)
    jobs, _ = services.jobs.list(
        caller, limit=MAX_SCANNED, program_id=circuit_runner.CIRCUIT_RUNNER
    )
    documents = [qobj_job_json(job) for job in jobs]
    chosen = [doc for doc in documents if loopback.matches(where, doc)]
    if str(query.get("order", "creationDate DESC")).upper().endswith("ASC"):
        chosen.reverse()
    return chosen[skip : skip + limit]


@router.put("/{job_id}/qobj", responses=error_responses(400, 401, 404, 409, 413, 422, 429))
async def upload_qobj(
    request: Request,
    job_id: JobId,
    caller: ProjectCaller,
    services: ServicesDep,
    backend: Annotated[str, Query(max_length=100)],
) -> Response:
    """The upload: the Qobj becomes circuits and a circuit-runner job with the chosen id."""
    raw = await request.body()
    await run_in_threadpool(_submit_qobj, services, caller, job_id, backend, raw)
    return Response(status_code=200)


def _submit_qobj(
    services: Services, caller: Principal, job_id: str, backend: str, raw: bytes
) -> None:
    native = NAMES.require(services.registry, backend)
    try:
        qobj = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed(Problem("qobj", f"is not JSON: {exc}")) from None
    run = qobj_reader.circuits_of(qobj, max_qubits=services.registry.info(native).num_qubits)
    inputs: dict[str, Any] = {"circuits": run.circuits, "optimization_level": 0}
    inputs["layout_method"] = "trivial"  # a Qobj's circuits are already laid out
    if run.shots is not None:
        inputs["shots"] = run.shots
    if run.seed_simulator is not None:
        inputs["seed_simulator"] = run.seed_simulator
    try:
        services.jobs.submit(
            caller,
            program_id=circuit_runner.CIRCUIT_RUNNER,
            backend=native,
            inputs=json.loads(encode(inputs)),
            job_id=job_id,
        )
    except DuplicateError:
        services.jobs.get(caller, job_id)  # another user's job id does not exist for this one
        raise


@router.post("/{job_id}/jobDataUploaded", responses=FOUND)
def job_data_uploaded(job_id: JobId, caller: ProjectCaller, services: ServicesDep) -> dict:
    return {"job": qobj_job_json(services.jobs.get(caller, job_id))}


@router.get("/{job_id}/v/1", responses=FOUND)
def get_job(job_id: JobId, caller: ProjectCaller, services: ServicesDep) -> dict[str, Any]:
    """The job; once it is done, with its counts as the 2021 ``Result`` dict."""
    job = services.jobs.get(caller, job_id)
    result = decode(job.result) if job.status is JobStatus.DONE and job.result else None
    if not isinstance(result, dict) or "counts" not in result:
        return qobj_job_json(job)
    return qobj_job_json(job, circuit_runner.result_document(job, result, decode(job.inputs)))


@router.get("/{job_id}/status/v/1", responses=FOUND)
def get_status(job_id: JobId, caller: ProjectCaller, services: ServicesDep) -> dict[str, Any]:
    job = qobj_job_json(services.jobs.get(caller, job_id))
    return {"id": job["id"], "status": job["status"], "creationDate": job["creationDate"]}


@router.post("/{job_id}/cancel", responses=FOUND)
async def cancel_job(job_id: JobId, caller: ProjectCaller, services: ServicesDep) -> dict:
    """A finished job is not an error here: the client reads ``cancelled: false``."""
    try:
        await services.jobs.cancel(caller, job_id)
    except InvalidStateError as exc:
        return {"cancelled": False, "error": {"code": "invalid_state", "message": str(exc)}}
    return {"cancelled": True}


@router.delete("/{job_id}", status_code=204, responses=error_responses(401, 404, 409, 422))
async def delete_job(job_id: JobId, caller: ProjectCaller, services: ServicesDep) -> Response:
    await run_in_threadpool(services.jobs.delete, caller, job_id)
    return Response(status_code=204)


@router.get("/{job_id}/properties", responses=FOUND)
def job_properties(job_id: JobId, caller: ProjectCaller, services: ServicesDep) -> dict:
    """The calibration the job ran with: its backend's snapshot (simulators have none)."""
    job = services.jobs.get(caller, job_id)
    return backend_documents.properties(job.backend, NAMES.to_dialect(job.backend)) or {}


def _query(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        query = json.loads(text)
    except ValueError:
        raise loopback.InvalidFilterError(Problem("filter", "is not JSON")) from None
    if not isinstance(query, dict):
        raise loopback.InvalidFilterError(Problem("filter", "must be a JSON object"))
    return query


def _count(query: dict[str, Any], key: str, default: int) -> int:
    value = query.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SCANNED:
        raise loopback.InvalidFilterError(
            Problem(f"filter.{key}", f"must be an integer from 0 to {MAX_SCANNED}")
        )
    return value
