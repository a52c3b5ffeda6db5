"""quantum-kernel: fidelity kernel matrices from ZZ-feature-map compute-uncompute circuits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qiskit.circuit.library import zz_feature_map
from qiskit.quantum_info import Statevector

from qruntime.client import RuntimeInvalidInputsError
from qruntime.testing import run_program

PROGRAM = Path(__file__).resolve().parents[2] / "runtime" / "quantum_kernel.py"
SHOTS = 2000
# 4 shot-noise standard deviations of a fidelity estimate in the worst case (k = 1/2).
TOLERANCE = 4 * 0.5 / np.sqrt(SHOTS)

X_TRAIN = np.array([[0.1, 0.7, 1.3], [2.0, 0.4, 0.9], [1.1, 1.5, 0.2], [0.6, 2.4, 1.8]])
X_TEST = np.array([[0.3, 0.8, 1.0], [1.9, 0.1, 2.2]])


def exact_kernel(rows: np.ndarray, cols: np.ndarray, reps: int = 2) -> np.ndarray:
    """|<phi(y)|phi(x)>|^2 from statevectors, with the program's default feature map."""
    feature_map = zz_feature_map(rows.shape[1], reps=reps, entanglement="linear")
    states = {}
    for point in [*rows, *cols]:
        states[tuple(point)] = Statevector(feature_map.assign_parameters(point))
    return np.array(
        [[abs(states[tuple(x)].inner(states[tuple(y)])) ** 2 for y in cols] for x in rows]
    )


def test_the_kernels_match_the_exact_fidelities_within_shot_noise(run):
    inputs = {
        "x_train": X_TRAIN,
        "x_test": X_TEST.tolist(),
        "shots": SHOTS,
        "seed_simulator": 5,
        "seed_transpiler": 3,
    }
    outcome = run("quantum-kernel", inputs)

    result = outcome.result
    train = np.array(result["kernel_train"])
    test = np.array(result["kernel_test"])
    assert train.shape == (4, 4) and test.shape == (2, 4)
    np.testing.assert_array_equal(train, train.T)
    np.testing.assert_allclose(np.diag(train), 1.0, atol=TOLERANCE)
    np.testing.assert_allclose(train, exact_kernel(X_TRAIN, X_TRAIN), atol=TOLERANCE)
    np.testing.assert_allclose(test, exact_kernel(X_TEST, X_TRAIN), atol=TOLERANCE)
    # The data were chosen so that the kernel is far from trivial.
    off_diagonal = train[~np.eye(4, dtype=bool)]
    assert off_diagonal.min() < 0.3 and off_diagonal.max() < 0.95
    assert result["num_qubits"] == 3 and result["shots"] == SHOTS
    assert result["backend"] == "aer_simulator"
    assert outcome.messages == [{"stage": "train", "kernel": result["kernel_train"]}]


def test_without_test_data_only_the_training_kernel_is_returned(run):
    outcome = run("quantum-kernel", {"x_train": [[0.5], [1.5]], "shots": 200, "reps": 1})

    assert "kernel_test" not in outcome.result
    kernel = np.array(outcome.result["kernel_train"])
    assert kernel.shape == (2, 2)
    assert kernel[0, 0] == kernel[1, 1] == 1.0  # ideal simulator: U U^dagger is the identity
    assert kernel[0, 1] == kernel[1, 0]


def test_on_a_noisy_device_the_diagonal_falls_below_one():
    run = run_program(
        PROGRAM,
        {"x_train": X_TRAIN[:2], "shots": SHOTS, "seed_simulator": 5, "seed_transpiler": 3},
        backend="fake_manila",
    )

    kernel = np.array(run.result["kernel_train"])
    assert np.all(np.diag(kernel) < 0.99)
    assert np.all(np.diag(kernel) > 0.5)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"x_train": []}, r"x_train must be a non-empty list of non-empty rows"),
        ({"x_train": [[1.0, 2.0], [3.0]]}, r"x_train must be a list of rows of numbers"),
        ({"x_train": [[1.0, float("nan")]]}, r"x_train must hold finite numbers"),
        ({"x_train": [[1.0, 2.0]], "x_test": [[1.0]]}, r"x_test has 1 features .* x_train has 2"),
        ({"x_train": [[0.0] * 6]}, r"x_train has 6 features.*backend has only 5 qubits"),
        ({"x_train": [[1.0]], "entanglement": "star"}, r"entanglement must be one of"),
        ({"x_train": [[1.0]], "reps": 0}, r"reps must be from 1"),
    ],
)
def test_invalid_inputs_raise_a_clear_value_error(inputs, message):
    with pytest.raises(ValueError, match=message):
        run_program(PROGRAM, inputs, backend="fake_manila")


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"x_train": [[1.0, "a"]]}, r"x_train\[0\]\[1\]"),
        ({"x_train": [[1.0]], "x_tset": [[1.0]]}, "x_tset"),
        ({"x_train": [[1.0]], "entanglement": "star"}, "entanglement"),
    ],
)
def test_the_server_refuses_inputs_the_schema_forbids(researcher, inputs, field):
    with pytest.raises(RuntimeInvalidInputsError, match=field):
        researcher.run(
            program_id="quantum-kernel",
            options={"backend_name": "aer_simulator"},
            inputs=inputs,
        )
