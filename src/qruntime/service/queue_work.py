"""The scheduler's database work on the shared queue, run in worker threads: claims (a submit's
and the dispatcher's take turns), held jobs started or given back, claimed jobs given back at
stop, and queued jobs cancelled; with what the claims learn of the queue (:mod:`.queue_watch`)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from qruntime.domain.job import JobStatus
from qruntime.domain.resources import JobResources
from qruntime.execution import Executor
from qruntime.service.claims import claim_jobs, claim_plain, start_held
from qruntime.service.fair_share import FairShare
from qruntime.service.queue_watch import QueueWatch
from qruntime.storage import Database, JobRepository, StoredJob
from qruntime.storage.job_claims import JobClaims
from qruntime.storage.plain_claims import ClaimTransaction, PlainClaims
from qruntime.storage.signals import Signals

log = logging.getLogger("qruntime.scheduler")


class QueueWork:
    """One replica's claims and queue changes; every method blocks (call it in a thread)."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        signals: Signals,
        *,
        replica_id: str,
        lease_seconds: float,
        max_running_per_user: int | None,
    ):
        self._db = db
        self._executor = executor
        self._signals = signals
        self._replica_id = replica_id
        self._lease_seconds = lease_seconds
        self._max_running_per_user = max_running_per_user
        self._plain_claims = PlainClaims(db)
        self._one_claim = threading.Lock()  # the dispatcher's and submits' claims take turns
        self._fair_share = FairShare()
        #: A job's end skips the dispatcher's scan while the queue is known empty.
        self.queue = QueueWatch()

    def claim(self, slots: int, ended: list[str]) -> list[StoredJob]:
        """A job is claimed only once the executor has room for it: until then it stays
        QUEUED (a job that no node could ever hold was refused at submit)."""
        with self._one_claim:
            look = self.queue.look()
            room = self._executor.room()
            claimed: list[StoredJob] | None = None
            emptied = False

            def plain(claims: ClaimTransaction) -> list[StoredJob] | None:
                nonlocal emptied
                started = claim_plain(claims, **self._settings(slots, room))
                # Every queued job, not just every head (the heads leave out session jobs
                # waiting their turn and jobs other replicas hold), started by this claim?
                emptied = started is not None and claims.queued == len(started)
                return started

            if not self._executor.places_before_start:  # the plain DB-API path, as a rule
                claimed = self._plain_claims.transaction(plain)
            if emptied:
                self.queue.found_empty(look)
            if claimed is None:  # jobs of sessions or batches wait, or held jobs: the ORM's way
                claimed = self._claim_in_session(slots, ended, room)
            for job in claimed:
                self._executor.taken(resources_of(job.resources))
            return claimed

    def settled(self) -> None:
        """Returns once no claim is in flight (a submit's or the dispatcher's)."""
        with self._one_claim:
            pass

    def start_held(self, job_id: str) -> StoredJob | None:
        with self._db.session() as session:
            return start_held(session, job_id, replica_id=self._replica_id, signals=self._signals)

    def release_held(self, job_id: str) -> None:
        with self._db.session() as session:
            if JobClaims(session).release_held(job_id, replica_id=self._replica_id):
                self._signals.queued(session, job_id)  # others may claim it now
        self.queue.changed()

    def unstart(self, claimed: list[StoredJob]) -> None:
        """Claimed jobs this stopping replica will not run go back to the queue, where they
        run after its restart or on another replica, rather than end INTERRUPTED unrun."""
        if not claimed:
            return
        try:
            with self._db.session() as session:
                for job_id in JobClaims(session).unstart(
                    [job.id for job in claimed], replica_id=self._replica_id
                ):
                    self._signals.queued(session, job_id)  # others may claim it now
            self.queue.changed()
        except Exception:  # the database may be gone too: their leases run out, as before
            log.exception("could not give claimed jobs back to the queue at stop")

    def cancel_queued(self, job_id: str) -> bool:
        with self._db.session() as session:
            jobs = JobRepository(session)
            cancelled = jobs.cancel_queued(job_id, "cancelled by request before it started")
            if cancelled is not None:
                self._signals.changed(session, job_id, JobStatus.CANCELLED.value)
            return cancelled is not None

    def _settings(self, slots: int, room: Callable[[JobResources], bool]) -> dict[str, Any]:
        """What either claim path is told: this replica, its slots, the lease and the limits."""
        return {
            "replica_id": self._replica_id,
            "slots": slots,
            "lease_seconds": self._lease_seconds,
            "fair_share": self._fair_share,
            "signals": self._signals,
            "max_running_per_user": self._max_running_per_user,
            "fits": lambda resources: room(resources_of(resources)),
        }

    def _claim_in_session(
        self, slots: int, ended: list[str], room: Callable[[JobResources], bool]
    ) -> list[StoredJob]:
        with self._db.session() as session:
            return claim_jobs(
                session,
                **self._settings(slots, room),
                ended=ended,
                hold=self._executor.places_before_start,
            )


def resources_of(stored: str | None) -> JobResources:
    """A stored job's resources column as the executor reads them."""
    return JobResources.from_json(json.loads(stored or "null"))
