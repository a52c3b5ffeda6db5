"""The zygote's arena reserve: objects made later, while other mappings are made in between (as
the imports map libraries), land in one run of arenas long enough for huge pages."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: In a process of its own: ~6 MiB of small objects, a read-only mapping made between every few
#: hundred of them; prints the share of them that lies in mappings of at least 4 MiB.
SCRIPT = """
import bisect, mmap, sys
if sys.argv[1] == "reserve":
    from qruntime.execution.arena_reserve import reserve_arenas
    assert reserve_arenas(16) > 0
guards, objects = [], []
for _ in range(100):
    guards.append(mmap.mmap(-1, 4096, prot=mmap.PROT_READ))
    objects.extend(bytes(200) for _ in range(250))
spans = []
for line in open("/proc/self/maps"):
    start, end = (int(x, 16) for x in line.split()[0].split("-"))
    spans.append((start, end))
spans.sort()
starts = [s for s, _ in spans]
def span_of(address):
    start, end = spans[bisect.bisect_right(starts, address) - 1]
    return end - start
long = sum(span_of(id(o)) >= 4 << 20 for o in objects)
print(long / len(objects))
"""


def _share_in_long_mappings(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_objects_made_after_the_reserve_lie_in_one_long_run_of_arenas():
    assert _share_in_long_mappings("reserve") > 0.8
    assert _share_in_long_mappings("plain") < 0.5  # what the reserve is for: arenas apart
