"""Refuse a run before it is queued when the backend cannot host the program."""

from __future__ import annotations

from typing import Protocol

from qruntime.domain.errors import BackendRequirementsError, Problem


class _Sized(Protocol):
    name: str
    num_qubits: int


def check_backend_requirements(requirements: object, backend: _Sized) -> None:
    """Raise if ``backend`` (a BackendV2 or BackendInfo) misses ``backend_requirements``.

    ``requirements`` is a ``ProgramMetadata``, its ``spec.backend_requirements`` or a dict.
    """
    min_qubits = _min_num_qubits(requirements)
    if min_qubits is not None and backend.num_qubits < min_qubits:
        raise BackendRequirementsError(
            Problem(
                "backend",
                f"the program needs at least {min_qubits} qubits (backend_requirements."
                f"min_num_qubits) but backend {backend.name!r} has {backend.num_qubits}",
            )
        )


def _min_num_qubits(requirements: object) -> int | None:
    spec = getattr(requirements, "spec", None)
    if spec is not None:
        requirements = getattr(spec, "backend_requirements", None)
    if requirements is None:
        return None
    if isinstance(requirements, dict):
        return requirements.get("min_num_qubits")
    return getattr(requirements, "min_num_qubits", None)
