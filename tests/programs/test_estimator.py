"""estimator: BackendEstimatorV2 over the job's backend, with circuits and observables laid out."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import PrimitiveResult, PubResult
from qiskit.quantum_info import SparsePauliOp, Statevector

from qruntime.client import RuntimeInvalidInputsError
from qruntime.testing import run_program

SOURCE = Path(__file__).resolve().parents[2] / "runtime" / "estimator.py"
SIGMAS = 5


def as_operator(observable) -> SparsePauliOp:
    """The SparsePauliOp for any of the observable forms the tests send."""
    if isinstance(observable, dict):
        return SparsePauliOp.from_list(list(observable.items()))
    return SparsePauliOp(observable)


def exact(circuit: QuantumCircuit, observable, values=None) -> float:
    state = Statevector(circuit if values is None else circuit.assign_parameters(values))
    return float(state.expectation_value(as_operator(observable)).real)


def assert_estimates(pub_result: PubResult, expected: np.ndarray, norms: np.ndarray) -> None:
    """evs within SIGMAS worst-case shot-noise errors (sum |coeff| / sqrt(shots)) of exact."""
    shots = pub_result.metadata["shots"]
    bound = norms / math.sqrt(shots)
    evs, stds = pub_result.data.evs, pub_result.data.stds
    assert evs.shape == stds.shape == expected.shape
    assert np.all(stds <= bound + 1e-12), (stds, bound)
    assert np.all(np.abs(evs - expected) <= SIGMAS * bound), (evs, expected)


def entangler() -> QuantumCircuit:
    """ry(θ) on qubit 0, copied to qubit 1; rx(φ) on qubit 2."""
    theta, phi = Parameter("θ"), Parameter("φ")
    qc = QuantumCircuit(3)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.rx(phi, 2)
    return qc


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    return qc


def test_expectation_values_match_the_statevector(run):
    circuit = entangler()
    observables = [
        [SparsePauliOp(["IZZ", "IXI"], [1.0, 0.5])],
        ["IIZ"],
        [{"ZIX": 1.0, "YII": -0.5}],
    ]  # shape (3, 1) broadcast against 4 parameter sets: evs of shape (3, 4)
    values = np.array([[0.0, 0.0], [np.pi / 3, np.pi / 2], [2.0, -1.0], [np.pi, 3.0]])
    bell_observables = ["ZZ", "XX", "YY", "IZ"]
    pubs = [[circuit, observables, values], [bell(), bell_observables, None, 0.05]]

    outcome = run("estimator", {"pubs": pubs, "precision": 0.03, "seed_simulator": 7})

    result = outcome.result
    assert isinstance(result, PrimitiveResult) and len(result) == 2
    assert all(type(pub_result) is PubResult for pub_result in result)
    ops = [as_operator(row[0]) for row in observables]
    expected = np.array([[exact(circuit, op, v) for v in values] for op in ops])
    norms = np.array([[np.abs(op.coeffs).sum()] for op in ops])
    assert_estimates(result[0], expected, norms)
    assert result[0].metadata["target_precision"] == 0.03
    bell_expected = np.array([exact(bell(), op) for op in bell_observables])
    assert np.allclose(bell_expected, [1, 1, -1, 0])
    assert_estimates(result[1], bell_expected, np.ones(4))
    assert result[1].metadata["shots"] == math.ceil(1 / 0.05**2)
    (message,) = outcome.messages
    assert message["status"] == "transpiled" and message["num_pubs"] == 2
    assert message["precisions"] == [0.03, 0.05] and len(message["depths"]) == 2


def test_noisy_five_qubit_device_gives_plausible_values_on_the_right_qubits(run):
    circuit = QuantumCircuit(3)
    circuit.x(0)
    circuit.h(1)
    circuit.cx(1, 2)
    observables = ["IIZ", "ZZI", "XXI", "ZII"]  # ideal: -1, 1, 1, 0

    outcome = run(
        "estimator",
        {
            "pubs": [[circuit, observables]],
            "precision": 0.03,
            "optimization_level": 3,
            "seed_transpiler": 1,
            "seed_simulator": 2,
        },
        backend="fake_manila",
    )

    z0, zz, xx, z2 = outcome.result[0].data.evs
    assert -1 <= z0 < -0.8
    assert 0.7 < zz <= 1 and 0.7 < xx <= 1
    assert abs(z2) < 0.15


def test_the_server_refuses_missing_pubs_and_a_bare_circuit(researcher):
    options = {"backend_name": "aer_simulator"}
    with pytest.raises(RuntimeInvalidInputsError, match="pubs"):
        researcher.run(program_id="estimator", options=options, inputs={"precision": 0.1})
    with pytest.raises(RuntimeInvalidInputsError, match=r"pubs\[0\]"):
        researcher.run(program_id="estimator", options=options, inputs={"pubs": [bell()]})
    with pytest.raises(RuntimeInvalidInputsError, match="precision"):
        researcher.run(
            program_id="estimator",
            options=options,
            inputs={"pubs": [[bell(), "ZZ"]], "precision": 0},
        )


def test_an_observable_of_the_wrong_size_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"pubs\[1\] is not a valid estimator PUB"):
        run_program(SOURCE, {"pubs": [[bell(), "ZZ"], [bell(), "ZZZ"]]})
