"""Today's qiskit-ibm-runtime (``QiskitRuntimeService``, V2 primitives, sessions) over qruntime.

``IAM_URL=<server>`` sends the client's token exchange to ``/identity/token``;
``GLOBAL_SEARCH_URL`` and ``GLOBAL_CATALOG_URL`` its instance look-ups to ``/global-search``
and ``/global-catalog``; ``url=<server>/api/v1`` with ``url_resolver=lambda url, *a: url`` its
REST calls to ``/api/v1`` (docs/compat.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from qruntime.compat.ibm_runtime import backends, identity, instances, jobs, sessions

PREFIX = "/api/v1"


def install(app: FastAPI) -> None:
    app.include_router(identity.router)
    app.include_router(instances.router)
    for module in (backends, jobs, sessions):
        app.include_router(module.router, prefix=PREFIX)
