"""vqe: the ground-state energy of a Hamiltonian by the variational quantum eigensolver.

A parametrised ansatz circuit is transpiled once for the backend; a SciPy optimizer then
minimises the energy <psi(theta)|H|psi(theta)> estimated with ``BackendEstimatorV2``, binding
new parameter values for each evaluation. Every optimizer iteration is published as an interim
result; the final result reports the optimum, re-estimated once with a finer precision.

Gradient-based optimizers (SLSQP, L-BFGS-B) get exact parameter-shift gradients, estimated in
the same backend call as the energy, so they are not fooled by shot noise the way finite
differences are.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression, ParameterVector
from qiskit.circuit.library import efficient_su2, excitation_preserving, real_amplitudes
from qiskit.primitives import BackendEstimatorV2
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from scipy.optimize import minimize

ANSATZES = {
    "efficient_su2": efficient_su2,
    "real_amplitudes": real_amplitudes,
    "excitation_preserving": excitation_preserving,
}
DEFAULT_REPS = 2
#: SciPy methods offered, and whether each needs a gradient.
OPTIMIZERS = {
    "COBYLA": False,
    "Nelder-Mead": False,
    "Powell": False,
    "SLSQP": True,
    "L-BFGS-B": True,
}
DEFAULT_PRECISION = 1 / 64  # 4096 shots per expectation value
MAX_SEED = 2**31 - 1
#: Gates that are exp(-i phi/2 P) with P**2 = 1 (up to a global phase) in each of their angles,
#: for which the parameter-shift rule dE/dphi = (E(phi + pi/2) - E(phi - pi/2)) / 2 is exact.
SHIFTABLE_GATES = frozenset(
    {"rx", "ry", "rz", "p", "u1", "u2", "u3", "u", "rxx", "ryy", "rzz", "rzx"}
)


def main(
    backend,
    user_messenger,
    *,
    hamiltonian,
    ansatz="efficient_su2",
    reps=None,
    optimizer="COBYLA",
    maxiter=100,
    initial_point=None,
    shots=None,
    precision=None,
    final_precision=None,
    seed=None,
    optimization_level=1,
) -> dict[str, Any]:
    """Minimise the energy of ``hamiltonian`` over the ansatz parameters; see vqe.json."""
    operator = parse_hamiltonian(hamiltonian)
    circuit = build_ansatz(ansatz, reps, operator.num_qubits)
    use_gradient = check_optimizer(optimizer)
    check_maxiter(maxiter, optimizer, circuit.num_parameters)
    check_choice("optimization_level", optimization_level, range(4))
    check_seed(seed)
    precision = estimator_precision(shots, precision)
    final_precision = precision / 2 if final_precision is None else final_precision
    check_positive_number("final_precision", final_precision)
    check_fits(operator.num_qubits, backend)
    rng = np.random.default_rng(seed)
    start = parse_initial_point(initial_point, circuit.num_parameters, rng)

    isa = generate_preset_pass_manager(
        optimization_level=optimization_level, backend=backend, seed_transpiler=seed
    ).run(circuit)
    observable = operator.apply_layout(isa.layout)
    angles = (split_parameters if use_gradient else keep_parameters)(isa, circuit.parameters)
    energy = EnergyFunction(
        estimator(backend, seed), angles, observable, precision, with_gradient=use_gradient
    )
    progress = Progress(user_messenger, energy)
    result = optimise(energy, start, optimizer, maxiter, progress)
    best = np.asarray(result.x, dtype=float)
    final_seed = None if seed is None else (seed + 1) % (MAX_SEED + 1)
    final = EnergyFunction(estimator(backend, final_seed), angles, observable, final_precision)
    final_energy, final_std = (float(v) for v in final.run(final.angles.values(best)))
    nit = result.get("nit")
    return {
        "optimal_energy": final_energy,
        "optimal_energy_std": final_std,
        "optimizer_energy": float(np.real(result.fun)),
        "optimal_parameters": best.tolist(),
        "num_parameters": int(circuit.num_parameters),
        "num_qubits": int(operator.num_qubits),
        "num_evaluations": energy.evaluations,
        "num_iterations": None if nit is None else int(nit),
        "optimizer": optimizer,
        "success": bool(result.success),
        "message": str(result.message),
        "history": list(progress.history),
    }


# --- inputs -------------------------------------------------------------------------------


def parse_hamiltonian(value: Any) -> SparsePauliOp:
    """A Hermitian SparsePauliOp from a SparsePauliOp or ``[[coefficient, pauli_string], ...]``."""
    if isinstance(value, SparsePauliOp):
        operator = value
    elif isinstance(value, list | tuple) and value:
        terms = [parse_term(term, index) for index, term in enumerate(value)]
        width = len(terms[0][0])
        for index, (label, _) in enumerate(terms):
            if len(label) != width:
                raise ValueError(
                    f"hamiltonian[{index}][1]: Pauli string {label!r} has {len(label)} letters "
                    f"but hamiltonian[0][1] has {width}; every term must act on the same qubits"
                )
        operator = SparsePauliOp.from_list(terms)
    else:
        raise ValueError(
            "hamiltonian must be a SparsePauliOp or a non-empty list of [coefficient, "
            f"pauli_string] pairs such as [[0.5, 'ZI'], [-0.2, 'XX']]; got {short(value)}"
        )
    if operator.coeffs.dtype == object:
        raise ValueError("hamiltonian coefficients must be numbers, not Parameters")
    operator = operator.simplify()
    if not np.allclose(operator.coeffs.imag, 0, atol=1e-10):
        raise ValueError("hamiltonian must be Hermitian: its Pauli coefficients must be real")
    return SparsePauliOp(operator.paulis, operator.coeffs.real.astype(complex))


def parse_term(term: Any, index: int) -> tuple[str, complex]:
    """One ``[coefficient, pauli_string]`` pair as Qiskit's ``(pauli_string, coefficient)``."""
    where = f"hamiltonian[{index}]"
    if not (isinstance(term, list | tuple) and len(term) == 2):
        raise ValueError(f"{where} must be a [coefficient, pauli_string] pair; got {short(term)}")
    coefficient, label = term
    if isinstance(coefficient, str) and is_number(label):
        raise ValueError(
            f"{where} is [pauli_string, coefficient]; write it as [coefficient, pauli_string]: "
            f"[{label!r}, {coefficient!r}]"
        )
    if not is_number(coefficient):
        raise ValueError(f"{where}[0] (coefficient) must be a number; got {short(coefficient)}")
    if not (isinstance(label, str) and label and set(label) <= set("IXYZ")):
        raise ValueError(
            f"{where}[1] must be a Pauli string of the letters I, X, Y, Z; got {short(label)}"
        )
    return label, complex(coefficient)


