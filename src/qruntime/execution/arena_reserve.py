"""pymalloc's arenas made back to back before the zygote's imports, so that its heap collapse
(execution/huge_pages.py) can put them in huge pages: made while the imports map libraries in
between, most 1 MiB arenas are mappings of their own that no 2 MiB page fits in (perf docs)."""

from __future__ import annotations

#: Of the ~60 MiB of arenas the default preload ends up in, 32-48 made first gave the most in
#: huge pages; a reserve beyond what the imports fill stays resident, unused, in the zygote.
RESERVE_MIB = 40
OBJECT_SIZE = 400  # bytes objects of this size come from pymalloc (up to 512 bytes)
KEEP_EVERY = 1 << 18  # one object kept per 256 KiB: every 1 MiB arena holds a few

_held: list[bytes] = []  # for the process's life: an arena with no live object is unmapped


def reserve_arenas(mib: int = RESERVE_MIB) -> int:
    """Fill ``mib`` MiB of fresh arenas and free all but a few objects; the objects kept.

    The freed rest of each arena is where the imports' objects go next: pymalloc fills the
    arenas it has before it maps another."""
    rows = mib * 1024 * 1024 // (OBJECT_SIZE * 256)
    filler = [[bytes(OBJECT_SIZE) for _ in range(256)] for _ in range(rows)]
    kept: dict[int, bytes] = {}
    for row in filler:
        for item in row:
            kept.setdefault(id(item) // KEEP_EVERY, item)
    _held.extend(kept.values())
    return len(kept)
