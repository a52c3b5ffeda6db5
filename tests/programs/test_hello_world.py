"""hello-world: the seed's random-circuit program."""

from __future__ import annotations


def test_publishes_one_histogram_per_iteration_and_says_all_done(run):
    outcome = run("hello-world", {"iterations": 3})

    assert outcome.result == "All done!"
    assert [m["iteration"] for m in outcome.messages] == [0, 1, 2]
    for message in outcome.messages:
        counts = message["counts"]
        assert sum(counts.values()) == 1024
        assert all(set(key) <= {"0", "1"} for key in counts)


def test_zero_iterations_publish_nothing(run):
    outcome = run("hello-world", {"iterations": 0})

    assert outcome == type(outcome)("All done!", [])
