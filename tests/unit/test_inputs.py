from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit

from qruntime.domain import (
    InvalidInputsError,
    InvalidMetadataError,
    ProgramMetadata,
    inputs_validator,
    load_metadata,
    validate_inputs,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "metadata"


def metadata_with(parameters) -> ProgramMetadata:
    return load_metadata(
        {"name": "p", "max_execution_time": 60, "spec": {"parameters": parameters}}
    )


def problems_of(metadata, inputs) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInputsError) as info:
        validate_inputs(metadata, inputs)
    return [(p.location, p.message) for p in info.value.problems]


@pytest.fixture
def hello() -> ProgramMetadata:
    return ProgramMetadata.from_file(FIXTURES / "hello_world.json")


@pytest.fixture
def typed() -> ProgramMetadata:
    return metadata_with(
        {
            "properties": {
                "count": {"type": "integer", "minimum": 0},
                "ratio": {"type": "number"},
                "flag": {"type": "boolean"},
                "values": {"type": "array", "items": {"type": "number"}, "minItems": 2},
                "mode": {"enum": ["a", "b"]},
                "options": {"type": "object"},
            }
        }
    )


def test_valid_inputs_pass(hello):
    validate_inputs(hello, {"iterations": 3})


def test_minimum_violated(hello):
    assert problems_of(hello, {"iterations": -1}) == [
        ("inputs.iterations", "-1 is less than the minimum of 0")
    ]


def test_missing_required(hello):
    assert problems_of(hello, {}) == [("inputs", "'iterations' is a required property")]


def test_wrong_type(hello):
    assert problems_of(hello, {"iterations": "3"}) == [
        ("inputs.iterations", "'3' is not of type 'integer'")
    ]


def test_bool_is_not_an_integer(hello):
    assert problems_of(hello, {"iterations": True}) == [
        ("inputs.iterations", "True is not of type 'integer'")
    ]
    assert problems_of(hello, {"iterations": np.bool_(True)}) == [
        ("inputs.iterations", "True is not of type 'integer'")
    ]


def test_numpy_values_count_as_their_json_types(typed):
    validate_inputs(
        typed,
        {
            "count": np.int64(3),
            "ratio": np.float32(0.5),
            "flag": np.bool_(False),
            "values": np.array([1.0, 2.5]),
            "mode": np.str_("a"),
            "options": {"nested": np.arange(3)},
        },
    )
    validate_inputs(typed, {"count": np.uint8(0), "ratio": np.int16(2), "values": (1, 2.0)})
    validate_inputs(typed, {"ratio": 1, "values": [np.float64(1), np.int32(2)]})


def test_numpy_violations_are_reported(typed):
    found = problems_of(typed, {"count": np.int64(-2), "values": np.array([1.0])})
    assert found == [
        ("inputs.count", "-2 is less than the minimum of 0"),
        ("inputs.values", "[1.0] is too short"),
    ]


def test_numpy_array_is_not_a_number_and_complex_is_not_a_number(typed):
    found = problems_of(typed, {"ratio": 1 + 2j, "count": np.array([1])})
    assert ("inputs.count", "[1] is not of type 'integer'") in found
    assert ("inputs.ratio", "(1+2j) is not of type 'number'") in found


def test_multiple_violations_with_paths():
    metadata = metadata_with(
        {
            "properties": {
                "circuits": {"type": "array", "items": {"type": "string"}},
                "shots": {"type": "integer", "minimum": 1},
                "options": {
                    "type": "object",
                    "properties": {"seed": {"type": "integer"}, "my key": {"type": "string"}},
                },
            },
            "required": ["circuits", "shots", "backend_name"],
        }
    )
    found = problems_of(
        metadata,
        {
            "circuits": ["ok", QuantumCircuit(1), 3],
            "shots": 0,
            "options": {"seed": 1.5, "my key": 1},
        },
    )
    locations = [location for location, _ in found]
    assert sorted(locations) == sorted(
        [
            "inputs.circuits[1]",
            "inputs.circuits[2]",
            "inputs.shots",
            "inputs.options.seed",
            "inputs.options['my key']",
            "inputs",
        ]
    )
    assert ("inputs", "'backend_name' is a required property") in found
    assert ("inputs.shots", "0 is less than the minimum of 1") in found


def test_enum_and_const_work_with_numpy_arrays():
    metadata = metadata_with(
        {
            "properties": {
                "layout": {"enum": [[0, 1], [1, 0]]},
                "flag": {"const": True},
                "unique": {"uniqueItems": True},
            }
        }
    )
    validate_inputs(
        metadata,
        {"layout": np.array([1, 0]), "flag": np.bool_(True), "unique": np.eye(2)},
    )
    found = problems_of(metadata, {"layout": np.array([2, 2]), "unique": np.ones((2, 2))})
    assert [location for location, _ in found] == ["inputs.layout", "inputs.unique"]


def test_legacy_circuit_runner_inputs():
    metadata = ProgramMetadata.from_file(FIXTURES / "circuit_runner_legacy.json")
    validate_inputs(
        metadata,
        {
            "circuits": QuantumCircuit(2),
            "shots": np.int64(100),
            "rep_delay": 1,
            "init_qubits": True,
        },
    )
    found = problems_of(metadata, {"shots": 1.5, "init_qubits": 1})
    assert sorted(found) == [
        ("inputs", "'circuits' is a required property"),
        ("inputs.init_qubits", "1 is not of type 'boolean'"),
        ("inputs.shots", "1.5 is not of type 'integer'"),
    ]


def test_no_parameters_schema_means_anything_goes():
    metadata = load_metadata({"name": "p", "max_execution_time": 60})
    validate_inputs(metadata, {"anything": object()})


def test_inputs_must_be_a_dict(hello):
    assert problems_of(hello, [("iterations", 1)]) == [
        ("inputs", "inputs must be a dict of parameter values, got list")
    ]


def test_schema_dialect_is_respected():
    metadata = metadata_with(
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "properties": {"x": {"type": "integer"}},
        }
    )
    # Draft 4 does not count 1.0 as an integer; later drafts do.
    assert problems_of(metadata, {"x": 1.0}) == [("inputs.x", "1.0 is not of type 'integer'")]
    validate_inputs(metadata_with({"properties": {"x": {"type": "integer"}}}), {"x": 1.0})


def test_remote_refs_are_never_fetched():
    metadata = metadata_with({"properties": {"x": {"$ref": "https://example.invalid/s.json"}}})
    with pytest.raises(InvalidMetadataError) as info:
        validate_inputs(metadata, {"x": 1})
    assert info.value.problems[0].location == "metadata.spec.parameters"


def test_inputs_validator_type_checker_knows_raw_numpy():
    validator = inputs_validator({"type": "array", "items": {"type": "integer"}})
    assert validator.is_valid(np.array([1, 2]))
    assert validator.is_valid((np.int8(1), 2))
    assert not validator.is_valid([np.bool_(True)])
    assert inputs_validator({"type": "number"}).is_valid(np.float32(1.5))
    assert inputs_validator({"type": "boolean"}).is_valid(np.bool_(False))
    assert not inputs_validator({"type": "integer"}).is_valid(np.float64(1.5))


def test_long_messages_are_truncated():
    metadata = metadata_with({"properties": {"x": {"type": "string"}}})
    ((_, message),) = problems_of(metadata, {"x": list(range(10_000))})
    assert len(message) <= 500
    assert message.endswith("...")
