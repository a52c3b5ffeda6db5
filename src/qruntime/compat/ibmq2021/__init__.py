"""The 2021 IBM Quantum provider (``qiskit-ibmq-provider`` 0.20) over qruntime, under ``/api``.

``QE_URL=<server>/api`` is its authentication URL; ``/users/me`` then points the client at
``/api`` for hubs, backends and Qobj jobs, ``/api/ws`` for job-status sockets and
``/api/runtime`` for the runtime service (programs, jobs, interim-result stream).
"""

from __future__ import annotations

from fastapi import FastAPI

from qruntime.compat.ibmq2021 import account, devices, programs, qobj_jobs, runtime_jobs, stream

PREFIX = "/api"


def install(app: FastAPI) -> None:
    for module in (account, devices, programs, runtime_jobs, qobj_jobs, stream):
        app.include_router(module.router, prefix=PREFIX)
