"""qaoa: approximate the maximum cut of a weighted graph with the QAOA.

The graph's cut becomes the cost Hamiltonian H = sum over edges of w/2 Z_i Z_j, so that
cut = W/2 - <H> with W the total weight. The QAOA ansatz (``qaoa_ansatz``) is transpiled once;
a SciPy optimizer minimises <H>, estimated with ``BackendEstimatorV2``, binding new angles for
each evaluation and publishing every iteration. The optimised circuit is then sampled with
``BackendSamplerV2`` and every sampled assignment is scored classically; the best one is the
answer.

Bitstrings follow Qiskit's little-endian order: the rightmost bit is node 0.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression, ParameterVector
from qiskit.circuit.library import qaoa_ansatz
from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from scipy.optimize import minimize

#: SciPy methods offered, and whether each needs a gradient.
OPTIMIZERS = {
    "COBYLA": False,
    "Nelder-Mead": False,
    "Powell": False,
    "SLSQP": True,
    "L-BFGS-B": True,
}
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
    edges,
    num_nodes=None,
    reps=1,
    optimizer="COBYLA",
    maxiter=100,
    initial_point=None,
    shots=4096,
    seed=None,
    optimization_level=1,
) -> dict[str, Any]:
    """Search the maximum cut of the graph ``edges``; see qaoa.json."""
    graph = parse_edges(edges, num_nodes)
    nodes = graph_size(graph, num_nodes)
    check_positive_int("reps", reps)
    use_gradient = check_optimizer(optimizer)
    check_maxiter(maxiter, optimizer, 2 * reps)
    check_positive_int("shots", shots)
    check_choice("optimization_level", optimization_level, range(4))
    check_seed(seed)
    check_fits(nodes, backend)
    mean_weight = float(np.mean([abs(weight) for _, _, weight in graph]))
    start = parse_initial_point(initial_point, reps, mean_weight)

    cost = cost_operator(graph, nodes)
    ansatz = qaoa_ansatz(cost, reps=reps)
    order = angle_order(ansatz, reps)
    sampled = generate_preset_pass_manager(
        optimization_level=optimization_level, backend=backend, seed_transpiler=seed
    ).run(ansatz.measure_all(inplace=False))
    isa = sampled.remove_final_measurements(inplace=False)
    observable = cost.apply_layout(isa.layout)
    angles = (split_parameters if use_gradient else keep_parameters)(isa, order)
    half_weight = sum(weight for _, _, weight in graph) / 2
    energy = EnergyFunction(
        estimator(backend, seed), angles, observable, precision_for(shots), use_gradient
    )
    progress = Progress(user_messenger, energy, half_weight)
    result = optimise(energy, start, optimizer, maxiter, progress)
    best = np.asarray(result.x, dtype=float)
    final_seed = None if seed is None else (seed + 1) % (MAX_SEED + 1)
    values = keep_parameters(sampled, order).values(best)
    counts = sample(backend, sampled, values, shots, final_seed)
    nit = result.get("nit")
    return {
        **score_samples(counts, graph, nodes),
        "optimal_parameters": best.tolist(),
        "optimal_gammas": best[:reps].tolist(),
        "optimal_betas": best[reps:].tolist(),
        "optimizer_cut_value_estimate": half_weight - float(np.real(result.fun)),
        "total_weight": 2 * half_weight,
        "num_nodes": nodes,
        "num_evaluations": energy.evaluations,
        "num_iterations": None if nit is None else int(nit),
        "optimizer": optimizer,
        "success": bool(result.success),
        "message": str(result.message),
        "history": list(progress.history),
        "counts": counts,
    }


# --- graph --------------------------------------------------------------------------------


def parse_edges(edges: Any, num_nodes: Any) -> list[tuple[int, int, float]]:
    """``[(i, j, weight), ...]`` from ``[[i, j], [i, j, weight], ...]``, checked."""
    if isinstance(edges, np.ndarray):
        edges = edges.tolist()
    if not (isinstance(edges, list | tuple) and edges):
        raise ValueError(
            f"edges must be a non-empty list of [i, j] or [i, j, weight]; got {short(edges)}"
        )
    if num_nodes is not None:
        check_positive_int("num_nodes", num_nodes)
    graph, seen = [], {}
    for index, edge in enumerate(edges):
        i, j, weight = parse_edge(edge, index, num_nodes)
        key = (min(i, j), max(i, j))  # an undirected edge
        if key in seen:
            raise ValueError(
                f"edges[{index}] joins nodes {i} and {j} again (edges[{seen[key]}] already "
                "does); give each edge once and add up the weights"
            )
        seen[key] = index
        graph.append((i, j, weight))
    if all(weight == 0 for _, _, weight in graph):
        raise ValueError("every edge weight is 0, so every cut has value 0")
    return graph


def parse_edge(edge: Any, index: int, num_nodes: Any) -> tuple[int, int, float]:
    """One edge ``[i, j]`` (weight 1) or ``[i, j, weight]``, checked."""
    where = f"edges[{index}]"
    if not (isinstance(edge, list | tuple) and len(edge) in (2, 3)):
        raise ValueError(f"{where} must be [i, j] or [i, j, weight]; got {short(edge)}")
    i, j = edge[0], edge[1]
    for node in (i, j):
        if not (is_int(node) or (is_real(node) and float(node).is_integer())) or node < 0:
            raise ValueError(f"{where}: node {short(node)} is not a non-negative integer index")
        if num_nodes is not None and node >= num_nodes:
            raise ValueError(
                f"{where}: node {node} is out of range for num_nodes={num_nodes} "
                f"(nodes are 0 to {num_nodes - 1})"
            )
    if i == j:
        raise ValueError(f"{where} is a self-loop on node {i}; a cut never separates it")
    weight = edge[2] if len(edge) == 3 else 1.0
    if not (is_real(weight) and math.isfinite(weight)):
        raise ValueError(f"{where}: weight {short(weight)} is not a finite real number")
    return int(i), int(j), float(weight)


def graph_size(graph: list[tuple[int, int, float]], num_nodes: Any) -> int:
    """``num_nodes`` if given, else one more than the largest node index."""
    if num_nodes is not None:
        return int(num_nodes)
    return 1 + max(max(i, j) for i, j, _ in graph)


def cost_operator(graph: list[tuple[int, int, float]], nodes: int) -> SparsePauliOp:
    """H = sum of w/2 Z_i Z_j, so that a cut's value is W/2 minus its energy."""
    terms = [("ZZ", [i, j], weight / 2) for i, j, weight in graph]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=nodes)


