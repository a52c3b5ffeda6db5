"""Job pages: the list with live status and filters, a job's live detail, and cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from qruntime.domain.errors import NotFoundError
from qruntime.domain.job import JobStatus
from qruntime.domain.text import decode_stored_json
from qruntime.web.auth import CheckedSession, PageCaller
from qruntime.web.deps import ServicesDep
from qruntime.web.errors import PageRoute
from qruntime.web.job_filter import PAGE_SIZE, JobFilter
from qruntime.web.templating import render

router = APIRouter(prefix="/ui/jobs", route_class=PageRoute, include_in_schema=False)


@router.get("")
def jobs_page(
    request: Request,
    caller: PageCaller,
    services: ServicesDep,
    status: str = "",
    program_id: str = "",
    page: int = 0,
) -> Response:
    filters = JobFilter.parse(status, program_id, page)
    jobs, total = services.jobs.list(caller, **filters.service_arguments())
    programs, _ = services.programs.list(caller, limit=None)
    choices = {p.id for p in programs} | ({filters.program_id} if filters.program_id else set())
    context = {
        "jobs": jobs,
        "total": total,
        "filters": filters,
        "page_size": PAGE_SIZE,
        "statuses": [s.value for s in JobStatus],
        "program_ids": sorted(choices),
    }
    return render(request, "jobs.html", context)


@router.get("/{job_id}")
def job_page(request: Request, job_id: str, caller: PageCaller, services: ServicesDep) -> Response:
    job = services.jobs.get(caller, job_id)
    try:
        services.programs.get(caller, job.program_id)
        program_visible = True
    except NotFoundError:
        program_visible = False  # deleted since, or made private by its owner
    context = {
        "job": job,
        "inputs": decode_stored_json(job.inputs),
        "program_visible": program_visible,
    }
    return render(request, "job.html", context)


@router.post("/{job_id}/cancel")
async def cancel_job(job_id: str, session: CheckedSession, services: ServicesDep) -> Response:
    await services.jobs.cancel(session.caller, job_id)
    return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)
