"""Other clients' protocols over qruntime's service layer: thin routers and translators only.

``ibmq2021`` speaks the 2021 IBM Quantum provider (``qiskit-ibmq-provider`` 0.20); the pieces
every dialect needs (backend names and documents, status names, envelope translation, the
URLs a client is told to use) live in ``common``. No job, program or user logic lives here: a
route translates the request, calls the service, and translates the answer (docs/compat.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from qruntime.compat import ibmq2021


def install_compat(app: FastAPI) -> None:
    """Mount every dialect's routes on ``app``."""
    ibmq2021.install(app)
