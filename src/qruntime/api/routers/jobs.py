"""``/jobs``: submit, list and inspect jobs, their results, interim results and logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from qruntime.api.deps import CurrentUser, ServicesDep
from qruntime.api.errors import AUTHENTICATED, error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import (
    SQL_INT_MAX,
    InterimPublic,
    InterimsPublic,
    JobCreate,
    JobPublic,
    JobsPublic,
)
from qruntime.domain.job import JobStatus
from qruntime.service.container import Services
from qruntime.service.principal import Principal
from qruntime.storage import StoredJob

router = APIRouter(
    prefix="/jobs", tags=["jobs"], responses=AUTHENTICATED, route_class=CheckedJsonRoute
)


@router.post("", status_code=201, responses=error_responses(400, 404, 409, 413, 429))
def submit_job(body: JobCreate, caller: CurrentUser, services: ServicesDep) -> JobPublic:
    # No docstring: it would become the operation's description in the OpenAPI document.
    # Served here only with ``thin_endpoints`` off; api/thin_submit.py answers it otherwise.
    return JobPublic.of(submitted(services, caller, body))


def submitted(services: Services, caller: Principal, body: JobCreate) -> StoredJob:
    """The job ``body`` asks for, queued for ``caller`` (blocking: database work)."""
    return services.jobs.submit(
        caller,
        program_id=body.program_id,
        backend=body.backend,
        inputs=body.inputs,
        max_execution_time=body.max_execution_time,
        resources=body.resources,
        session_id=body.session_id,
    )


@router.get("")
def list_jobs(
    caller: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
    pending: bool | None = None,
    program_id: str | None = None,
    status: Annotated[list[JobStatus] | None, Query()] = None,
) -> JobsPublic:
    jobs, total = services.jobs.list(
        caller,
        limit=limit,
        offset=offset,
        pending=pending,
        program_id=program_id,
        statuses=status,
    )
    return JobsPublic(
        jobs=[JobPublic.of(j, services.jobs.waiting_reason(j)) for j in jobs], total=total
    )


@router.get("/{job_id}", responses=error_responses(404))
def get_job(job_id: str, caller: CurrentUser, services: ServicesDep) -> JobPublic:
    job = services.jobs.get(caller, job_id)
    return JobPublic.of(job, services.jobs.waiting_reason(job))


@router.get("/{job_id}/results", responses=error_responses(404, 409))
def get_result(job_id: str, caller: CurrentUser, services: ServicesDep) -> Response:
    """The final result as stored: RuntimeEncoder JSON."""
    return Response(services.jobs.result(caller, job_id), media_type="application/json")


@router.get("/{job_id}/interim_results", responses=error_responses(404))
def get_interim_results(
    job_id: str,
    caller: CurrentUser,
    services: ServicesDep,
    since: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
) -> InterimsPublic:
    interims = services.jobs.interim_results(caller, job_id, since)
    return InterimsPublic(interim_results=[InterimPublic.of(i) for i in interims])


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses=error_responses(401, 404, 422, 429, json_route=False),
)
def get_logs(job_id: str, caller: CurrentUser, services: ServicesDep) -> str:
    return services.jobs.logs(caller, job_id)


@router.post(
    "/{job_id}/cancel",
    responses={
        202: {
            "model": JobPublic,
            "description": "The cancel is recorded, but the replica running the job has not "
            "stopped it yet (it is gone or unreachable); it ends CANCELLED when that replica "
            "stops it or, if that replica is gone, when its lease runs out.",
        },
        **error_responses(404, 409),
    },
)
async def cancel_job(
    job_id: str, caller: CurrentUser, services: ServicesDep, response: Response
) -> JobPublic:
    job = await services.jobs.cancel(caller, job_id)
    if not job.status.is_terminal():
        response.status_code = 202
    return JobPublic.of(job)


@router.delete("/{job_id}", status_code=204, responses=error_responses(404, 409))
async def delete_job(job_id: str, caller: CurrentUser, services: ServicesDep) -> Response:
    await run_in_threadpool(services.jobs.delete, caller, job_id)
    return Response(status_code=204)
