"""``/api/v1/jobs``: primitive jobs over the job service, as today's client runs and reads them.

A V2 primitive's inputs arrive in the client's envelopes, become the catalogue program's
inputs (``primitives.py``) and are stored in qruntime's envelopes; results go back in the
client's. A failed job's ``results`` is its error text, which the client shows as the reason.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import SQL_INT_MAX
from qruntime.compat.common.envelopes import from_native
from qruntime.compat.ibm_runtime import names
from qruntime.compat.ibm_runtime.deps import TAGS, CallerV1
from qruntime.compat.ibm_runtime.wire import STATUS, job_json, metrics_json
from qruntime.domain.errors import (
    InvalidInputsError,
    Problem,
    SerializationError,
    ValidationFailed,
)
from qruntime.domain.job import JobReason, JobStatus
from qruntime.lazy_module import lazy_module
from qruntime.serialization import UnsupportedTypeError, encode
from qruntime.service.container import Services

# Qiskit's modules, imported when a request first needs them (qruntime/lazy_module.py).
dialect = lazy_module("qruntime.serialization.ibm_runtime")
primitives = lazy_module("qruntime.compat.ibm_runtime.primitives")

router = APIRouter(
    prefix="/jobs", tags=TAGS, strict_content_type=False, route_class=CheckedJsonRoute
)
JobId = Annotated[str, Path(max_length=100)]
FOUND = error_responses(401, 404, 422)


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    program_id: str = Field(max_length=100)
    backend: str = Field(max_length=100)
    params: Any = Field(default_factory=dict, description="Inputs in the client's envelopes.")
    runtime: str | None = Field(None, max_length=200, description="An image; qruntime has one.")
    log_level: str | None = Field(None, max_length=16)
    session_id: str | None = Field(None, max_length=100)
    tags: list[Annotated[str, Field(max_length=200)]] | None = Field(None, max_length=100)
    cost: int | None = Field(None, ge=1, le=SQL_INT_MAX, description="max_execution_time (s)")
    start_session: bool | None = None
    session_time: int | None = Field(None, ge=1, le=SQL_INT_MAX)
    private: bool | None = None
    calibration_id: str | None = Field(None, max_length=100)


@router.post("", status_code=200, responses=error_responses(400, 401, 404, 409, 413, 422, 429))
def run_job(body: JobCreate, caller: CallerV1, services: ServicesDep) -> dict[str, Any]:
    _refuse_unsupported(body)
    backend = names.to_native(services.registry, body.backend)
    inputs = submitted_inputs(services, body.program_id, body.params, backend)
    job = services.jobs.submit(
        caller,
        program_id=body.program_id,
        backend=backend,
        inputs=inputs,
        max_execution_time=body.cost,
        tags=body.tags or (),
        session_id=body.session_id,
    )
    return job_json(job)


def _refuse_unsupported(body: JobCreate) -> None:
    if body.runtime:
        raise ValidationFailed(
            Problem("runtime", f"image {body.runtime!r}: qruntime runs every job in its own one")
        )
    if body.private:
        raise ValidationFailed(
            Problem("private", "qruntime keeps every job's inputs and results for its owner")
        )
    if body.calibration_id is not None:
        raise ValidationFailed(
            Problem("calibration_id", "each backend here has one calibration, its snapshot's")
        )
    if body.start_session:
        raise ValidationFailed(
            Problem("start_session", "open a Session or Batch first and submit into it")
        )


def submitted_inputs(services: Services, program_id: str, params: Any, backend: str) -> Any:
    """The job's inputs in qruntime's envelopes; a primitive's translated for its program."""
    limit = services.settings.max_inputs_bytes
    try:
        decoded = dialect.loads(json.dumps(params), max_bytes=limit)
    except SerializationError as exc:  # name the field, as the native API does
        raise InvalidInputsError(Problem("params", str(exc))) from None
    if program_id in primitives.PRIMITIVES:
        decoded = primitives.native_inputs(program_id, decoded, services.registry, backend)
    elif not isinstance(decoded, dict):
        raise InvalidInputsError(Problem("params", "must be a JSON object of name: value"))
    try:
        return json.loads(encode(decoded))
    except UnsupportedTypeError as exc:
        raise InvalidInputsError(Problem("params", f"{exc}; qruntime cannot pass it on")) from None


