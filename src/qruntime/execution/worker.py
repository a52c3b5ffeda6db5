"""Child-process entry point: run one job and report on the event pipe.

Started as ``python -m qruntime.execution.worker JOB_FD EVENT_FD SUPERVISOR_PID``; reads a
JobRequest from JOB_FD, then loads the program, builds the backend and calls ``main``.
Program output on stdout/stderr is the supervisor's log; only this module writes to EVENT_FD.
A worker forked by the warm pool's zygote enters through :func:`serve_forked` instead.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from qruntime.backends import get_backend
from qruntime.domain.text import may_hold_surrogates, published_json_problem, repair_text
from qruntime.execution import linux
from qruntime.execution.environment import missing_module_hint
from qruntime.execution.exits import EXIT_EVENT_PIPE_LOST, EXIT_SUPERVISOR_GONE
from qruntime.execution.limits import JobLimits, result_too_large, unstorable
from qruntime.execution.messenger import UserMessenger
from qruntime.execution.program_loader import load_program, program_filename
from qruntime.execution.protocol import write_frame
from qruntime.execution.request import JobRequest
from qruntime.execution.sandbox import SandboxError, SandboxPlan, enter_sandbox, lower_cpu_limit
from qruntime.serialization import RuntimeDecoder, RuntimeEncoder

if TYPE_CHECKING:
    from qruntime.execution.root_template import RootTemplate

#: Process names (``/proc/<pid>/comm``) of a forked worker waiting for a job and running one.
IDLE_WORKER_NAME = "qruntime-idle"
JOB_WORKER_NAME = "qruntime-job"


def read_request(job_fd: int) -> JobRequest:
    chunks = []
    while chunk := os.read(job_fd, 1 << 20):
        chunks.append(chunk)
    os.close(job_fd)
    return JobRequest.from_json(json.loads(b"".join(chunks)))


def run_job(
    request: JobRequest,
    event_fd: int,
    supervisor_pid: int | None = None,
    *,
    sandboxed: bool = False,
) -> int:
    """Run the program; return the exit status the worker should end with.

    ``sandboxed``: the worker entered its sandbox while it waited; only the job's CPU limit is
    left to apply.
    """
    limits = JobLimits.from_json(request.limits)
    messenger = UserMessenger(event_fd, limits)
    try:
        backend = get_backend(request.backend_name)
        inputs = json.loads(request.inputs, cls=RuntimeDecoder)
    except Exception as exc:
        messenger.finish(_error(f"the job could not be set up: {type(exc).__name__}: {exc}"))
        return 1
    if request.sandbox is not None:
        try:  # everything before this line is ours; everything after may be the program's
            plan = SandboxPlan.from_json(request.sandbox)
            if sandboxed:
                lower_cpu_limit(plan.max_cpu_seconds)
            else:
                enter_sandbox(plan, supervisor_pid or os.getppid(), keep_fds=(event_fd,))
        except SandboxError as exc:
            messenger.finish(_error(str(exc)))
            return 1
    write_frame(event_fd, {"type": "started"})
    filename = program_filename(request.program_name)
    try:
        module = load_program(request.source, request.program_name)
        result = module.main(backend, messenger, **inputs)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from a program are failures too
        message = _program_traceback(exc, filename)
        if request.sandbox is not None and _out_of_space(exc):
            scratch = SandboxPlan.from_json(request.sandbox).scratch_bytes
            message += (
                f"\n[qruntime: the job's scratch space (its working directory, /tmp, /var/tmp "
                f"and /dev/shm together) is limited to {scratch} bytes "
                "(QRUNTIME_SANDBOX_MAX_SCRATCH_BYTES)]"
            )
        if isinstance(exc, ModuleNotFoundError):
            message += "\n\n" + missing_module_hint(exc.name)
        messenger.finish(_error(message))
        return 1
    if result is None and messenger.final_data is not None:
        data = messenger.final_data
    else:
        try:
            data = json.dumps(result, cls=RuntimeEncoder)
        except Exception as exc:  # TypeError, ValueError, RecursionError from deep nesting, ...
            message = (
                "the value returned by main() could not be encoded by RuntimeEncoder: "
                f"{type(exc).__name__}: {exc}"
            )
            messenger.finish(_error(message))
            return 1
    if len(data) > limits.max_result_bytes:
        messenger.finish(_error(result_too_large(len(data), limits.max_result_bytes)))
        return 1
    if may_hold_surrogates(data) and (problem := published_json_problem(data)):
        messenger.finish(_error(unstorable("the value returned by main()", problem)))
        return 1
    messenger.finish({"type": "result", "data": data})
    return 0


def _out_of_space(exc: BaseException | None) -> bool:
    """ENOSPC anywhere in the exception's chain: the scratch tmpfs is full."""
    seen = 0
    while exc is not None and seen < 32:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _error(message: str) -> dict[str, str]:
    # A traceback may quote text that is not valid Unicode; the frame must still encode.
    return {"type": "error", "message": repair_text(message)}