def build_ansatz(ansatz: Any, reps: Any, num_qubits: int) -> QuantumCircuit:
    """The named library ansatz on ``num_qubits`` qubits, or the user's circuit after checks."""
    if isinstance(ansatz, QuantumCircuit):
        if reps is not None:
            raise ValueError("reps applies to a named ansatz only; leave it out with a circuit")
        if ansatz.num_qubits != num_qubits:
            raise ValueError(
                f"the ansatz circuit has {ansatz.num_qubits} qubits but the hamiltonian acts "
                f"on {num_qubits}"
            )
        if ansatz.num_clbits:
            raise ValueError("the ansatz circuit must not measure or have classical bits")
        if ansatz.num_parameters == 0:
            raise ValueError("the ansatz circuit has no parameters to optimise")
        return ansatz
    if not isinstance(ansatz, str) or ansatz not in ANSATZES:
        raise ValueError(
            f"unknown ansatz {short(ansatz)}; give a parametrised QuantumCircuit or one of: "
            f"{', '.join(ANSATZES)}"
        )
    reps = DEFAULT_REPS if reps is None else reps
    check_positive_int("reps", reps)
    return ANSATZES[ansatz](num_qubits, reps=int(reps))


def check_optimizer(name: Any) -> bool:
    """Fail unless ``name`` is an offered SciPy method; True when it needs a gradient."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {short(name)}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def estimator_precision(shots: Any, precision: Any) -> float:
    """The estimator's target precision from ``shots`` or ``precision`` (at most one given)."""
    if shots is not None and precision is not None:
        raise ValueError("give shots or precision, not both (precision = 1/sqrt(shots))")
    if shots is not None:
        check_positive_int("shots", shots)
        # BackendEstimatorV2 runs ceil(1/precision**2) shots; keep float rounding below `shots`.
        return (1 + 1e-12) / math.sqrt(shots)
    if precision is None:
        return DEFAULT_PRECISION
    check_positive_number("precision", precision)
    return float(precision)


