"""``/api/runtime/jobs``: the 2021 runtime API's jobs over the job service.

Inputs arrive in the 2021 envelopes and are stored in qruntime's; results, inputs and interim
results go back in the 2021 envelopes. A failed job's ``results`` is its error text, which is
what the 2021 client prints as the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import SQL_INT_MAX
from qruntime.compat.common.envelopes import from_native, to_native
from qruntime.compat.ibmq2021.deps import GROUP, HUB, PROJECT, TAGS, Caller2021
from qruntime.compat.ibmq2021.wire import NAMES, RUNTIME_STATUS, runtime_job_json
from qruntime.domain.errors import (
    InvalidInputsError,
    NotFoundError,
    Problem,
    SerializationError,
    UnknownBackendError,
    ValidationFailed,
)
from qruntime.domain.job import JobReason, JobStatus
from qruntime.lazy_module import lazy_module
from qruntime.serialization import decode
from qruntime.service.container import Services
from qruntime.storage import StoredJob

# Qiskit's modules, imported when a request first needs them (qruntime/lazy_module.py).
dialect = lazy_module("qruntime.serialization.ibmq2021")
circuit_runner = lazy_module("qruntime.compat.ibmq2021.circuit_runner")

router = APIRouter(
    prefix="/runtime/jobs", tags=TAGS, strict_content_type=False, route_class=CheckedJsonRoute
)
JobId = Annotated[str, Path(max_length=100)]
FOUND = error_responses(401, 404, 422)


class RuntimeJobCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    program_id: str = Field(max_length=100)
    hub: str = HUB
    group: str = GROUP
    project: str = PROJECT
    backend: str = Field(max_length=100)
    params: Any = Field(default_factory=dict, description="Inputs in the 2021 envelopes.")
    runtime: str | None = Field(None, description="A runtime image; qruntime has one.")
    log_level: str | None = None


@router.post("", status_code=200, responses=error_responses(400, 401, 404, 413, 422, 429))
def run_program(body: RuntimeJobCreate, caller: Caller2021, services: ServicesDep) -> dict:
    if (body.hub, body.group, body.project) != (HUB, GROUP, PROJECT):
        raise NotFoundError("hub/group/project", f"{body.hub}/{body.group}/{body.project}")
    if body.runtime:
        raise ValidationFailed(
            Problem("runtime", f"image {body.runtime!r}: qruntime runs every job in its own one")
        )
    inputs = submitted_inputs(services, body.params, body.program_id)
    job = services.jobs.submit(
        caller,
        program_id=body.program_id,
        backend=native_backend(services, body.backend),
        inputs=inputs,
    )
    return runtime_job_json(job)


def native_backend(services: Services, name: str) -> str:
    native = NAMES.to_native(name)
    if native is None or native not in services.registry:
        offered = [dialect_name for dialect_name, _ in NAMES.offered(services.registry)]
        raise UnknownBackendError(name, offered)
    return native


def submitted_inputs(services: Services, params: Any, program_id: str) -> dict[str, Any]:
    """The job's inputs in qruntime's envelopes; the 2021 circuit runner's options translated."""
    if not isinstance(params, dict):
        raise InvalidInputsError(Problem("params", "must be a JSON object of name: value"))
    try:
        inputs = to_native(dialect, params, max_bytes=services.settings.max_inputs_bytes)
    except SerializationError as exc:  # name the field, as the native API does
        raise InvalidInputsError(Problem("params", str(exc))) from None
    if program_id == circuit_runner.CIRCUIT_RUNNER:
        inputs = circuit_runner.native_inputs(inputs)
    return inputs


@router.get("", responses=error_responses(401, 422))
def list_jobs(
    caller: Caller2021,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
    pending: bool | None = None,
    program: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    jobs, total = services.jobs.list(
        caller, limit=limit, offset=offset, pending=pending, program_id=program
    )
    return {"jobs": [runtime_job_json(job) for job in jobs], "count": total}


@router.get("/{job_id}", responses=FOUND)
def get_job(job_id: JobId, caller: Caller2021, services: ServicesDep) -> dict[str, Any]:
    return runtime_job_json(services.jobs.get(caller, job_id))


@router.get(
    "/{job_id}/results",
    response_class=Response,
    responses={
        200: {
            "description": "The result (JSON), or a failed job's error text (plain text).",
            "content": {"application/json": {}, "text/plain": {}},
        },
        **error_responses(401, 404, 406, 409, 422, json_route=False),
    },
)
def get_results(job_id: JobId, caller: Caller2021, services: ServicesDep) -> Response:
    """The result in the 2021 envelopes; a failed job's error text (the client shows it)."""
    job = services.jobs.get(caller, job_id)
    if job.status is JobStatus.ERROR or (
        job.status is JobStatus.CANCELLED and job.reason is JobReason.RAN_TOO_LONG
    ):
        return PlainTextResponse(job.error_message or RUNTIME_STATUS.of(job))
    stored = services.jobs.result(caller, job_id)
    return Response(result_text(job, stored), media_type="application/json")


def result_text(job: StoredJob, stored: str) -> str:
    if job.program_id == circuit_runner.CIRCUIT_RUNNER:
        result = decode(stored)
        if isinstance(result, dict) and "counts" in result:
            document = circuit_runner.result_document(job, result, decode(job.inputs))
            return dialect.dumps(document)
    return from_native(dialect, stored, what="job's result")


@router.post("/{job_id}/cancel", status_code=204, responses=error_responses(401, 404, 409, 422))
async def cancel_job(job_id: JobId, caller: Caller2021, services: ServicesDep) -> Response:
    await services.jobs.cancel(caller, job_id)
    return Response(status_code=204)


@router.delete("/{job_id}", status_code=204, responses=error_responses(401, 404, 409, 422))
async def delete_job(job_id: JobId, caller: Caller2021, services: ServicesDep) -> Response:
    await run_in_threadpool(services.jobs.delete, caller, job_id)
    return Response(status_code=204)


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses=error_responses(401, 404, 422, json_route=False),
)
def get_logs(job_id: JobId, caller: Caller2021, services: ServicesDep) -> str:
    return services.jobs.logs(caller, job_id)
