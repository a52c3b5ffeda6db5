import json
from pathlib import Path

import pytest

from qruntime.domain import (
    DEFAULT_MAX_EXECUTION_TIME_CEILING,
    InvalidMetadataError,
    ProgramMetadata,
    load_metadata,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "metadata"
HELLO = FIXTURES / "hello_world.json"
LEGACY = FIXTURES / "circuit_runner_legacy.json"


def hello() -> dict:
    return json.loads(HELLO.read_text())


def problems_of(data, **kwargs) -> dict[str, str]:
    with pytest.raises(InvalidMetadataError) as info:
        load_metadata(data, **kwargs)
    found = {p.location: p.message for p in info.value.problems}
    assert len(found) == len(info.value.problems), "one problem per location expected"
    return found


def test_seed_format_loads_and_round_trips_exactly():
    meta = ProgramMetadata.from_file(HELLO)
    assert meta.name == "hello-world"
    assert meta.max_execution_time == 300
    assert meta.is_public is False
    assert meta.version is None
    assert meta.spec.backend_requirements.min_num_qubits == 5
    assert meta.spec.parameters["required"] == ["iterations"]
    assert meta.to_json_dict() == hello()
    assert list(meta.to_json_dict()) == [
        "name",
        "description",
        "max_execution_time",
        "is_public",
        "spec",
    ]


def test_load_accepts_dict_str_and_bytes():
    text = HELLO.read_text()
    assert load_metadata(hello()) == load_metadata(text) == load_metadata(text.encode())


def test_load_does_not_alias_the_callers_dict():
    data = hello()
    meta = load_metadata(data)
    data["spec"]["parameters"]["required"].append("other")
    assert meta.spec.parameters["required"] == ["iterations"]


def test_defaults():
    meta = load_metadata({"name": "x", "max_execution_time": 10})
    assert meta.description == ""
    assert meta.is_public is False
    assert meta.spec.parameters is None
    assert meta.to_json_dict() == {
        "name": "x",
        "description": "",
        "max_execution_time": 10,
        "is_public": False,
        "spec": {},
    }


def test_legacy_circuit_runner_is_normalised():
    meta = ProgramMetadata.from_file(LEGACY)
    assert meta.name == "circuit-runner"
    assert meta.version == "1.0"
    assert meta.max_execution_time == 14400
    assert meta.spec.backend_requirements.min_num_qubits == 5

    params = meta.spec.parameters
    assert params["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert params["required"] == ["circuits"]
    props = params["properties"]
    assert list(props)[:3] == ["circuits", "shots", "initial_layout"]
    assert len(props) == 12
    assert props["shots"] == {
        "description": "Number of repetitions of each circuit, for sampling. Default: 1024.",
        "type": "integer",
    }
    assert props["layout_method"]["type"] == "string"
    assert props["rep_delay"]["type"] == "number"
    assert props["init_qubits"]["type"] == "boolean"
    assert props["transpiler_options"]["type"] == "object"
    assert props["circuits"] == {
        "description": "A circuit or a list of circuits.",
        "x-python-type": "A QuantumCircuit or a list of QuantumCircuits.",
    }
    assert props["initial_layout"]["x-python-type"] == "dict or list"
    assert "type" not in props["initial_layout"]

    assert meta.spec.return_values == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "Circuit execution results.",
        "x-python-type": "RunnerResult object",
    }
    assert meta.spec.interim_results is None


def test_normalised_legacy_reloads_to_an_equal_model():
    meta = ProgramMetadata.from_file(LEGACY)
    stored = json.dumps(meta.to_json_dict())
    again = load_metadata(stored)
    assert again == meta
    assert again.to_json_dict() == meta.to_json_dict()
    assert "parameters" not in json.loads(stored)
    assert json.loads(stored)["spec"]["parameters"]["required"] == ["circuits"]


def test_legacy_lists_inside_spec_and_interim_results():
    meta = load_metadata(
        {
            "name": "p",
            "max_execution_time": 60,
            "spec": {
                "interim_results": [
                    {"name": "iteration", "type": "int", "description": "Iteration number."},
                    {"name": "energy", "type": "Float "},
                ],
                "parameters": [{"name": "x", "type": "list", "required": True, "default": [1]}],
            },
        }
    )
    assert meta.spec.interim_results["properties"] == {
        "iteration": {"description": "Iteration number.", "type": "integer"},
        "energy": {"type": "number"},
    }
    assert "required" not in meta.spec.interim_results
    assert meta.spec.parameters["properties"]["x"] == {"type": "array", "default": [1]}


def test_legacy_return_values_single_named_and_several():
    single = load_metadata(
        {"name": "p", "max_execution_time": 1, "return_values": [{"name": "r", "type": "str"}]}
    )
    assert single.spec.return_values == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "r",
        "type": "string",
    }
    several = load_metadata(
        {
            "name": "p",
            "max_execution_time": 1,
            "return_values": [{"name": "a", "type": "int"}, {"name": "b", "type": "Thing"}],
        }
    )
    assert several.spec.return_values["properties"] == {
        "a": {"type": "integer"},
        "b": {"x-python-type": "Thing"},
    }


