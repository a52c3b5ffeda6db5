"""A job's output lines waiting to be stored together, never more than the log cap in memory.

Output is stored at most every LOG_FLUSH_SECONDS (and before each interim result and at the
end), one transaction per batch: a program printing gigabytes costs the database a few
writes a second, and only the newest ``cap_bytes`` are ever kept.
"""

from __future__ import annotations

import asyncio
from collections import deque

#: How long output may wait before it is stored.
LOG_FLUSH_SECONDS = 0.25


class LogBuffer:
    def __init__(self, cap_bytes: int):
        self.lock = asyncio.Lock()
        self.flush_scheduled = False
        self._cap = cap_bytes
        self._lines: deque[tuple[str, str, int]] = deque()
        self._bytes = 0
        self._dropped = 0

    def add(self, stream: str, text: str) -> None:
        size = len(text.encode("utf-8", errors="surrogatepass"))
        self._lines.append((stream, text, size))
        self._bytes += size
        while self._bytes > self._cap and self._lines:
            dropped = self._lines.popleft()[2]
            self._bytes -= dropped
            self._dropped += dropped

    def __bool__(self) -> bool:
        return bool(self._lines) or self._dropped > 0

    def take(self) -> tuple[list[tuple[str, str]], int]:
        """The waiting lines and how many bytes were dropped before they could be stored."""
        lines = [(stream, text) for stream, text, _ in self._lines]
        dropped = self._dropped
        self._lines.clear()
        self._bytes = self._dropped = 0
        return lines, dropped
