"""Each catalogue program's run form starts valid, so a new user can press Run at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from qruntime.catalogue import load_catalogue
from qruntime.domain.inputs import validate_inputs
from qruntime.domain.metadata import load_metadata
from qruntime.web.spec_view import input_skeleton

REPO = Path(__file__).resolve().parents[2]
NEEDS_A_CIRCUIT = {"sampler", "estimator"}  # circuits have no JSON form to prefill


@pytest.mark.parametrize(
    "program", load_catalogue(REPO / "runtime"), ids=lambda program: program.name
)
def test_the_prefilled_inputs_satisfy_the_schema(program):
    metadata = load_metadata(program.metadata)
    inputs = input_skeleton(metadata.spec.parameters)

    if program.name in NEEDS_A_CIRCUIT:
        assert set(metadata.spec.parameters["required"]) == {"pubs"}
        return
    validate_inputs(metadata, inputs)
    assert set(metadata.spec.parameters.get("required", [])) <= set(inputs)
