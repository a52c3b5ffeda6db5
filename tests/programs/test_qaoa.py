"""qaoa: MaxCut of small graphs, checked against brute force over every assignment."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from qiskit.primitives import StatevectorEstimator
from qiskit.transpiler import generate_preset_pass_manager

from qruntime.client import RuntimeInvalidInputsError, RuntimeJobFailureError
from qruntime.testing import load_program_file, run_program

PROGRAM = Path(__file__).resolve().parents[2] / "runtime" / "qaoa.py"
#: A square 0-1-2-3 with a roof 0-4-1: five nodes, six edges, maximum cut 5.
HOUSE = [[0, 1], [1, 2], [2, 3], [3, 0], [0, 4], [1, 4]]
#: A weighted square with one weighted diagonal: maximum cut 6.5.
WEIGHTED = [[0, 1, 1.0], [1, 2, 2.5], [2, 3, 1.0], [3, 0, 0.5], [0, 2, 3.0]]


def cut_value(assignment: list[int] | tuple[int, ...], edges: list[list[float]]) -> float:
    return sum(
        (edge[2] if len(edge) == 3 else 1.0)
        for edge in edges
        if assignment[int(edge[0])] != assignment[int(edge[1])]
    )


def brute_force(edges: list[list[float]], nodes: int) -> tuple[float, float]:
    """The maximum cut value and the share of all 2**n assignments that reach it."""
    values = [cut_value(bits, edges) for bits in itertools.product((0, 1), repeat=nodes)]
    best = max(values)
    return best, values.count(best) / len(values)


def assert_finds_the_maximum_cut(outcome, edges, nodes) -> None:
    result = outcome.result
    best, uniform_share = brute_force(edges, nodes)
    total = sum(edge[2] if len(edge) == 3 else 1.0 for edge in edges)

    assert result["best_cut_value"] == pytest.approx(best)
    assert len(result["best_cut"]) == nodes and set(result["best_cut"]) <= {0, 1}
    assert cut_value(result["best_cut"], edges) == pytest.approx(best)
    # Little-endian: the rightmost character of the bitstring is node 0.
    assert result["bitstring"] == "".join(str(bit) for bit in reversed(result["best_cut"]))
    assert result["counts"][result["bitstring"]] > 0
    assert sum(result["counts"].values()) == 4096
    assert result["total_weight"] == pytest.approx(total)
    # The optimised circuit must beat guessing: random assignments cut total/2 on average.
    assert result["expected_cut_value"] > total / 2 + 0.2 * (best - total / 2)
    assert result["best_cut_probability"] > 1.5 * uniform_share


def assert_interim_results_follow_the_iterations(outcome, reps) -> None:
    messages, result = outcome.messages, outcome.result
    assert messages, "no interim results"
    assert [m["iteration"] for m in messages] == list(range(1, len(messages) + 1))
    half_weight = result["total_weight"] / 2
    for message in messages:
        assert set(message) == {
            "iteration",
            "energy",
            "cut_value_estimate",
            "parameters",
            "num_evaluations",
        }
        assert len(message["parameters"]) == 2 * reps
        assert message["cut_value_estimate"] == pytest.approx(half_weight - message["energy"])
    assert [m["cut_value_estimate"] for m in messages] == result["history"]
    assert messages[-1]["cut_value_estimate"] >= messages[0]["cut_value_estimate"]


def test_unweighted_house_graph_at_depth_two(run):
    outcome = run("qaoa", {"edges": HOUSE, "reps": 2, "seed": 7})

    assert_finds_the_maximum_cut(outcome, HOUSE, 5)
    assert_interim_results_follow_the_iterations(outcome, reps=2)
    result = outcome.result
    assert result["num_nodes"] == 5
    assert result["optimizer"] == "COBYLA"
    assert len(result["optimal_gammas"]) == len(result["optimal_betas"]) == 2
    assert result["optimal_parameters"] == result["optimal_gammas"] + result["optimal_betas"]
    # Depth 2 concentrates the samples: about 0.67 of them hit a maximum cut.
    assert result["best_cut_probability"] > 0.4


def test_weighted_graph_with_an_isolated_node(run):
    outcome = run("qaoa", {"edges": WEIGHTED, "num_nodes": 5, "reps": 1, "seed": 3})

    result = outcome.result
    assert result["num_nodes"] == 5
    assert all(len(bits) == 5 for bits in result["counts"])
    assert_finds_the_maximum_cut(outcome, WEIGHTED, 5)
    assert_interim_results_follow_the_iterations(outcome, reps=1)


def test_seeded_runs_are_reproducible():
    inputs = {"edges": WEIGHTED, "maxiter": 10, "shots": 512, "seed": 9}
    first = run_program(PROGRAM, inputs)
    second = run_program(PROGRAM, inputs)

    assert first.result == second.result
    assert first.messages == second.messages


def test_parameter_shift_gradients_are_exact():
    """The gradient of the split, transpiled circuit matches finite differences of <H>."""
    program = load_program_file(PROGRAM)
    graph = program.parse_edges(WEIGHTED, None)
    cost = program.cost_operator(graph, 4)
    ansatz = program.qaoa_ansatz(cost, reps=2)
    order = program.angle_order(ansatz, 2)
    isa = generate_preset_pass_manager(
        optimization_level=1, basis_gates=["rz", "sx", "x", "cx"], seed_transpiler=1
    ).run(ansatz)
    exact = StatevectorEstimator()
    energy = program.EnergyFunction(
        exact, program.split_parameters(isa, order), cost, precision=0.0, with_gradient=True
    )
    plain_angles = program.keep_parameters(ansatz, order)
    x = np.array([0.4, 0.9, -0.3, -0.6])  # gamma_1, gamma_2, beta_1, beta_2

    value, gradient = energy(x)

    def plain(point):
        return float(exact.run([(ansatz, cost, plain_angles.values(point))]).result()[0].data.evs)

    step = 1e-6
    numeric = [(plain(x + step * e) - plain(x - step * e)) / (2 * step) for e in np.eye(4)]
    assert value == pytest.approx(plain(x), abs=1e-9)
    np.testing.assert_allclose(gradient, numeric, atol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"edges": HOUSE, "optimizer": "SPSA"}, r"optimizer 'SPSA'; choose one of: COBYLA, "),
        ({"edges": [[0, 1], [1, 4]], "num_nodes": 4}, r"edges\[1\]: node 4 is out of range"),
        ({"edges": [[0, 1], [2, 2]]}, r"edges\[1\] is a self-loop on node 2"),
        ({"edges": [[0, 1], [1, 0, 2.0]]}, r"edges\[1\] joins nodes 1 and 0 again"),
        ({"edges": [[0, 1, 2, 3]]}, r"edges\[0\] must be \[i, j\] or \[i, j, weight\]"),
        ({"edges": [[0, -1]]}, r"node -1 is not a non-negative integer"),
        ({"edges": [[0, 1, "heavy"]]}, r"weight 'heavy' is not a finite real number"),
        ({"edges": [[0, 1, 0]]}, r"every edge weight is 0"),
        ({"edges": []}, r"edges must be a non-empty list"),
        ({"edges": HOUSE, "reps": 2, "initial_point": [0.1, 0.2]}, r"2 \* reps = 4 finite"),
        ({"edges": HOUSE, "shots": 0}, r"shots must be a positive integer"),
    ],
)
def test_invalid_inputs_raise_a_clear_value_error(inputs, message):
    with pytest.raises(ValueError, match=message):
        run_program(PROGRAM, inputs)


def test_a_job_with_a_node_out_of_range_fails_with_the_reason(researcher):
    job = researcher.run(
        program_id="qaoa",
        options={"backend_name": "aer_simulator"},
        inputs={"edges": [[0, 1], [1, 2], [2, 7]], "num_nodes": 4},
    )
    with pytest.raises(RuntimeJobFailureError) as failure:
        job.result(timeout=120)
    assert "ValueError" in str(failure.value)
    assert "edges[2]: node 7 is out of range for num_nodes=4" in str(failure.value)


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"edges": HOUSE, "optimizer": "SPSA"}, "optimizer"),
        ({"edges": [[0, 1, 2, 3]]}, "edges"),
        ({"edges": [[0, -1]]}, "edges"),
        ({"edges": []}, "edges"),
        ({"edges": HOUSE, "p": 2}, "unknown input 'p'; this program takes: "),
        ({"reps": 2}, "edges"),
    ],
)
def test_the_server_refuses_inputs_the_schema_forbids(researcher, inputs, field):
    with pytest.raises(RuntimeInvalidInputsError, match=field):
        researcher.run(program_id="qaoa", options={"backend_name": "aer_simulator"}, inputs=inputs)
