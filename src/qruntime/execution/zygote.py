"""The zygote: imports qiskit, Aer, numpy and scipy once, starts no threads, forks the workers.

Started by the supervisor as ``python -m qruntime.execution.zygote CONTROL_FD SUPERVISOR_PID
CONFIG_JSON``. Each fork order becomes one worker process that waits, already sandboxed, for
its one job (:func:`qruntime.execution.worker.serve_forked`); the zygote reaps its workers and
reports how each ended, since only a parent can learn a child's exit status.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
import traceback

from qruntime.execution import job_root
from qruntime.execution.root_template import RootTemplate, RootTemplates
from qruntime.execution.zygote_link import FDS_PER_WORKER, receive_message, send_message


def preload(modules: list[str], gpu: bool) -> list[str]:
    """Import what jobs will need; return the modules that could not be imported."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # an optional extra that is not installed: the job imports it itself
            missing.append(name)
    from qruntime.backends.registry import build_default_registry, use_default_registry

    registry = build_default_registry(gpu=gpu)
    registry.get("aer_simulator")  # an object only: Aer starts threads when it runs, not here
    use_default_registry(registry)
    return missing


def serve(sock: socket.socket) -> None:
    """Fork a worker per order and report exits, until the supervisor closes the channel."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd fires
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    closing = (sock.fileno(), wake_r, wake_w)
    templates = RootTemplates()
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                os.read(wake_r, 4096)
                _reap(sock)
                continue
            order, fds = receive_message(sock, FDS_PER_WORKER)
            if order is None:
                return  # the supervisor is gone; our workers die with us (parent-death signal)
            _fork(sock, order, fds, closing, templates)


def _fork(
    sock: socket.socket,
    order: dict,
    fds: list[int],
    closing: tuple[int, ...],
    templates: RootTemplates,
) -> None:
    if len(fds) != FDS_PER_WORKER:
        for fd in fds:
            os.close(fd)
        send_message(sock, {"op": "fork_failed", "id": order.get("id"), "error": "missing pipes"})
        return
    plan = order.get("sandbox")
    if plan is not None and plan.get("isolate_filesystem"):
        job_root.prepare(tuple(plan["exposed_paths"]))  # once here, not in every worker
    template = templates.for_plan(plan)  # the read-only part of the job's root, made once
    sys.stdout.flush()
    sys.stderr.flush()
    zygote_pid = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        send_message(sock, {"op": "fork_failed", "id": order["id"], "error": str(exc)})
        return
    if pid == 0:
        _become_worker(order, fds, closing, zygote_pid, template)
    for fd in fds:
        os.close(fd)
    send_message(sock, {"op": "forked", "id": order["id"], "pid": pid})


def _become_worker(
    order: dict,
    fds: list[int],
    closing: tuple[int, ...],
    zygote_pid: int,
    template: RootTemplate | None = None,
) -> None:
    """In the forked child: drop the zygote's channel and signal set-up, then serve one job."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in closing:
            os.close(fd)
        from qruntime.execution.worker import serve_forked

        status = serve_forked(order, fds, zygote_pid, template)
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(status)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        send_message(sock, {"op": "exited", "pid": pid, "returncode": code})


def main(argv: list[str]) -> None:
    from qruntime.execution.worker import die_with_supervisor

    sock = socket.socket(fileno=int(argv[1]))
    die_with_supervisor(int(argv[2]))
    config = json.loads(argv[3])
    started = time.perf_counter()
    if config.get("huge_pages", True):
        from qruntime.execution.arena_reserve import reserve_arenas

        reserve_arenas()  # arenas in one run, which the heap's collapse below can take whole
    missing = preload(config["preload"], config["gpu"])
    gc.collect()
    gc.freeze()  # forked workers then share these objects' pages instead of copying them
    if config.get("huge_pages", True):
        from qruntime.execution.huge_pages import collapse_heap

        collapse_heap()  # fork and exit copy/free ~2x fewer page-table entries (perf docs)
    ready = {"op": "ready", "pid": os.getpid(), "missing": missing}
    send_message(sock, ready | {"seconds": time.perf_counter() - started})
    serve(sock)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
