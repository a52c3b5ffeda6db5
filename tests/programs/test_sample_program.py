"""sample-program: the example of the seed "Create a quantum program", as written there."""

from __future__ import annotations

import pytest

from qruntime.client import RuntimeInvalidInputsError


def test_runs_the_requested_iterations_on_five_qubits(run):
    outcome = run("sample-program", {"iterations": 2})

    assert outcome.result == "All done!"
    assert [m["iteration"] for m in outcome.messages] == [0, 1]
    for message in outcome.messages:
        assert sum(message["counts"].values()) == 1024
        assert all(len(key) == 5 for key in message["counts"])


def test_the_server_refuses_a_negative_iteration_count(researcher):
    with pytest.raises(RuntimeInvalidInputsError, match="iterations"):
        researcher.run(
            program_id="sample-program",
            options={"backend_name": "aer_simulator"},
            inputs={"iterations": -1},
        )