@router.get("", responses=error_responses(401, 404, 422))
def list_jobs(
    caller: CallerV1,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
    pending: bool | None = None,
    program: Annotated[str | None, Query(max_length=100)] = None,
    backend: Annotated[str | None, Query(max_length=100)] = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    sort: Annotated[str | None, Query(pattern="^(ASC|DESC)$")] = None,
    exclude_params: bool = True,
    tags: Annotated[
        list[Annotated[str, Query(max_length=200)]] | None, Query(max_length=100)
    ] = None,
    session_id: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    # a backend that is not here has no jobs: an empty page, not an error
    native_backend = (names.NAMES.to_native(backend) or backend) if backend else None
    jobs, total = services.jobs.list(
        caller,
        limit=limit,
        offset=offset,
        pending=pending,
        program_id=program,
        backend=native_backend,
        created_after=_utc(created_after),
        created_before=_utc(created_before),
        oldest_first=sort == "ASC",
        tags=tags or (),
        session_id=session_id,
    )
    return {"jobs": [job_json(job, with_params=not exclude_params) for job in jobs], "count": total}


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """The client sends UTC; a moment without an offset is taken as UTC too."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


@router.get("/{job_id}", responses=FOUND)
def get_job(
    job_id: JobId, caller: CallerV1, services: ServicesDep, exclude_params: bool = False
) -> dict[str, Any]:
    return job_json(services.jobs.get(caller, job_id), with_params=not exclude_params)


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
def get_results(job_id: JobId, caller: CallerV1, services: ServicesDep) -> Response:
    """The result in the client's envelopes; a failed job's error text (the client shows it)."""
    job = services.jobs.get(caller, job_id)
    if job.status is JobStatus.ERROR or (
        job.status is JobStatus.CANCELLED and job.reason is JobReason.RAN_TOO_LONG
    ):
        return PlainTextResponse(job.error_message or STATUS.of(job))
    stored = services.jobs.result(caller, job_id)
    text = from_native(dialect, stored, what="job's result")
    return Response(text, media_type="application/json")


@router.post("/{job_id}/cancel", status_code=204, responses=error_responses(401, 404, 409, 422))
async def cancel_job(job_id: JobId, caller: CallerV1, services: ServicesDep) -> Response:
    await services.jobs.cancel(caller, job_id)
    return Response(status_code=204)


@router.delete("/{job_id}", status_code=204, responses=error_responses(401, 404, 409, 422))
async def delete_job(job_id: JobId, caller: CallerV1, services: ServicesDep) -> Response:
    await run_in_threadpool(services.jobs.delete, caller, job_id)
    return Response(status_code=204)


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses=error_responses(401, 404, 422, json_route=False),
)
def get_logs(job_id: JobId, caller: CallerV1, services: ServicesDep) -> str:
    return services.jobs.logs(caller, job_id)


class TagsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[Annotated[str, Field(max_length=200)]] = Field(max_length=100)


@router.put("/{job_id}/tags", status_code=204, responses=error_responses(400, 401, 404, 422))
def update_tags(
    job_id: JobId, body: TagsUpdate, caller: CallerV1, services: ServicesDep
) -> Response:
    services.jobs.set_tags(caller, job_id, body.tags)
    return Response(status_code=204)


@router.get("/{job_id}/metrics", responses=FOUND)
def get_metrics(job_id: JobId, caller: CallerV1, services: ServicesDep) -> dict[str, Any]:
    return metrics_json(services.jobs.get(caller, job_id))
