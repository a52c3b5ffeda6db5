"""The 2021 dialect's translators: Qobj to circuits, the circuit runner's contract, LoopBack
filters, backend names. The Qobj fixtures were assembled by qiskit-terra 0.46 itself."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import IfElseOp
from qiskit.result import Result

from qruntime.backends import BackendEntry, BackendRegistry
from qruntime.compat.ibmq2021 import circuit_runner, loopback
from qruntime.compat.ibmq2021.qobj import InvalidQobjError, circuits_of
from qruntime.compat.ibmq2021.wire import NAMES
from qruntime.domain.errors import InvalidInputsError, NotFoundError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ibmq2021"


def qobj(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}_qobj.json").read_text())


def test_a_qobj_becomes_the_circuits_it_was_assembled_from() -> None:
    run = circuits_of(qobj("bell"), max_qubits=5)
    expected = QuantumCircuit(QuantumRegister(2, "q"), ClassicalRegister(2, "c"), name="bell")
    expected.h(0)
    expected.cx(0, 1)
    expected.measure([0, 1], [0, 1])
    assert run.circuits == [expected] and run.circuits[0].name == "bell"
    assert (run.shots, run.seed_simulator) == (100, 11)


def test_conditions_on_a_register_or_a_bit_become_if_tests() -> None:
    (circuit,) = circuits_of(qobj("conditional"), max_qubits=5).circuits
    assert [reg.name for reg in circuit.cregs] == ["c", "flag"]
    tests = [inst.operation for inst in circuit.data if isinstance(inst.operation, IfElseOp)]
    assert [test.condition for test in tests] == [(circuit.cregs[0], 1), (circuit.cregs[1], 1)]
    names = [inst.operation.name for inst in circuit.data]
    assert {"reset", "u", "delay", "unitary", "barrier"} <= set(names)


def instruction_qobj(instruction: dict) -> dict:
    document = qobj("bell")
    document["experiments"][0]["instructions"].append(instruction)
    return document


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda q: instruction_qobj({"name": "snapshot", "qubits": [0]}), "'snapshot'"),
        (lambda q: instruction_qobj({"name": "rx", "qubits": [0], "params": ["theta"]}), "bind"),
        (lambda q: instruction_qobj({"name": "cx", "qubits": [0, 7]}), "qubits"),
        (lambda q: q | {"config": q["config"] | {"memory": True}}, "memory"),
        (lambda q: q | {"config": q["config"] | {"meas_level": 1}}, "meas_level"),
        (lambda q: q | {"type": "PULSE"}, "QASM"),
        (lambda q: q | {"experiments": []}, "non-empty"),
    ],
)
def test_what_cannot_be_translated_is_refused_by_name(change, named: str) -> None:
    with pytest.raises(InvalidQobjError, match=named) as refused:
        circuits_of(change(qobj("bell")), max_qubits=5)
    assert "experiments[0]" in str(refused.value) or "qobj" in str(refused.value)


def test_a_condition_over_part_of_a_register_is_refused() -> None:
    document = qobj("conditional")
    for instruction in document["experiments"][0]["instructions"]:
        if instruction["name"] == "bfunc":
            instruction["mask"] = "0x6"  # c[1] and flag[0]: no single register
    with pytest.raises(InvalidQobjError, match="neither one classical register nor one bit"):
        circuits_of(document, max_qubits=5)


def test_registers_larger_than_the_backend_are_refused_before_they_are_built() -> None:
    document = qobj("bell")
    document["experiments"][0]["header"]["qreg_sizes"] = [["q", 10**9]]
    with pytest.raises(InvalidQobjError, match="the backend has 5"):
        circuits_of(document, max_qubits=5)


def test_the_2021_runner_options_are_translated_or_refused() -> None:
    inputs = {"circuits": [], "init_qubits": True, "rep_delay": 0.001, "shots": 5}
    assert circuit_runner.native_inputs(inputs) == {"circuits": [], "shots": 5}
    with pytest.raises(InvalidInputsError) as refused:
        circuit_runner.native_inputs({"init_qubits": False, "transpiler_options": {"a": 1}})
    assert [p.location for p in refused.value.problems] == [
        "inputs.init_qubits",
        "inputs.transpiler_options",
    ]


def test_the_runner_result_becomes_the_2021_result_dict() -> None:
    bell = QuantumCircuit(
        QuantumRegister(2, "q"), ClassicalRegister(1, "a"), ClassicalRegister(1, "b")
    )
    bell.name = "bell"
    native = {
        "backend": "fake_lima",
        "shots": 10,
        "counts": [{"0 0": 4, "1 1": 6}],
        "measured_qubits": [[3, 4]],
        "quasi_dists": [{"00": 0.4, "11": 0.6}],
    }
    job = SimpleNamespace(
        id="j-1", backend="fake_lima", ended_at=dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    )
    document = circuit_runner.result_document(job, native, {"circuits": bell})
    result = Result.from_dict(json.loads(json.dumps(document)))
    assert result.backend_name == "ibmq_lima"
    assert result.get_counts() == {"0 0": 4, "1 1": 6}
    experiment = document["results"][0]
    assert experiment["data"]["quasiprobabilities"] == {"0x0": 0.4, "0x3": 0.6}
    assert experiment["header"]["final_measurement_mapping"] == {"0": 3, "1": 4}
    assert experiment["header"]["creg_sizes"] == [["a", 1], ["b", 1]]


JOB = {
    "id": "j-2",
    "status": "ERROR_RUNNING_JOB",
    "backend": {"name": "ibmq_lima"},
    "creationDate": "2021-06-01T10:00:00.500000+00:00",
    "name": None,
    "tags": [],
}


@pytest.mark.parametrize(
    ("where", "matches"),
    [
        ({}, True),
        ({"backend.name": "ibmq_lima"}, True),
        ({"backend.name": "ibmq_qasm_simulator"}, False),
        ({"status": {"inq": ["ERROR_RUNNING_JOB"]}}, True),
        ({"or": [{"status": "QUEUED"}, {"status": {"inq": ["ERROR_RUNNING_JOB"]}}]}, True),
        ({"id": {"nin": ["j-2"]}}, False),
        ({"creationDate": {"lte": "2021-06-01T10:00:00.500000+00:00"}}, True),
        ({"creationDate": {"gt": "2021-06-01T10:00:01Z"}}, False),
        ({"creationDate": {"between": ["2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"]}}, True),
        ({"and": [{"tags": "x"}]}, False),
        ({"name": {"regexp": "anything"}}, False),
    ],
)
def test_loopback_filters(where: dict, matches: bool) -> None:
    assert loopback.matches(copy.deepcopy(where), JOB) is matches


def test_an_unknown_loopback_operator_is_refused_by_name() -> None:
    with pytest.raises(loopback.InvalidFilterError, match="'near'"):
        loopback.matches({"status": {"near": "x"}}, JOB)


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ({"status": {"near": "x"}}, "'near'"),
        ({"name": {"regexp": "("}}, "not a valid pattern"),
        ({"and": [{}, {"creationDate": {"gt": "soon"}}]}, "ISO 8601"),
        ({"or": {"status": "QUEUED"}}, "must be a list"),
        ({"id": {"inq": "j-2"}}, "must be a list"),
        # a pattern never runs against a stored value: this one takes hours on a date
        ({"creationDate": {"regexp": "(.*)*x"}}, "regexp is supported on"),
    ],
)
def test_a_bad_filter_is_refused_with_no_job_to_match(where: dict, named: str) -> None:
    """Before: the filter was only looked at job by job, so with no jobs it passed."""
    with pytest.raises(loopback.InvalidFilterError, match=re.escape(named)):
        loopback.check(where)
    with pytest.raises(loopback.InvalidFilterError, match=re.escape(named)):
        loopback.matches(where, JOB)


def test_backend_names_of_that_era() -> None:
    names = ("aer_simulator", "fake_lima", "aer_simulator_gpu")
    registry = BackendRegistry(BackendEntry(name, object, object) for name in names)
    assert NAMES.offered(registry) == [
        ("ibmq_qasm_simulator", "aer_simulator"),
        ("ibmq_lima", "fake_lima"),
    ]
    assert NAMES.require(registry, "ibmq_lima") == "fake_lima"
    with pytest.raises(NotFoundError):
        NAMES.require(registry, "ibmq_montreal")


def test_a_condition_on_one_bit_of_a_register_tests_that_bit() -> None:
    document = qobj("conditional")
    bfunc = next(i for i in document["experiments"][0]["instructions"] if i["name"] == "bfunc")
    bfunc["mask"], bfunc["val"] = "0x2", "0x2"  # c[1] == 1
    (circuit,) = circuits_of(document, max_qubits=5).circuits
    first = next(inst.operation for inst in circuit.data if isinstance(inst.operation, IfElseOp))
    assert first.condition == (circuit.clbits[1], 1)
