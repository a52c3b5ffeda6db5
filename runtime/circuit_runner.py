"""circuit-runner: transpile and run circuits, with optional readout-error mitigation.

The program takes one or more circuits (QuantumCircuit objects or OpenQASM 2/3 text), transpiles
them for the backend with the caller's transpiler options, runs them and returns one counts
histogram per circuit. With ``measurement_error_mitigation`` it also calibrates the readout of
the physical qubits that the circuits measure and corrects the counts with M3 (the ``mthree``
package), returning one quasi-probability distribution per circuit.

Interim results: ``{"stage": "transpiled", ...}`` once the circuits are transpiled, and
``{"stage": "calibrated", ...}`` once the readout calibration is done (only when mitigating).
"""

from __future__ import annotations

import re
import warnings
from numbers import Integral
from typing import Any

import mthree
import numpy as np
from qiskit import QuantumCircuit, qasm2, qasm3, transpile

LAYOUT_METHODS = ("default", "trivial", "dense", "sabre")
ROUTING_METHODS = ("default", "basic", "lookahead", "sabre", "none")
MAX_SHOTS = 1_000_000
DEFAULT_CALIBRATION_SHOTS = 10_000
_QASM2_HEADER = re.compile(r"\s*(//[^\n]*\n\s*)*OPENQASM\s+2(\.\d+)?\s*;")


def main(
    backend,
    user_messenger,
    *,
    circuits,
    shots=4000,
    optimization_level=1,
    initial_layout=None,
    layout_method=None,
    routing_method=None,
    seed_transpiler=None,
    seed_simulator=None,
    measurement_error_mitigation=False,
    calibration_shots=None,
):
    """Transpile and run ``circuits`` on ``backend``; optionally mitigate readout errors."""
    circuits = _load_circuits(circuits, backend.num_qubits)
    transpile_options = {
        "optimization_level": _check_int("optimization_level", optimization_level, 0, 3),
        "initial_layout": _check_layout(initial_layout, circuits, backend.num_qubits),
        "layout_method": _check_choice("layout_method", layout_method, LAYOUT_METHODS),
        "routing_method": _check_choice("routing_method", routing_method, ROUTING_METHODS),
        "seed_transpiler": _check_optional_seed("seed_transpiler", seed_transpiler),
    }
    shots = _check_int("shots", shots, 1, MAX_SHOTS)
    seed_simulator = _check_optional_seed("seed_simulator", seed_simulator)
    mitigate = _check_bool("measurement_error_mitigation", measurement_error_mitigation)
    if calibration_shots is None:
        calibration_shots = DEFAULT_CALIBRATION_SHOTS
    calibration_shots = _check_int("calibration_shots", calibration_shots, 1, MAX_SHOTS)

    transpiled = transpile(circuits, backend, **transpile_options)
    mappings = [_measurement_mapping(circuit) for circuit in transpiled]
    if mitigate:
        _check_mitigable(mappings, circuits)
    result = _layout_report(backend, shots, circuits, transpiled, mappings)
    user_messenger.publish(
        {
            "stage": "transpiled",
            "depths": result["transpiled_depths"],
            "physical_qubits": result["physical_qubits"],
        }
    )
    result["counts"] = _run(backend, transpiled, shots, seed_simulator)
    if mitigate:
        qubits = sorted({qubit for mapping in mappings for qubit in mapping.values()})
        mitigator = _calibrate(backend, qubits, calibration_shots, seed_simulator)
        user_messenger.publish(_calibration_report(mitigator, qubits))
        quasi_dists, overheads = _mitigate(mitigator, result["counts"], mappings)
        result["quasi_dists"] = quasi_dists
        result["mitigation_overheads"] = overheads
    return result


def _load_circuits(circuits: Any, num_qubits: int) -> list[QuantumCircuit]:
    """The input as a non-empty list of runnable circuits, OpenQASM text parsed."""
    if isinstance(circuits, QuantumCircuit | str):
        circuits = [circuits]
    if not isinstance(circuits, list | tuple | np.ndarray) or len(circuits) == 0:
        raise ValueError(
            "circuits must be a QuantumCircuit, an OpenQASM string or a non-empty list of them, "
            f"got {_describe(circuits)}"
        )
    loaded = [_load_circuit(i, circuit) for i, circuit in enumerate(circuits)]
    for i, circuit in enumerate(loaded):
        _check_circuit(i, circuit, num_qubits)
    return loaded


