"""What the backend page shows beyond ``BackendInfo``: the coupling map and a noise summary.

Device snapshots are read directly (building their noisy Aer simulator takes seconds and is not
needed to describe them); the ideal simulators come from the registry.
"""

from __future__ import annotations

import importlib
import statistics
import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from qruntime.backends import BackendInfo, BackendRegistry

if TYPE_CHECKING:  # Qiskit loads only when a page shows a backend's detail
    from qiskit.providers import BackendV2

_FAKE_PROVIDER = "qiskit_ibm_runtime.fake_provider"
_ONE_QUBIT_GATES = ("sx", "x", "id")
_TWO_QUBIT_GATES = ("ecr", "cz", "cx")


@dataclass(frozen=True)
class NoiseFigure:
    """One line of the noise summary: the median and the range over qubits or couplings."""

    label: str
    unit: str
    median: float
    low: float
    high: float
    count: int


@dataclass(frozen=True)
class BackendDetail:
    info: BackendInfo
    #: Undirected couplings; None when every qubit pair may interact.
    edges: list[tuple[int, int]] | None
    figures: list[NoiseFigure]
    #: Per qubit: T1, T2 (µs), readout and one-qubit gate error; None entries are unknown.
    qubits: list[dict[str, float | None]]
    #: Per coupling "a-b": the two-qubit gate error (the worse direction).
    couplings: dict[str, float]

    def plot_data(self) -> dict[str, Any]:
        """What ``backend.js`` draws: qubit positions, couplings, and the numbers to hover."""
        from qruntime.web import coupling_layout  # numpy and rustworkx, only for this page

        edges = self.edges or []
        return {
            "positions": coupling_layout.layout(self.info.num_qubits, tuple(edges)),
            "edges": edges,
            "qubits": self.qubits,
            "couplings": self.couplings,
        }


class BackendDetails:
    """Builds each backend's detail once per server process; they depend only on packages."""

    def __init__(self, registry: BackendRegistry):
        self._registry = registry
        self._details: dict[str, BackendDetail] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> BackendDetail:
        info = self._registry.info(name)  # raises UnknownBackendError for a bad name
        with self._lock:
            if name not in self._details:
                backend = _snapshot(name) if info.noisy else None
                self._details[name] = describe(info, backend or self._registry.get(name))
            return self._details[name]


def describe(info: BackendInfo, backend: BackendV2) -> BackendDetail:
    target = backend.target
    coupling = backend.coupling_map
    edges = None
    if coupling is not None:
        edges = sorted({(min(a, b), max(a, b)) for a, b in coupling.get_edges()})
    qubits = [_qubit(target, q) for q in range(info.num_qubits)] if info.noisy else []
    couplings = _couplings(target) if info.noisy else {}
    figures = _figures(qubits, couplings)
    return BackendDetail(info, edges, figures, qubits, couplings)


def _qubit(target: Any, qubit: int) -> dict[str, float | None]:
    props = target.qubit_properties[qubit] if target.qubit_properties else None
    return {
        "t1": _micro(getattr(props, "t1", None)),
        "t2": _micro(getattr(props, "t2", None)),
        "readout": _error(target, "measure", (qubit,)),
        "gate": next(
            (e for g in _ONE_QUBIT_GATES if (e := _error(target, g, (qubit,))) is not None), None
        ),
    }


def _couplings(target: Any) -> dict[str, float]:
    errors: dict[str, float] = {}
    for gate in _TWO_QUBIT_GATES:
        if gate not in target:
            continue
        for qargs, props in target[gate].items():
            if qargs is None or props is None or props.error is None:
                continue
            key = "-".join(map(str, sorted(qargs)))
            errors[key] = max(errors.get(key, 0.0), props.error)
    return errors


def _figures(
    qubits: list[dict[str, float | None]], couplings: dict[str, float]
) -> list[NoiseFigure]:
    columns = (
        ("T1", "µs", "t1"),
        ("T2", "µs", "t2"),
        ("Readout error", "", "readout"),
        ("One-qubit gate error", "", "gate"),
    )
    series = [(label, unit, [q[key] for q in qubits]) for label, unit, key in columns]
    series.append(("Two-qubit gate error", "", list(couplings.values())))
    figures = []
    for label, unit, values in series:
        known = [v for v in values if v is not None]
        if known:
            median = statistics.median(known)
            figures.append(NoiseFigure(label, unit, median, min(known), max(known), len(known)))
    return figures


def _error(target: Any, gate: str, qargs: tuple[int, ...]) -> float | None:
    if gate not in target:
        return None
    props = target[gate].get(qargs)
    return None if props is None else props.error


def _micro(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6


def _snapshot(name: str) -> BackendV2 | None:
    cls = _snapshot_classes().get(name)
    return cls() if cls is not None else None


@cache
def _snapshot_classes() -> dict[str, type]:
    """Device snapshot classes by backend name, as the registry finds them."""
    provider = importlib.import_module(_FAKE_PROVIDER)
    snapshot_base = importlib.import_module(f"{_FAKE_PROVIDER}.fake_backend").FakeBackendV2
    found: dict[str, type] = {}
    for attr in dir(provider):
        cls = getattr(provider, attr)
        name = getattr(cls, "backend_name", None)
        if isinstance(cls, type) and issubclass(cls, snapshot_base) and isinstance(name, str):
            found.setdefault(name, cls)
    return found
