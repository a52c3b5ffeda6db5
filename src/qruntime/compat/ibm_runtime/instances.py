"""The caller's instances as IBM Cloud's search and catalogue services list them.

With an instance CRN the client still checks it against this list; without one it picks from
it. ``GLOBAL_SEARCH_URL`` and ``GLOBAL_CATALOG_URL`` (read by ibm-cloud-sdk-core) point the
client here; every user has exactly one instance (``qruntime.domain.instances``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from qruntime.api.errors import error_responses
from qruntime.api.json_body import CheckedJsonRoute
from qruntime.compat.ibm_runtime.deps import TAGS, CallerV1
from qruntime.domain.errors import NotFoundError
from qruntime.domain.instances import instance_crn, instance_name

SEARCH_PREFIX = "/global-search"
CATALOG_PREFIX = "/global-catalog"
#: The one plan every instance is on, as the catalogue names it.
PLAN_ID = "qruntime-plan"

router = APIRouter(tags=TAGS, strict_content_type=False, route_class=CheckedJsonRoute)


@router.post(SEARCH_PREFIX + "/v3/resources/search", responses=error_responses(401, 404, 422))
def search_instances(caller: CallerV1) -> dict[str, Any]:
    """The caller's instance, whatever the query (the client asks for quantum-computing)."""
    item = {
        "crn": instance_crn(caller.user_id),
        "name": instance_name(caller.name),
        "service_plan_unique_id": PLAN_ID,
        "tags": [],
        "doc": {"extensions": {"qruntime": {"backends": "all"}}},
    }
    return {"items": [item], "limit": 100, "search_cursor": None}


@router.get(CATALOG_PREFIX + "/{entry}", responses=error_responses(401, 404, 422))
def catalog_entry(entry: Annotated[str, Path(max_length=100)], caller: CallerV1) -> dict[str, Any]:
    if entry != PLAN_ID:
        raise NotFoundError("catalog entry", entry)
    return {
        "id": PLAN_ID,
        "name": PLAN_ID,
        "overview_ui": {"en": {"display_name": "qruntime"}},
        "metadata": {"pricing": {"type": "free"}},
    }
