"""Which queued jobs start next: round-robin across users, so no backlog starves others."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol, TypeVar


class _QueuedJob(Protocol):
    id: str
    owner_id: int


J = TypeVar("J", bound=_QueuedJob)


class FairShare:
    """Remembers when each user was last served, across scheduling rounds."""

    def __init__(self) -> None:
        self._last_served: dict[int, int] = {}
        self._tick = 0

    def pick(
        self,
        queued: Sequence[J],
        running_per_owner: Counter[int],
        slots: int,
        *,
        max_running_per_owner: int | None = None,
    ) -> list[J]:
        """Up to ``slots`` jobs: each from the user with the fewest running jobs, ties going
        to whoever was served longest ago; each user's own jobs start oldest first. A user
        with ``max_running_per_owner`` jobs running gets none."""
        running = Counter(running_per_owner)
        backlog: dict[int, list[J]] = {}
        for job in queued:  # oldest first, as the repository returns them
            if max_running_per_owner is None or running[job.owner_id] < max_running_per_owner:
                backlog.setdefault(job.owner_id, []).append(job)
        chosen: list[J] = []
        while backlog and len(chosen) < slots:
            owner = min(backlog, key=lambda o: (running[o], self._last_served.get(o, -1)))
            chosen.append(backlog[owner].pop(0))
            running[owner] += 1
            if not backlog[owner] or running[owner] == max_running_per_owner:
                del backlog[owner]
            self._tick += 1
            self._last_served[owner] = self._tick
        return chosen