def _load_circuit(index: int, circuit: Any) -> QuantumCircuit:
    """One circuit: a QuantumCircuit as it is, a string parsed as OpenQASM 2 or 3."""
    if isinstance(circuit, QuantumCircuit):
        return circuit
    if not isinstance(circuit, str):
        raise ValueError(
            f"circuits[{index}] must be a QuantumCircuit or an OpenQASM string, "
            f"got {_describe(circuit)}"
        )
    try:
        if _QASM2_HEADER.match(circuit):
            return qasm2.loads(circuit, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        return qasm3.loads(circuit)
    except Exception as exc:  # the parsers raise several unrelated error types
        raise ValueError(f"circuits[{index}] is not valid OpenQASM: {exc}") from None


def _check_circuit(index: int, circuit: QuantumCircuit, num_qubits: int) -> None:
    """Refuse circuits the backend cannot run or that would give no counts."""
    if circuit.num_qubits > num_qubits:
        raise ValueError(
            f"circuits[{index}] has {circuit.num_qubits} qubits but the backend has only "
            f"{num_qubits}"
        )
    if circuit.parameters:
        names = ", ".join(sorted(p.name for p in circuit.parameters))
        raise ValueError(f"circuits[{index}] has unbound parameters: {names}")
    if not any(inst.operation.name == "measure" for inst in circuit.data):
        raise ValueError(f"circuits[{index}] has no measurements, so it would give no counts")


def _check_layout(layout: Any, circuits: list[QuantumCircuit], num_qubits: int) -> list | None:
    """``initial_layout`` as a list of distinct physical qubits that fits every circuit."""
    if layout is None:
        return None
    if not isinstance(layout, list | tuple | np.ndarray):
        raise ValueError(f"initial_layout must be a list of physical qubits, got {layout!r}")
    layout = [_check_int(f"initial_layout[{i}]", q, 0) for i, q in enumerate(layout)]
    if len(layout) > num_qubits:
        raise ValueError(
            f"initial_layout names {len(layout)} qubits but the backend has only {num_qubits}"
        )
    if len(set(layout)) != len(layout):
        raise ValueError(f"initial_layout must not repeat a physical qubit: {layout}")
    out_of_range = [q for q in layout if q >= num_qubits]
    if out_of_range:
        raise ValueError(
            f"initial_layout qubits {out_of_range} do not exist: the backend has qubits "
            f"0..{num_qubits - 1}"
        )
    for i, circuit in enumerate(circuits):
        if circuit.num_qubits != len(layout):
            raise ValueError(
                f"initial_layout has {len(layout)} qubits but circuits[{i}] has "
                f"{circuit.num_qubits}; give one physical qubit per circuit qubit"
            )
    return layout


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int within bounds, or a ValueError naming the parameter."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {_describe(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def _check_optional_seed(name: str, value: Any) -> int | None:
    """A non-negative integer seed, or None."""
    return None if value is None else _check_int(name, value, 0)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str | None:
    """One of ``choices``, or None for the transpiler's default."""
    if value is not None and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool, refusing anything that is not one."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be true or false, got {_describe(value)}")
    return bool(value)


