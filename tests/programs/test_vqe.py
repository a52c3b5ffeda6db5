"""vqe: the ground-state energy of H2 with the variational quantum eigensolver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from qruntime.client import RuntimeInvalidInputsError, RuntimeJobFailureError
from qruntime.testing import load_program_file, run_program

PROGRAM = Path(__file__).resolve().parents[2] / "runtime" / "vqe.py"
#: H2 in STO-3G at 0.735 angstrom, reduced to two qubits (parity mapping, two-qubit reduction).
H2_TERMS = [
    (-1.052373245772859, "II"),
    (0.39793742484318045, "IZ"),
    (-0.39793742484318045, "ZI"),
    (-0.01128010425623538, "ZZ"),
    (0.18093119978423156, "XX"),
]
H2 = SparsePauliOp.from_list([(label, coefficient) for coefficient, label in H2_TERMS])
#: Chemical accuracy is 0.0016 Ha; the shot-noise floor at 4096 shots is a few mHa.
TOLERANCE = 0.02
RESULT_KEYS = {
    "optimal_energy",
    "optimal_energy_std",
    "optimizer_energy",
    "optimal_parameters",
    "num_parameters",
    "num_qubits",
    "num_evaluations",
    "num_iterations",
    "optimizer",
    "success",
    "message",
    "history",
}


def exact_ground_energy(operator: SparsePauliOp) -> float:
    return float(np.linalg.eigvalsh(operator.to_matrix())[0])


def h2_ansatz() -> QuantumCircuit:
    """One parameter spanning cos|10> + sin|01>: H2's ground state lies in that plane."""
    circuit = QuantumCircuit(2)
    circuit.ry(Parameter("t"), 0)
    circuit.x(1)
    circuit.cx(0, 1)
    return circuit


def controlled_rotation() -> QuantumCircuit:
    """A controlled rotation has no two-term parameter-shift rule."""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.crx(Parameter("a"), 0, 1)
    return circuit


def assert_interim_results_follow_the_iterations(outcome) -> None:
    messages, result = outcome.messages, outcome.result
    assert messages, "no interim results"
    assert [m["iteration"] for m in messages] == list(range(1, len(messages) + 1))
    for message in messages:
        assert set(message) == {"iteration", "energy", "parameters", "num_evaluations"}
        assert isinstance(message["energy"], float)
        assert len(message["parameters"]) == result["num_parameters"]
    assert [m["energy"] for m in messages] == result["history"]
    assert messages[-1]["energy"] <= messages[0]["energy"]
    assert messages[-1]["num_evaluations"] <= result["num_evaluations"]


def test_h2_as_a_sparse_pauli_op_reaches_the_exact_ground_energy(run):
    exact = exact_ground_energy(H2)
    outcome = run("vqe", {"hamiltonian": H2, "ansatz": "real_amplitudes", "reps": 2, "seed": 11})

    result = outcome.result
    assert set(result) == RESULT_KEYS
    assert abs(result["optimal_energy"] - exact) < TOLERANCE
    assert result["optimal_energy_std"] < 0.01
    assert result["optimizer"] == "COBYLA"
    assert result["num_qubits"] == 2
    assert len(result["optimal_parameters"]) == result["num_parameters"] == 6
    assert 0 < result["num_evaluations"] <= 100
    assert_interim_results_follow_the_iterations(outcome)


def test_h2_as_coefficient_pauli_pairs_reaches_the_exact_ground_energy(run):
    exact = exact_ground_energy(H2)
    outcome = run(
        "vqe",
        {
            "hamiltonian": [[coefficient, label] for coefficient, label in H2_TERMS],
            "ansatz": "efficient_su2",
            "reps": 1,
            "shots": 8192,
            "seed": 5,
        },
    )

    result = outcome.result
    assert abs(result["optimal_energy"] - exact) < TOLERANCE
    assert len(result["optimal_parameters"]) == 8
    assert_interim_results_follow_the_iterations(outcome)


def test_a_circuit_ansatz_with_a_gradient_optimizer_converges_in_few_iterations(run):
    exact = exact_ground_energy(H2)
    outcome = run(
        "vqe",
        {
            "hamiltonian": H2,
            "ansatz": h2_ansatz(),
            "optimizer": "SLSQP",
            "initial_point": [0.5],
            "maxiter": 20,
            "seed": 2,
        },
    )

    result = outcome.result
    assert abs(result["optimal_energy"] - exact) < TOLERANCE
    assert result["optimizer"] == "SLSQP"
    assert result["num_iterations"] == len(outcome.messages) <= 20
    assert_interim_results_follow_the_iterations(outcome)


