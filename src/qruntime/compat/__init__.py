"""Other clients' protocols over qruntime's service layer: thin routers and translators only.

``ibmq2021`` speaks the 2021 IBM Quantum provider (``qiskit-ibmq-provider`` 0.20),
``ibm_runtime`` today's ``qiskit-ibm-runtime`` (``QiskitRuntimeService``); the pieces
every dialect needs (backend names and documents, status names, envelope translation, the
URLs a client is told to use) live in ``common``. No job, program or user logic lives here: a
route translates the request, calls the service, and translates the answer (docs/compat.md).
"""

from __future__ import annotations

from fastapi import FastAPI


def install_compat(app: FastAPI) -> None:
    """Mount every dialect's routes on ``app`` (imported here: the dialects import the api)."""
    from qruntime.compat import ibm_runtime, ibmq2021

    ibmq2021.install(app)
    ibm_runtime.install(app)
