"""``/api/runtime/programs``: the 2021 runtime API's programs over the program service.

The 2021 metadata calls ``max_execution_time`` ``cost``; source travels base64-encoded, as a
JSON field on upload and as the raw body of ``PUT .../data``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.api.schemas import SQL_INT_MAX
from qruntime.compat.ibmq2021.deps import TAGS, Caller2021
from qruntime.compat.ibmq2021.wire import program_json
from qruntime.domain.errors import InvalidSourceError, Problem

router = APIRouter(
    prefix="/runtime/programs", tags=TAGS, strict_content_type=False, route_class=CheckedJsonRoute
)
ProgramId = Annotated[str, Path(max_length=100)]
CHANGES = error_responses(400, 401, 403, 404, 413, 422)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProgramCreate2021(_Body):
    name: Any = None
    data: str
    cost: Any = None
    description: Any = None
    is_public: bool = False
    spec: dict[str, Any] | None = None


class ProgramUpdate2021(_Body):
    name: str | None = None
    description: str | None = None
    cost: int | None = None
    spec: dict[str, Any] | None = None


@router.get("", responses=error_responses(401, 422))
def list_programs(
    caller: Caller2021,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
) -> dict[str, Any]:
    programs, total = services.programs.list(caller, limit=limit, offset=offset)
    return {"programs": [program_json(p) for p in programs], "count": total}


@router.post("", status_code=201, responses=error_responses(400, 401, 403, 409, 413, 422))
def upload_program(
    body: ProgramCreate2021, caller: Caller2021, services: ServicesDep
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": body.name,
        "description": body.description,
        "max_execution_time": body.cost,
        "is_public": body.is_public,
    }
    if body.spec is not None:
        metadata["spec"] = body.spec
    program = services.programs.upload(caller, data=body.data, metadata=metadata)
    return program_json(program)


@router.get("/{program_id}", responses=error_responses(401, 404, 422))
def get_program(program_id: ProgramId, caller: Caller2021, services: ServicesDep) -> dict:
    program = services.programs.get(caller, program_id)
    return program_json(program, with_source=caller.owns(program.owner_id))


@router.patch("/{program_id}", responses=CHANGES)
def update_program(
    program_id: ProgramId, body: ProgramUpdate2021, caller: Caller2021, services: ServicesDep
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "cost" in changes:
        changes["max_execution_time"] = changes.pop("cost")
    return program_json(services.programs.update(caller, program_id, changes))


async def _raw_body(request: Request) -> bytes:
    """The body as sent: the 2021 client puts the base64 source there, not in JSON."""
    return await request.body()


_SOURCE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The new source, base64-encoded.",
        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
    }
}


@router.put("/{program_id}/data", responses=CHANGES, openapi_extra=_SOURCE_BODY)
def replace_source(
    program_id: ProgramId,
    caller: Caller2021,
    services: ServicesDep,
    data: Annotated[bytes, Depends(_raw_body)],
) -> dict[str, Any]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidSourceError(Problem("data", "is not valid base64")) from None
    return program_json(services.programs.replace_source(caller, program_id, text.strip()))


@router.put("/{program_id}/public", responses=error_responses(401, 403, 404, 422))
def make_public(program_id: ProgramId, caller: Caller2021, services: ServicesDep) -> dict:
    return program_json(services.programs.set_visibility(caller, program_id, True))


@router.put("/{program_id}/private", responses=error_responses(401, 403, 404, 422))
def make_private(program_id: ProgramId, caller: Caller2021, services: ServicesDep) -> dict:
    return program_json(services.programs.set_visibility(caller, program_id, False))


@router.delete("/{program_id}", status_code=204, responses=error_responses(401, 403, 404, 422))
def delete_program(program_id: ProgramId, caller: Caller2021, services: ServicesDep) -> Response:
    services.programs.delete(caller, program_id)
    return Response(status_code=204)
