"""The zygote's heap collapse: anonymous memory ends up in huge pages where the kernel can."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qruntime.execution import huge_pages

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

#: In a process of its own: 8 MiB of written anonymous memory, collapsed, read back from smaps.
SCRIPT = """
import mmap
from qruntime.execution.huge_pages import collapse_heap
area = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
area.write(b"x" * (8 << 20))
collapsed = collapse_heap()
huge = sum(int(line.split()[1]) for line in open("/proc/self/smaps") if line.startswith("AnonHuge"))
print(collapsed, huge)
area[0:1] = b"y"
assert area[:2] == b"yx"
"""


def _supported() -> bool:
    if not sys.platform.startswith("linux") or not THP.exists() or "[never]" in THP.read_text():
        return False
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (6, 1)  # MADV_COLLAPSE


@pytest.mark.skipif(not _supported(), reason="needs Linux 6.1+ with transparent huge pages")
def test_written_anonymous_memory_is_collapsed_into_huge_pages_and_stays_writable():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    collapsed, huge_kib = (int(x) for x in done.stdout.split())
    assert collapsed >= 4 << 20  # the 8 MiB area holds at least two aligned huge pages
    assert huge_kib * 1024 >= 4 << 20


def test_ranges_are_whole_aligned_huge_pages():
    for start, end in huge_pages.anonymous_ranges():
        assert start % huge_pages.HUGE_PAGE == 0 and end % huge_pages.HUGE_PAGE == 0
        assert end > start