def cut_value(assignment: list[int], graph: list[tuple[int, int, float]]) -> float:
    """Total weight of the edges whose ends are on different sides."""
    return float(sum(weight for i, j, weight in graph if assignment[i] != assignment[j]))


def assignment_of(bitstring: str) -> list[int]:
    """Side (0 or 1) of each node; the rightmost bit is node 0."""
    return [int(bit) for bit in reversed(bitstring)]


def score_samples(
    counts: dict[str, int], graph: list[tuple[int, int, float]], nodes: int
) -> dict[str, Any]:
    """The best sampled cut, the mean sampled cut value and how often the best value came up."""
    shots = sum(counts.values())
    values = {bits: cut_value(assignment_of(bits), graph) for bits in counts}
    best_value = max(values.values())
    best_bits = max(
        (bits for bits in counts if values[bits] == best_value), key=lambda b: (counts[b], b)
    )
    hits = sum(counts[bits] for bits in counts if values[bits] == best_value)
    return {
        "best_cut": assignment_of(best_bits),
        "best_cut_value": best_value,
        "bitstring": best_bits,
        "best_cut_probability": hits / shots,
        "expected_cut_value": sum(values[bits] * n for bits, n in counts.items()) / shots,
    }


# --- inputs -------------------------------------------------------------------------------


def angle_order(ansatz: QuantumCircuit, reps: int) -> list[Any]:
    """The ansatz parameters as the optimizer sees them: gamma_1..gamma_p, then beta_1..beta_p."""
    by_name = {parameter.name: parameter for parameter in ansatz.parameters}
    return [by_name[f"{angle}[{layer}]"] for angle in "γβ" for layer in range(reps)]


def check_optimizer(name: Any) -> bool:
    """Fail unless ``name`` is an offered SciPy method; True when it needs a gradient."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {short(name)}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def parse_initial_point(value: Any, reps: int, mean_weight: float) -> np.ndarray:
    """The user's ``[gammas..., betas...]``, or a linear ramp like an annealing schedule."""
    if value is None:
        return ramp(reps, mean_weight)
    point = np.asarray(value, dtype=object).ravel() if not isinstance(value, str) else None
    if point is None or not all(is_real(v) for v in point):
        raise ValueError(f"initial_point must be a list of real numbers; got {short(value)}")
    point = point.astype(float)
    if point.size != 2 * reps or not np.all(np.isfinite(point)):
        raise ValueError(
            f"initial_point must hold 2 * reps = {2 * reps} finite numbers "
            f"(gamma_1..gamma_p, then beta_1..beta_p); got {point.size}"
        )
    return point