def _program_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the program's first frame on, without the worker's own frames."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    if tb is None:  # e.g. a SyntaxError: no program frame ran; the message says where
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def die_with_supervisor(supervisor_pid: int) -> None:
    """A worker must not outlive its supervisor: nobody would enforce its time limit.

    PR_SET_PDEATHSIG fires when the spawning *thread* ends: spawn from a long-lived loop thread.
    """
    if linux.IS_LINUX:
        with contextlib.suppress(OSError):  # as before: a refusal is not checked here
            linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor_pid:  # it died before the line above took effect
        os._exit(EXIT_SUPERVISOR_GONE)


def serve_forked(
    order: dict, fds: list[int], zygote_pid: int, template: RootTemplate | None = None
) -> int:
    """In a worker the zygote just forked: sandbox this process now, then wait for its job.

    ``order`` carries the worker's directory, environment and sandbox plan; ``fds`` its job,
    event, stdout and stderr pipes; ``template`` the zygote's read-only part of job roots.
    The job's request then only has to be read from a pipe.
    """
    job_fd, event_fd, out_fd, err_fd = fds
    linux.set_process_name(IDLE_WORKER_NAME)
    os.setsid()  # its own session and process group, as a spawned worker has
    for source, target in ((out_fd, 1), (err_fd, 2)):
        os.dup2(source, target)
        os.close(source)
    die_with_supervisor(zygote_pid)
    env = order["env"]
    for name in [name for name in os.environ if name not in env]:  # only the allow-listed stay
        del os.environ[name]
    os.environ.update(env)
    tempfile.tempdir = None  # TMPDIR changed: the zygote's cached answer no longer holds
    os.chdir(order["workdir"])
    sandbox_error = None
    if order.get("sandbox") is not None:
        plan = SandboxPlan.from_json(order["sandbox"])
        try:
            enter_sandbox(plan, zygote_pid, keep_fds=(job_fd, event_fd), template=template)
        except SandboxError as exc:
            sandbox_error = str(exc)  # told to the job that comes, as a spawned worker would

    def job(request: JobRequest) -> int:
        linux.set_process_name(JOB_WORKER_NAME)
        if sandbox_error is not None:
            limits = JobLimits.from_json(request.limits)
            UserMessenger(event_fd, limits).finish(_error(sandbox_error))
            return 1
        return run_job(request, event_fd, zygote_pid, sandboxed=True)

    return _serve(job_fd, event_fd, job)


def _serve(job_fd: int, event_fd: int, job: Callable[[JobRequest], int]) -> int:
    """Read the request, run ``job``; turn a broken event pipe into its exit status."""
    os.set_inheritable(event_fd, False)  # programs' own subprocesses must not hold the pipe
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        request = read_request(job_fd)
        sys.argv = [program_filename(request.program_name)]
        return job(request)
    except OSError:  # the program closed or broke the event pipe; the supervisor says so
        return EXIT_EVENT_PIPE_LOST
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        # Closed before the exit: the supervisor sees the end of every pipe now, not after
        # the kernel has torn down this process's memory.
        for fd in (event_fd, 1, 2):
            with contextlib.suppress(OSError):
                os.close(fd)


def main(argv: list[str]) -> None:
    job_fd, event_fd, supervisor_pid = int(argv[1]), int(argv[2]), int(argv[3])
    die_with_supervisor(supervisor_pid)
    status = 1
    try:
        status = _serve(
            job_fd, event_fd, lambda request: run_job(request, event_fd, supervisor_pid)
        )
    finally:
        os._exit(status)  # skip interpreter shutdown: leftover program threads must not hang it


if __name__ == "__main__":
    main(sys.argv)
