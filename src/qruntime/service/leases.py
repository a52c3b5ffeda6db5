"""The replica's heartbeat: it keeps the replica's row and its jobs' leases fresh, and takes over
the jobs of replicas that are gone.

Every ``heartbeat_seconds`` one transaction records the heartbeat, renews the lease of each
job this replica runs (picking up cancel requests that came through other replicas), drops
replicas silent for longer than a lease that own nothing, and lists orphans: RUNNING jobs
whose lease ran out by the database's clock. Each orphan is then taken over by a conditional
update, so of several replicas that see it only one wins. With an executor that can adopt,
the winner follows the job on; otherwise it ends the job as INTERRUPTED (or CANCELLED, if a
cancel was waiting), since its process died with its owner. A live replica's jobs are never
touched: their leases are renewed long before they run out.

Takeovers run as tasks of their own, never inside the heartbeat: one that waits (a row lock,
a slow Ray adoption) must not hold up the beats that keep this replica's own leases alive.
A job being taken over is not taken over again, and once claimed its lease is renewed with
the others until the scheduler follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from qruntime.domain.events import CancelledEvent, ErrorEvent
from qruntime.domain.job import JobReason
from qruntime.service.replicas import ReplicaRegistry
from qruntime.service.scheduler import Scheduler
from qruntime.service.stream_hub import StreamHub
from qruntime.storage import Database, StoredJob
from qruntime.storage.job_claims import JobClaims
from qruntime.storage.replicas import ReplicaRepository
from qruntime.storage.signals import Signals

log = logging.getLogger("qruntime.leases")


class LeaseKeeper:
    """Runs on the server's event loop; database work goes to worker threads."""

    def __init__(
        self,
        db: Database,
        registry: ReplicaRegistry,
        scheduler: Scheduler,
        hub: StreamHub,
        *,
        heartbeat_seconds: float,
        lease_seconds: float,
    ):
        self._db = db
        self._registry = registry
        self._scheduler = scheduler
        self._hub = hub
        self._heartbeat = heartbeat_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._replica_id = registry.identity.id
        self._signals = Signals(self._replica_id)
        #: Earlier runs of this server, known dead: their jobs need not wait for the lease.
        self._dead: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._soon = asyncio.Event()
        #: Takeovers under way, by job id.
        self._takeovers: dict[str, asyncio.Task[None]] = {}
        #: Orphans this replica has claimed and is about to follow: their leases are renewed.
        self._claimed: set[str] = set()

    async def start(self, dead_replicas: Collection[str] = ()) -> None:
        """Beat every ``heartbeat_seconds``, and take over what is already orphaned."""
        self._dead = list(dead_replicas)
        await self.beat()
        self._task = asyncio.create_task(self._beat_forever(), name="qruntime-heartbeat")
        # What is orphaned already is settled before serving (a restarted server's earlier
        # jobs read as interrupted at once), unless it takes longer than a lease.
        initial = list(self._takeovers.values())
        if initial:
            await asyncio.wait(initial, timeout=self._lease.total_seconds())

    def beat_soon(self) -> None:
        """Beat now rather than at the next interval (after missed signals)."""
        self._soon.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        takeovers = list(self._takeovers.values())
        for task in takeovers:
            task.cancel()
        await asyncio.gather(*takeovers, return_exceptions=True)

    async def beat(self) -> None:
        """One heartbeat: renew, pass on cancel requests, start taking over orphans."""
        running = self._scheduler.running_job_ids
        claimed = [job_id for job_id in self._claimed if job_id not in running]
        now, renewed, orphans = await asyncio.to_thread(self._beat, running + claimed)
        self._scheduler.release([job_id for job_id in running if job_id not in renewed])
        for job_id, cancel_requested in renewed.items():
            if cancel_requested and job_id in running:
                self._scheduler.cancel_here(job_id)
        mine = set(self._scheduler.running_job_ids) | self._claimed
        dead = tuple(self._dead)
        for job in orphans:
            if job.id not in mine and job.id not in self._takeovers:
                self._start_takeover(job, now, dead)
        self._dead = []  # their orphans are being handled; the rows went at registration

    def _start_takeover(self, job: StoredJob, now: datetime, dead: tuple[str, ...]) -> None:
        task = asyncio.create_task(
            self._take_over_logged(job, now, dead), name=f"qruntime-takeover-{job.id}"
        )
        self._takeovers[job.id] = task
        task.add_done_callback(lambda _task, job_id=job.id: self._takeovers.pop(job_id, None))

    async def _take_over_logged(self, job: StoredJob, now: datetime, dead: tuple[str, ...]) -> None:
        try:
            await self._take_over(job, now, dead)
        except Exception:  # the next heartbeat lists the orphan again if it still is one
            log.exception("could not take over job %s", job.id)

    async def _beat_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._soon.wait(), self._heartbeat)
            self._soon.clear()
            try:
                await self.beat()
            except Exception:  # the database may be briefly unavailable; try again later
                log.exception("heartbeat failed")

    async def _take_over(self, job: StoredJob, now: datetime, dead: tuple[str, ...]) -> None:
        previous = job.owner_replica or "unknown"
        gone = self._outcome(job, dead)
        if not self._scheduler.can_adopt:
            if await asyncio.to_thread(self._end_orphan, job, now, gone, dead):
                log.warning("job %s of replica %s ended: %s", job.id, previous, gone.message)
                self._hub.notify(job.id)
            return
        owned = await asyncio.to_thread(self._claim_orphan, job, now, dead)
        if owned is None:
            return
        self._claimed.add(job.id)
        try:
            await self._scheduler.adopt(owned, previous_owner=previous, gone=gone)
        finally:
            self._claimed.discard(job.id)

    def _outcome(self, job: StoredJob, dead: tuple[str, ...]) -> CancelledEvent | ErrorEvent:
        """What to record for an orphan nobody can follow."""
        owner = job.owner_replica
        if owner is None:
            why = "the server that ran this job stopped (a version without replica leases)"
        elif owner in dead:
            why = (
                f"the server stopped while this job was running (replica {owner}, since "
                "restarted from the same data directory)"
            )
        else:
            lease = self._lease.total_seconds()
            why = (
                f"the replica that ran this job is gone ({owner}: no heartbeat for over "
                f"{lease:g} s; its server stopped or lost the database)"
            )
        if job.cancel_requested_at is not None:
            return CancelledEvent(JobReason.CANCELLED_BY_USER, f"cancelled by request; {why}")
        return ErrorEvent(
            f"{why}, so it did not finish; its interim results up to that point are kept",
            JobReason.INTERRUPTED,
        )

    # Database work, run in worker threads.

    def _beat(self, running: list[str]) -> tuple[datetime, dict[str, bool], list[StoredJob]]:
        with self._db.session() as session:
            now = self._registry.beat(session)
            claims = JobClaims(session)
            renewed = claims.renew(self._replica_id, running, lease_until=now + self._lease)
            ReplicaRepository(session).remove_silent(before=now - self._lease)
            return now, renewed, claims.orphans(now=now, dead_replicas=self._dead)

    def _end_orphan(
        self,
        job: StoredJob,
        now: datetime,
        outcome: CancelledEvent | ErrorEvent,
        dead: tuple[str, ...],
    ) -> bool:
        with self._db.session() as session:
            ended = JobClaims(session).end_orphan(
                job,
                now=now,
                status=outcome.status,
                reason=outcome.reason,
                message=outcome.message,
                dead_replicas=dead,
            )
            if ended:
                self._signals.changed(session, job.id, outcome.status.value)
            return ended

    def _claim_orphan(
        self, job: StoredJob, now: datetime, dead: tuple[str, ...]
    ) -> StoredJob | None:
        with self._db.session() as session:
            return JobClaims(session).take_over(
                job,
                replica_id=self._replica_id,
                lease_until=now + self._lease,
                now=now,
                dead_replicas=dead,
            )
