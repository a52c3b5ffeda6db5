"""``qruntime run-local`` end to end: real CLI process, real worker process, real Aer."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from qiskit import QuantumCircuit

from qruntime.serialization import decode, encode
from repo_paths import QRUNTIME

SEED_INPUTS = '{"iterations": 3}'


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("backend", ["aer_simulator", "fake_manila"])
def test_seed_program_publishes_three_interims_then_all_done(qruntime_cli, programs, backend):
    proc = qruntime_cli(
        "run-local", programs / "hello_world.py", "--metadata", programs / "hello_world.json",
        "--inputs", SEED_INPUTS, "--backend", backend, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = json_lines(proc.stdout)
    interims = [e for e in events if e["type"] == "interim"]
    assert [e["seq"] for e in interims] == [1, 2, 3]
    assert [e["data"]["iteration"] for e in interims] == [0, 1, 2]
    for event in interims:
        counts = event["data"]["counts"]
        assert sum(counts.values()) == 1024
        assert all(len(key) == 5 and set(key) <= {"0", "1"} for key in counts)
    assert events[-1] == {"type": "result", "data": "All done!"}


def test_human_output_prints_interims_and_result_as_qruntime_run_does(qruntime_cli, programs):
    proc = qruntime_cli("run-local", programs / "hello_world.py", "--inputs", SEED_INPUTS)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:3]] == ["[1]", "[2]", "[3]"]
    assert lines[3:] == ['"All done!"']
    interims = [json.loads(line.split(" ", 1)[1]) for line in lines[:3]]
    assert [i["iteration"] for i in interims] == [0, 1, 2]


def test_metadata_beside_the_source_is_read_and_input_names_are_checked(
    qruntime_cli, programs, tmp_path
):
    # hello_world.json lies beside hello_world.py: its spec refuses -1 without --metadata.
    proc = qruntime_cli("run-local", programs / "hello_world.py", "--inputs", '{"iterations": -1}')
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert "inputs.iterations: -1 is less than the minimum of 0" in proc.stderr

    misspelt = qruntime_cli(
        "run-local", programs / "hello_world.py", "--inputs", '{"iteration": 2}'
    )
    assert (misspelt.returncode, misspelt.stdout) == (2, ""), misspelt.stderr
    assert misspelt.stderr == (  # main takes **kwargs, so the spec's refusal says it
        "error: invalid job inputs (2 problems):\n"
        "  - inputs: 'iterations' is a required property\n"
        "  - inputs.iteration: 'iteration' is not a documented input; did you mean 'iterations'?\n"
    )

    # No metadata at all: main's own parameters decide.
    program = tmp_path / "takes_shots.py"
    program.write_text(
        "def main(backend, user_messenger, shots=100, *, seed=None):\n    return 1\n"
    )
    shot = qruntime_cli("run-local", program, "--inputs", '{"shot": 1}')
    assert (shot.returncode, shot.stdout) == (2, ""), shot.stderr
    assert shot.stderr == (
        "error: invalid job inputs: inputs.shot: unknown input 'shot'; did you mean 'shots'?\n"
    )
    unknown = qruntime_cli("run-local", program, "--inputs", '{"shots": 1, "colour": "red"}')
    assert unknown.returncode == 2, unknown.stderr
    assert "unknown input 'colour'; this program takes: seed, shots" in unknown.stderr


def test_inputs_from_file_with_encoded_circuit_and_legacy_metadata(
    qruntime_cli, programs, tmp_path
):
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    inputs = tmp_path / "inputs.json"
    inputs.write_text(encode({"circuits": [bell], "shots": 200}))
    legacy = programs.parent / "metadata" / "circuit_runner_legacy.json"
    proc = qruntime_cli(
        "run-local", programs / "circuit_runner.py", "--metadata", legacy,
        "--inputs", f"@{inputs}", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = decode(json.dumps(json_lines(proc.stdout)[-1]["data"]))
    assert set(result[0]) == {"00", "11"}
    assert sum(result[0].values()) == 200


def test_program_exception_exits_1_with_traceback(qruntime_cli, programs):
    proc = qruntime_cli("run-local", programs / "raises_key_error.py")
    assert proc.returncode == 1
    assert "KeyError: 'optimization_level'" in proc.stderr
    assert 'raises_key_error.py", line 7, in main' in proc.stderr
    assert 'return settings["optimization_level"]' in proc.stderr


def test_program_past_its_max_execution_time_is_killed_on_time(qruntime_cli, programs, tmp_path):
    metadata = tmp_path / "sleeps_forever.json"
    metadata.write_text(json.dumps({"name": "sleeps-forever", "max_execution_time": 1}))
    started = time.monotonic()
    proc = qruntime_cli(
        "run-local", programs / "sleeps_forever.py", "--metadata", metadata, "--json"
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    last = json_lines(proc.stdout)[-1]
    assert last["type"] == "error"
    assert last["reason"] == "RAN TOO LONG"
    assert "max_execution_time of 1 s" in last["message"]
    assert elapsed < 30  # the program sleeps an hour; start-up takes a few seconds


@pytest.mark.parametrize(
    ("how", "expected"),
    [("exit", "exited with status 3"), ("abort", "SIGABRT"), ("segfault", "SIGSEGV")],
)
def test_abnormal_process_exit_is_reported(qruntime_cli, programs, how, expected):
    proc = qruntime_cli(
        "run-local", programs / "hard_exit.py", "--inputs", json.dumps({"how": how})
    )
    assert proc.returncode == 1
    assert "PROCESS CRASHED" in proc.stderr
    assert expected in proc.stderr
    assert f"[stdout] about to {how}" in proc.stdout


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"name": "hello_world", "max_execution_time": 300}, "metadata.name"),
        ({"name": "hello-world", "max_execution_time": -5}, "metadata.max_execution_time"),
        (
            {
                "name": "hello-world",
                "max_execution_time": 300,
                "spec": {"parameters": {"type": "not-a-type"}},
            },
            "metadata.spec.parameters",
        ),
    ],
    ids=["underscore-name", "negative-time", "invalid-schema"],
)
def test_bad_metadata_exits_2_naming_the_problem(
    qruntime_cli, programs, tmp_path, metadata, expected
):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(metadata))
    proc = qruntime_cli("run-local", programs / "hello_world.py", "--metadata", path)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "interim" not in proc.stdout


def test_source_without_main_exits_2(qruntime_cli, programs):
    proc = qruntime_cli("run-local", programs / "no_main.py")
    assert proc.returncode == 2
    assert "no main function" in proc.stderr


def test_inputs_breaking_the_schema_exit_2_with_their_path(qruntime_cli, programs):
    proc = qruntime_cli(
        "run-local", programs / "hello_world.py", "--metadata", programs / "hello_world.json",
        "--inputs", '{"iterations": -1}',
    )  # fmt: skip
    assert proc.returncode == 2
    assert "inputs.iterations" in proc.stderr
    assert "minimum of 0" in proc.stderr


def test_backend_too_small_for_the_program_exits_2(qruntime_cli, programs):
    proc = qruntime_cli(
        "run-local", programs / "hello_world.py", "--metadata", programs / "hello_world.json",
        "--inputs", SEED_INPUTS, "--backend", "fake_armonk",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "min_num_qubits" in proc.stderr


def test_unknown_backend_exits_2(qruntime_cli, programs):
    proc = qruntime_cli("run-local", programs / "hello_world.py", "--backend", "ibmq_nowhere")
    assert proc.returncode == 2
    assert "unknown backend 'ibmq_nowhere'" in proc.stderr


def test_malformed_inputs_exit_2(qruntime_cli, programs):
    proc = qruntime_cli("run-local", programs / "hello_world.py", "--inputs", "[1, 2]")
    assert proc.returncode == 2
    assert "inputs" in proc.stderr


def test_backends_lists_ideal_and_device_simulators(qruntime_cli):
    proc = qruntime_cli("backends", "--local", "--json")
    assert proc.returncode == 0, proc.stderr
    by_name = {b["name"]: b for b in json.loads(proc.stdout)}
    assert by_name["aer_simulator"]["noisy"] is False
    assert by_name["fake_manila"]["num_qubits"] == 5
    assert by_name["fake_montreal"]["num_qubits"] == 27
    assert by_name["fake_manila"]["noisy"] is True


PID_PRINTER = """
import os, time

