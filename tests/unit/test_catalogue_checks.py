"""The catalogue rules, one broken rule at a time, and the real catalogue passing them all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from qruntime.catalogue.checks import check_catalogue
from repo_paths import QRUNTIME

REPO = Path(__file__).resolve().parents[2]

GOOD_SOURCE = '''"""Adds two numbers."""


def main(backend, user_messenger, *, a, b=1):
    user_messenger.publish({"partial": a})
    return a + b
'''


def good_metadata(name: str = "adder") -> dict:
    return {
        "name": name,
        "description": "Adds two numbers.",
        "max_execution_time": 60,
        "spec": {
            "parameters": {
                "properties": {
                    "a": {"type": "integer", "description": "First."},
                    "b": {"type": "integer", "description": "Second."},
                },
                "required": ["a"],
            },
            "return_values": {"type": "integer", "description": "The sum."},
            "interim_results": {
                "properties": {"partial": {"type": "integer", "description": "a alone."}}
            },
        },
    }


def write_program(
    directory: Path,
    module: str = "adder",
    source: str = GOOD_SOURCE,
    metadata: dict | None = None,
    with_test: bool = True,
) -> None:
    runtime = directory / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    (runtime / f"{module}.py").write_text(source)
    (runtime / f"{module}.json").write_text(json.dumps(metadata or good_metadata()))
    tests = directory / "tests"
    tests.mkdir(exist_ok=True)
    if with_test:
        (tests / f"test_{module}.py").write_text("")


def problems(directory: Path) -> list[str]:
    found = check_catalogue(directory / "runtime", directory / "tests")
    return [str(p).replace(f"{directory}/", "") for p in found]


def test_a_good_program_has_no_problems(tmp_path):
    write_program(tmp_path)

    assert problems(tmp_path) == []


def test_the_repository_catalogue_passes_every_check():
    assert check_catalogue(REPO / "runtime", REPO / "tests" / "programs") == []


def test_the_name_field_must_match_the_file_name(tmp_path):
    write_program(tmp_path, module="my_adder", metadata=good_metadata("adder"))

    assert problems(tmp_path) == [
        "runtime/my_adder.json: name 'adder' does not match the file name: my_adder.py must "
        "hold the program 'my-adder'"
    ]


def test_file_names_use_underscores(tmp_path):
    write_program(tmp_path, module="my-adder", metadata=good_metadata("my-adder"))

    assert (
        "runtime/my-adder.py: file names use underscores where the program name has hyphens: "
        "my-adder.py"
    ) in problems(tmp_path)


def test_each_source_needs_its_metadata_and_each_metadata_its_source(tmp_path):
    write_program(tmp_path)
    (tmp_path / "runtime" / "lonely.py").write_text(GOOD_SOURCE)
    (tmp_path / "runtime" / "orphan.json").write_text("{}")

    assert problems(tmp_path) == [
        "runtime/orphan.json: has no source file orphan.py",
        "runtime/lonely.py: has no metadata file lonely.json",
    ]


def test_invalid_metadata_gives_one_line_per_problem(tmp_path):
    metadata = good_metadata()
    metadata["max_execution_time"] = -1
    metadata["spec"]["parameters"]["type"] = "no-such-type"
    write_program(tmp_path, metadata=metadata)

    found = problems(tmp_path)

    assert len(found) == 2
    assert all(line.startswith("runtime/adder.json: ") for line in found)
    assert any("max_execution_time" in line for line in found)
    assert any("spec.parameters" in line for line in found)


def test_main_must_exist_with_backend_and_user_messenger(tmp_path):
    write_program(tmp_path, source="def main(backend):\n    return 1\n")

    [problem] = problems(tmp_path)
    assert problem.startswith("runtime/adder.py: adder.py: main (line 1) takes 1 positional")


def test_main_must_accept_every_documented_parameter(tmp_path):
    write_program(tmp_path, source="def main(backend, user_messenger, *, a):\n    return a\n")

    assert problems(tmp_path) == [
        "runtime/adder.py: main (line 1) does not accept the documented parameter 'b'"
    ]


def test_main_with_kwargs_accepts_everything(tmp_path):
    write_program(tmp_path, source="def main(backend, user_messenger, **kwargs):\n    return 1\n")

    assert problems(tmp_path) == []


def test_every_parameter_main_takes_is_documented(tmp_path):
    source = "def main(backend, user_messenger, a, b=1, c=2):\n    return a\n"
    write_program(tmp_path, source=source)

    assert problems(tmp_path) == [
        "runtime/adder.py: main (line 1) takes 'c', which spec.parameters does not document"
    ]


def test_a_parameter_without_default_must_be_required(tmp_path):
    metadata = good_metadata()
    metadata["spec"]["parameters"]["required"] = []
    write_program(tmp_path, metadata=metadata)

    assert problems(tmp_path) == [
        "runtime/adder.py: main (line 4) has no default for 'a', so spec.parameters must list "
        "it as required"
    ]


def test_every_parameter_and_result_is_described(tmp_path):
    metadata = good_metadata()
    del metadata["spec"]["parameters"]["properties"]["b"]["description"]
    metadata["spec"]["parameters"]["required"] = ["a", "c"]
    metadata["spec"]["return_values"] = {"type": "integer"}
    del metadata["spec"]["interim_results"]
    metadata["description"] = " "
    write_program(
        tmp_path, metadata=metadata, source="def main(backend, user_messenger, **kw):\n  pass\n"
    )

    assert problems(tmp_path) == [
        "runtime/adder.json: description: is empty; say what the program does",
        "runtime/adder.json: spec.parameters: required parameter 'c' is not described in "
        "properties",
        "runtime/adder.json: spec.parameters.properties.b: has no description",
        "runtime/adder.json: spec.return_values: has no description (of it or of each of its "
        "properties)",
        "runtime/adder.json: spec.interim_results: is missing; describe it with a JSON Schema",
    ]


def test_a_test_file_is_required(tmp_path):
    write_program(tmp_path, with_test=False)

    assert problems(tmp_path) == ["runtime/adder.py: has no test file tests/test_adder.py"]


def test_an_empty_or_missing_directory_is_a_problem(tmp_path):
    (tmp_path / "runtime").mkdir()

    assert problems(tmp_path) == ["runtime: contains no programs (<name>.py + .json)"]
    assert [str(p) for p in check_catalogue(tmp_path / "nowhere")] == [
        f"{tmp_path}/nowhere: is not a directory"
    ]


@pytest.mark.parametrize("broken", [True, False])
def test_the_command_prints_one_line_per_problem_and_fails(tmp_path, broken):
    write_program(tmp_path, with_test=not broken)
    if broken:
        (tmp_path / "runtime" / "extra.json").write_text("{}")

    result = subprocess.run(
        [QRUNTIME, "catalogue", "check", "runtime", "--tests", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    if broken:
        assert result.returncode == 1
        assert result.stdout.splitlines() == [
            "runtime/extra.json: has no source file extra.py",
            "runtime/adder.py: has no test file tests/test_adder.py",
        ]
        assert "2 problem(s) in runtime" in result.stderr
    else:
        assert result.returncode == 0, result.stdout
        assert result.stdout == "1 program(s) in runtime: all checks passed\n"
