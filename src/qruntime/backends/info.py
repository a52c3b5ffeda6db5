"""A backend's description, cheap to compute and safe to show to any user."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackendInfo:
    """What a user needs to pick a backend: size, gates, connectivity, noise."""

    name: str
    description: str
    num_qubits: int
    basis_gates: list[str] = field(default_factory=list)
    coupling_map_edges: int | None = None
    noisy: bool = False
    simulator: bool = True
    device: str = "CPU"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> BackendInfo:
        return cls(**payload)