def main(backend, user_messenger, **kwargs):
    print(f"worker pid {os.getpid()}", flush=True)
    time.sleep(3600)
"""


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ")[1].startswith("Z"):
                    return True  # a zombie no longer runs anything
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_worker_does_not_outlive_the_cli(tmp_path, sig):
    program = tmp_path / "pid_printer.py"
    program.write_text(PID_PRINTER)
    cli = subprocess.Popen([QRUNTIME, "run-local", str(program)], stdout=subprocess.PIPE, text=True)
    try:
        line = cli.stdout.readline()
        assert line.startswith("[stdout] worker pid "), line
        worker = int(line.split()[-1])
        cli.send_signal(sig)
        cli.wait(timeout=30)
        assert _gone(worker), f"worker {worker} survived {sig.name} to the CLI"
    finally:
        cli.kill()
        cli.wait()
        cli.stdout.close()


def test_ctrl_c_stops_a_cli_that_a_shell_started_with_sigint_ignored(tmp_path):
    """A backgrounded shell command starts with SIGINT ignored; the CLI restores Ctrl-C."""
    program = tmp_path / "pid_printer.py"
    program.write_text(PID_PRINTER)

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    cli = subprocess.Popen(
        [QRUNTIME, "run-local", str(program)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint,
    )
    try:
        line = cli.stdout.readline()
        assert line.startswith("[stdout] worker pid "), line
        worker = int(line.split()[-1])
        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=30) != 0
        assert _gone(worker), f"worker {worker} survived SIGINT to the CLI"
    finally:
        cli.kill()
        cli.wait()
        cli.stdout.close()
