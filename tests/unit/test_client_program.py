"""RuntimeProgram: the ``str(program)`` layout, and the parameters namespace."""

import json
from pathlib import Path

import pytest

from qruntime.client import ParameterNamespace, RuntimeInvalidInputsError, RuntimeProgram
from qruntime.client.program_format import sentence_case

HELLO_JSON = Path(__file__).parent.parent / "fixtures" / "programs" / "hello_world.json"

#: ../shared/reference/program-str.txt without its preamble: the layout of the 2021 service.
EXPECTED_HELLO = (
    (Path(__file__).parent.parent / "fixtures" / "reference" / "program-str.txt")
    .read_text()
    .rstrip("\n")
)


def program_json(program_id="hello-world", **overrides) -> dict:
    metadata = json.loads(HELLO_JSON.read_text())
    body = {
        "id": program_id,
        "name": metadata["name"],
        "description": metadata["description"],
        "max_execution_time": metadata["max_execution_time"],
        "version": None,
        "is_public": False,
        "owner": "alice",
        "spec": metadata["spec"],
        "creation_date": "2021-07-02T13:45:13Z",
        "update_date": "2021-07-02T13:45:13Z",
        "data": None,
    }
    body.update(overrides)
    return body


@pytest.fixture
def hello() -> RuntimeProgram:
    return RuntimeProgram.from_json(program_json())


def test_str_matches_the_reference_exactly(hello):
    assert str(hello) == EXPECTED_HELLO


def test_attributes(hello):
    assert hello.program_id == "hello-world"
    assert hello.max_execution_time == 300
    assert hello.parameters["required"] == ["iterations"]
    assert hello.backend_requirements == {"min_num_qubits": 5}
    assert hello.creation_date.year == 2021 and hello.owner == "alice"
    assert hello.is_public is False and hello.data is None
    assert "RuntimeProgram('hello-world')" in repr(hello)


def test_source_is_decoded_and_dates_may_be_strings():
    program = RuntimeProgram.from_json(program_json(data="cHJpbnQoMSk="))
    assert program.data == "print(1)"
    direct = RuntimeProgram("p", "p", creation_date="2021-07-02T13:45:13+00:00")
    assert "Creation date: 2021-07-02T13:45:13Z" in str(direct)


def test_empty_sections_print_none():
    text = str(RuntimeProgram("bare-x1", "bare", "Nothing here.", max_execution_time=60))
    assert text.splitlines()[6:] == [
        "  Input parameters:",
        "    none",
        "  Interim results:",
        "    none",
        "  Returns:",
        "    none",
        "  Backend requirements:",
        "    none",
    ]


def test_schema_meta_keys_are_hidden_and_other_keys_sentence_cased():
    program = RuntimeProgram(
        "p",
        "p",
        parameters={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": "All inputs.",
            "properties": {"xs": {"type": "array", "maxItems": 3}},
        },
        return_values={"$schema": "https://json-schema.org/draft/2020-12/schema"},
        backend_requirements={"min_num_qubits": 2, "max_shots": 10},
    )
    text = str(program)
    assert "$schema" not in text and "draft" not in text
    assert "    Description: All inputs.\n    Properties:\n        - xs:\n" in text
    assert "            Max items: 3\n            Type: array\n            Required: False" in text
    assert "  Returns:\n    none" in text
    assert "    Max shots: 10\n    Minimum number of qubits: 2" in text


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("minimum", "Minimum"),
        ("maxItems", "Max items"),
        ("default", "Default"),
        ("x-python-type", "X python type"),
        ("min_num_qubits", "Minimum number of qubits"),
    ],
)
def test_sentence_case(key, label):
    assert sentence_case(key) == label


def test_parameters_is_the_schema_and_a_namespace_factory(hello):
    namespace = hello.parameters()
    assert isinstance(namespace, ParameterNamespace)
    assert namespace.iterations is None
    assert namespace is not hello.parameters()
    assert namespace.metadata["properties"]["iterations"]["minimum"] == 0


def test_namespace_refuses_unknown_names_and_names_the_known_ones(hello):
    namespace = hello.parameters()
    with pytest.raises(AttributeError, match=r"'iteratons'.*iterations"):
        namespace.iteratons = 3
    with pytest.raises(AttributeError, match="iterations"):
        _ = namespace.nope


def test_namespace_validation_names_the_parameter(hello):
    namespace = hello.parameters()
    with pytest.raises(RuntimeInvalidInputsError, match="iterations") as missing:
        namespace.validate()
    assert missing.value.problems
    namespace.iterations = -1
    with pytest.raises(RuntimeInvalidInputsError, match=r"inputs\.iterations.*minimum"):
        namespace.validate()
    namespace["iterations"] = 2
    namespace.validate()
    assert namespace.to_dict() == {"iterations": 2}
    assert "iterations: 2 (integer, required)" in str(namespace)
