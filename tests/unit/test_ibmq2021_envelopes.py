"""The 2021 envelope dialect: what qiskit-ibmq-provider 0.20 writes is read through an
allow-list, what it can read is written its way, and what it cannot is refused by name.

``encoded_by_client.json`` holds values that the real 0.20.2 client's RuntimeEncoder wrote
(with qiskit-terra 0.46); the integration test (tests/acceptance/test_ibmq_client.py) sends
values the other way to the real client.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import BitArray
from qiskit.quantum_info import (
    DensityMatrix,
    Operator,
    Pauli,
    PauliList,
    SparseObservable,
    SparsePauliOp,
    Statevector,
)
from qiskit.result import Result

from qruntime.domain.errors import SerializationError, TooLargeError
from qruntime.serialization import UnsupportedTypeError, ibmq2021

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ibmq2021" / "encoded_by_client.json"
BIG = 10**7


def read(value: object) -> object:
    return ibmq2021.loads(json.dumps(value), max_bytes=BIG)


def round_trip(value: object) -> object:
    return ibmq2021.loads(ibmq2021.dumps(value), max_bytes=BIG)


@pytest.fixture(scope="module")
def encoded() -> dict:
    return json.loads(FIXTURE.read_text())


def test_values_the_2021_client_wrote_are_read(encoded: dict) -> None:
    circuit = read(encoded["qc"])
    theta = next(iter(circuit.parameters))
    expected = QuantumCircuit(2, 2)
    expected.h(0)
    expected.cx(0, 1)
    expected.rz(theta, 1)
    expected.measure([0, 1], [0, 1])
    assert circuit == expected and theta.name == "t"
    assert np.array_equal(read(encoded["arr"]), np.arange(6).reshape(2, 3))
    assert read(encoded["c"]) == 1 + 2j
    assert read(encoded["s"]) == {1, 2}
    assert read(encoded["dt"]) == dt.datetime(2021, 5, 1, 12, 0)
    assert read(encoded["date"]) == dt.datetime(2021, 5, 1)  # one type for both in 2021
    assert read(encoded["spo"]) == SparsePauliOp(["XX", "ZI"], [1, 2j])
    assert read(encoded["sv"]) == Statevector([1, 0])
    assert read(encoded["pauli"]) == Pauli("XZ")
    matrix = read(encoded["sp"])
    assert isinstance(matrix, sp.csr_matrix) and (matrix != sp.csr_matrix(np.eye(3))).nnz == 0
    assert read(encoded["objarr"]).tolist() == ["a", "1"]  # as the 2021 service read it too
    assert read(encoded["intkeys"]) == {"1": "a"}


def test_an_instruction_is_refused_by_name(encoded: dict) -> None:
    with pytest.raises(SerializationError, match="'Instruction'"):
        read(encoded["instr"])


@pytest.mark.parametrize(
    "value",
    [
        np.arange(12.0).reshape(3, 4),
        np.array([True, False]),
        1.5 - 2j,
        {1, 2, 3},
        dt.datetime(2021, 11, 5, 12, 30, tzinfo=dt.UTC),
        SparsePauliOp(["XZ", "YY"], [1, 0.5j]),
        PauliList(["XI", "ZZ"]),
        Pauli("-iXY"),
        Statevector([0, 1]),
        DensityMatrix([1, 0]),
        Operator(np.eye(2)),
        sp.csr_matrix(np.eye(4)),
        sp.coo_array(np.eye(3)),
        {"nested": [np.zeros(2), {"deeper": 3j}]},
    ],
    ids=lambda v: type(v).__name__,
)
def test_what_it_can_read_goes_back_its_way(value: object) -> None:
    back = round_trip(value)
    if sp.issparse(value):
        assert type(back) is type(value) and (back != value).nnz == 0
    elif isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and np.array_equal(back, value)
    elif isinstance(value, dict):
        assert np.array_equal(back["nested"][0], value["nested"][0])
        assert back["nested"][1] == value["nested"][1]
    else:
        assert back == value


def test_the_wire_shapes_are_the_2021_ones() -> None:
    written = json.loads(ibmq2021.dumps({"a": np.arange(3), "op": Pauli("X")}))
    raw = zlib.decompress(base64.b64decode(written["a"]["__value__"]))  # zlib around .npy
    assert raw.startswith(b"\x93NUMPY")
    assert written["op"] == {
        "__type__": "settings",
        "__module__": "qiskit.quantum_info.operators.symplectic.pauli",
        "__class__": "Pauli",
        "__value__": {"data": "X"},
    }
    assert json.loads(ibmq2021.dumps(np.int64(7))) == 7  # no numpy scalars in 2021
    assert json.loads(ibmq2021.dumps(Result.from_dict(_result())))["__type__"] == "Result"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (QuantumCircuit(1), "QuantumCircuit"),
        (Parameter("x"), "Parameter"),
        (SparseObservable("XZ"), "SparseObservable"),
        (BitArray.from_counts({"0": 3}), "BitArray"),
    ],
)
def test_what_it_cannot_read_is_refused_by_name(value: object, named: str) -> None:
    with pytest.raises(UnsupportedTypeError, match=named) as refused:
        ibmq2021.dumps({"x": value})
    assert ibmq2021.CLIENT in str(refused.value)
    if named in ("QuantumCircuit", "Parameter"):
        assert "QPY" in str(refused.value)


@pytest.mark.parametrize(
    ("module", "cls"),
    [
        ("os", "system"),
        ("qiskit.quantum_info.operators.symplectic.pauli", "PauliList"),  # wrong module
        ("qiskit.circuit.quantumcircuit", "QuantumCircuit"),
    ],
)
def test_settings_envelopes_name_only_the_allowed_classes(module: str, cls: str) -> None:
    envelope = {"__type__": "settings", "__module__": module, "__class__": cls, "__value__": {}}
    with pytest.raises(SerializationError, match="is not accepted"):
        read(envelope)


def test_compressed_values_inflate_within_the_budget() -> None:
    bomb = zlib.compress(b"\0" * 2_000_000)
    value = {"__type__": "ndarray", "__value__": base64.b64encode(bomb).decode()}
    with pytest.raises(TooLargeError, match="QRUNTIME_MAX_INPUTS_BYTES"):
        ibmq2021.loads(json.dumps(value), max_bytes=1_000_000)
    # the budget is the whole payload's, not each value's
    small = ibmq2021.dumps(np.zeros(50_000))
    with pytest.raises(TooLargeError):
        ibmq2021.loads(f"[{small}, {small}, {small}]", max_bytes=1_000_000)


def test_an_npz_with_a_lying_member_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("format.npy", _npy(np.array(b"csr")))
        archive.writestr("pickle.npy", b"anything")
    value = {"__type__": "spmatrix", "__value__": base64.b64encode(buffer.getvalue()).decode()}
    with pytest.raises(SerializationError, match=r"unexpected member 'pickle\.npy'"):
        read(value)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _result() -> dict:
    return {
        "backend_name": "b",
        "backend_version": "1",
        "qobj_id": "q",
        "job_id": "j",
        "success": True,
        "results": [{"shots": 4, "success": True, "data": {"counts": {"0x0": 4}}}],
    }
