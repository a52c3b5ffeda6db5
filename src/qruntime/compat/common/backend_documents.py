"""Backend configuration and properties in IBM's JSON shape (the ``BackendConfiguration`` and
``BackendProperties`` documents its clients parse), named as the dialect names the backend.

Device snapshots serve their own documents from qiskit-ibm-runtime's files; the ideal simulator
gets a configuration in the shape IBM's own simulator had, with the gates both the old clients'
Qiskit and today's know.
"""

from __future__ import annotations

from typing import Any

from qruntime import __version__
from qruntime.backends import BackendRegistry
from qruntime.backends.snapshots import snapshot
from qruntime.domain.errors import NotFoundError

#: Gates qiskit-terra 0.46, today's Qiskit and Aer all name the same way (measure, reset and
#: delay are instructions, not basis gates).
SIMULATOR_BASIS_GATES = (
    "ccx",
    "ccz",
    "cp",
    "crx",
    "cry",
    "crz",
    "cswap",
    "csx",
    "cu",
    "cu1",
    "cu3",
    "cx",
    "cy",
    "cz",
    "ecr",
    "h",
    "id",
    "p",
    "r",
    "rx",
    "rxx",
    "ry",
    "ryy",
    "rz",
    "rzx",
    "rzz",
    "s",
    "sdg",
    "swap",
    "sx",
    "sxdg",
    "t",
    "tdg",
    "u",
    "u1",
    "u2",
    "u3",
    "x",
    "y",
    "z",
)
#: The most shots one job may ask for (the circuit runner's own limit).
MAX_SHOTS = 1_000_000
MAX_EXPERIMENTS = 300
#: The 2021 clients require an ``online_date``; simulators here have been online for ever.
ONLINE_DATE = "2021-01-01T00:00:00Z"


def configuration(registry: BackendRegistry, native: str, name: str) -> dict[str, Any]:
    """The configuration document of backend ``native``, called ``name``."""
    found = snapshot(native)
    if found is not None:
        document = found.configuration
        document["backend_name"] = name
        return document
    if native not in registry:
        raise NotFoundError("backend", name)
    info = registry.info(native)
    return {
        "backend_name": name,
        "backend_version": __version__,
        "description": f"{info.description} (qruntime backend {native!r})",
        "n_qubits": info.num_qubits,
        "basis_gates": list(SIMULATOR_BASIS_GATES),
        "gates": [],
        "coupling_map": None,
        "local": False,
        "simulator": True,
        "conditional": True,
        "open_pulse": False,
        "memory": False,
        "max_shots": MAX_SHOTS,
        "max_experiments": MAX_EXPERIMENTS,
        "supported_instructions": [*SIMULATOR_BASIS_GATES, "measure", "reset", "barrier", "delay"],
        "allow_q_object": True,
        "allow_object_storage": True,
        "online_date": ONLINE_DATE,
    }


def properties(native: str, name: str) -> dict[str, Any] | None:
    """The calibration properties of a device snapshot; None for simulators (they have none)."""
    found = snapshot(native)
    if found is None or found.properties is None:
        return None
    document = found.properties
    document["backend_name"] = name
    return document


def status(configuration_document: dict[str, Any], pending_jobs: int) -> dict[str, Any]:
    """The queue status document: every qruntime backend is always operational."""
    return {
        "state": True,
        "status": "active",
        "message": "",
        "lengthQueue": pending_jobs,
        "backend_version": configuration_document.get("backend_version", "0.0.0"),
    }