def _describe(value: Any) -> str:
    """A short description of a wrong input for error messages."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _measurement_mapping(circuit: QuantumCircuit) -> dict[int, int]:
    """Classical bit -> physical qubit of each final measurement (mthree's mapping)."""
    with warnings.catch_warnings():
        # mthree 3.0 indexes CircuitInstruction like a tuple, deprecated since Qiskit 1.2.
        warnings.filterwarnings(
            "ignore",
            message="Treating CircuitInstruction as an iterable",
            category=DeprecationWarning,
        )
        return mthree.utils.final_measurement_mapping(circuit)


def _layout_report(backend, shots, circuits, transpiled, mappings) -> dict[str, Any]:
    """The start of the result: backend, shots, depths and where each circuit landed."""
    pairs = list(zip(circuits, transpiled, mappings, strict=True))
    return {
        "backend": backend.name,
        "shots": shots,
        "transpiled_depths": [circuit.depth() for circuit in transpiled],
        "physical_qubits": [_initial_physical_qubits(t, c) for c, t, _ in pairs],
        "measured_qubits": [_measured_qubits(m, c.num_clbits) for c, _, m in pairs],
    }


def _initial_physical_qubits(transpiled: QuantumCircuit, original: QuantumCircuit) -> list[int]:
    """The physical qubit each qubit of the original circuit was placed on."""
    if transpiled.layout is None:
        return list(range(original.num_qubits))
    return [int(q) for q in transpiled.layout.initial_index_layout(filter_ancillas=True)]


def _measured_qubits(mapping: dict[int, int], num_clbits: int) -> list[int | None]:
    """Per classical bit, the physical qubit finally measured into it (None if none is)."""
    return [mapping.get(clbit) for clbit in range(num_clbits)]


def _run(backend, circuits, shots: int, seed_simulator: int | None) -> list[dict[str, int]]:
    """One plain counts dict per circuit; the seed only goes to simulators that take one."""
    options: dict[str, Any] = {"shots": shots}
    if seed_simulator is not None and hasattr(backend.options, "seed_simulator"):
        options["seed_simulator"] = seed_simulator
    counts = backend.run(circuits, **options).result().get_counts()
    return [_plain_counts(c) for c in (counts if isinstance(counts, list) else [counts])]


def _plain_counts(counts: dict[str, int]) -> dict[str, int]:
    """Counts as a plain dict of plain ints."""
    return {str(key): int(value) for key, value in counts.items()}


def _check_mitigable(mappings: list[dict[int, int]], circuits: list[QuantumCircuit]) -> None:
    """M3 corrects whole bitstrings: every classical bit must hold a final measurement."""
    for i, (mapping, circuit) in enumerate(zip(mappings, circuits, strict=True)):
        if len(mapping) != circuit.num_clbits:
            raise ValueError(
                f"measurement_error_mitigation needs every classical bit to hold a final "
                f"measurement, but circuits[{i}] finally measures {len(mapping)} of its "
                f"{circuit.num_clbits} classical bits"
            )


class _SeededBackend:
    """The backend with ``seed_simulator`` added to every run, so calibrations repeat."""

    def __init__(self, backend, seed: int):
        self._backend = backend
        self._seed = seed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def run(self, circuits, **options):
        """Run with the fixed seed."""
        return self._backend.run(circuits, seed_simulator=self._seed, **options)


def _calibrate(backend, qubits: list[int], shots: int, seed: int | None) -> mthree.M3Mitigation:
    """An M3 mitigator with the readout of ``qubits`` (physical) calibrated."""
    system = backend
    if seed is not None and hasattr(backend.options, "seed_simulator"):
        system = _SeededBackend(backend, seed)
    mitigator = mthree.M3Mitigation(system)
    mitigator.cals_from_system(qubits, shots=shots, async_cal=False)
    return mitigator


def _calibration_report(mitigator: mthree.M3Mitigation, qubits: list[int]) -> dict[str, Any]:
    """The 'calibrated' interim result: which qubits, and how well each reads out."""
    fidelities = [float(f) for f in mitigator.readout_fidelity(qubits)]
    return {"stage": "calibrated", "qubits": qubits, "readout_fidelities": fidelities}


def _mitigate(mitigator, counts, mappings) -> tuple[list[dict[str, float]], list[float]]:
    """Quasi-distributions (bitstring -> float) and their mitigation overheads."""
    quasi_dists, overheads = [], []
    for histogram, mapping in zip(counts, mappings, strict=True):
        # Several classical registers give keys like "01 1"; M3 wants one bitstring.
        joined = {key.replace(" ", ""): value for key, value in histogram.items()}
        quasi = mitigator.apply_correction(joined, mapping, return_mitigation_overhead=True)
        quasi_dists.append({key: float(value) for key, value in quasi.items()})
        overheads.append(float(quasi.mitigation_overhead))
    return quasi_dists, overheads
