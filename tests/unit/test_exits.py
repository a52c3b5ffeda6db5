"""describe_exit: how a worker that never reported a result ended, in words."""

from __future__ import annotations

import signal

import pytest

from qruntime.execution.exits import EXIT_EVENT_PIPE_LOST, describe_exit


@pytest.mark.parametrize(
    ("sig", "hint"),
    [
        (signal.SIGSEGV, "segmentation fault"),
        (signal.SIGABRT, "os.abort()"),
        (signal.SIGKILL, "memory ran out"),
        (signal.SIGBUS, "bus error"),
        (signal.SIGFPE, "floating-point exception"),
        (signal.SIGXCPU, "CPU-time limit"),
        (signal.SIGXFSZ, "file-size limit"),
    ],
)
def test_known_signals_name_the_signal_and_a_hint(sig: signal.Signals, hint: str) -> None:
    message = describe_exit(-int(sig))
    assert message.startswith(f"the job's process was killed by signal {sig.name}: ")
    assert hint in message


def test_exact_sigsegv_message() -> None:
    assert describe_exit(-signal.SIGSEGV) == (
        "the job's process was killed by signal SIGSEGV: a segmentation fault in native code"
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
def test_signal_without_hint_is_named_plainly(sig: signal.Signals) -> None:
    assert describe_exit(-int(sig)) == f"the job's process was killed by signal {sig.name}"


@pytest.mark.parametrize("number", [200, 1000])
def test_unknown_signal_number_is_given_as_a_number(number: int) -> None:
    assert describe_exit(-number) == f"the job's process was killed by signal {number}"


def test_zero_says_no_result_was_sent() -> None:
    message = describe_exit(0)
    assert "exited without sending a result" in message
    assert "event pipe" in message


@pytest.mark.parametrize("status", [1, 3, 2, 127, 255])
def test_positive_status_is_named(status: int) -> None:
    message = describe_exit(status)
    assert message.startswith(f"the job's process exited with status {status} ")
    assert "before sending a result" in message
    assert "os._exit()" in message


def test_event_pipe_lost_status() -> None:
    assert EXIT_EVENT_PIPE_LOST == 86
    message = describe_exit(EXIT_EVENT_PIPE_LOST)
    assert message == (
        "the job's event pipe was closed before the result was sent (by the program?)"
    )
    assert "status" not in message
