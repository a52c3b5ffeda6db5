"""What every benchmark shares: rows of the result table, percentiles, the trivial programs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Publishes the wall-clock time on its first line: job start latency ends there.
FIRST_LINE_PROGRAM = """\
import time


def main(backend, user_messenger, **kwargs):
    user_messenger.publish(time.time())
    return "done"
"""
#: The trivial job of the end-to-end and throughput runs.
TRIVIAL_PROGRAM = """\
def main(backend, user_messenger, n=0):
    return n
"""
#: Publishes ``count`` interim results, each stamped with its publish time, ``interval`` apart.
FLOOD_PROGRAM = """\
import time


def main(backend, user_messenger, count=1000, interval=0.0):
    for i in range(count):
        user_messenger.publish([i, time.time()])
        if interval:
            time.sleep(interval)
    return count
"""


def metadata(name: str, max_execution_time: int = 600) -> dict:
    return {
        "name": name,
        "description": f"qruntime benchmark: {name}",
        "max_execution_time": max_execution_time,
    }


@dataclass(frozen=True)
class Row:
    """One line of docs/performance.md: a measured value, its target, and what it is against."""

    benchmark: str
    measure: str
    value: str
    target: str = ""
    baseline: str = ""


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def p50_p95(values: Sequence[float]) -> str:
    return f"p50 {ms(percentile(values, 50))}, p95 {ms(percentile(values, 95))}"
