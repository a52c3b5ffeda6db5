"""Property-based fuzzing of the parsers that read what strangers send.

``load_metadata``, ``serialization.decode`` / ``RuntimeDecoder`` and ``validate_inputs`` either
return a value or raise their documented error with a message; never another exception (a
``TypeError``, ``KeyError``, ``RecursionError``... would be a 500 in the server), and never a hang
(the profile's ``deadline``). Profiles live in ``conftest.py``; ``HYPOTHESIS_PROFILE=long`` runs
many more examples.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import string
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from fuzz_support import fuzz_settings
from hypothesis import example, given
from qiskit import QuantumCircuit

from qruntime.domain import InvalidInputsError, InvalidMetadataError, ProgramMetadata
from qruntime.domain.inputs import validate_inputs
from qruntime.domain.metadata import SPEC_KEYS, TOP_LEVEL_KEYS, load_metadata
from qruntime.serialization import RuntimeDecoder, SerializationError, decode, known_types

# --- strategies ------------------------------------------------------------------------------

#: What ``json.loads`` can hand back, NaN and the infinities included (Python's parser and
#: FastAPI's accept them, and ``1e999`` parses as ``inf``).
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "-", "int", "str", "integer", "$ref", "__type__", "\x00", "é"])
)

json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

SCHEMA_KEYWORDS = [
    "$schema",
    "$ref",
    "$defs",
    "type",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "multipleOf",
    "enum",
    "const",
    "anyOf",
    "allOf",
    "not",
    "pattern",
    "format",
    "default",
    "minItems",
    "uniqueItems",
    "description",
]
DIALECTS = [
    "https://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-04/schema#",
    "http://json-schema.org/draft-03/schema#",
    "https://example.com/not-a-dialect",
]
TYPES = ["object", "array", "string", "integer", "number", "boolean", "null", "any", "int"]

schema_values = st.recursive(
    scalars
    | st.sampled_from(TYPES)
    | st.sampled_from(DIALECTS)
    | st.sampled_from(["#", "#/$defs/x", "#/nope", "http://example.com/s.json", "(", "^a+$"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(SCHEMA_KEYWORDS) | st.text(max_size=5), children, max_size=4
        )
    ),
    max_leaves=16,
)

legacy_entries = st.lists(
    st.dictionaries(
        st.sampled_from(["name", "description", "type", "required", "default", "minimum"]),
        st.sampled_from(["x", "y", "-", "int", "float", "str", "QuantumCircuit"]) | scalars,
        max_size=5,
    )
    | scalars,
    max_size=4,
)

specs = st.dictionaries(
    st.sampled_from(SPEC_KEYS) | st.text(max_size=6),
    schema_values
    | legacy_entries
    | st.dictionaries(st.sampled_from(["min_num_qubits", "x"]), scalars, max_size=2),
    max_size=4,
)

names = st.sampled_from(["hello-world", "a", "A", "x_y", "-", "a" * 80, "sample program"]) | scalars

metadata_like = st.dictionaries(
    st.sampled_from(TOP_LEVEL_KEYS + SPEC_KEYS) | st.text(max_size=6),
    st.one_of(
        names,
        st.integers(min_value=-5, max_value=40_000),
        st.floats(),
        specs,
        schema_values,
        legacy_entries,
        json_values,
    ),
    max_size=8,
)


def nested(depth: int, leaf: Any = 1, *, as_list: bool = False) -> Any:
    """A value nested ``depth`` levels deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


def valid_metadata(**spec: Any) -> dict[str, Any]:
    return {"name": "fuzzed", "max_execution_time": 60, "spec": spec}


# --- load_metadata ---------------------------------------------------------------------------


def check_metadata(data: Any) -> None:
    try:
        meta = load_metadata(data)
    except InvalidMetadataError as exc:
        assert exc.problems, exc
        for problem in exc.problems:
            assert problem.location.startswith("metadata"), problem
            assert isinstance(problem.message, str) and problem.message, problem
        return
    assert isinstance(meta, ProgramMetadata)
    out = meta.to_json_dict()
    # Accepted metadata is plain JSON (it is stored and served as such) and loads back equal.
    json.dumps(out, allow_nan=False)
    assert load_metadata(out) == meta


@fuzz_settings()
@given(metadata_like)
@example({"name": "a", "max_execution_time": 1, "spec": {"parameters": {"minimum": math.nan}}})
@example({"name": "a", "max_execution_time": 1, "spec": {"parameters": {"enum": [math.inf]}}})
@example(valid_metadata(backend_requirements={"min_num_qubits": 2, "x": -math.inf}))
@example(valid_metadata(parameters=nested(3000)))
@example(valid_metadata(parameters=nested(600)))
@example(nested(5000, as_list=True))
def test_load_metadata_on_metadata_like_dicts(data: Any) -> None:
    check_metadata(data)


@fuzz_settings()
@given(json_values)
def test_load_metadata_on_any_json_value(data: Any) -> None:
    check_metadata(data)


