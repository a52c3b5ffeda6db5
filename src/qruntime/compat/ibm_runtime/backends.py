"""``/api/v1/backends``: the backends of the caller's instance, each one's configuration,
calibration properties and status, and the instance's usage, in the shapes the client parses."""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.backends import BackendRegistry
from qruntime.compat.common import backend_documents
from qruntime.compat.ibm_runtime import names
from qruntime.compat.ibm_runtime.deps import TAGS, CallerV1

router = APIRouter(tags=TAGS, strict_content_type=False, route_class=CheckedJsonRoute)
FOUND = error_responses(401, 404, 422)
BackendName = Annotated[str, Path(max_length=100)]
#: Query arguments the client may send; every backend here is the same whatever their values.
CalibrationId = Annotated[str | None, Query(max_length=100)]


@router.get("/backends", responses=error_responses(401, 404, 422))
def list_backends(
    caller: CallerV1,
    services: ServicesDep,
    include_mocks: bool = False,
) -> dict[str, Any]:
    """Every backend is a real one here (no mock devices), online and accepting jobs."""
    devices = [
        {
            "name": name,
            "status": {"name": "online", "reason": "available"},
            "is_simulator": native == names.NAMES.native_ideal,
            "qubits": services.registry.info(native).num_qubits,
            "clops": None,
            "processor_type": None,
            "queue_length": 0,
            "class": "device",
        }
        for name, native in names.offered(services.registry)
    ]
    return {"devices": devices}


@functools.cache
def _configuration(registry: BackendRegistry, name: str) -> bytes:
    """Configurations are large (a 156-qubit device's is megabytes): encoded once per server."""
    native = names.require(registry, name)
    document = backend_documents.configuration(registry, native, name)
    document.setdefault("processor_type", {})
    document.setdefault("supported_instructions", document.get("basis_gates", []))
    return json.dumps(document).encode()


@router.get("/backends/{name}/configuration", response_class=JSONResponse, responses=FOUND)
def configuration(
    name: BackendName, caller: CallerV1, services: ServicesDep, calibration_id: CalibrationId = None
) -> Response:
    return Response(_configuration(services.registry, name), media_type="application/json")


@router.get("/backends/{name}/properties", responses=FOUND)
def properties(
    name: BackendName,
    caller: CallerV1,
    services: ServicesDep,
    updated_before: Annotated[str | None, Query(max_length=64)] = None,
    calibration_id: CalibrationId = None,
) -> dict[str, Any]:
    """The snapshot's calibration (the same for every date); the simulator has none (``{}``)."""
    native = names.require(services.registry, name)
    return backend_documents.properties(native, name) or {}


@router.get("/backends/{name}/status", responses=FOUND)
def status(name: BackendName, caller: CallerV1, services: ServicesDep) -> dict[str, Any]:
    native = names.require(services.registry, name)
    _, pending = services.jobs.list(caller, limit=0, pending=True)
    return {
        "state": True,
        "status": "active",
        "message": "available",
        "length_queue": pending,
        "backend_version": backend_documents.configuration(services.registry, native, name).get(
            "backend_version", "0.0.0"
        ),
    }


@router.get("/instances/usage", responses=error_responses(401, 404, 422))
def instance_usage(caller: CallerV1) -> dict[str, Any]:
    """qruntime meters no quantum seconds: the instance is never over a usage limit."""
    return {
        "instance_id": None,
        "usage_consumed_seconds": 0,
        "usage_limit_reached": False,
        "usage_limit_seconds": None,
        "usage_allocation_seconds": None,
    }
