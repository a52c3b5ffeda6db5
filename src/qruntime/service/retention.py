"""Old finished jobs go, with their results, interim results and logs, after a retention time.

``QRUNTIME_JOB_RETENTION_DAYS`` (0, the default, keeps every job until its owner deletes it).
The sweep deletes in small batches, so no transaction holds the database for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from qruntime.storage import Database, JobRepository
from qruntime.storage.models import utcnow

log = logging.getLogger("qruntime.retention")

BATCH = 500
#: The sweep runs this often at most, and a quarter of the retention time at least.
MAX_SWEEP_INTERVAL = 3600.0
MIN_SWEEP_INTERVAL = 1.0


class JobRetention:
    def __init__(self, db: Database, retention_days: float):
        self._db = db
        self.retention = timedelta(days=retention_days)
        self._task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        quarter = self.retention.total_seconds() / 4
        return min(MAX_SWEEP_INTERVAL, max(MIN_SWEEP_INTERVAL, quarter))

    def prune(self) -> int:
        """Delete every finished job that ended longer ago than the retention time."""
        cutoff = utcnow() - self.retention
        deleted = 0
        while True:
            with self._db.session() as session:
                count = JobRepository(session).delete_finished_before(cutoff, limit=BATCH)
            deleted += count
            if count < BATCH:
                return deleted

    def start(self) -> None:
        if self.retention > timedelta(0):
            self._task = asyncio.create_task(self._sweep_forever(), name="qruntime-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sweep_forever(self) -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(self.prune)
                if deleted:
                    log.info("deleted %d job(s) past the retention time", deleted)
            except Exception:  # the database may be briefly unavailable; try again later
                log.exception("could not delete jobs past the retention time")
            await asyncio.sleep(self.interval)