def test_legacy_entry_problems_are_located():
    found = problems_of(
        {
            "name": "p",
            "max_execution_time": 1,
            "parameters": [
                {"name": "a"},
                {"description": "no name"},
                "not an object",
                {"name": "a"},
                {"name": "c", "required": "yes", "type": 3},
            ],
            "return_values": [{"name": "-"}, {"name": "b"}],
        }
    )
    assert "non-empty string name" in found["metadata.spec.parameters[1]"]
    assert "must be objects" in found["metadata.spec.parameters[2]"]
    assert "more than one entry named 'a'" in found["metadata.spec.parameters[3]"]
    assert "true or false" in found["metadata.spec.parameters[4].required"]
    assert "type must be a string" in found["metadata.spec.parameters[4].type"]
    assert "unnamed" in found["metadata.spec.return_values[0]"]


def test_legacy_key_given_twice_is_refused():
    data = hello()
    data["parameters"] = []
    found = problems_of(data)
    assert "cannot be combined with spec.parameters" in found["metadata.parameters"]


@pytest.mark.parametrize(
    "value", [0, -5, 1.5, "300", True, None, [300], DEFAULT_MAX_EXECUTION_TIME_CEILING + 1]
)
def test_max_execution_time_rule(value):
    data = hello()
    data["max_execution_time"] = value
    message = problems_of(data)["metadata.max_execution_time"]
    assert "max_execution_time" in message
    assert "at most 28800 seconds (8 hours)" in message


def test_max_execution_time_accepts_integral_float_and_the_ceiling():
    data = hello()
    data["max_execution_time"] = 600.0
    assert load_metadata(data).max_execution_time == 600
    data["max_execution_time"] = DEFAULT_MAX_EXECUTION_TIME_CEILING
    assert load_metadata(data).max_execution_time == DEFAULT_MAX_EXECUTION_TIME_CEILING


def test_max_execution_time_ceiling_is_configurable():
    data = hello()
    message = problems_of(data, max_execution_time_ceiling=120)["metadata.max_execution_time"]
    assert "300 seconds" in message
    assert "at most 120 seconds (2 minutes)" in message
    data["max_execution_time"] = 36000
    assert load_metadata(data, max_execution_time_ceiling=86400).max_execution_time == 36000
    with pytest.raises(ValueError):
        load_metadata(data, max_execution_time_ceiling=0)


def test_missing_max_execution_time_is_required():
    data = hello()
    del data["max_execution_time"]
    assert problems_of(data)["metadata.max_execution_time"] == "max_execution_time is required"


def test_name_rule():
    data = hello()
    data["name"] = "hello_world"
    message = problems_of(data)["metadata.name"]
    assert "lowercase letters, digits and single hyphens" in message
    assert "underscores are not allowed" in message


@pytest.mark.parametrize("key", ["parameters", "return_values", "interim_results"])
def test_each_spec_schema_must_be_a_json_schema(key):
    data = hello()
    data["spec"][key] = {"type": "integr"}
    message = problems_of(data)[f"metadata.spec.{key}"]
    assert f"spec.{key} is not a valid JSON Schema" in message
    assert "'integr'" in message
    assert "/type" in message