def ramp(reps: int, mean_weight: float, step: float = 0.75) -> np.ndarray:
    """Gammas rising and betas falling linearly: a discretised anneal from the mixer to H."""
    fractions = (np.arange(reps) + 0.5) / reps
    return np.concatenate([step * fractions / mean_weight, -step * (1 - fractions)])


def precision_for(shots: int) -> float:
    """BackendEstimatorV2 precision for ``shots`` (it runs ceil(1/precision**2) shots)."""
    return (1 + 1e-12) / math.sqrt(shots)  # keeps float rounding from adding a shot


def check_fits(num_qubits: int, backend: Any) -> None:
    """Fail when the backend has fewer qubits than the graph has nodes."""
    available = getattr(backend, "num_qubits", None)
    if available is not None and num_qubits > available:
        raise ValueError(
            f"the graph has {num_qubits} nodes but backend {backend.name} has only "
            f"{available} qubits"
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
    if not (is_int(value) and value >= 1):
        raise ValueError(f"{name} must be a positive integer; got {short(value)}")


def check_choice(name: str, value: Any, choices: range) -> None:
    """Fail unless ``value`` is one of the integers in ``choices``."""
    if not (is_int(value) and value in choices):
        raise ValueError(f"{name} must be one of {list(choices)}; got {short(value)}")


def check_seed(seed: Any) -> None:
    """Fail unless ``seed`` is None or an integer in [0, 2**31 - 1]."""
    if seed is not None and not (is_int(seed) and 0 <= seed <= MAX_SEED):
        raise ValueError(f"seed must be an integer from 0 to {MAX_SEED}; got {short(seed)}")


def is_int(value: Any) -> bool:
    """True for ints (numpy ones too), not for booleans."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


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


def keep_parameters(circuit: QuantumCircuit, parameters: list[Any]) -> CircuitAngles:
    """Bind the circuit's own parameters: the identity map, reordered."""
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


def sample(
    backend: Any, circuit: QuantumCircuit, values: np.ndarray, shots: int, seed: int | None
) -> dict[str, int]:
    """Counts of the measured circuit at parameter ``values``, with BackendSamplerV2."""
    options: dict[str, Any] = {"default_shots": int(shots)}
    if seed is not None and hasattr(backend.options, "seed_simulator"):
        options["seed_simulator"] = seed
    sampler = BackendSamplerV2(backend=backend, options=options)
    result = sampler.run([(circuit, values)]).result()[0]
    return {bits: int(n) for bits, n in result.data.meas.get_counts().items()}


@dataclass
class EnergyFunction:
    """The objective: estimated <H> at optimizer point ``x`` (and its gradient if asked)."""

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
            value = float(self.run(base)[()])
            self.last = {x.tobytes(): value}
            return value
        shifts = np.eye(base.size) * (np.pi / 2)
        evs = self.run(np.vstack([base, base + shifts, base - shifts]))
        per_angle = (evs[1 : 1 + base.size] - evs[1 + base.size :]) / 2
        self.last = {x.tobytes(): float(evs[0])}
        return float(evs[0]), self.angles.matrix.T @ per_angle

    def run(self, points: np.ndarray) -> np.ndarray:
        """Energies at circuit parameter values ``points`` (one set or a batch), in one call."""
        result = self.estimator.run(
            [(self.angles.circuit, self.observable, points)], precision=self.precision
        ).result()[0]
        self.evaluations += 1
        return np.asarray(result.data.evs, dtype=float)


@dataclass
class Progress:
    """Publishes one interim result per optimizer iteration and keeps the cut history."""

    messenger: Any
    energy: EnergyFunction
    half_weight: float
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
        cut = self.half_weight - float(value)
        self.history.append(cut)
        self.messenger.publish(
            {
                "iteration": len(self.history),
                "energy": float(value),
                "cut_value_estimate": cut,
                "parameters": x.tolist(),
                "num_evaluations": self.energy.evaluations,
            }
        )