def test_seeded_runs_are_reproducible():
    inputs = {"hamiltonian": H2, "ansatz": "real_amplitudes", "reps": 1, "maxiter": 15, "seed": 4}
    first = run_program(PROGRAM, inputs)
    second = run_program(PROGRAM, inputs)

    assert first.result == second.result
    assert first.messages == second.messages


@pytest.mark.parametrize("ansatz", ["efficient_su2", "fake_device"])
def test_parameter_shift_gradients_are_exact(ansatz):
    """The gradient of the split, transpiled circuit matches finite differences of the energy."""
    program = load_program_file(PROGRAM)
    circuit = efficient_su2(2, reps=1)
    # Transpiling to rz/sx/cx turns each rotation into rz(a * theta + b) around fixed gates.
    basis = ["rz", "sx", "x", "cx"] if ansatz == "fake_device" else None
    isa = generate_preset_pass_manager(
        optimization_level=1, basis_gates=basis, seed_transpiler=1
    ).run(circuit)
    angles = program.split_parameters(isa, list(circuit.parameters))
    exact = StatevectorEstimator()
    energy = program.EnergyFunction(exact, angles, H2, precision=0.0, with_gradient=True)
    x = np.random.default_rng(0).uniform(-np.pi, np.pi, circuit.num_parameters)

    value, gradient = energy(x)

    def plain(point):
        return float(exact.run([(circuit, H2, point)]).result()[0].data.evs)

    step = 1e-6
    numeric = [
        (plain(x + step * e) - plain(x - step * e)) / (2 * step)
        for e in np.eye(circuit.num_parameters)
    ]
    assert value == pytest.approx(plain(x), abs=1e-9)
    np.testing.assert_allclose(gradient, numeric, atol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"hamiltonian": H2, "optimizer": "SPSA"},
            r"unknown optimizer 'SPSA'; choose one of: COBYLA",
        ),
        ({"hamiltonian": [[0.5, "XX"], [0.2, "ZZZ"]]}, r"Pauli string 'ZZZ' has 3 letters"),
        ({"hamiltonian": [["XX", 0.5]]}, r"write it as \[coefficient, pauli_string\]"),
        ({"hamiltonian": [[0.5, "XA"]]}, r"letters I, X, Y, Z"),
        ({"hamiltonian": [[0.5j, "XY"]]}, r"must be Hermitian"),
        ({"hamiltonian": H2, "ansatz": "uccsd"}, r"unknown ansatz 'uccsd'"),
        ({"hamiltonian": H2, "ansatz": h2_ansatz(), "reps": 2}, r"reps applies to a named"),
        ({"hamiltonian": SparsePauliOp("XXX"), "ansatz": h2_ansatz()}, r"circuit has 2 qubits"),
        ({"hamiltonian": H2, "initial_point": [0.1, 0.2]}, r"initial_point must hold 12 finite"),
        ({"hamiltonian": H2, "shots": 100, "precision": 0.1}, r"shots or precision, not both"),
        ({"hamiltonian": H2, "maxiter": 0}, r"maxiter must be a positive integer"),
        ({"hamiltonian": H2, "maxiter": 5}, r"COBYLA needs maxiter >= .* = 14"),
        (
            {"hamiltonian": H2, "ansatz": controlled_rotation(), "optimizer": "SLSQP"},
            r"Pauli rotation .* found 'crx'",
        ),
    ],
)
def test_invalid_inputs_raise_a_clear_value_error(inputs, message):
    with pytest.raises(ValueError, match=message):
        run_program(PROGRAM, inputs)


def test_a_job_with_a_pauli_string_of_the_wrong_length_fails_with_the_reason(researcher):
    job = researcher.run(
        program_id="vqe",
        options={"backend_name": "aer_simulator"},
        inputs={"hamiltonian": [[1.0, "ZZ"], [0.5, "X"]]},
    )
    with pytest.raises(RuntimeJobFailureError) as failure:
        job.result(timeout=120)
    assert "ValueError" in str(failure.value)
    assert "Pauli string 'X' has 1 letters but hamiltonian[0][1] has 2" in str(failure.value)


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"hamiltonian": H2, "optimizer": "SPSA"}, "optimizer"),
        ({"hamiltonian": H2, "ansatz": "uccsd"}, "ansatz"),
        ({"hamiltonian": [["XX", 0.5]]}, "hamiltonian"),
        ({"hamiltonian": H2, "max_iter": 10}, "max_iter"),
        ({"ansatz": "real_amplitudes"}, "hamiltonian"),
    ],
)
def test_the_server_refuses_inputs_the_schema_forbids(researcher, inputs, field):
    with pytest.raises(RuntimeInvalidInputsError, match=field):
        researcher.run(program_id="vqe", options={"backend_name": "aer_simulator"}, inputs=inputs)
