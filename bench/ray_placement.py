"""What each Ray job costs Ray's control plane: its placement group made and awaited (the
replica's driver, ``Driver.place``) and removed (its agent, when the job ends).

    .venv/bin/python bench/ray_placement.py [--jobs 200] [--json]

Starts a two-node cluster on this host (tests/ray_cluster.py, stopped at the end) and runs the
project's own code for both steps, one job at a time. Also times the placement group table
read that every ``place`` makes (to remove a job's leftover groups), at the start and after
the jobs, since removed groups stay in that table. An input of docs/performance.md's
capacity estimate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from qruntime.execution.local import LocalExecutorConfig
from qruntime.execution.ray_agent import _remove_placement_group
from qruntime.execution.ray_driver import Driver, DriverSpec
from ray_cluster import HEAD_IP, ray_cluster


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def table_read_ms(repeat: int = 20) -> tuple[float, int]:
    """Median time of one placement group table read, and how many groups it lists."""
    from ray.util import placement_group_table

    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = len(placement_group_table())
        times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 2), size


async def jobs(driver: Driver, count: int) -> dict[str, object]:
    place, remove = [], []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        placed = await driver.place(f"bench-{i}", {"CPU": 1.0})
        t1 = time.perf_counter()
        _remove_placement_group(placed["placement_group"])
        remove.append(1000 * (time.perf_counter() - t1))
        place.append(1000 * (t1 - t0))
    elapsed = time.perf_counter() - started
    return {"place": summary(place), "remove": summary(remove), "jobs_per_s": count / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import ray

    with ray_cluster() as cluster:
        ray.init(
            address=cluster.address,
            namespace="qrt-bench",
            _node_ip_address=HEAD_IP,
            log_to_driver=False,
            logging_level="WARNING",
        )
        try:
            spec = DriverSpec(cluster.address, "qrt-bench", LocalExecutorConfig(), lambda: None)  # type: ignore[arg-type,return-value]
            driver = Driver(spec)
            before = table_read_ms()
            result = asyncio.run(jobs(driver, args.jobs))
            after = table_read_ms()
        finally:
            ray.shutdown()
    result["table_read_before"] = {"median_ms": before[0], "groups": before[1]}
    result["table_read_after"] = {"median_ms": after[0], "groups": after[1]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.jobs} jobs, one at a time: {result['jobs_per_s']:.1f} jobs/s")
    for step in ("place", "remove"):
        times: dict[str, float] = result[step]  # type: ignore[assignment]
        print(f"  {step}: median {times['median_ms']} ms, p95 {times['p95_ms']} ms")
    for when in ("before", "after"):
        read: dict[str, float] = result[f"table_read_{when}"]  # type: ignore[assignment]
        print(f"  group table read {when}: {read['median_ms']} ms, {read['groups']:g} groups")


if __name__ == "__main__":
    main()
