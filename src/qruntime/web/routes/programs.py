"""Program pages: the list with search, and a program's spec, source, visibility and run form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from qruntime.domain.errors import (
    BackendError,
    InvalidStateError,
    Problem,
    SerializationError,
    TooLargeError,
    ValidationFailed,
)
from qruntime.service.container import Services
from qruntime.service.principal import Principal
from qruntime.storage import StoredProgram
from qruntime.web.auth import CheckedSession, PageCaller
from qruntime.web.deps import ServicesDep
from qruntime.web.errors import PageRoute
from qruntime.web.run_form import RunForm, problems_of
from qruntime.web.spec_view import schema_view
from qruntime.web.templating import render

router = APIRouter(prefix="/ui/programs", route_class=PageRoute, include_in_schema=False)

#: What a refused submit can raise; each is shown next to the form instead of an error page.
_REFUSALS = (
    ValidationFailed,
    SerializationError,
    BackendError,
    TooLargeError,
    InvalidStateError,
)


@router.get("")
def programs_page(
    request: Request, caller: PageCaller, services: ServicesDep, q: str = ""
) -> Response:
    programs, _ = services.programs.list(caller, limit=None)
    needle = q.strip().lower()
    shown = [p for p in programs if not needle or needle in _haystack(p)]
    context = {"programs": shown, "total": len(programs), "q": q}
    return render(request, "programs.html", context)


@router.get("/{program_id}")
def program_page(
    request: Request, program_id: str, caller: PageCaller, services: ServicesDep
) -> Response:
    program = services.programs.get(caller, program_id)
    form = RunForm.initial(program.spec.get("parameters"), services.registry.names())
    return _program_page(request, services, caller, program, form)


@router.post("/{program_id}/run")
def run_program(
    request: Request,
    program_id: str,
    session: CheckedSession,
    services: ServicesDep,
    backend: Annotated[str, Form()] = "",
    inputs: Annotated[str, Form()] = "",
    max_execution_time: Annotated[str, Form()] = "",
) -> Response:
    """The same submit as ``POST /jobs``; a refusal re-shows the form with every problem."""
    caller = session.caller
    program = services.programs.get(caller, program_id)
    form = RunForm(backend, inputs, max_execution_time)
    try:
        job = services.jobs.submit(
            caller,
            program_id=program.id,
            backend=form.backend,
            inputs=form.parsed_inputs(),
            max_execution_time=form.time_limit(),
        )
    except _REFUSALS as exc:
        problems = problems_of(exc)
        return _program_page(request, services, caller, program, form, problems, status_code=400)
    return RedirectResponse(f"/ui/jobs/{job.id}", status_code=303)


@router.post("/{program_id}/visibility")
def change_visibility(
    program_id: str,
    session: CheckedSession,
    services: ServicesDep,
    public: Annotated[str, Form()] = "",
) -> Response:
    services.programs.set_visibility(session.caller, program_id, public == "true")
    return RedirectResponse(f"/ui/programs/{program_id}", status_code=303)


def _program_page(
    request: Request,
    services: Services,
    caller: Principal,
    program: StoredProgram,
    form: RunForm,
    problems: list[Problem] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    spec = program.spec
    context = {
        "program": program,
        "owns": caller.owns(program.owner_id),
        "parameters": schema_view(spec.get("parameters")),
        "interim_results": schema_view(spec.get("interim_results")),
        "return_values": schema_view(spec.get("return_values")),
        "requirements": spec.get("backend_requirements") or {},
        "backends": services.registry.names(),
        "form": form,
        "problems": problems or [],
    }
    return render(request, "program.html", context, status_code=status_code)


def _haystack(program: StoredProgram) -> str:
    return f"{program.id} {program.name} {program.description} {program.owner_name}".lower()
