"""quantum-kernel: a fidelity quantum kernel matrix for training (and test) data.

Each data point x is encoded by a ZZ feature map U(x); the kernel entry for two points is the
fidelity |<0|U(y)^dagger U(x)|0>|^2, estimated by running the compute-uncompute circuit (U(x),
then U(y)^dagger, from |0...0>) and counting how often every qubit reads 0. The circuit is
transpiled once with parameters and run for all pairs through ``BackendSamplerV2``. The kernel
matrices can be fed to a classical kernel method (for example an SVM with a precomputed kernel).

Interim result: ``{"stage": "train", "kernel": ...}`` once the training kernel is known.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import pauli_feature_map, zz_feature_map
from qiskit.primitives import BackendSamplerV2

ENTANGLEMENTS = ("full", "linear", "reverse_linear", "circular", "sca", "pairwise")
MAX_SHOTS = 1_000_000


def main(
    backend,
    user_messenger,
    *,
    x_train,
    x_test=None,
    reps=2,
    entanglement="linear",
    alpha=2.0,
    shots=1024,
    optimization_level=1,
    seed_transpiler=None,
    seed_simulator=None,
):
    """The training kernel (and the test-versus-training kernel) of the data on ``backend``."""
    x_train = _check_data("x_train", x_train, None, backend.num_qubits)
    num_features = x_train.shape[1]
    if x_test is not None:
        x_test = _check_data("x_test", x_test, num_features, backend.num_qubits)
    reps = _check_int("reps", reps, 1, 100)
    if entanglement not in ENTANGLEMENTS:
        raise ValueError(f"entanglement must be one of {', '.join(ENTANGLEMENTS)}")
    alpha = _check_number("alpha", alpha)
    shots = _check_int("shots", shots, 1, MAX_SHOTS)
    level = _check_int("optimization_level", optimization_level, 0, 3)
    seed_transpiler = _check_optional_seed("seed_transpiler", seed_transpiler)
    seed_simulator = _check_optional_seed("seed_simulator", seed_simulator)

    circuit, left, right = _fidelity_circuit(num_features, reps, entanglement, alpha)
    circuit = transpile(circuit, backend, optimization_level=level, seed_transpiler=seed_transpiler)
    sampler = BackendSamplerV2(backend=backend, options=_sampler_options(shots, seed_simulator))
    estimate = _FidelityEstimator(sampler, circuit, left, right)

    kernel_train = _symmetric_kernel(estimate, x_train)
    user_messenger.publish({"stage": "train", "kernel": kernel_train.tolist()})
    result: dict[str, Any] = {
        "kernel_train": kernel_train.tolist(),
        "num_qubits": num_features,
        "transpiled_depth": circuit.depth(),
        "shots": shots,
        "backend": backend.name,
    }
    if x_test is not None:
        result["kernel_test"] = _cross_kernel(estimate, x_test, x_train).tolist()
    return result


def _check_data(name: str, data: Any, num_features: int | None, num_qubits: int) -> np.ndarray:
    """``data`` as a finite 2-D float array: one row per point, one column per feature."""
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of rows of numbers of equal length") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty list of non-empty rows of numbers (a matrix), "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers only")
    if num_features is not None and array.shape[1] != num_features:
        raise ValueError(
            f"{name} has {array.shape[1]} features per point but x_train has {num_features}"
        )
    if array.shape[1] > num_qubits:
        raise ValueError(
            f"{name} has {array.shape[1]} features, one qubit each, but the backend has only "
            f"{num_qubits} qubits"
        )
    return array


def _check_int(name: str, value: Any, minimum: int, maximum: int) -> int:
    """``value`` as an int within bounds, or a ValueError naming the parameter."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be from {minimum} to {maximum}, got {value}")
    return int(value)


def _check_optional_seed(name: str, value: Any) -> int | None:
    """A non-negative integer seed, or None."""
    return None if value is None else _check_int(name, value, 0, 2**63 - 1)


def _check_number(name: str, value: Any) -> float:
    """``value`` as a finite float."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral | float | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _fidelity_circuit(
    num_features: int, reps: int, entanglement: str, alpha: float
) -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    """U(x) followed by U(y)^dagger, measured; with the parameter vectors x and y."""
    if num_features == 1:  # zz_feature_map refuses one qubit; with no pairs it is this map
        feature_map = pauli_feature_map(1, reps=reps, alpha=alpha, paulis=["z"])
    else:
        feature_map = zz_feature_map(
            num_features, reps=reps, entanglement=entanglement, alpha=alpha
        )
    left = ParameterVector("x", num_features)
    right = ParameterVector("y", num_features)
    circuit = feature_map.assign_parameters(list(left))
    circuit.compose(feature_map.assign_parameters(list(right)).inverse(), inplace=True)
    circuit.measure_all()
    return circuit, left, right


def _sampler_options(shots: int, seed_simulator: int | None) -> dict[str, Any]:
    """BackendSamplerV2 options: the shots, and the seed when one is given."""
    options: dict[str, Any] = {"default_shots": shots}
    if seed_simulator is not None:
        options["seed_simulator"] = seed_simulator
    return options


class _FidelityEstimator:
    """Estimates the fidelity of many pairs of points with one sampler job."""

    def __init__(self, sampler: BackendSamplerV2, circuit, left, right):
        self._sampler = sampler
        self._circuit = circuit
        self._parameters = (*left, *right)

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Fidelity of first[k] with second[k] for every k: the frequency of all zeros."""
        values = np.hstack([first, second])
        pub = (self._circuit, {self._parameters: values})
        bits = self._sampler.run([pub]).result()[0].data.meas
        return np.all(bits.array == 0, axis=-1).mean(axis=-1)


def _symmetric_kernel(estimate: _FidelityEstimator, points: np.ndarray) -> np.ndarray:
    """The kernel of ``points`` with themselves: the upper triangle estimated, then mirrored."""
    rows, cols = np.triu_indices(len(points))
    kernel = np.zeros((len(points), len(points)))
    kernel[rows, cols] = estimate(points[rows], points[cols])
    kernel[cols, rows] = kernel[rows, cols]
    return kernel


def _cross_kernel(
    estimate: _FidelityEstimator, points: np.ndarray, others: np.ndarray
) -> np.ndarray:
    """The kernel of every point of ``points`` (rows) with every point of ``others`` (columns)."""
    rows, cols = np.indices((len(points), len(others))).reshape(2, -1)
    return estimate(points[rows], others[cols]).reshape(len(points), len(others))
