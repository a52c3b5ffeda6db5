"""sampler: BackendSamplerV2 over the job's backend, with abstract circuits transpiled for it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import BitArray, PrimitiveResult, SamplerPubResult

from qruntime.client import RuntimeInvalidInputsError
from qruntime.testing import run_program

SOURCE = Path(__file__).resolve().parents[2] / "runtime" / "sampler.py"
SIGMAS = 5


def assert_distribution(counts: dict[str, int], expected: dict[str, float]) -> None:
    """Each outcome's frequency is within SIGMAS shot-noise deviations of its probability."""
    shots = sum(counts.values())
    assert set(counts) <= {key for key, p in expected.items() if p > 0}, counts
    for key, p in expected.items():
        bound = SIGMAS * math.sqrt(p * (1 - p) / shots)
        assert abs(counts.get(key, 0) / shots - p) <= bound, (key, counts, expected)


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


def rotation() -> QuantumCircuit:
    """P(1) = sin²(θ/2); the trailing rz(φ) does nothing to the counts."""
    theta, phi = Parameter("θ"), Parameter("φ")
    qc = QuantumCircuit(1, 1)
    qc.ry(theta, 0)
    qc.rz(phi, 0)
    qc.measure(0, 0)
    return qc


def test_bell_state_gives_only_00_and_11_in_equal_parts(run):
    outcome = run("sampler", {"pubs": [bell()], "shots": 4000})

    result = outcome.result
    assert isinstance(result, PrimitiveResult) and len(result) == 1
    pub_result = result[0]
    assert isinstance(pub_result, SamplerPubResult)
    assert isinstance(pub_result.data.meas, BitArray)
    assert pub_result.data.meas.num_shots == 4000 and pub_result.metadata["shots"] == 4000
    assert_distribution(pub_result.data.meas.get_counts(), {"00": 0.5, "11": 0.5})
    (message,) = outcome.messages
    assert message["status"] == "transpiled" and message["num_pubs"] == 1
    assert message["shots"] == [4000]
    assert len(message["depths"]) == 1 and message["depths"][0] >= 2


def test_parametrised_pubs_in_every_accepted_form(run):
    angles = np.array([0.0, np.pi / 2, 2 * np.pi / 3, np.pi])
    phis = np.full(4, 0.3)
    pubs = [
        [rotation(), np.column_stack([angles, phis]), 2000],  # columns in parameter order: θ, φ
        [rotation(), {"θ": angles.tolist(), "φ": phis.tolist()}],
        [rotation(), [[[np.pi / 2, 0.0]] * 3] * 2, None],  # shape (2, 3)
    ]
    # Level 2 optimises rz(φ) before the measurement away; its values must then be dropped.
    outcome = run("sampler", {"pubs": pubs, "shots": 1500, "optimization_level": 2})

    first, second, third = outcome.result
    assert outcome.messages[0]["shots"] == [2000, 1500, 1500]
    assert first.data.c.shape == second.data.c.shape == (4,)
    for pub_result in (first, second):
        for index, theta in enumerate(angles):
            p1 = math.sin(theta / 2) ** 2
            assert_distribution(pub_result.data.c.get_counts(index), {"0": 1 - p1, "1": p1})
    assert third.data.c.shape == (2, 3) and third.data.c.num_shots == 1500
    assert_distribution(third.data.c.get_counts(), {"0": 0.5, "1": 0.5})


def test_seeds_make_runs_reproducible():
    """In-process only: the seeds act in the program, whichever way it is started."""
    inputs = {"pubs": [bell()], "seed_simulator": 11, "seed_transpiler": 5}

    first, second = (run_program(SOURCE, inputs).result for _ in range(2))

    assert first[0].data.meas.get_counts() == second[0].data.meas.get_counts()
    assert np.array_equal(first[0].data.meas.array, second[0].data.meas.array)


def test_noisy_five_qubit_device_still_samples_a_ghz_state(run):
    ghz = QuantumCircuit(5)
    ghz.h(0)
    for qubit in range(4):
        ghz.cx(qubit, qubit + 1)
    ghz.measure_all()

    outcome = run("sampler", {"pubs": [ghz], "seed_simulator": 1}, backend="fake_manila")

    counts = outcome.result[0].data.meas.get_counts()
    assert sum(counts.values()) == 1024 and all(len(key) == 5 for key in counts)
    assert len(counts) > 2  # the device's noise shows
    ideal = counts.get("00000", 0) + counts.get("11111", 0)
    assert ideal / 1024 > 0.6
    assert abs(counts.get("00000", 0) - counts.get("11111", 0)) / 1024 < 0.25


def test_the_server_refuses_missing_pubs_and_bad_shots(researcher):
    options = {"backend_name": "aer_simulator"}
    with pytest.raises(RuntimeInvalidInputsError, match="pubs"):
        researcher.run(program_id="sampler", options=options, inputs={"shots": 10})
    with pytest.raises(RuntimeInvalidInputsError, match=r"pubs\[0\]\[2\]"):
        researcher.run(program_id="sampler", options=options, inputs={"pubs": [[bell(), None, 0]]})
    with pytest.raises(RuntimeInvalidInputsError, match="shot"):
        researcher.run(program_id="sampler", options=options, inputs={"pubs": [bell()], "shot": 9})


def test_a_pub_without_measurements_is_named_in_the_error():
    no_clbits = QuantumCircuit(1)
    no_clbits.h(0)
    with pytest.raises(ValueError, match=r"pubs\[1\] is not a valid sampler PUB"):
        run_program(SOURCE, {"pubs": [bell(), no_clbits]})