@fuzz_settings()
@given(st.text() | st.binary() | metadata_like.map(json.dumps))
@example('{"name": "a", "max_execution_time": 1, "spec": {"parameters": {"minimum": 1e999}}}')
@example('{"name": "a", "max_execution_time": 1, "spec": {"parameters": {"minimum": NaN}}}')
@example('{"name": "a", "max_execution_time": 1, "name": "b"}')
@example("[" * 100_000)
@example(json.dumps(valid_metadata(parameters=nested(900))))
@example(b"\xff\xfe\x00")
@example(b'"\xff"')
def test_load_metadata_on_any_text(data: str | bytes) -> None:
    check_metadata(data)


@fuzz_settings()
@given(metadata_like.map(json.dumps), st.data())
def test_load_metadata_on_damaged_json_text(text: str, data: st.DataObject) -> None:
    """Valid-looking JSON with one slice cut out or replaced: a parse error or a model."""
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    patch = data.draw(st.sampled_from(["", "{", "]", '"', ",", "NaN", "1e999", "\\u0000", "\\"]))
    check_metadata(text[:start] + patch + text[end:])


# --- RuntimeDecoder / decode -----------------------------------------------------------------


def npy_bytes(draw: st.DrawFn) -> bytes:
    """A real .npy payload, perhaps with its header or data damaged."""
    arr = draw(
        hnp.arrays(
            hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), elements=None
        )
    )
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    raw = bytearray(buf.getvalue())
    for _ in range(draw(st.integers(0, 3))):
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw[: draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw)


@st.composite
def b64_payloads(draw: st.DrawFn) -> str:
    raw = draw(st.binary(max_size=64) | st.just(b"\x93NUMPY"))
    if draw(st.booleans()):
        raw = npy_bytes(draw)
    text = base64.b64encode(raw).decode()
    return draw(st.sampled_from([text, text + "=", text[:-1], "not base64!", text]))


#: Dimensions and indices a payload of a few bytes can name.
HUGE = [10**6, 10**7 - 1, 10**7, 2**31, 2**62]
indices = st.integers(-2, 12) | st.sampled_from(HUGE)

SPARSE_VALUES = st.fixed_dictionaries(
    {
        "format": st.sampled_from(["csr", "csc", "coo", "bsr", "dia", "dok", "lil", "xyz"]),
        "kind": st.sampled_from(["array", "matrix", "other"]),
        "shape": st.lists(indices, max_size=3) | scalars,
        "dtype": st.sampled_from(["<f8", "<c16", "|b1", "<i4", "O", "|S3", "<U2", "x"]) | scalars,
        "data": st.lists(st.integers(-3, 3) | st.floats(), max_size=4) | scalars,
        "coords": st.lists(st.lists(indices, max_size=4), max_size=3) | scalars,
    }
)

#: The keys each structured codec reads (the others take a string, a number or a list).
CODEC_KEYS = {
    "BitArray": ["array", "num_bits"],
    "DataBin": ["shape", "fields"],
    "PubResult": ["data", "metadata"],
    "SamplerPubResult": ["data", "metadata"],
    "PrimitiveResult": ["pub_results", "metadata"],
    "BindingsArray": ["shape", "data"],
    "ObservablesArray": ["num_qubits", "shape", "observables"],
    "SparseObservable": ["num_qubits", "terms"],
    "SparsePauliOp": ["data", "coeffs"],
    "Pauli": ["data"],
    "PauliList": ["data"],
    "Statevector": ["data", "dims"],
    "DensityMatrix": ["data", "dims"],
    "Operator": ["data", "input_dims", "output_dims"],
    "Result": ["backend_name", "backend_version", "qobj_id", "job_id", "success", "results"],
}
type_names = st.sampled_from(known_types()) | scalars

small_json = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)

#: ``__value__`` of an innermost envelope: the flat shapes codecs read.
leaf_values = st.one_of(
    small_json,
    b64_payloads(),
    SPARSE_VALUES,
    st.lists(st.floats() | st.integers() | st.text(max_size=3), max_size=3),
    st.sampled_from(["2026-01-01T00:00:00", "2026-01-01", "2026-13-45", "now", "X", "IXYZ"]),
)
leaf_envelopes = st.fixed_dictionaries({"__type__": type_names, "__value__": leaf_values})


