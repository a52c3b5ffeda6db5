"""Round trips and refusals of qruntime.serialization's JSON envelopes."""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import io
import json
import math
import pickle
import sys

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector, ParameterVectorElement
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

from qruntime import serialization
from qruntime.domain.errors import SerializationError
from qruntime.serialization import (
    RuntimeDecoder,
    RuntimeEncoder,
    UnsupportedTypeError,
    decode,
    encode,
    known_types,
)

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QISKIT = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def roundtrip(obj):
    """Go through the public json entry points, as callers do."""
    return json.loads(json.dumps(obj, cls=RuntimeEncoder), cls=RuntimeDecoder)


def envelope(type_name, value) -> str:
    return json.dumps({"__type__": type_name, "__value__": value})


def assert_same(a, b) -> None:
    """Structural equality that understands arrays, numpy scalars and NaN."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype
        assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=a.dtype.kind in "fc")
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    elif isinstance(a, dt.datetime):
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None)
        assert a.utcoffset() == b.utcoffset()
    else:
        assert a == b


# --- strategies ------------------------------------------------------------------------------

numeric_dtypes = (
    hnp.boolean_dtypes()
    | hnp.integer_dtypes()
    | hnp.unsigned_integer_dtypes()
    | hnp.floating_dtypes()
    | hnp.complex_number_dtypes()
)
arrays = hnp.arrays(
    numeric_dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
)
# float64 scalars are Python floats to json, so they are covered by a separate test.
scalar_dtypes = numeric_dtypes.filter(lambda d: (d.kind, d.itemsize) != ("f", 8))
numpy_scalars = scalar_dtypes.flatmap(lambda d: hnp.arrays(d, ())).map(lambda a: a[()])
complexes = st.complex_numbers(allow_nan=False)
datetimes = st.datetimes() | st.datetimes(timezones=st.timezones())
hashables = st.integers() | st.text(max_size=5) | complexes | st.booleans()
sets = st.sets(hashables, max_size=5) | st.frozensets(hashables, max_size=5)
keys = st.text(alphabet="abcdefghij", min_size=1, max_size=4)
leaves = (
    st.none()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | complexes
    | sets
    | datetimes
    | st.dates()
    | numpy_scalars
    | hnp.arrays(numeric_dtypes, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
)
nested = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)


# --- builtins and numpy ----------------------------------------------------------------------


@FAST
@given(arrays)
def test_ndarray_round_trip(arr):
    assert_same(arr, roundtrip(arr))


@pytest.mark.parametrize(
    "arr",
    [
        np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        np.array(3.5),
        np.zeros((0, 3), dtype=np.complex64),
        np.array([True, False]),
        np.arange(6, dtype=">u8").reshape(2, 3),
    ],
    ids=["fortran", "0-d", "empty", "bool", "big-endian"],
)
def test_ndarray_special_layouts(arr):
    out = roundtrip(arr)
    assert_same(arr, out)
    assert out.flags.f_contiguous == arr.flags.f_contiguous


@FAST
@given(complexes)
def test_complex_round_trip(c):
    assert_same(c, roundtrip(c))


@FAST
@given(numpy_scalars)
def test_numpy_scalar_round_trip(x):
    assert_same(x, roundtrip(x))


def test_float64_scalar_becomes_plain_float():
    out = roundtrip(np.float64(1.25))
    assert type(out) is float and out == 1.25


@FAST
@given(sets)
def test_set_round_trip(s):
    assert_same(s, roundtrip(s))


@FAST
@given(datetimes)
def test_datetime_round_trip(d):
    assert_same(d, roundtrip(d))


@FAST
@given(st.dates())
def test_date_round_trip(d):
    assert_same(d, roundtrip(d))


@FAST
@given(nested)
def test_nested_round_trip(value):
    assert_same(value, decode(encode(value)))


# --- qiskit circuits and parameters ----------------------------------------------------------


@st.composite
def expressions(draw, params):
    """A random expression built from a pool of parameters, safe to evaluate on [-1, 1]."""
    expr = draw(st.sampled_from(params))
    for _ in range(draw(st.integers(0, 3))):
        other = draw(st.sampled_from(params) | st.floats(-2, 2))
        op = draw(st.sampled_from(["add", "sub", "mul", "sin", "cos", "exp", "square"]))
        if op == "add":
            expr = expr + other
        elif op == "sub":
            expr = other - expr
        elif op == "mul":
            expr = expr * other
        elif op == "square":
            expr = expr**2
        else:
            expr = getattr(expr, op)()
    return expr


def parameter_pool():
    vec = ParameterVector("v", 3)
    return [Parameter("θ"), Parameter("phi"), vec[0], vec[2]]


@st.composite
def circuits(draw):
    pool = parameter_pool()
    n = draw(st.integers(1, 3))
    qc = QuantumCircuit(n, n)
    for _ in range(draw(st.integers(0, 6))):
        gate = draw(st.sampled_from(["rx", "ry", "rz", "p", "h", "cx", "measure"]))
        q = draw(st.integers(0, n - 1))
        if gate in {"rx", "ry", "rz", "p"}:
            getattr(qc, gate)(draw(expressions(pool)), q)
        elif gate == "cx" and n > 1:
            qc.cx(q, (q + 1) % n)
        elif gate == "measure":
            qc.measure(q, q)
        else:
            qc.h(q)
    return qc


@QISKIT
@given(circuits())
def test_circuit_round_trip(qc):
    out = roundtrip(qc)
    assert isinstance(out, QuantumCircuit)
    assert out == qc
    assert [p.name for p in out.parameters] == [p.name for p in qc.parameters]


def test_parameterised_circuit_binds_after_round_trip():
    theta = Parameter("θ")
    qc = QuantumCircuit(1)
    qc.rx(2 * theta, 0)
    out = roundtrip(qc)
    (param,) = out.parameters
    assert param == theta  # identity (uuid) survives
    assert out.assign_parameters({param: 0.5}) == qc.assign_parameters({theta: 0.5})


@QISKIT
@given(st.data())
def test_expression_round_trip(data):
    pool = parameter_pool()
    expr = data.draw(expressions(pool))
    out = roundtrip(expr)
    assert isinstance(out, ParameterExpression)
    assert out == expr
    assert out.parameters == expr.parameters
    values = {p: data.draw(st.floats(-1, 1)) for p in expr.parameters}
    assert complex(out.bind(values)) == pytest.approx(complex(expr.bind(values)))


@pytest.mark.parametrize("kind", [Parameter, ParameterVectorElement])
def test_parameter_kinds_preserved(kind):
    param = Parameter("a") if kind is Parameter else ParameterVector("w", 2)[1]
    out = roundtrip(param)
    assert type(out) is kind and out == param and out.name == param.name


def test_complex_coefficient_in_expression_is_a_known_limitation():
    theta = Parameter("θ")
    assert roundtrip(theta * 1j) == theta  # QPY drops the 1j


# --- qiskit results and quantum_info ---------------------------------------------------------


@pytest.fixture(scope="module")
def bell_result() -> Result:
    from qiskit_aer import AerSimulator

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    sim = AerSimulator()
    return sim.run(transpile(qc, sim), shots=100, seed_simulator=1).result()


def test_result_round_trip(bell_result):
    out = roundtrip({"result": bell_result})["result"]
    assert isinstance(out, Result)
    assert out.get_counts() == bell_result.get_counts()
    assert out.backend_name == bell_result.backend_name


QUANTUM_INFO = [
    SparsePauliOp(["XI", "ZZ", "YX"], [1.0, 2j, -0.5]),
    PauliList(["XY", "-iZZ", "+1jIX"]),
    Pauli("-iXYZ"),
    Statevector([1, 1j]) / np.sqrt(2),
    Statevector.from_label("01+"),
    DensityMatrix.from_label("0+"),
    Operator([[0, 1], [1, 0]]),
    Operator(np.eye(6), input_dims=(2, 3), output_dims=(3, 2)),
    SparseObservable.from_sparse_list([("XZ+", [0, 1, 3], 1.5j), ("r", [2], -1)], num_qubits=4),
    SparseObservable.zero(2),
]


@pytest.mark.parametrize("obj", QUANTUM_INFO, ids=lambda o: type(o).__name__)
def test_quantum_info_round_trip(obj):
    out = roundtrip(obj)
    assert type(out) is type(obj)
    assert out == obj


def test_parameterised_sparse_pauli_op_round_trip():
    a = Parameter("a")
    op = SparsePauliOp(["X", "Z"], np.array([2 * a, 1.0], dtype=object))
    out = roundtrip(op)
    assert out.paulis == op.paulis
    assert out.coeffs.dtype == object
    bound = out.assign_parameters({a: 0.25})
    assert bound == op.assign_parameters({a: 0.25})


# --- scipy.sparse ----------------------------------------------------------------------------

SPARSE_FORMATS = ["bsr", "coo", "csc", "csr", "dia", "dok", "lil"]


@pytest.mark.parametrize("kind", ["array", "matrix"])
@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_sparse_round_trip(fmt, kind):
    dense = np.array([[0, 1.5, 0], [2, 0, 0], [0, 0, -3j]])
    m = getattr(sp, f"{fmt}_{kind}")(dense)
    out = roundtrip(m)
    assert out.format == fmt
    assert isinstance(out, sp.sparray if kind == "array" else sp.spmatrix)
    assert out.dtype == m.dtype and out.shape == m.shape
    assert np.array_equal(out.toarray(), m.toarray())


@FAST
@given(
    hnp.arrays(
        st.sampled_from([np.int8, np.uint32, np.float32, np.complex128, np.bool_]),
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
    ),
    st.sampled_from(["csr", "csc", "coo"]),
    st.sampled_from([sp.csr_array, sp.csr_matrix]),
)
def test_sparse_random_round_trip(dense, fmt, base):
    dense = np.nan_to_num(dense) if dense.dtype.kind in "fc" else dense
    m = base(dense).asformat(fmt)
    out = roundtrip(m)
    assert type(out) is type(m)
    assert out.dtype == m.dtype
    assert np.array_equal(out.toarray(), m.toarray())


def test_one_dimensional_sparse_array_round_trip():
    v = sp.coo_array(np.array([0, 1, 0, 2]))
    out = roundtrip(v)
    assert type(out) is sp.coo_array and np.array_equal(out.toarray(), v.toarray())


# --- refusals --------------------------------------------------------------------------------


def test_unknown_type_names_it_and_lists_known_ones():
    with pytest.raises(SerializationError) as info:
        decode(envelope("Frobnicator", 1))
    message = str(info.value)
    assert "'Frobnicator'" in message
    for name in ("ndarray", "QuantumCircuit", "SparsePauliOp"):
        assert name in message


@pytest.mark.parametrize(
    "type_name",
    ["os.system", "builtins.eval", "subprocess.Popen", "qruntime_evil_mod.run", "__import__"],
)
def test_module_paths_are_refused_without_import(type_name):
    before = set(sys.modules)
    with pytest.raises(SerializationError, match="unknown __type__"):
        decode(envelope(type_name, ["echo pwned"]))
    assert "qruntime_evil_mod" not in sys.modules
    assert set(sys.modules) - before == set()


TRIPPED: list[str] = []


def _trip() -> None:
    TRIPPED.append("unpickled")


class _Bomb:
    def __reduce__(self):
        return (_trip, ())


def test_pickle_envelope_is_refused():
    payload = base64.b64encode(pickle.dumps(_Bomb())).decode()
    for name in ("pickle", "dill", "__pickle__", "object"):
        with pytest.raises(SerializationError, match="unknown __type__"):
            decode(envelope(name, payload))
    assert TRIPPED == []


def test_object_npy_payload_is_refused_without_unpickling():
    buf = io.BytesIO()
    np.save(buf, np.array([_Bomb()], dtype=object), allow_pickle=True)
    payload = base64.b64encode(buf.getvalue()).decode()
    for name in ("ndarray", "numpy_scalar"):
        with pytest.raises(SerializationError, match="malformed __value__"):
            decode(envelope(name, payload))
    assert TRIPPED == []


def test_npz_archive_is_not_accepted_as_array():
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3))
    with pytest.raises(SerializationError, match="malformed"):
        decode(envelope("ndarray", base64.b64encode(buf.getvalue()).decode()))


def test_npy_header_claiming_a_huge_shape_is_refused_before_allocating():
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    np.lib.format.write_array_header_1_0(buf, header)
    with pytest.raises(SerializationError, match="does not match header shape"):
        decode(envelope("ndarray", base64.b64encode(buf.getvalue()).decode()))


def test_decoder_source_has_no_dynamic_imports_or_pickle():
    source = inspect.getsource(serialization)
    for banned in ("import pickle", "importlib", "__import__(", "allow_pickle=True", "eval("):
        assert banned not in source


def _truncated_npy() -> str:
    buf = io.BytesIO()
    np.save(buf, np.arange(10), allow_pickle=False)
    return base64.b64encode(buf.getvalue()[:-8]).decode()


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("ndarray", "not base64!!"),
        ("ndarray", base64.b64encode(b"hello world").decode()),
        ("ndarray", _truncated_npy()),
        ("ndarray", 12),
        ("numpy_scalar", base64.b64encode(b"\x93NUMPY junk").decode()),
        ("complex", [1, 2, 3]),
        ("complex", ["1", "2"]),
        ("complex", [True, 0]),
        ("complex", 5),
        ("set", "abc"),
        ("set", [[1, 2]]),
        ("frozenset", {"a": 1}),
        ("datetime", "yesterday"),
        ("date", 20240101),
        ("QuantumCircuit", "%%%"),
        ("QuantumCircuit", base64.b64encode(b"QISKIT garbage").decode()),
        ("Parameter", base64.b64encode(b"nope").decode()),
        ("Result", [1, 2]),
        ("Result", {"unexpected": 1}),
        ("Operator", {"data": [[1, 0], [0, 1]], "bogus": True}),
        ("Pauli", "X"),
        ("SparseObservable", {"num_qubits": 1, "terms": [["XX", [0], 1.0]]}),
        ("scipy_sparse", {"format": "evil", "kind": "array"}),
        ("scipy_sparse", {"format": "csr", "kind": "array", "dtype": "O"}),
        ("scipy_sparse", "csr"),
    ],
)
def test_malformed_values_raise_serialization_error(type_name, value):
    with pytest.raises(SerializationError, match=f"malformed __value__ for __type__ '{type_name}'"):
        decode(envelope(type_name, value))


def test_parameter_type_mismatch_is_refused():
    text = encode(2 * Parameter("x"))
    with pytest.raises(SerializationError, match="expected a Parameter"):
        decode(text.replace('"ParameterExpression"', '"Parameter"'))


def test_invalid_json_raises_serialization_error():
    with pytest.raises(SerializationError, match="invalid JSON"):
        decode("{not json")


def test_object_arrays_refused_by_encoder():
    with pytest.raises(TypeError, match="object arrays are not supported"):
        json.dumps(np.array([object()], dtype=object), cls=RuntimeEncoder)
    with pytest.raises(SerializationError):
        encode({"x": np.array([1, "a"], dtype=object)})


def test_unsupported_type_is_a_type_error_naming_the_type():
    class Widget:
        pass

    with pytest.raises(TypeError, match="Widget") as info:
        encode([Widget()])
    assert isinstance(info.value, UnsupportedTypeError)


@pytest.mark.parametrize(
    "payload",
    [
        {"__type__": "ndarray", "__value__": "AAAA", "extra": 1},
        {"__type__": "os.system"},
        {"__value__": [1, 2]},
        {"__type__": "complex", "__value__": [1, 2], "note": "kept"},
    ],
)
def test_dicts_that_are_not_exact_envelopes_pass_through(payload):
    assert decode(json.dumps(payload)) == payload
    assert decode(json.dumps({"outer": [payload]})) == {"outer": [payload]}


def test_bytes_input_and_plain_json_unchanged():
    value = {"a": [1, 2.5, None, True, "x"], "b": {}}
    assert decode(encode(value).encode()) == value
    assert encode(value) == json.dumps(value)


def test_known_types_cover_the_table():
    assert known_types() == [codec.name for codec in serialization.CODECS]
    assert len(set(known_types())) == len(known_types())


def test_dok_is_claimed_even_though_it_is_a_dict():
    m = sp.dok_array(np.eye(2))
    out = roundtrip({"m": [m], "plain": {"k": (1, 2)}})
    assert type(out["m"][0]) is sp.dok_array
    assert np.array_equal(out["m"][0].toarray(), np.eye(2))
    assert out["plain"] == {"k": [1, 2]}


def test_circular_reference_is_a_value_error():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        encode(loop)
