"""Say in words how a worker process ended when it did not report a result itself."""

from __future__ import annotations

import signal

#: Exit status of a worker that could no longer write to its event pipe.
EXIT_EVENT_PIPE_LOST = 86
#: Exit status of a worker whose supervisor was already gone when it started.
EXIT_SUPERVISOR_GONE = 87

_SIGNAL_HINTS = {
    signal.SIGSEGV: "a segmentation fault in native code",
    signal.SIGABRT: "the process aborted, e.g. os.abort() or a failed check in native code",
    signal.SIGKILL: "killed outright, e.g. by the kernel when memory ran out",
    signal.SIGBUS: "a bus error in native code",
    signal.SIGFPE: "a floating-point exception in native code",
    signal.SIGXCPU: "the CPU-time limit was reached",
    signal.SIGXFSZ: "the file-size limit was reached",
}


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"the job's process was killed by signal {-returncode}"
        hint = _SIGNAL_HINTS.get(sig)
        suffix = f": {hint}" if hint else ""
        return f"the job's process was killed by signal {sig.name}{suffix}"
    if returncode == EXIT_EVENT_PIPE_LOST:
        return "the job's event pipe was closed before the result was sent (by the program?)"
    if returncode == 0:
        return "the job's process exited without sending a result (was the event pipe closed?)"
    return (
        f"the job's process exited with status {returncode} before sending a result "
        "(os._exit() or a crash outside Python)"
    )