def parse_initial_point(value: Any, size: int, rng: np.random.Generator) -> np.ndarray:
    """The user's starting parameters, or uniform random angles in [-pi, pi)."""
    if value is None:
        return rng.uniform(-np.pi, np.pi, size)
    point = np.asarray(value, dtype=object).ravel() if not isinstance(value, str) else None
    if point is None or not all(is_real(v) for v in point):
        raise ValueError(f"initial_point must be a list of real numbers; got {short(value)}")
    point = point.astype(float)
    if point.size != size or not np.all(np.isfinite(point)):
        raise ValueError(
            f"initial_point must hold {size} finite numbers, one per ansatz parameter; "
            f"got {point.size}"
        )
    return point


def check_fits(num_qubits: int, backend: Any) -> None:
    """Fail when the backend has fewer qubits than the problem needs."""
    available = getattr(backend, "num_qubits", None)
    if available is not None and num_qubits > available:
        raise ValueError(
            f"the hamiltonian needs {num_qubits} qubits but backend {backend.name} has {available}"
        )


def check_maxiter(maxiter: Any, optimizer: str, num_parameters: int) -> None:
    """Fail unless ``maxiter`` is a positive integer, and enough for COBYLA's first simplex."""
    check_positive_int("maxiter", maxiter)
    if optimizer == "COBYLA" and maxiter < num_parameters + 2:
        raise ValueError(
            f"COBYLA needs maxiter >= number of parameters + 2 = {num_parameters + 2} "
            f"evaluations; got {maxiter}"
        )


def check_positive_int(name: str, value: Any) -> None:
    """Fail unless ``value`` is an integer >= 1."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be a positive integer; got {short(value)}")


def check_positive_number(name: str, value: Any) -> None:
    """Fail unless ``value`` is a finite real number > 0."""
    if not (is_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number; got {short(value)}")


def check_choice(name: str, value: Any, choices: range) -> None:
    """Fail unless ``value`` is one of the integers in ``choices``."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool)) or (
        value not in choices
    ):
        raise ValueError(f"{name} must be one of {list(choices)}; got {short(value)}")


def check_seed(seed: Any) -> None:
    """Fail unless ``seed`` is None or an integer in [0, 2**31 - 1]."""
    if seed is not None and not (
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED
    ):
        raise ValueError(f"seed must be an integer from 0 to {MAX_SEED}; got {short(seed)}")


def is_number(value: Any) -> bool:
    """True for ints, floats and complex numbers (numpy ones too), not for booleans."""
    return isinstance(value, numbers.Number) and not isinstance(value, bool | np.bool_)


def is_real(value: Any) -> bool:
    """True for ints and floats (numpy ones too), not for booleans or complex numbers."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def short(value: Any) -> str:
    """``repr(value)`` cut to a readable length for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- energies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CircuitAngles:
    """The circuit's parameters as an affine map of the optimizer's: ``matrix @ x + offset``."""

    circuit: QuantumCircuit
    matrix: np.ndarray
    offset: np.ndarray

    def values(self, x: np.ndarray) -> np.ndarray:
        """Circuit parameter values (last axis) for optimizer points ``x`` (last axis)."""
        return x @ self.matrix.T + self.offset


def keep_parameters(circuit: QuantumCircuit, parameters: Any) -> CircuitAngles:
    """Bind the transpiled circuit's own parameters: the identity map (a selection of ``x``)."""
    column = {parameter: index for index, parameter in enumerate(parameters)}
    matrix = np.zeros((circuit.num_parameters, len(column)))
    for row, parameter in enumerate(circuit.parameters):
        matrix[row, column[parameter]] = 1.0
    return CircuitAngles(circuit, matrix, np.zeros(circuit.num_parameters))


