"""Two servers side by side, each from its own virtual environment, trivial jobs alternating
between them: an A/B of zygote- and worker-side code (which ``PYTHONPATH`` does not reach: the
zygote starts with the sandbox's allow-listed environment) that both sides see at one load.

    .venv/bin/python bench/perf/zygote_ab.py 150 4 old=../old/.venv/bin/python new=.venv/bin/python
    .venv/bin/python bench/perf/zygote_ab.py 150 4 a=.venv/bin/python b=.venv/bin/python+NAME:VALUE

``+NAME:VALUE`` sets an environment variable for that side's server. Per round and side: CPU
per job of the zygote and of its workers (reaped), system time apart; before and after, the
zygote's anonymous memory in 4 KiB pages and in huge pages. The side started second reads
~0.1 ms higher in an A/A run, so run both orders.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from common import TRIVIAL_PROGRAM, metadata
from server import bench_server, wait_for_warm_pool, zygote_pid

from qruntime.client import RuntimeService

TICK = os.sysconf("SC_CLK_TCK")


def cpu(zygote: int) -> list[float]:
    """The zygote's user and system seconds, then its reaped children's."""
    with open(f"/proc/{zygote}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return [int(value) / TICK for value in fields[11:15]]


def image(zygote: int) -> dict[str, int]:
    """MiB of the zygote's anonymous memory in 4 KiB pages and in huge pages; its mappings."""
    anonymous = huge = mappings = 0
    with open(f"/proc/{zygote}/smaps") as smaps:
        for line in smaps:
            name, _, rest = line.partition(":")
            if " " in name:
                mappings += 1
            elif name == "Anonymous":
                anonymous += int(rest.split()[0])
            elif name == "AnonHugePages":
                huge += int(rest.split()[0])
    return {"4k_MiB": (anonymous - huge) >> 10, "huge_MiB": huge >> 10, "mappings": mappings}


def side(argument: str) -> tuple[str, str, dict[str, str]]:
    name, _, rest = argument.partition("=")
    python, *settings = rest.split("+")
    return name, os.path.abspath(python), dict(s.split(":", 1) for s in settings)


def main(argv: list[str]) -> None:
    count, rounds = int(argv[1]), int(argv[2])
    sides = [side(a) for a in argv[3:5]]
    with contextlib.ExitStack() as stack:
        services, programs, zygotes = {}, {}, {}
        for name, python, settings in sides:
            saved, saved_env = sys.executable, dict(os.environ)
            sys.executable = python  # bench_server runs the qruntime next to it
            os.environ.update(settings)
            try:
                server = stack.enter_context(bench_server())
            finally:
                sys.executable = saved
                os.environ.clear()
                os.environ.update(saved_env)
            services[name] = RuntimeService(url=server.url, token=server.token)
            programs[name] = services[name].upload_program(TRIVIAL_PROGRAM, metadata("zygote-ab"))
            wait_for_warm_pool(server, 2)
            zygotes[name] = zygote_pid(server)
        names = [name for name, _, _ in sides]
        print(json.dumps({"before": {n: image(zygotes[n]) for n in names}}))
        for round_ in range(-1, rounds):  # round -1 warms both up, unreported
            before = {n: cpu(zygotes[n]) for n in names}
            for i in range(count if round_ >= 0 else 5):
                for name in names if i % 2 == 0 else names[::-1]:
                    options = {"backend_name": "aer_simulator"}
                    job = services[name].run(programs[name], {"n": i}, options=options)
                    if job.result(timeout=60) != i:
                        raise RuntimeError(f"{name}: job {i} returned a wrong result")
            if round_ < 0:
                continue
            row: dict = {"round": round_, "load": round(os.getloadavg()[0], 2)}
            for n in names:
                now = cpu(zygotes[n])
                d = [(a - b) * 1000 / count for a, b in zip(now, before[n], strict=True)]
                row[n] = {
                    "zygote": round(d[0] + d[1], 2),
                    "zygote_sys": round(d[1], 2),
                    "workers": round(d[2] + d[3], 2),
                    "workers_sys": round(d[3], 2),
                    "total": round(sum(d), 2),
                }
            print(json.dumps(row), flush=True)
        print(json.dumps({"after": {n: image(zygotes[n]) for n in names}}))


if __name__ == "__main__":
    main(sys.argv)
