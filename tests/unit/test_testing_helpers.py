"""qruntime.testing: the in-process path program authors use in their own tests."""

from __future__ import annotations

import numpy as np
import pytest

from qruntime.testing import FakeUserMessenger, round_trip, run_program


def test_seed_program_runs_in_process(programs):
    run = run_program(programs / "hello_world.py", {"iterations": 2})
    assert run.result == "All done!"
    assert [m["iteration"] for m in run.messages] == [0, 1]
    assert all(sum(m["counts"].values()) == 1024 for m in run.messages)


def test_inputs_are_round_tripped_before_main_sees_them():
    seen = {}

    def main(backend, user_messenger, **inputs):
        seen.update(inputs)
        return inputs["values"] * 2

    run = run_program(main, {"values": np.arange(3), "z": 1 + 2j, "tags": {"a"}})
    assert isinstance(seen["values"], np.ndarray)
    assert seen["z"] == 1 + 2j
    assert seen["tags"] == {"a"}
    assert np.array_equal(run.result, [0, 2, 4])


def test_final_publish_is_the_result_when_main_returns_none(programs):
    run = run_program(programs / "final_via_publish.py")
    assert run.messages == [{"progress": 0.5}]
    assert run.result["energy"] == np.float32(-1.5)
    assert np.array_equal(run.result["values"], np.arange(3))


def test_unencodable_values_fail_like_the_service_would():
    messenger = FakeUserMessenger()
    with pytest.raises(TypeError):
        messenger.publish(object())
    with pytest.raises(TypeError):
        round_trip({"x": object()})