def split_parameters(circuit: QuantumCircuit, parameters: list[Any]) -> CircuitAngles:
    """Give every gate angle its own parameter, so that each can be shifted on its own."""
    column = {parameter: index for index, parameter in enumerate(parameters)}
    angles = [
        (position, slot, value)
        for position, instruction in enumerate(circuit.data)
        for slot, value in enumerate(instruction.operation.params)
        if isinstance(value, ParameterExpression) and value.parameters
    ]
    fresh = ParameterVector("shifted_angle", len(angles))
    matrix = np.zeros((len(angles), len(column)))
    offset = np.zeros(len(angles))
    replaced: dict[int, dict[int, Any]] = {}
    for row, (position, slot, expression) in enumerate(angles):
        name = circuit.data[position].operation.name
        if name not in SHIFTABLE_GATES:
            raise ValueError(
                f"gradient-based optimizers need every parametrised gate to be a Pauli rotation "
                f"({', '.join(sorted(SHIFTABLE_GATES))}) after transpilation; found {name!r}. "
                "Use a gradient-free optimizer such as COBYLA"
            )
        for parameter in expression.parameters:
            slope = expression.gradient(parameter)
            if isinstance(slope, ParameterExpression):
                raise ValueError(
                    f"gate angle {expression} is not linear in its parameters, so the "
                    "parameter-shift rule does not apply. Use a gradient-free optimizer"
                )
            matrix[row, column[parameter]] = float(np.real(slope))
        at_zero = expression.bind(dict.fromkeys(expression.parameters, 0))
        offset[row] = float(np.real(complex(at_zero)))
        replaced.setdefault(position, {})[slot] = fresh[row]
    split = circuit.copy_empty_like()
    split.global_phase = 0  # may depend on the parameters; never on a measured expectation
    for position, instruction in enumerate(circuit.data):
        operation = instruction.operation
        if position in replaced:
            operation = operation.to_mutable()
            operation.params = [
                replaced[position].get(slot, value) for slot, value in enumerate(operation.params)
            ]
        split.append(operation, instruction.qubits, instruction.clbits, copy=False)
    return CircuitAngles(split, matrix, offset)


def optimise(
    energy: EnergyFunction, start: np.ndarray, method: str, maxiter: int, progress: Progress
) -> Any:
    """Run ``scipy.optimize.minimize``, with the gradient when the method uses one."""
    return minimize(
        energy,
        start,
        method=method,
        jac=True if energy.with_gradient else None,
        callback=progress.callback,
        options={"maxiter": int(maxiter)},
    )


def estimator(backend: Any, seed: int | None) -> BackendEstimatorV2:
    """A BackendEstimatorV2 on ``backend``, seeding its simulator when the backend takes one."""
    options: dict[str, Any] = {}
    if seed is not None and hasattr(backend.options, "seed_simulator"):
        options["seed_simulator"] = seed
    return BackendEstimatorV2(backend=backend, options=options)


@dataclass
class EnergyFunction:
    """The objective: estimated energy at optimizer point ``x`` (and its gradient if asked)."""

    estimator: BackendEstimatorV2
    angles: CircuitAngles
    observable: SparsePauliOp
    precision: float
    with_gradient: bool = False
    evaluations: int = 0
    last: dict[bytes, float] = field(default_factory=dict)

    def __call__(self, x: np.ndarray) -> float | tuple[float, np.ndarray]:
        """The energy at ``x``, or ``(energy, gradient)`` for gradient-based optimizers."""
        x = np.asarray(x, dtype=float)
        base = self.angles.values(x)
        if not self.with_gradient:
            value = float(self.run(base)[0][()])
            self.last = {x.tobytes(): value}
            return value
        shifts = np.eye(base.size) * (np.pi / 2)
        evs, _ = self.run(np.vstack([base, base + shifts, base - shifts]))
        per_angle = (evs[1 : 1 + base.size] - evs[1 + base.size :]) / 2
        self.last = {x.tobytes(): float(evs[0])}
        return float(evs[0]), self.angles.matrix.T @ per_angle

    def run(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies and standard errors at circuit parameter values ``points``, in one call."""
        result = self.estimator.run(
            [(self.angles.circuit, self.observable, points)], precision=self.precision
        ).result()[0]
        self.evaluations += 1
        return np.asarray(result.data.evs, dtype=float), np.asarray(result.data.stds, dtype=float)


@dataclass
class Progress:
    """Publishes one interim result per optimizer iteration and keeps the energy history."""

    messenger: Any
    energy: EnergyFunction
    history: list[float] = field(default_factory=list)

    def callback(self, intermediate_result: Any) -> None:
        """SciPy's per-iteration hook (the ``intermediate_result`` form)."""
        x = np.asarray(intermediate_result.x, dtype=float)
        value = intermediate_result.get("fun")
        if value is None:
            value = self.energy.last.get(x.tobytes())
        if value is None:
            value = self.energy(x)
            value = value[0] if isinstance(value, tuple) else value
        self.history.append(float(value))
        self.messenger.publish(
            {
                "iteration": len(self.history),
                "energy": float(value),
                "parameters": x.tolist(),
                "num_evaluations": self.energy.evaluations,
            }
        )
