"""circuit-runner: transpile and run circuits, with M3 readout-error mitigation on request.

Tests taking ``run`` run twice: in-process and as a job on the catalogue server, so the server
also shows that it accepts QuantumCircuit objects (and OpenQASM text) for ``circuits``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from qiskit import QuantumCircuit

from qruntime.client import RuntimeInvalidInputsError, RuntimeJobFailureError
from qruntime.testing import run_program

PROGRAM = Path(__file__).resolve().parents[2] / "runtime" / "circuit_runner.py"
SEEDS = {"seed_transpiler": 11, "seed_simulator": 17}


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def basis_state(bits: str) -> QuantumCircuit:
    """Prepares and measures |bits> (qubit 0 is the rightmost bit, as in counts)."""
    circuit = QuantumCircuit(len(bits))
    for qubit, bit in enumerate(reversed(bits)):
        if bit == "1":
            circuit.x(qubit)
    circuit.measure_all()
    return circuit


def ghz(num_qubits: int) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    for qubit in range(num_qubits - 1):
        circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    return circuit


def probabilities(counts: dict[str, int]) -> dict[str, float]:
    shots = sum(counts.values())
    return {key: value / shots for key, value in counts.items()}


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    return 0.5 * sum(abs(p.get(key, 0.0) - q.get(key, 0.0)) for key in p.keys() | q.keys())


def hellinger(p: dict[str, float], q: dict[str, float]) -> float:
    """Hellinger distance; negative quasi-probabilities count as zero."""
    overlap = sum(
        math.sqrt(max(p.get(key, 0.0), 0.0) * max(q.get(key, 0.0), 0.0))
        for key in p.keys() | q.keys()
    )
    return math.sqrt(max(1.0 - overlap, 0.0))


def test_a_bell_circuit_gives_00_and_11_about_half_each(run):
    outcome = run("circuit-runner", {"circuits": bell(), **SEEDS})

    result = outcome.result
    (counts,) = result["counts"]
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == result["shots"] == 4000
    assert all(0.45 < value / 4000 < 0.55 for value in counts.values())
    assert result["backend"] == "aer_simulator"
    assert "quasi_dists" not in result and "mitigation_overheads" not in result
    assert outcome.messages == [
        {
            "stage": "transpiled",
            "depths": result["transpiled_depths"],
            "physical_qubits": result["physical_qubits"],
        }
    ]


def test_several_circuits_give_one_histogram_each_in_order(run):
    states = ["01", "10", "110", "0", "11"]
    outcome = run(
        "circuit-runner",
        {"circuits": [basis_state(bits) for bits in states], "shots": 64, **SEEDS},
    )

    assert outcome.result["counts"] == [{bits: 64} for bits in states]
    assert len(outcome.result["transpiled_depths"]) == len(states)
    assert [len(q) for q in outcome.result["physical_qubits"]] == [len(b) for b in states]


def test_openqasm_2_and_3_text_is_accepted(run):
    qasm2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2]; creg c[2];
x q[0];
measure q -> c;
"""
    qasm3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q; bit[3] c;
