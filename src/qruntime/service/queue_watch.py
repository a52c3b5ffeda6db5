"""Whether this replica's last claim found the job queue empty, with nothing queued since:
then a job's end needs no dispatcher scan, which would find nothing (one transaction and a
thread hop per job when jobs come one at a time)."""

from __future__ import annotations

import threading


class QueueWatch:
    """Counts the moments a job may have been queued; a claim that found no queued job at all
    records the count it read first, so an empty queue is known only while nothing changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changes = 0
        self._empty_at = -1  # the count read by the last claim that found no queued job

    def changed(self) -> None:
        """A job may be queued (or claimable) now; any thread, once its insert is committed."""
        with self._lock:
            self._changes += 1

    def look(self) -> int:
        """Read before a claim reads the queue: what it gives :meth:`found_empty`."""
        with self._lock:
            return self._changes

    def found_empty(self, look: int) -> None:
        """The claim that read ``look`` left no job QUEUED (of any owner, session or replica)."""
        with self._lock:
            self._empty_at = max(self._empty_at, look)

    def known_empty(self) -> bool:
        """No job queued since a claim found the queue empty: a scan now would find nothing."""
        with self._lock:
            return self._empty_at == self._changes
