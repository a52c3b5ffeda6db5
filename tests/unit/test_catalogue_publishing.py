"""program_config.yaml parsing and the publish plan, without servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from qruntime.catalogue import load_catalogue
from qruntime.catalogue.config import ConfigError, load_config
from qruntime.catalogue.entries import CatalogueProgram, content_hash
from qruntime.catalogue.plan import Action, PublishedProgram, make_plan
from qruntime.catalogue.publisher import select

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "program_config.yaml"
    path.write_text(text)
    return path


def test_the_repository_config_sends_everything_to_staging_and_production_and_some_to_cloud():
    config = load_config(REPO / "program_config.yaml")
    names = {program.name for program in load_catalogue(REPO / "runtime")}

    assert list(config.environments) == ["staging", "production", "cloud"]
    assert config.selection("staging") == config.selection("production") == "all"
    assert config.selection("cloud") == ["hello-world", "sampler", "estimator"]
    assert config.unknown_programs(names) == []


def test_an_environment_may_name_its_own_selection(tmp_path):
    config = load_config(
        write(
            tmp_path,
            "environments:\n"
            "  lab: {url_env: U, token_env: T, programs: [vqe]}\n"
            "  cloud: {url_env: U, token_env: T}\n"
            "cloud_runtime_programs: [qaoa]\n",
        )
    )

    assert config.selection("lab") == ["vqe"]
    assert config.selection("cloud") == ["qaoa"]
    assert config.unknown_programs({"vqe"}) == ["qaoa"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("environments: [", "is not valid YAML"),
        ("- a list", "must be a mapping with an 'environments' key"),
        ("programs: all\n", "environments: Field required"),
        ("environments: {}\n", "environments: Dictionary should have at least 1 item"),
        (
            "environments: {s: {url_env: U, token_env: T}}\nprograms: some\n",
            "programs: must be 'all' or a list of program names, got 'some'",
        ),
        (
            "environments: {s: {url_env: U, token_env: T, colour: red}}\n",
            "environments.s.colour: Extra inputs are not permitted",
        ),
        (
            "environments: {s: {url_env: U, token_env: T}}\ncloud_programs: []\n",
            "cloud_programs: Extra inputs are not permitted",
        ),
    ],
)
def test_a_broken_config_names_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)

    with pytest.raises(ConfigError, match=r"program_config\.yaml") as caught:
        load_config(path)

    assert message in str(caught.value)


def test_a_missing_config_says_so(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read: No such file"):
        load_config(tmp_path / "program_config.yaml")


def program(name: str, description: str = "d") -> CatalogueProgram:
    metadata = {"name": name, "description": description, "max_execution_time": 60}
    module = name.replace("-", "_")
    return CatalogueProgram(
        Path(f"{module}.py"), Path(f"{module}.json"), "def main(b, m): pass", metadata
    )


def published(p: CatalogueProgram, *, public: bool = True) -> PublishedProgram:
    return PublishedProgram(p.name, p.content_hash, public)


def test_the_plan_creates_updates_keeps_and_prunes():
    new, same, changed, hidden = program("new"), program("same"), program("changed"), program("h")
    on_server = [
        published(same),
        published(program("changed", description="old")),
        published(hidden, public=False),
        PublishedProgram("gone", None, True),
    ]

    steps = make_plan([new, same, changed, hidden], on_server, prune=True)

    assert [(s.action, s.program_id, s.reason) for s in steps] == [
        (Action.UPDATE, "changed", "source or metadata changed"),
        (Action.REMOVE, "gone", "no longer selected for this environment"),
        (Action.UPDATE, "h", "was private"),
        (Action.CREATE, "new", "new"),
        (Action.UNCHANGED, "same", "same source and metadata"),
    ]
    assert all(s.action is not Action.REMOVE for s in make_plan([], on_server, prune=False))


def test_the_content_hash_ignores_formatting_and_visibility_but_not_content():
    base = {"name": "p", "description": "d", "max_execution_time": 60}

    assert content_hash("src", base) == content_hash("src", {**base, "is_public": True})
    assert content_hash("src", base) == content_hash("src", {"spec": {}, **base})
    assert content_hash("src", base) != content_hash("src ", base)
    assert content_hash("src", base) != content_hash("src", {**base, "max_execution_time": 61})


def test_select_takes_all_or_the_named_programs():
    programs = [program("a"), program("b")]

    assert select(programs, "all") == programs
    assert select(programs, ["b", "zzz"]) == [programs[1]]
