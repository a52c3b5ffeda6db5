"""Where a forked worker's and the zygote's CPU goes, step by step, user and system apart.

    .venv/bin/python bench/perf/worker_steps.py 60          # as root: the server's sandbox
    .venv/bin/python bench/perf/worker_steps.py 60 --kthreads   # also kernel threads' CPU
    .venv/bin/python bench/perf/worker_steps.py 60 --outline    # the big steps only
    .venv/bin/python bench/perf/worker_steps.py 60 --totals     # no step timed (for A/B runs)
    .venv/bin/python bench/perf/worker_steps.py 60 --plain-root # each root built, no template

It does what the zygote does (preload, ``gc.freeze``, huge pages), then forks workers as the
warm pool does (the real :func:`zygote._become_worker`, the real sandbox plan of a
:class:`WorkerPlacement`), hands each a trivial job and reaps it. In the child, the sandbox's
steps are wrapped to record ``getrusage`` around them; what the child's CPU holds beyond its
last record is its exit (the kernel freeing its image and namespaces). ``--kthreads`` adds the
CPU that kernel threads spent meanwhile (network and IPC namespaces are freed in kworkers).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import marshal
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TRIVIAL_PROGRAM
from cpu_budget import kernel_thread_cpu

from qruntime.execution import job_root, linux, sandbox, worker, zygote
from qruntime.execution.huge_pages import collapse_heap
from qruntime.execution.placement import WorkerPlacement
from qruntime.execution.request import JobRequest
from qruntime.execution.sandbox import SandboxConfig
from qruntime.execution.warm_pool import DEFAULT_PRELOAD
from qruntime.execution.worker_pipes import WorkerPipes
from qruntime.execution.worker_supply import IDLE_MAX_EXECUTION_TIME


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


class Steps:
    """In the child: (user, system) seconds per named step, written to ``fd`` at the end."""

    def __init__(self, fd: int):
        self.fd = fd
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[str] = []

    def wrap(self, owner, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)
        label = label or name

        def timed(*args, **kwargs):
            self.calls[label] += 1
            if self.stack:  # nested: only the outermost step counts its CPU
                return original(*args, **kwargs)
            self.stack.append(label)
            user, system = _cpu()
            try:
                return original(*args, **kwargs)
            finally:
                user2, system2 = _cpu()
                self.spent[label][0] += user2 - user
                self.spent[label][1] += system2 - system
                self.stack.pop()

        setattr(owner, name, timed)

    def report(self, stats: dict | None = None) -> None:
        user, system = _cpu()
        payload = {"steps": dict(self.spent), "calls": dict(self.calls), "total": [user, system]}
        payload["stats"] = stats
        data = marshal.dumps(payload)
        while data:
            data = data[os.write(self.fd, data) :]
        os.close(self.fd)


def instrument(fd: int, fine: bool, profile: bool) -> Steps:
    steps = Steps(fd)
    user, system = _cpu()  # a forked child starts at 0: this is CPython's after-fork work
    steps.spent["after fork (CPython, hooks)"] = [user, system, 1]
    if "--totals" in sys.argv:  # no step timed: the worker's CPU as it is, and its exit
        pass
    elif "--outline" in sys.argv:  # the big parts only
        steps.wrap(worker, "enter_sandbox")
        steps.wrap(worker, "run_job")
        steps.wrap(worker, "read_request", "read_request (waits)")
        steps.wrap(worker, "die_with_supervisor")
        steps.wrap(os, "setsid")
        steps.wrap(os.environ, "clear", "environ.clear")
        steps.wrap(os.environ, "update", "environ.update")
        steps.wrap(linux, "set_process_name")
    elif fine:  # inside enter_job_root, each part apart
        for name in ("_links", "_minimal_dev", "_scratch", "_uncover", "_read_only_but"):
            steps.wrap(job_root, name)
        steps.wrap(job_root, "_bind", "job_root binds")
        steps.wrap(os, "chroot")
        steps.wrap(linux, "unshare")
        steps.wrap(linux, "setns")
    else:
        steps.wrap(job_root, "enter_job_root")
        steps.wrap(job_root, "enter_template_root")
        steps.wrap(sandbox, "_hide")
        steps.wrap(linux, "unshare")
    if "--outline" not in sys.argv and "--totals" not in sys.argv:
        steps.wrap(linux, "mount", "other mounts")
        steps.wrap(sandbox, "_limit_resources")
        steps.wrap(worker, "die_with_supervisor")
        steps.wrap(worker, "read_request", "read_request (waits)")
        steps.wrap(worker, "get_backend")
        steps.wrap(worker, "load_program")
        steps.wrap(worker.UserMessenger, "finish", "messenger.finish")
    original_close = sandbox._close_other_fds
    sandbox._close_other_fds = lambda keep: original_close((*keep, fd))  # keep ours open
    steps.wrap(sandbox, "_close_other_fds")
    real_exit = os._exit
    profiler = None
    if profile:  # a cProfile of each worker, sent back with its steps
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not wall
        profiler.enable()

    def exit_after_report(status: int) -> None:
        stats = None
        if profiler is not None:
            profiler.disable()
            profiler.create_stats()
            stats = profiler.stats
        steps.report(stats)
        real_exit(status)

    os._exit = exit_after_report
    return steps


def one_job(
    placement: WorkerPlacement,
    fine: bool,
    profile: bool,
    gap: float,
    templates: zygote.RootTemplates | None,
) -> dict:
    uid, workdir = placement.place()
    pipes = WorkerPipes()
    report_r, report_w = os.pipe()
    order = {"workdir": str(workdir), "env": placement.environment(str(workdir)), "sandbox": None}
    order["sandbox"] = placement.plan(IDLE_MAX_EXECUTION_TIME, workdir, uid).to_json()
    template = None
    if templates is not None:  # as the zygote does: paths worked out once, the root's template
        job_root.prepare(tuple(order["sandbox"]["exposed_paths"]))
        template = templates.for_plan(order["sandbox"])
    me = os.getpid()
    before_self = resource.getrusage(resource.RUSAGE_SELF)
    before_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        instrument(report_w, fine, profile)
        zygote._become_worker(order, list(pipes.child_ends), (), me, template)
    parent_fork = resource.getrusage(resource.RUSAGE_SELF)
    os.close(report_w)
    pipes.close_child_ends()
    time.sleep(gap)  # the worker sets up while idle, as in the warm pool
    plan = placement.plan(60, workdir, uid)
    request = JobRequest(
        job_id="steps",
        source=TRIVIAL_PROGRAM,
        backend_name="aer_simulator",
        max_execution_time=60,
        sandbox=plan.to_json(),
    )
    os.write(pipes.job_w, json.dumps(request.to_json()).encode())
    os.close(pipes.job_w)
    for fd in (pipes.event_r, pipes.out_r, pipes.err_r):
        while os.read(fd, 65536):
            pass
        os.close(fd)
    report = b""
    while chunk := os.read(report_r, 65536):
        report += chunk
    os.close(report_r)
    _, status = os.waitpid(pid, 0)
    after_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    asyncio.run(placement.release(uid, workdir))
    child = after_kids.ru_utime - before_kids.ru_utime, after_kids.ru_stime - before_kids.ru_stime
    fork = (
        parent_fork.ru_utime - before_self.ru_utime,
        parent_fork.ru_stime - before_self.ru_stime,
    )
    payload = marshal.loads(report) if report else {"steps": {}, "calls": {}, "total": [0, 0]}
    payload["child"] = child
    payload["fork"] = fork
    payload["status"] = status
    return payload


def main(argv: list[str]) -> None:
    count = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 40
    fine = "--fine" in argv
    profile = "--cprofile" in argv
    profiles: list[dict] = []
    zygote.preload(list(DEFAULT_PRELOAD), gpu=False)
    gc.collect()
    gc.freeze()
    if "--no-huge-pages" not in argv:
        collapse_heap()
    home = Path.home()
    config = SandboxConfig(hidden_paths=(home,))
    placement = WorkerPlacement(config, sys.executable, None)
    if "--no-netns" in argv:  # what a network namespace per worker costs, by difference
        placement.report = dataclasses.replace(placement.report, can_isolate_network=False)
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    calls: dict[str, int] = defaultdict(int)
    totals = {"fork (parent)": [0.0, 0.0], "child in all": [0.0, 0.0], "child until exit": [0, 0]}
    # The zygote's template of job roots, as the server uses it; --plain-root builds each root
    templates = None if "--plain-root" in argv else zygote.RootTemplates()
    kthreads_before = kernel_thread_cpu() if "--kthreads" in argv else 0
    started = time.monotonic()
    for _ in range(count):
        payload = one_job(placement, fine, profile, 0.02, templates)
        if payload.get("stats"):
            profiles.append(payload["stats"])
        if payload["status"] != 0:
            raise SystemExit(f"a worker failed: status {payload['status']}")
        for name, (user, system, _n) in payload["steps"].items():
            sums[name][0] += user
            sums[name][1] += system
        for name, n in payload["calls"].items():
            calls[name] += n
        for key, pair in (
            ("fork (parent)", payload["fork"]),
            ("child in all", payload["child"]),
            ("child until exit", payload["total"]),
        ):
            totals[key][0] += pair[0]
            totals[key][1] += pair[1]
    elapsed = time.monotonic() - started
    kthreads = kernel_thread_cpu() - kthreads_before if "--kthreads" in argv else None
    if kthreads is not None:  # the same time without workers: what the rest of the machine costs
        idle_before = kernel_thread_cpu()
        time.sleep(elapsed)
        idle = kernel_thread_cpu() - idle_before
    placement.close()
    if templates is not None:
        templates.close()
    ms = 1000 / count
    print(f"{count} workers, ms of CPU each (user / system); load {os.getloadavg()[0]:.1f}")
    for name, (user, system) in sorted(sums.items(), key=lambda kv: -sum(kv[1])):
        share = f"{user * ms:6.2f} / {system * ms:6.2f}"
        print(f"  {name:28s} {share}   calls {calls[name] / count:.0f}")
    accounted = [sum(v[i] for v in sums.values()) for i in (0, 1)]
    until = totals["child until exit"]
    print(f"  {'(steps above, together)':28s} {accounted[0] * ms:6.2f} / {accounted[1] * ms:6.2f}")
    other = [until[i] - accounted[i] for i in (0, 1)]
    print(f"  {'(child: the rest)':28s} {other[0] * ms:6.2f} / {other[1] * ms:6.2f}")
    print(f"  {'child until _exit':28s} {until[0] * ms:6.2f} / {until[1] * ms:6.2f}")
    child = totals["child in all"]
    exit_ = [child[i] - until[i] for i in (0, 1)]
    print(f"  {'child exit (kernel)':28s} {exit_[0] * ms:6.2f} / {exit_[1] * ms:6.2f}")
    print(f"  {'child in all':28s} {child[0] * ms:6.2f} / {child[1] * ms:6.2f}")
    fork = totals["fork (parent)"]
    print(f"  {'fork, in the parent':28s} {fork[0] * ms:6.2f} / {fork[1] * ms:6.2f}")
    if profiles:
        import pstats

        merged = pstats.Stats()
        for stats in profiles:
            one = pstats.Stats()
            one.stats = stats
            merged.add(one)
        merged.sort_stats("tottime").print_stats(60)
        merged.sort_stats("cumulative").print_stats(90)
    if kthreads is not None:
        print(
            f"  kernel threads meanwhile: {kthreads * ms:.2f} ms per worker ({elapsed:.1f} s); "
            f"as long without workers: {idle * ms:.2f}"
        )


if __name__ == "__main__":
    main(sys.argv)
