"""A 2021 Qobj (the JSON ``backend.run`` and ``qiskit.execute`` upload) as today's circuits.

qiskit-terra 0.46 assembles circuits into a ``QasmQobj``; today's Qiskit has no Qobj. Each
experiment becomes a ``QuantumCircuit`` with the registers of its header; instructions map by
name onto today's standard gates, ``measure``, ``reset``, ``barrier``, ``delay`` and
``unitary``, and a ``bfunc`` condition over one whole classical register or one bit becomes an
``if_test``. Anything else is refused with an error naming the experiment and instruction:
nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Barrier, Clbit, Delay, Reset
from qiskit.circuit.library import UnitaryGate, get_standard_gate_name_mapping

from qruntime.domain.errors import Problem, ValidationFailed

#: Most experiments one Qobj may hold (IBM's simulator took 300 too).
MAX_EXPERIMENTS = 300
#: Most classical bits one experiment may declare (memory slots).
MAX_MEMORY_SLOTS = 4096

_GATES = get_standard_gate_name_mapping()
_PLAIN = frozenset({"measure", "reset", "barrier", "delay", "unitary", "bfunc"})


class InvalidQobjError(ValidationFailed):
    what = "Qobj"


@dataclass(frozen=True)
class QobjRun:
    """What a Qobj asks for: the circuits and the run options the circuit runner takes."""

    circuits: list[QuantumCircuit]
    shots: int | None
    seed_simulator: int | None


def circuits_of(qobj: Any, *, max_qubits: int) -> QobjRun:
    if not isinstance(qobj, dict):
        raise InvalidQobjError(Problem("qobj", "must be a JSON object"))
    if qobj.get("type", "QASM") != "QASM":
        raise InvalidQobjError(
            Problem("qobj.type", f"{qobj.get('type')!r}: only QASM Qobjs (circuits) can run")
        )
    config = _dict(qobj.get("config", {}), "qobj.config")
    _check_config(config)
    experiments = qobj.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise InvalidQobjError(Problem("qobj.experiments", "must be a non-empty list"))
    if len(experiments) > MAX_EXPERIMENTS:
        raise InvalidQobjError(
            Problem("qobj.experiments", f"{len(experiments)} is more than {MAX_EXPERIMENTS}")
        )
    circuits = [
        _circuit(_dict(experiment, f"experiments[{i}]"), i, max_qubits)
        for i, experiment in enumerate(experiments)
    ]
    return QobjRun(circuits, _int_or_none(config, "shots"), _int_or_none(config, "seed_simulator"))


def _check_config(config: dict) -> None:
    problems = []
    if config.get("memory"):
        problems.append(Problem("qobj.config.memory", "per-shot memory is not returned"))
    if config.get("meas_level", 2) != 2:
        problems.append(Problem("qobj.config.meas_level", "only level 2 (counts) is supported"))
    if config.get("init_qubits", True) is not True:
        problems.append(Problem("qobj.config.init_qubits", "Aer starts every shot from |0>"))
    if config.get("parameter_binds"):
        problems.append(Problem("qobj.config.parameter_binds", "bind parameters before running"))
    if problems:
        raise InvalidQobjError(problems)


def _int_or_none(config: dict, key: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidQobjError(Problem(f"qobj.config.{key}", f"must be an integer, got {value!r}"))
    return value


def _dict(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidQobjError(Problem(where, "must be a JSON object"))
    return value


def _sizes(header: dict, key: str, where: str) -> list[tuple[str, int]]:
    sizes = header.get(key) or []
    if not isinstance(sizes, list):
        raise InvalidQobjError(Problem(f"{where}.header.{key}", "must be a list"))
    found = []
    for entry in sizes:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or isinstance(entry[1], bool)
            or not isinstance(entry[1], int)
            or entry[1] < 0
        ):
            raise InvalidQobjError(Problem(f"{where}.header.{key}", f"bad entry {entry!r}"))
        found.append((entry[0], entry[1]))
    return found


def _circuit(experiment: dict, index: int, max_qubits: int) -> QuantumCircuit:
    where = f"experiments[{index}]"
    header = _dict(experiment.get("header", {}), f"{where}.header")
    qregs = _sizes(header, "qreg_sizes", where)
    cregs = _sizes(header, "creg_sizes", where)
    num_qubits = sum(size for _, size in qregs)
    num_clbits = sum(size for _, size in cregs)
    if num_qubits > max_qubits:
        raise InvalidQobjError(
            Problem(f"{where}.header", f"{num_qubits} qubits; the backend has {max_qubits}")
        )
    if num_clbits > MAX_MEMORY_SLOTS:
        raise InvalidQobjError(
            Problem(f"{where}.header", f"{num_clbits} memory slots; at most {MAX_MEMORY_SLOTS}")
        )
    try:
        registers = [QuantumRegister(size, name) for name, size in qregs]
        registers += [ClassicalRegister(size, name) for name, size in cregs]
        circuit = QuantumCircuit(*registers, name=str(header.get("name", f"circuit-{index}")))
    except Exception as exc:  # bad register names
        raise InvalidQobjError(Problem(f"{where}.header", str(exc))) from None
    metadata = header.get("metadata")
    circuit.metadata = metadata if isinstance(metadata, dict) else {}
    phase = header.get("global_phase", 0.0)
    if isinstance(phase, int | float) and not isinstance(phase, bool):
        circuit.global_phase = phase
    instructions = experiment.get("instructions")
    if not isinstance(instructions, list):
        raise InvalidQobjError(Problem(f"{where}.instructions", "must be a list"))
    conditions: dict[int, tuple[Any, int]] = {}
    for i, instruction in enumerate(instructions):
        _append(
            circuit,
            _dict(instruction, f"{where}.instructions[{i}]"),
            f"{where}.instructions[{i}]",
            conditions,
        )
    return circuit


def _append(
    circuit: QuantumCircuit, instruction: dict, where: str, conditions: dict[int, tuple[Any, int]]
) -> None:
    name = instruction.get("name")
    if not isinstance(name, str) or (name not in _GATES and name not in _PLAIN):
        raise InvalidQobjError(
            Problem(
                where,
                f"instruction {name!r} cannot be translated: today's Qiskit has no standard "
                "gate or instruction of that name",
            )
        )
    if name == "bfunc":
        conditions[_index(instruction.get("register"), 1 << 30, f"{where}.register")] = _condition(
            circuit, instruction, where
        )
        return
    qubits = [
        _index(q, circuit.num_qubits, f"{where}.qubits") for q in instruction.get("qubits", [])
    ]
    operation = _operation(name, instruction, len(qubits), where)
    if name == "measure":
        memory = instruction.get("memory") or []
        clbits = [_index(c, circuit.num_clbits, f"{where}.memory") for c in memory]
        if len(clbits) != len(qubits):
            raise InvalidQobjError(Problem(where, "measure needs one memory slot per qubit"))
        for qubit, clbit in zip(qubits, clbits, strict=True):
            _guarded(circuit, instruction, where, conditions, "measure", [qubit], [clbit])
        return
    _guarded(circuit, instruction, where, conditions, operation, qubits, [])


def _guarded(
    circuit: QuantumCircuit,
    instruction: dict,
    where: str,
    conditions: dict[int, tuple[Any, int]],
    operation: Any,
    qubits: list[int],
    clbits: list[int],
) -> None:
    """Append, under the ``bfunc`` condition the instruction names (if any)."""
    slot = instruction.get("conditional")
    if slot is None:
        _add(circuit, operation, qubits, clbits, where)
        return
    if slot not in conditions:
        raise InvalidQobjError(Problem(f"{where}.conditional", f"no bfunc set register {slot!r}"))
    with circuit.if_test(conditions[slot]):
        _add(circuit, operation, qubits, clbits, where)


def _add(
    circuit: QuantumCircuit, operation: Any, qubits: list[int], clbits: list[int], where: str
) -> None:
    try:
        if operation == "measure":
            circuit.measure(qubits[0], clbits[0])
        else:
            circuit.append(operation, qubits, clbits)
    except Exception as exc:  # wrong number of qubits for the gate, repeated qubits, ...
        raise InvalidQobjError(Problem(where, str(exc))) from None


def _operation(name: str, instruction: dict, num_qubits: int, where: str) -> Any:
    params = instruction.get("params") or []
    if not isinstance(params, list):
        raise InvalidQobjError(Problem(f"{where}.params", "must be a list"))
    try:
        if name == "measure":
            return "measure"
        if name == "reset":
            return Reset()
        if name == "barrier":
            return Barrier(num_qubits)
        if name == "delay":
            return Delay(_number(params[0], where), unit="dt")
        if name == "unitary":
            return UnitaryGate(_complex_matrix(params[0]))
        gate = _GATES[name]
        values = [_number(p, where) for p in params]
        if len(values) != len(gate.params):
            raise ValueError(f"{name} takes {len(gate.params)} parameters, got {len(values)}")
        return type(gate)(*values) if values else type(gate)()
    except InvalidQobjError:
        raise
    except Exception as exc:
        raise InvalidQobjError(Problem(where, f"instruction {name!r}: {exc}")) from None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidQobjError(
            Problem(f"{where}.params", f"{value!r} is not a number (bind parameters first)")
        )
    return value


def _complex_matrix(value: Any) -> np.ndarray:
    """IQXJsonEncoder writes complex numbers as ``[real, imag]`` pairs."""
    array = np.array(value, dtype=float)
    if array.ndim == 3 and array.shape[-1] == 2:
        return array[..., 0] + 1j * array[..., 1]
    return array


def _index(value: Any, size: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise InvalidQobjError(Problem(where, f"{value!r} is not an index below {size}"))
    return value


def _condition(circuit: QuantumCircuit, bfunc: dict, where: str) -> tuple[Any, int]:
    """A ``bfunc`` over one whole classical register (or one bit) as an ``if_test`` condition."""
    if bfunc.get("relation", "==") != "==":
        raise InvalidQobjError(Problem(f"{where}.relation", "only '==' conditions are supported"))
    try:
        mask, value = int(str(bfunc["mask"]), 16), int(str(bfunc["val"]), 16)
    except (KeyError, ValueError):
        raise InvalidQobjError(Problem(where, "bfunc needs hex 'mask' and 'val'")) from None
    offset = 0
    for register in circuit.cregs:
        bits = ((1 << register.size) - 1) << offset
        if mask == bits:
            return register, value >> offset
        offset += register.size
    if mask and mask & (mask - 1) == 0 and mask.bit_length() <= circuit.num_clbits:
        bit: Clbit = circuit.clbits[mask.bit_length() - 1]
        return bit, (value >> (mask.bit_length() - 1)) & 1
    raise InvalidQobjError(
        Problem(
            where, f"condition mask {bfunc['mask']} is neither one classical register nor one bit"
        )
    )
