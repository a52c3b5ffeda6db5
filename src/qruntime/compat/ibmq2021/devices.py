"""A project's backends: the device list, each backend's configuration, properties, pulse
defaults (none), queue status and job limit, in the shapes the 2021 client parses."""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response

from qruntime.api.deps import ServicesDep
from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.backends import BackendRegistry
from qruntime.compat.common import backend_documents
from qruntime.compat.ibmq2021.deps import PROJECT_PATH, TAGS, ProjectCaller
from qruntime.compat.ibmq2021.wire import NAMES

router = APIRouter(
    prefix=PROJECT_PATH + "/devices",
    tags=TAGS,
    strict_content_type=False,
    route_class=CheckedJsonRoute,
)
NOT_FOUND = error_responses(401, 404, 422)
BackendName = Annotated[str, Path(max_length=100)]


@functools.cache
def _device_list(registry: BackendRegistry) -> bytes:
    """Every configuration at once (megabytes): encoded once per server, not per request."""
    documents = [
        backend_documents.configuration(registry, native, name)
        for name, native in NAMES.offered(registry)
    ]
    return json.dumps(documents).encode()


@router.get("/v/1", response_class=JSONResponse, responses=NOT_FOUND)
def list_devices(caller: ProjectCaller, services: ServicesDep) -> Response:
    return Response(_device_list(services.registry), media_type="application/json")


@router.get("/{name}/properties", responses=NOT_FOUND)
def properties(name: BackendName, caller: ProjectCaller, services: ServicesDep) -> dict[str, Any]:
    """The snapshot's calibration (the same whatever date is asked for); simulators have none."""
    native = NAMES.require(services.registry, name)
    return backend_documents.properties(native, name) or {}


@router.get("/{name}/defaults", responses=NOT_FOUND)
def pulse_defaults(name: BackendName, caller: ProjectCaller, services: ServicesDep) -> dict:
    """No backend here runs pulse schedules: an empty document, which the client reads as none."""
    NAMES.require(services.registry, name)
    return {}


@router.get("/{name}/queue/status", responses=NOT_FOUND)
def queue_status(name: BackendName, caller: ProjectCaller, services: ServicesDep) -> dict:
    native = NAMES.require(services.registry, name)
    configuration = backend_documents.configuration(services.registry, native, name)
    return backend_documents.status(configuration, pending_jobs=0)


@router.get("/{name}/jobsLimit", responses=NOT_FOUND)
def jobs_limit(name: BackendName, caller: ProjectCaller, services: ServicesDep) -> dict:
    """The caller's unfinished jobs against the per-user cap on queued jobs."""
    NAMES.require(services.registry, name)
    _, pending = services.jobs.list(caller, limit=0, pending=True)
    return {"maximumJobs": services.settings.max_queued_jobs_per_user, "runningJobs": pending}