def shaped(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with some of the keys a codec expects, holding values or innermost envelopes."""
    field = leaf_envelopes | small_json | st.lists(leaf_envelopes, max_size=2)
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, field))


structured_values = st.sampled_from(list(CODEC_KEYS)).flatmap(lambda name: shaped(CODEC_KEYS[name]))
envelopes = st.fixed_dictionaries(
    {"__type__": type_names, "__value__": leaf_values | structured_values | leaf_envelopes}
)
payloads = st.one_of(
    envelopes,
    small_json,
    st.lists(envelopes | small_json, max_size=3),
    st.dictionaries(st.text(max_size=5), envelopes | small_json, max_size=3),
)


def check_decode(text: str | bytes) -> None:
    for parse in (decode, lambda t: json.loads(t, cls=RuntimeDecoder)):
        try:
            parse(text)
        except ValueError as exc:
            if parse is decode:
                assert isinstance(exc, SerializationError), repr(exc)
            assert str(exc), repr(exc)


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


@fuzz_settings()
@given(payloads.map(dumps))
@example(dumps({"__type__": "os.system", "__value__": "true"}))
@example(dumps({"__type__": ["set"], "__value__": []}))
@example(dumps({"__type__": "set", "__value__": [[1], {"a": 1}]}))
@example(dumps({"__type__": "scipy_sparse", "__value__": {}}))
@example(dumps({"__type__": "DataBin", "__value__": {"shape": [], "fields": {"__class__": 1}}}))
@example(dumps({"__type__": "complex", "__value__": [True, math.nan]}))
def test_decode_envelope_shaped_json(text: str) -> None:
    check_decode(text)


@fuzz_settings()
@given(st.text() | st.binary())
@example("[" * 100_000)
@example('{"__type__": "set", "__value__": ' + "[" * 100_000)
@example(b"\xff\xfe\x00")
@example(b'"\xff"')
@example(b"\x00\x00\x00\xff")
def test_decode_any_text(text: str | bytes) -> None:
    check_decode(text)


@pytest.mark.parametrize("depth", [10, 500, 990, 5_000, 50_000])
def test_decode_deeply_nested_json(depth: int) -> None:
    check_decode(dumps(nested(10)) if depth == 10 else "[" * depth + "]" * depth)
    check_decode('{"a":' * depth + "1" + "}" * depth)
    envelope = '{"__type__": "set", "__value__": [' + "[" * depth + "]" * depth + "]}"
    check_decode(envelope)


# --- validate_inputs -------------------------------------------------------------------------

INPUT_SCHEMA = {
    "$defs": {"angle": {"type": "number", "minimum": -10, "maximum": 10, "multipleOf": 0.1}},
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "ratio": {"type": "number", "exclusiveMinimum": 0},
        "flag": {"type": "boolean"},
        "angles": {"type": "array", "items": {"$ref": "#/$defs/angle"}, "uniqueItems": True},
        "mode": {"enum": ["a", "b", 1, [1, 2], {"k": None}]},
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "options": {
            "type": "object",
            "additionalProperties": {"anyOf": [{"type": "string"}, {"const": 3}]},
        },
        "circuit": {"not": {"type": ["string", "number", "null"]}},
    },
    "required": ["count"],
    "additionalProperties": False,
}
INPUTS_METADATA = load_metadata(valid_metadata(parameters=INPUT_SCHEMA))

decoded_scalars = (
    scalars
    | st.complex_numbers()
    | hnp.from_dtype(np.dtype("int64"))
    | hnp.from_dtype(np.dtype("float64"))
    | hnp.from_dtype(np.dtype("complex128"))
    | hnp.from_dtype(np.dtype("bool"))
    | st.datetimes().map(lambda d: d.replace(tzinfo=dt.UTC))
    | st.dates()
    | st.just(QuantumCircuit(1))
    | hnp.arrays(
        st.sampled_from([np.dtype(t) for t in ("int8", "float64", "complex64", "bool", "U3")]),
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
    )
)
decoded_values = st.recursive(
    decoded_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=3)
        | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=16,
)
input_keys = st.sampled_from([*INPUT_SCHEMA["properties"], "extra", ""]) | st.text(
    alphabet=string.printable, max_size=6
)
inputs_dicts = st.dictionaries(input_keys, decoded_values, max_size=6)


def check_inputs(inputs: Any) -> None:
    try:
        validate_inputs(INPUTS_METADATA, inputs)
    except InvalidInputsError as exc:
        assert exc.problems, exc
        for problem in exc.problems:
            assert problem.location.startswith("inputs"), problem
            assert problem.message, problem


@fuzz_settings()
@given(inputs_dicts | decoded_values)
@example({"count": 1, "matrix": nested(900, as_list=True)})
@example({"count": 1, "options": nested(900)})
@example({"count": 1, "matrix": nested(5000, as_list=True)})
@example({"count": 1, "nested": nested(5000)})
@example({"count": 1, "angles": [0.1, 0.1, np.float64(0.3)], "mode": np.array([1, 2])})
@example({"count": 2**1000, "ratio": 1e308, "angles": [1e308]})
def test_validate_inputs_on_any_inputs(inputs: Any) -> None:
    check_inputs(inputs)


@fuzz_settings()
@given(st.dictionaries(input_keys, envelopes | small_json, max_size=4).map(dumps))
def test_validate_inputs_on_decoded_payloads(text: str) -> None:
    """The server's path: decode the submitted inputs, then check them against the schema."""
    try:
        inputs = decode(text)
    except SerializationError:
        return
    check_inputs(inputs)
