"""What the fuzzers found in the parsers, pinned down one example each.

The API-level findings (huge offsets, non-JSON numbers and deep metadata in requests) are
checked against the fuzz server at the end of ``test_fuzz_api.py``.
"""

from __future__ import annotations

import json
import math

import pytest

from qruntime.domain import InvalidInputsError, InvalidMetadataError
from qruntime.domain.inputs import validate_inputs
from qruntime.domain.metadata import MAX_METADATA_DEPTH, load_metadata
from qruntime.serialization import RuntimeDecoder, SerializationError, decode


def meta(**spec: object) -> dict[str, object]:
    return {"name": "p", "max_execution_time": 60, "spec": spec}


def nested(depth: int, *, as_list: bool = False) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


def problems_of(data: object) -> dict[str, str]:
    with pytest.raises(InvalidMetadataError) as info:
        load_metadata(data)
    return {p.location: p.message for p in info.value.problems}


# --- metadata: numbers JSON cannot carry were stored, and served back as null ----------------


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_metadata_refuses_nan_and_infinities_wherever_they_are(number: float) -> None:
    problems = problems_of(meta(parameters={"properties": {"x": {"minimum": number}}}))
    assert list(problems) == ["metadata.spec.parameters.properties.x.minimum"]
    assert "not a JSON number" in problems["metadata.spec.parameters.properties.x.minimum"]
    problems = problems_of(meta(backend_requirements={"min_num_qubits": 1, "x": [number]}))
    assert list(problems) == ["metadata.spec.backend_requirements.x[0]"]


def test_metadata_text_with_an_overflowing_number_is_refused() -> None:
    """``1e999`` is valid JSON syntax that Python parses as ``inf``; NaN is refused as before."""
    text = json.dumps(meta(parameters={"maximum": 1})).replace('"maximum": 1', '"maximum": 1e999')
    assert "1e999" in text
    assert list(problems_of(text)) == ["metadata.spec.parameters.maximum"]
    assert "NaN is not a JSON number" in str(problems_of(text.replace("1e999", "NaN")))


def test_finite_numbers_still_load() -> None:
    loaded = load_metadata(meta(parameters={"maximum": 1e300, "minimum": -2.5}))
    assert loaded.spec.parameters == {"maximum": 1e300, "minimum": -2.5}


# --- metadata: deep nesting was a RecursionError (a 500 from POST /programs) ------------------


@pytest.mark.parametrize("depth", [MAX_METADATA_DEPTH, 600, 5_000])
def test_deeply_nested_metadata_is_refused_not_a_recursion_error(depth: int) -> None:
    problems = problems_of(meta(parameters=nested(depth)))
    [(location, message)] = problems.items()
    assert location.startswith("metadata.spec.parameters.a.a")
    assert message == f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep"
    text = json.dumps(meta(parameters=nested(min(depth, 900), as_list=True)))
    assert list(problems_of(text)) != []


def test_metadata_just_under_the_depth_limit_loads() -> None:
    # metadata -> spec -> parameters -> nested: three levels are taken before ``nested``.
    deepest = nested(MAX_METADATA_DEPTH - 4)
    assert load_metadata(meta(parameters={"default": deepest})).spec.parameters is not None


def test_load_metadata_does_not_change_its_argument() -> None:
    data = meta(parameters={"type": "object"})
    before = json.dumps(data)
    load_metadata(data).spec.parameters["type"] = "changed"  # type: ignore[index]
    assert json.dumps(data) == before


# --- decode: undecodable bytes and deep nesting escaped as other exceptions --------------------


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", b'"\xff"'])
def test_decode_of_bytes_that_are_not_text_is_a_serialization_error(raw: bytes) -> None:
    """Was a bare UnicodeDecodeError from ``json.loads``."""
    with pytest.raises(SerializationError, match="cannot be decoded as text"):
        decode(raw)


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000])
def test_decode_of_too_deep_json_is_a_serialization_error(text: str) -> None:
    """Was a RecursionError from the C scanner, through ``decode`` and ``RuntimeDecoder``."""
    with pytest.raises(SerializationError, match="nested too deeply"):
        decode(text)
    with pytest.raises(SerializationError, match="nested too deeply"):
        json.loads(text, cls=RuntimeDecoder)


# --- decode: a few bytes naming a huge sparse shape took minutes and gigabytes ----------------


def sparse(fmt: str, shape: list[int], rows: list[int], cols: list[int]) -> str:
    value = {
        "format": fmt,
        "kind": "array",
        "shape": shape,
        "dtype": "<f8",
        "data": [1.0] * len(rows),
        "coords": [rows, cols],
    }
    return json.dumps({"__type__": "scipy_sparse", "__value__": value})


@pytest.mark.parametrize(
    ("fmt", "shape", "rows", "cols"),
    [
        ("lil", [10**7, 10**7], [0], [0]),  # ten million row lists: 85 s and 1.7 GB before
        ("csr", [2**40, 2], [0], [0]),  # a row pointer per row
        ("bsr", [2**40, 2], [0], [0]),
        ("csc", [2, 2**40], [0], [0]),
        # 300 diagonals, each as wide as the matrix: 3e9 cells
        ("dia", [10**7, 10**7], list(range(300)), [10**7 - 1 - k for k in range(300)]),
    ],
)
def test_sparse_shapes_out_of_proportion_to_the_entries_are_refused(
    fmt: str, shape: list[int], rows: list[int], cols: list[int]
) -> None:
    with pytest.raises(SerializationError, match="index slots besides its values"):
        decode(sparse(fmt, shape, rows, cols))


@pytest.mark.parametrize("fmt", ["coo", "dok", "csr", "csc", "bsr", "lil", "dia"])
def test_sparse_of_ordinary_shapes_still_decodes(fmt: str) -> None:
    n = 4096
    decoded = decode(sparse(fmt, [n, n], list(range(n)), list(range(n))))
    assert decoded.shape == (n, n) and decoded.format == fmt and decoded.nnz == n
    # Huge but sparse is fine where the format stores only the entries.
    if fmt in ("coo", "dok"):
        assert decode(sparse(fmt, [2**40, 2**40], [0], [2**40 - 1])).nnz == 1


# --- validate_inputs: deep inputs were a RecursionError ---------------------------------------


@pytest.mark.parametrize("as_list", [False, True])
def test_too_deep_inputs_are_invalid_inputs(as_list: bool) -> None:
    metadata = load_metadata(
        meta(parameters={"properties": {"m": {"type": "array", "items": {"type": "array"}}}})
    )
    with pytest.raises(InvalidInputsError) as info:
        validate_inputs(metadata, {"m": nested(5_000, as_list=as_list)})
    [problem] = info.value.problems
    assert (problem.location, problem.message) == (
        "inputs",
        "nested too deeply to check against spec.parameters",
    )
