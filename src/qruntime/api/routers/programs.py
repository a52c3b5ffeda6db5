"""``/programs``: upload, list, inspect, update, publish and delete runtime programs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from qruntime.api.deps import CurrentUser, ServicesDep
from qruntime.api.errors import AUTHENTICATED, error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import (
    SQL_INT_MAX,
    ProgramCreate,
    ProgramData,
    ProgramPublic,
    ProgramsPublic,
    ProgramUpdate,
)

router = APIRouter(
    prefix="/programs", tags=["programs"], responses=AUTHENTICATED, route_class=CheckedJsonRoute
)


@router.post("", status_code=201, responses=error_responses(400, 403, 409, 413, 429))
def upload_program(
    body: ProgramCreate, caller: CurrentUser, services: ServicesDep
) -> ProgramPublic:
    program = services.programs.upload(
        caller, data=body.data, metadata=body.metadata, bare_name=body.bare_name
    )
    return ProgramPublic.of(program)


@router.get("")
def list_programs(
    caller: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
) -> ProgramsPublic:
    programs, total = services.programs.list(caller, limit=limit, offset=offset)
    return ProgramsPublic(programs=[ProgramPublic.of(p) for p in programs], total=total)


@router.get("/{program_id}", responses=error_responses(404))
def get_program(program_id: str, caller: CurrentUser, services: ServicesDep) -> ProgramPublic:
    program = services.programs.get(caller, program_id)
    return ProgramPublic.of(program, with_source=caller.owns(program.owner_id))


@router.patch("/{program_id}", responses=error_responses(400, 403, 404, 413))
def update_program(
    program_id: str, body: ProgramUpdate, caller: CurrentUser, services: ServicesDep
) -> ProgramPublic:
    changes = body.model_dump(exclude_unset=True)
    return ProgramPublic.of(services.programs.update(caller, program_id, changes))


@router.put("/{program_id}/data", responses=error_responses(400, 403, 404, 413, 429))
def replace_source(
    program_id: str, body: ProgramData, caller: CurrentUser, services: ServicesDep
) -> ProgramPublic:
    return ProgramPublic.of(services.programs.replace_source(caller, program_id, body.data))


@router.put("/{program_id}/public", responses=error_responses(403, 404))
def make_public(program_id: str, caller: CurrentUser, services: ServicesDep) -> ProgramPublic:
    return ProgramPublic.of(services.programs.set_visibility(caller, program_id, True))


@router.put("/{program_id}/private", responses=error_responses(403, 404))
def make_private(program_id: str, caller: CurrentUser, services: ServicesDep) -> ProgramPublic:
    return ProgramPublic.of(services.programs.set_visibility(caller, program_id, False))


@router.delete("/{program_id}", status_code=204, responses=error_responses(403, 404))
def delete_program(program_id: str, caller: CurrentUser, services: ServicesDep) -> Response:
    services.programs.delete(caller, program_id)
    return Response(status_code=204)