x q[2];
c = measure q;
"""
    outcome = run("circuit-runner", {"circuits": [qasm2, qasm3], "shots": 32, **SEEDS})

    assert outcome.result["counts"] == [{"01": 32}, {"100": 32}]


def test_the_initial_layout_is_honoured_and_reported(run):
    inputs = {"circuits": [bell(), bell()], "initial_layout": [4, 3], "shots": 500, **SEEDS}
    outcome = run("circuit-runner", inputs, backend="fake_manila")

    result = outcome.result
    assert result["backend"] == "fake_manila"
    assert result["physical_qubits"] == [[4, 3], [4, 3]]
    assert result["measured_qubits"] == [[4, 3], [4, 3]]
    assert outcome.messages[0]["physical_qubits"] == [[4, 3], [4, 3]]
    for counts in result["counts"]:
        assert sum(counts.values()) == 500
        assert counts.get("00", 0) + counts.get("11", 0) > 400  # noisy, but mostly Bell


def test_mitigation_on_fake_manila_brings_the_distributions_closer_to_ideal(run):
    # Readout error dominates for basis states and a shallow GHZ state on a noisy device.
    circuits = [basis_state("11111"), ghz(3)]
    ideal = [{"11111": 1.0}, {"000": 0.5, "111": 0.5}]
    inputs = {"circuits": circuits, "measurement_error_mitigation": True, **SEEDS}
    outcome = run("circuit-runner", inputs, backend="fake_manila")

    result = outcome.result
    for counts, quasi, target in zip(result["counts"], result["quasi_dists"], ideal, strict=True):
        raw = probabilities(counts)
        assert total_variation(raw, target) > 0.1  # the noise is really there
        assert total_variation(quasi, target) < total_variation(raw, target) / 3
        assert hellinger(quasi, target) < hellinger(raw, target) / 2
        assert sum(quasi.values()) == pytest.approx(1.0, abs=1e-4)
        assert set(quasi) <= set(counts)
    assert all(overhead >= 1.0 for overhead in result["mitigation_overheads"])

    transpiled, calibrated = outcome.messages
    assert transpiled["stage"] == "transpiled"
    measured = {q for qubits in result["measured_qubits"] for q in qubits}
    assert calibrated["stage"] == "calibrated"
    assert calibrated["qubits"] == sorted(measured)
    assert all(0.5 < f <= 1.0 for f in calibrated["readout_fidelities"])
    assert min(calibrated["readout_fidelities"]) < 0.99  # fake_manila reads out imperfectly


def _measures_one_of_two_bits() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    return circuit


def _unbound() -> QuantumCircuit:
    from qiskit.circuit import Parameter

    circuit = QuantumCircuit(1)
    circuit.rx(Parameter("theta"), 0)
    circuit.measure_all()
    return circuit


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"circuits": []}, r"circuits must be .* non-empty list"),
        ({"circuits": [bell(), 42]}, r"circuits\[1\] must be a QuantumCircuit or an OpenQASM"),
        ({"circuits": ["not a program"]}, r"circuits\[0\] is not valid OpenQASM"),
        ({"circuits": QuantumCircuit(2)}, r"circuits\[0\] has no measurements"),
        ({"circuits": _unbound()}, r"circuits\[0\] has unbound parameters: theta"),
        ({"circuits": ghz(6)}, r"circuits\[0\] has 6 qubits but the backend has only 5"),
        (
            {"circuits": ghz(2), "initial_layout": [0, 1, 2, 3, 4, 5]},
            r"initial_layout names 6 qubits but the backend has only 5",
        ),
        ({"circuits": bell(), "initial_layout": [0, 9]}, r"initial_layout qubits \[9\] do not"),
        ({"circuits": bell(), "initial_layout": [2, 2]}, r"must not repeat a physical qubit"),
        ({"circuits": ghz(3), "initial_layout": [0, 1]}, r"circuits\[0\] has 3"),
        ({"circuits": bell(), "optimization_level": 4}, r"optimization_level must be from 0 to 3"),
        ({"circuits": bell(), "shots": 0}, r"shots must be from 1"),
        ({"circuits": bell(), "routing_method": "magic"}, r"routing_method must be one of"),
        (
            {"circuits": _measures_one_of_two_bits(), "measurement_error_mitigation": True},
            r"every classical bit to hold a final measurement",
        ),
    ],
)
def test_invalid_inputs_raise_a_clear_value_error(inputs, message):
    with pytest.raises(ValueError, match=message):
        run_program(PROGRAM, inputs, backend="fake_manila")


def test_a_job_with_inputs_the_program_refuses_fails_with_the_reason(researcher):
    job = researcher.run(
        program_id="circuit-runner",
        options={"backend_name": "fake_manila"},
        inputs={"circuits": bell(), "initial_layout": [0, 9]},
    )
    with pytest.raises(RuntimeJobFailureError) as failure:
        job.result(timeout=120)
    assert "ValueError" in str(failure.value)
    assert "initial_layout qubits [9] do not exist" in str(failure.value)


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"circuits": bell(), "shot": 100}, "shot"),
        ({"circuits": bell(), "optimization_level": 4}, "optimization_level"),
        ({"circuits": bell(), "initial_layout": [1, 1]}, "initial_layout"),
        ({"circuits": bell(), "layout_method": "magic"}, "layout_method"),
        ({"circuits": 42}, "circuits"),
        ({"circuits": []}, "circuits"),
        ({"shots": 10}, "circuits"),
    ],
)
def test_the_server_refuses_inputs_the_schema_forbids(researcher, inputs, field):
    with pytest.raises(RuntimeInvalidInputsError, match=field):
        researcher.run(
            program_id="circuit-runner",
            options={"backend_name": "aer_simulator"},
            inputs=inputs,
        )
