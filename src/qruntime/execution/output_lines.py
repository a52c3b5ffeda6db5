"""Split a program's stdout/stderr into log lines without trusting it to end lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

#: A line longer than this is cut into pieces, so one huge line cannot exhaust memory.
MAX_LINE_BYTES = 64 * 1024


async def iter_lines(
    stream: asyncio.StreamReader, *, max_line_bytes: int = MAX_LINE_BYTES
) -> AsyncIterator[str]:
    """Yield lines without their newline; no piece is longer than ``max_line_bytes``."""
    pending = b""
    while chunk := await stream.read(max_line_bytes):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            line = line.removesuffix(b"\r")
            for start in range(0, max(len(line), 1), max_line_bytes):
                yield _text(line[start : start + max_line_bytes])
        while len(pending.removesuffix(b"\r")) > max_line_bytes:
            yield _text(pending[:max_line_bytes])
            pending = pending[max_line_bytes:]
    if pending := pending.removesuffix(b"\r"):
        yield _text(pending)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
