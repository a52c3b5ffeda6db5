"""The 2021 contract of ``circuit-runner`` over the catalogue's program of that name.

``provider.run_circuits`` (and ``backend.run``, which qruntime runs with the same program) sends
options today's runner does not take, and expects a ``qiskit.result.Result`` as a dict back
(``RunnerResult.from_dict``), counts keyed by hex and quasi-probabilities as
``data.quasiprobabilities`` with the measured qubits in ``header.final_measurement_mapping``.
Inputs are translated on the way in, the runner's result on the way out; nothing is emulated.
"""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit, qasm2, qasm3

from qruntime import __version__
from qruntime.api.schemas import iso
from qruntime.compat.ibmq2021.wire import NAMES
from qruntime.domain.errors import InvalidInputsError, Problem
from qruntime.storage import StoredJob

CIRCUIT_RUNNER = "circuit-runner"

#: Options the 2021 runner had and this one lacks: their value that changes nothing (dropped),
#: and why any other value is refused.
_OLD_OPTIONS: dict[str, tuple[Any, str]] = {
    "init_qubits": (True, "Aer starts every shot from |0>; init_qubits=False cannot be honoured"),
    "use_measure_esp": (False, "excited-state-promoted readout exists on IBM hardware only"),
    "translation_method": (None, "today's transpiler chooses its own translation stage"),
    "transpiler_options": (
        None,
        "the runner takes optimization_level, initial_layout, layout_method, routing_method "
        "and seed_transpiler",
    ),
    "memory": (False, "the runner returns counts, not per-shot memory"),
}


def native_inputs(params: dict[str, Any]) -> dict[str, Any]:
    """The 2021 runner's inputs (already in qruntime's envelopes) as today's runner takes them."""
    inputs = dict(params)
    inputs.pop("rep_delay", None)  # a device's timing knob; simulators never used it
    problems = []
    for name, (harmless, why) in _OLD_OPTIONS.items():
        if name in inputs and (value := inputs.pop(name)) not in (harmless, None, {}):
            problems.append(Problem(f"inputs.{name}", f"{value!r} is not supported: {why}"))
    if problems:
        raise InvalidInputsError(problems)
    return inputs


def result_document(job: StoredJob, result: dict[str, Any], inputs: dict[str, Any]) -> dict:
    """The runner's result as the 2021 ``Result`` dict; headers come from the input circuits."""
    counts = result.get("counts") or []
    circuits = _circuits(inputs.get("circuits"), len(counts))
    measured = result.get("measured_qubits") or [None] * len(counts)
    quasi_dists = result.get("quasi_dists")
    backend = NAMES.to_dialect(job.backend)
    experiments = []
    for i, histogram in enumerate(counts):
        header = _header(circuits[i], histogram)
        data: dict[str, Any] = {"counts": _hex_keys(histogram)}
        if quasi_dists is not None:
            data["quasiprobabilities"] = _hex_keys(quasi_dists[i])
            header["final_measurement_mapping"] = {
                str(clbit): qubit
                for clbit, qubit in enumerate(measured[i] or [])
                if qubit is not None
            }
        experiments.append(
            {
                "shots": result.get("shots"),
                "success": True,
                "status": "DONE",
                "meas_level": 2,
                "data": data,
                "header": header,
            }
        )
    return {
        "backend_name": backend,
        "backend_version": __version__,
        "qobj_id": job.id,
        "job_id": job.id,
        "success": True,
        "status": "COMPLETED",
        "date": iso(job.ended_at),
        "header": {"backend_name": backend, "backend_version": __version__},
        "results": experiments,
    }


def _hex_keys(histogram: dict[str, Any]) -> dict[str, Any]:
    """``"01 1"`` (registers split by spaces) -> ``"0x3"``, as Qobj results key their counts."""
    return {hex(int(key.replace(" ", "") or "0", 2)): value for key, value in histogram.items()}


def _circuits(circuits: Any, count: int) -> list[QuantumCircuit | None]:
    items = circuits if isinstance(circuits, list) else [circuits]
    loaded = [_load(item) for item in items]
    return (loaded + [None] * count)[:count]


def _load(circuit: Any) -> QuantumCircuit | None:
    if isinstance(circuit, QuantumCircuit):
        return circuit
    if isinstance(circuit, str):
        try:
            if circuit.lstrip().startswith("OPENQASM 2"):
                return qasm2.loads(circuit, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
            return qasm3.loads(circuit)
        except Exception:  # the runner parsed it; a header is all this is for
            return None
    return None


def _header(circuit: QuantumCircuit | None, histogram: dict[str, Any]) -> dict[str, Any]:
    """What ``qiskit.assemble`` put in an experiment header, so ``get_counts`` formats keys."""
    if circuit is None:
        widths = [len(part) for part in next(iter(histogram), "").split(" ")][::-1]
        cregs = [[f"c{i}", width] for i, width in enumerate(widths)]
        return {"creg_sizes": cregs, "memory_slots": sum(widths)}
    return {
        "name": circuit.name,
        "n_qubits": circuit.num_qubits,
        "qreg_sizes": [[reg.name, reg.size] for reg in circuit.qregs],
        "qubit_labels": [_label(circuit, bit, "q") for bit in circuit.qubits],
        "memory_slots": circuit.num_clbits,
        "creg_sizes": [[reg.name, reg.size] for reg in circuit.cregs],
        "clbit_labels": [_label(circuit, bit, "c") for bit in circuit.clbits],
        "global_phase": float(circuit.global_phase),
        "metadata": circuit.metadata or {},
    }


def _label(circuit: QuantumCircuit, bit: Any, fallback: str) -> list:
    location = circuit.find_bit(bit)
    if location.registers:
        register, index = location.registers[0]
        return [register.name, index]
    return [fallback, location.index]
