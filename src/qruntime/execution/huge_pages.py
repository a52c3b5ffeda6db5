"""The zygote's heap in transparent huge pages, so that forking and freeing a worker's copy of
the image walks a few hundred page-table entries instead of tens of thousands."""

from __future__ import annotations

import ctypes
import sys

MADV_COLLAPSE = 25  # Linux 6.1+: collapse a range into huge pages now (THP in "madvise" mode)
HUGE_PAGE = 2 * 1024 * 1024


def anonymous_ranges() -> list[tuple[int, int]]:
    """Private writable anonymous mappings (heap, arenas), cut to whole 2 MiB pages."""
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            path = parts[5] if len(parts) > 5 else ""
            if parts[1] != "rw-p" or (path and path != "[heap]"):
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            start = -(-start // HUGE_PAGE) * HUGE_PAGE
            end = end // HUGE_PAGE * HUGE_PAGE
            if end > start:
                found.append((start, end))
    return found


def collapse_heap() -> int:
    """Best effort: bytes of anonymous memory now in huge pages (0 where the kernel can't)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        ranges = anonymous_ranges()
    except (OSError, AttributeError):
        return 0
    collapsed = 0
    for start, end in ranges:
        for chunk in range(start, end, HUGE_PAGE):  # a chunk with nothing in it fails alone
            if madvise(chunk, HUGE_PAGE, MADV_COLLAPSE) == 0:
                collapsed += HUGE_PAGE
    return collapsed