def test_spec_schema_checked_with_its_own_dialect():
    data = hello()
    data["spec"]["parameters"] = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "properties": {"x": {"minimum": 0, "exclusiveMinimum": 5}},
    }
    message = problems_of(data)["metadata.spec.parameters"]
    assert "5 is not of type 'boolean'" in message


def test_spec_schema_must_be_an_object_and_dialect_a_string():
    data = hello()
    data["spec"]["parameters"] = "anything"
    data["spec"]["return_values"] = {"$schema": ["x"]}
    found = problems_of(data)
    assert "must be a JSON Schema object" in found["metadata.spec.parameters"]
    assert "$schema must be a URI" in found["metadata.spec.return_values"]


def test_unknown_keys_are_refused_with_the_allowed_keys():
    data = hello()
    data["max_execution_tim"] = 3
    data["spec"]["paramters"] = {}
    found = problems_of(data)
    top = found["metadata.max_execution_tim"]
    assert "unknown key 'max_execution_tim'" in top
    assert "did you mean 'max_execution_time'?" in top
    assert "name, description, max_execution_time, is_public, version, spec" in top
    nested = found["metadata.spec.paramters"]
    assert "did you mean 'parameters'?" in nested
    assert "backend_requirements, parameters, return_values, interim_results" in nested


def test_backend_requirements_keep_extra_keys_and_check_qubits():
    data = hello()
    data["spec"]["backend_requirements"] = {"min_num_qubits": 2, "simulator": None}
    meta = load_metadata(data)
    assert meta.to_json_dict()["spec"]["backend_requirements"] == {
        "min_num_qubits": 2,
        "simulator": None,
    }
    assert load_metadata(meta.to_json_dict()) == meta
    for bad in (0, True, "5"):
        data["spec"]["backend_requirements"] = {"min_num_qubits": bad}
        found = problems_of(data)
        assert ">= 1" in found["metadata.spec.backend_requirements.min_num_qubits"]


def test_all_violations_are_reported_together():
    with pytest.raises(InvalidMetadataError) as info:
        load_metadata(
            {
                "name": "Bad_Name",
                "description": 5,
                "max_execution_time": -1,
                "is_public": "yes",
                "version": 1.0,
                "spec": {"parameters": {"type": 12}},
                "extra": 1,
            }
        )
    locations = [p.location for p in info.value.problems]
    assert sorted(locations) == sorted(
        [
            "metadata.name",
            "metadata.description",
            "metadata.max_execution_time",
            "metadata.is_public",
            "metadata.version",
            "metadata.spec.parameters",
            "metadata.extra",
        ]
    )
    text = str(info.value)
    assert text.startswith("invalid program metadata (7 problems):")
    assert "metadata.description: description must be a string, got number" in text
    assert "metadata.is_public: is_public must be true or false, got string" in text


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got array"),
        ('{"name": "a", "name": "b"}', "duplicate key 'name'"),
        ('{"max_execution_time": NaN}', "NaN is not a JSON number"),
        (b"\xff\xfe{", "not valid JSON"),
        (42, "must be a JSON object"),
    ],
)
def test_bad_documents(data, fragment):
    message = problems_of(data)["metadata"]
    assert fragment in message


def test_missing_name_and_spec_not_an_object():
    found = problems_of({"max_execution_time": 5, "spec": []})
    assert found["metadata.name"] == "name is required"
    assert found["metadata.spec"] == "spec must be a JSON object, got array"


def test_model_validate_still_folds_legacy_keys():
    meta = ProgramMetadata.model_validate(json.loads(LEGACY.read_text()))
    assert meta == ProgramMetadata.from_file(LEGACY)


def test_unknown_dialect_falls_back_to_2020_12_without_warning():
    data = hello()
    data["spec"]["parameters"] = {"$schema": "https://example.com/custom", "type": "object"}
    assert load_metadata(data).spec.parameters["type"] == "object"
