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
from qiskit.primitives import (
    BackendEstimatorV2,
    BackendSamplerV2,
    BitArray,
    DataBin,
    PrimitiveResult,
    PubResult,
    SamplerPubResult,
)
from qiskit.primitives.containers import BindingsArray, ObservablesArray
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
    # Not ``out == expr``: since Qiskit 2.6, QPY may return ``(-1)*phi*θ`` as ``-phi*θ``, and
    # equality compares the expression trees. Same parameters and same values are what count.
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


# --- qiskit primitives (V2) ------------------------------------------------------------------


def wire(obj):
    """The JSON tree the encoder sends for ``obj``, to build (malformed) envelopes from."""
    return json.loads(encode(obj))


def assert_same_bits(a: BitArray, b: BitArray) -> None:
    assert type(b) is BitArray
    assert_same(a.array, b.array)
    assert (a.num_bits, a.shape, a.num_shots) == (b.num_bits, b.shape, b.num_shots)
    assert a == b


@st.composite
def bit_arrays(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    num_shots = draw(st.integers(0, 5))
    num_bits = draw(st.integers(0, 20))
    bits = draw(hnp.arrays(np.bool_, (*shape, num_shots, num_bits)))
    return BitArray.from_bool_array(bits)


@FAST
@given(bit_arrays())
def test_bit_array_round_trip(bits):
    out = roundtrip(bits)
    assert_same_bits(bits, out)
    if bits.ndim == 0 and bits.num_bits > 0:  # qiskit's get_counts fails on 0 bits, 0 shots
        assert out.get_counts() == bits.get_counts()


def test_bit_array_counts_survive():
    bits = BitArray.from_samples(["0101", "1111", "0101", "0000"], num_bits=4)
    out = roundtrip(bits)
    assert_same_bits(bits, out)
    assert out.get_counts() == {"0101": 2, "1111": 1, "0000": 1}


def test_data_bin_round_trip_with_arrays_bit_arrays_and_plain_values():
    bits = BitArray.from_bool_array(np.arange(2 * 3 * 4 * 9).reshape(2, 3, 4, 9) % 3 == 0)
    data = DataBin(
        meas=bits,
        evs=np.linspace(0, 1, 6).reshape(2, 3),
        stds=np.full((2, 3, 5), 0.25, dtype=np.float32),
        label="raw",
        shape=(2, 3),
    )
    out = roundtrip(data)
    assert type(out) is DataBin
    assert out.shape == (2, 3) and list(out.keys()) == list(data.keys())
    assert_same_bits(data.meas, out.meas)
    assert_same(data.evs, out.evs)
    assert_same(data.stds, out.stds)
    assert out.label == "raw"


def test_numpy_scalar_fields_stay_numpy():
    """A 0-d estimator pub has ``stds`` as np.float64, which plain json would make a float."""
    data = DataBin(evs=np.array(0.5), stds=np.float64(0.25), count=np.int32(3), plain=1.5)
    out = roundtrip(data)
    for name in data:
        assert_same(data[name], out[name])


def test_empty_data_bin_round_trip():
    out = roundtrip(DataBin())
    assert type(out) is DataBin and len(out) == 0 and out.shape == ()


METADATA = {
    "shots": 100,
    "seed": np.int64(7),
    "precision": np.float32(0.5),
    "flags": [True, None, "x"],
    "circuit_metadata": {"nested": {"angle": 0.25, "ids": np.arange(3)}},
}


@pytest.mark.parametrize("cls", [PubResult, SamplerPubResult])
def test_pub_result_round_trip_keeps_class_data_and_metadata(cls):
    result = cls(DataBin(evs=np.array([1.0, -0.5]), shape=(2,)), metadata=METADATA)
    out = roundtrip(result)
    assert type(out) is cls
    assert_same(result.data.evs, out.data.evs)
    assert out.data.shape == (2,)
    assert_same(METADATA, out.metadata)


def test_primitive_result_round_trip_of_mixed_pub_results():
    result = PrimitiveResult(
        [
            SamplerPubResult(DataBin(c=BitArray.from_samples(["1", "0"]))),
            PubResult(DataBin(evs=np.array(0.5), stds=np.array(0.1))),
        ],
        metadata={"version": 2, "dt": np.float32(0.25)},
    )
    out = roundtrip(result)
    assert type(out) is PrimitiveResult and len(out) == 2
    assert [type(r) for r in out] == [SamplerPubResult, PubResult]
    assert out[0].data.c.get_counts() == {"1": 1, "0": 1}
    assert_same(result[1].data.evs, out[1].data.evs)
    assert_same(result.metadata, out.metadata)


@pytest.fixture(scope="module")
def aer():
    from qiskit_aer import AerSimulator

    return AerSimulator()


def test_sampler_result_round_trip(aer):
    theta = Parameter("θ")
    qc = QuantumCircuit(2, 2)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    sampler = BackendSamplerV2(backend=aer, options={"seed_simulator": 3})
    result = sampler.run([(qc, [[0.0], [np.pi / 2], [np.pi]], 200), (qc, [1.0])]).result()
    out = roundtrip(result)
    assert type(out) is PrimitiveResult and out.metadata == result.metadata
    for mine, theirs in zip(result, out, strict=True):
        assert type(theirs) is SamplerPubResult
        assert_same_bits(mine.data.c, theirs.data.c)
        assert theirs.data.shape == mine.data.shape
        assert theirs.join_data().get_counts() == mine.join_data().get_counts()
        assert theirs.metadata == mine.metadata
    assert out[0].data.c.get_counts(0) == {"00": 200}


def test_estimator_result_round_trip(aer):
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    estimator = BackendEstimatorV2(backend=aer, options={"seed_simulator": 5})
    result = estimator.run([(qc, [["ZZ", "XX"], ["IZ", "XI"]]), (qc, "YY", None, 0.1)]).result()
    out = roundtrip(result)
    for mine, theirs in zip(result, out, strict=True):
        assert type(theirs) is PubResult
        assert_same(mine.data.evs, theirs.data.evs)
        assert_same(mine.data.stds, theirs.data.stds)
        assert theirs.data.shape == mine.data.shape
        assert theirs.metadata == mine.metadata
    assert out[0].data.evs[0].tolist() == [1.0, 1.0]


BINDINGS = [
    BindingsArray({("a", "b"): np.arange(6.0).reshape(3, 2), "c": np.ones(3)}),
    BindingsArray({ParameterVector("v", 2): np.zeros((2, 4, 2), dtype=np.float32)}),
    BindingsArray(shape=(5,)),
    BindingsArray({"x": 0.5}),
]


@pytest.mark.parametrize("bindings", BINDINGS, ids=["tuples", "vector", "empty", "scalar"])
def test_bindings_array_round_trip(bindings):
    out = roundtrip(bindings)
    assert type(out) is BindingsArray and out.shape == bindings.shape
    assert out.data.keys() == bindings.data.keys()
    for key, values in bindings.data.items():
        assert_same(values, out.data[key])


def test_bindings_array_binds_a_circuit_after_round_trip():
    theta = Parameter("θ")
    qc = QuantumCircuit(1)
    qc.rx(theta, 0)
    bindings = BindingsArray({theta: [0.1, 0.2]})
    bound = roundtrip(bindings).bind_all(qc)
    assert list(bound) == [qc.assign_parameters([0.1]), qc.assign_parameters([0.2])]


OBSERVABLES = [
    ObservablesArray.coerce([["XX", {"ZZ": 2, "IY": -0.5}], [SparsePauliOp("IZ"), Pauli("ZI")]]),
    ObservablesArray.coerce("XYZ"),
    ObservablesArray(np.empty((0, 2), dtype=object), num_qubits=3),
]


@pytest.mark.parametrize("obs", OBSERVABLES, ids=["2x2", "0-d", "empty"])
def test_observables_array_round_trip(obs):
    out = roundtrip(obs)
    assert type(out) is ObservablesArray
    assert (out.shape, out.num_qubits) == (obs.shape, obs.num_qubits)
    assert out.equivalent(obs)
    assert out.tolist() == obs.tolist()


def test_primitive_result_of_other_items_is_refused_by_the_encoder():
    with pytest.raises(UnsupportedTypeError, match="PubResult items"):
        encode(PrimitiveResult([{"not": "a pub result"}]))


def _bits_wire():
    return wire(BitArray.from_samples(["01", "10"]))["__value__"]


def _malformed_primitives():
    bits = _bits_wire()
    data = wire(DataBin(x=np.arange(2), shape=(2,)))
    pub = wire(PubResult(DataBin()))["__value__"]
    return [
        ("BitArray", {"array": bits["array"]}, "missing \\['num_bits'\\]"),
        ("BitArray", {**bits, "shape": [1]}, "unexpected \\['shape'\\]"),
        ("BitArray", {**bits, "num_bits": 9}, "bytes per shot"),
        ("BitArray", {**bits, "num_bits": -1}, ">= 0"),
        ("BitArray", {**bits, "num_bits": True}, "integer num_bits"),
        ("BitArray", {**bits, "array": [[1]]}, "ndarray of packed bits"),
        ("BitArray", {**bits, "array": wire(np.ones((2, 1), np.int64))}, "dtype uint8"),
        ("BitArray", [bits["array"], 2], "BitArray dict"),
        ("DataBin", {"shape": [3], "fields": data["__value__"]["fields"]}, "lead with the shape"),
        ("DataBin", {"shape": [-1], "fields": {}}, ">= 0"),
        ("DataBin", {"shape": "()", "fields": {}}, "shape list"),
        ("DataBin", {"shape": [], "fields": {"__class__": 1}}, "must not start with '__'"),
        ("DataBin", {"shape": [], "fields": {"keys": 1}}, "Cannot assign"),
        ("DataBin", {"shape": [], "fields": []}, "dict of fields"),
        ("PubResult", {**pub, "data": {"evs": 1}}, "DataBin as data"),
        ("PubResult", {**pub, "metadata": []}, "metadata dict"),
        ("SamplerPubResult", {"data": pub["data"]}, "missing \\['metadata'\\]"),
        ("PrimitiveResult", {"pub_results": [1], "metadata": {}}, "not a PubResult"),
        ("PrimitiveResult", {"pub_results": {}, "metadata": {}}, "list of pub results"),
        ("PrimitiveResult", {"pub_results": [], "metadata": None}, "metadata dict"),
        ("BindingsArray", {"shape": [], "data": [[["a"]]]}, "\\[names, values\\] entry"),
        ("BindingsArray", {"shape": [], "data": [[[1], wire(np.ones(1))]]}, "parameter name"),
        ("BindingsArray", {"shape": [], "data": [[["a"], [1.0]]]}, "ndarray of parameter values"),
        ("BindingsArray", {"shape": [2], "data": [[["a"], wire(np.ones((3, 1)))]]}, "shape"),
        ("ObservablesArray", {"num_qubits": 1, "shape": [2], "observables": []}, "do not fill"),
        ("ObservablesArray", {"num_qubits": 1, "shape": [], "observables": ["X"]}, "not a Sparse"),
        (
            "ObservablesArray",
            {**wire(OBSERVABLES[1])["__value__"], "num_qubits": 2},
            "number of qubits",
        ),
    ]


@pytest.mark.parametrize(("type_name", "value", "message"), _malformed_primitives())
def test_malformed_primitive_envelopes_say_what_is_wrong(type_name, value, message):
    with pytest.raises(SerializationError) as info:
        decode(envelope(type_name, value))
    assert f"malformed __value__ for __type__ '{type_name}'" in str(info.value)
    assert info.match(message)


def test_malformed_bit_array_inside_a_result_names_the_bit_array():
    text = encode(PrimitiveResult([SamplerPubResult(DataBin(c=BitArray.from_samples(["1"])))]))
    tampered = text.replace('"num_bits": 1', '"num_bits": 12')
    assert tampered != text
    with pytest.raises(SerializationError, match=r"__type__ 'BitArray'.*bytes per shot"):
        decode(tampered)


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
