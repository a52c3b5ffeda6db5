"""Wires the use cases to one database, backend registry, executor and scheduler."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from qruntime.backends import BackendRegistry, default_registry
from qruntime.execution import Executor
from qruntime.service.access_tokens import ACCESS_TOKEN_SECRET
from qruntime.service.auth_failures import FailedAuthLimiter
from qruntime.service.bootstrap import ensure_admin
from qruntime.service.catalogue_target import publish_catalogue
from qruntime.service.cluster_listener import ClusterListener
from qruntime.service.executor_choice import build_executor
from qruntime.service.jobs import JobService
from qruntime.service.leases import LeaseKeeper
from qruntime.service.programs import ProgramService
from qruntime.service.replicas import ReplicaIdentity, ReplicaRegistry
from qruntime.service.retention import JobRetention
from qruntime.service.scheduler import Scheduler
from qruntime.service.server_lock import ServerLocks, hold_server_locks
from qruntime.service.sessions import SessionService
from qruntime.service.storage_budget import StorageBudget
from qruntime.service.stream_hub import StreamHub
from qruntime.service.stream_slots import StreamSlots
from qruntime.service.token_cache import TokenCache
from qruntime.service.users import UserService
from qruntime.settings import Settings
from qruntime.storage import Database
from qruntime.storage.server_secrets import shared_secret

log = logging.getLogger("qruntime.server")

#: At most this long a cancel waits for another replica to stop the job (clients time out).
CANCEL_WAIT_SECONDS = 20.0
#: Name of the shared secret the dashboard signs its form tokens with.
FORM_SECRET = "dashboard-form-tokens"


@dataclass
class Services:
    """Everything a request handler needs; built once per server process."""

    settings: Settings
    db: Database
    registry: BackendRegistry
    hub: StreamHub
    scheduler: Scheduler
    users: UserService
    programs: ProgramService
    jobs: JobService
    executor: Executor
    replicas: ReplicaRegistry
    leases: LeaseKeeper
    #: Signals from other replicas; None on SQLite, where this is the only server.
    listener: ClusterListener | None
    streams: StreamSlots
    retention: JobRetention
    sessions: SessionService
    #: The dashboard's form-token key, the same on every replica (set by :meth:`start`).
    form_secret: bytes | None = None
    #: The data directory's (and SQLite file's) locks: taken by ``qruntime serve`` before it
    #: binds its port and handed in, else by :meth:`start` itself, so no entry point runs a
    #: second server on a data directory or SQLite database that a live one holds.
    locks: ServerLocks | None = None
    _own_locks: bool = False

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        registry: BackendRegistry | None = None,
        executor: Executor | None = None,
    ) -> Services:
        """No I/O here; :meth:`start` migrates, bootstraps and starts the scheduler."""
        db = Database(settings.resolved_database_url)
        registry = registry or default_registry()
        hub = StreamHub()
        executor = executor or build_executor(settings)
        identity = ReplicaIdentity.of_this_process(
            url=settings.replica_url, executor=executor.kind, data_dir=settings.data_dir
        )
        single_server = db.dialect == "sqlite"
        replicas = ReplicaRegistry(db, identity, single_server=single_server)
        heartbeat, lease = settings.replica_heartbeat_seconds, settings.replica_lease_seconds
        scheduler = Scheduler(
            db,
            executor,
            hub,
            replica_id=identity.id,
            max_concurrent_jobs=settings.max_concurrent_jobs,
            max_log_bytes=settings.max_log_bytes,
            lease_seconds=lease,
            cancel_wait_seconds=min(lease + 3 * heartbeat, CANCEL_WAIT_SECONDS),
            max_running_jobs_per_user=settings.max_running_jobs_per_user,
        )
        leases = LeaseKeeper(
            db, replicas, scheduler, hub, heartbeat_seconds=heartbeat, lease_seconds=lease
        )
        listener = None
        if not single_server:
            listener = ClusterListener(
                db.url, identity.id, hub, scheduler, on_reconnect=leases.beat_soon
            )
        budget = StorageBudget(settings.max_stored_bytes_per_user)
        programs = ProgramService(
            db,
            max_source_bytes=settings.max_source_bytes,
            max_execution_time_ceiling=settings.max_execution_time_ceiling,
            max_metadata_bytes=settings.max_metadata_bytes,
            budget=budget,
        )
        jobs = JobService(
            db,
            programs,
            registry,
            scheduler,
            max_inputs_bytes=settings.max_inputs_bytes,
            max_queued_jobs_per_user=settings.max_queued_jobs_per_user,
            max_log_bytes=settings.max_log_bytes,
            budget=budget,
        )
        users = UserService(
            db,
            failed_auths=FailedAuthLimiter(settings.max_failed_auths_per_minute),
            token_cache=TokenCache(settings.token_cache_seconds),
        )
        streams = StreamSlots(settings.max_streams, settings.max_streams_per_user)
        retention = JobRetention(db, settings.job_retention_days)
        return cls(
            settings,
            db,
            registry,
            hub,
            scheduler,
            users,
            programs,
            jobs,
            executor,
            replicas,
            leases,
            listener,
            streams,
            retention,
            SessionService(db, registry, scheduler),
        )

    async def start(self) -> None:
        """Lock, migrate, bootstrap, then start the replica's background work."""
        if self.locks is None:  # raises ServerAlreadyRunningError, naming the holder
            settings = self.settings
            self.locks = hold_server_locks(
                settings.data_dir, settings.resolved_database_url, settings.public_url
            )
            self._own_locks = True
        try:
            await self._start()
        except BaseException:
            self._release_locks()
            raise

    def _release_locks(self) -> None:
        if self._own_locks and self.locks is not None:
            self.locks.release()
            self.locks, self._own_locks = None, False

    async def _start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.data_dir.chmod(0o700)  # the database and token files are the server's
        self._log_sandbox()
        self.db.migrate()
        ensure_admin(
            self.db,
            self.settings.data_dir,
            self.settings.public_url,
            save_to_accounts=self.settings.save_admin_account,
        )
        if self.settings.catalogue_dir is not None:
            publish_catalogue(self.db, self.programs, self.settings.catalogue_dir)
        self.form_secret = await asyncio.to_thread(self._shared_secret, FORM_SECRET)
        self.users.access_secret = await asyncio.to_thread(self._shared_secret, ACCESS_TOKEN_SECRET)
        earlier_runs = await asyncio.to_thread(self.replicas.register)
        if self.listener is not None:
            await self.listener.start()  # before dispatching: no signal from now on is missed
        await self.scheduler.start()
        await self.leases.start(earlier_runs)
        self.retention.start()
        log.info(
            "qruntime is serving on %s (database: %s, replica %s)",
            self.settings.public_url,
            self.db.dialect,
            self.replicas.identity.id,
        )

    def _shared_secret(self, name: str) -> bytes:
        with self.db.session() as session:
            return shared_secret(session, name)

    def sandbox_report(self) -> dict:
        """What confines jobs here, for ``GET /health``."""
        on_nodes = getattr(self.executor, "sandbox_json", None)
        if on_nodes is not None:  # the Ray agents' sandboxes
            return on_nodes()
        report = getattr(self.executor, "sandbox_report", None)
        return report.to_json() if report is not None else {"enabled": False, "protections": []}

    def executor_status(self) -> dict:
        """Where jobs run and whether that works now, for ``GET /health``."""
        return self.executor.status()

    def _log_sandbox(self) -> None:
        if self.executor.kind == "ray":
            log.info("jobs run on Ray; each node's agent sandboxes them (see GET /health)")
            return
        report = getattr(self.executor, "sandbox_report", None)
        if report is None or not report.enabled:
            log.warning("jobs run WITHOUT a sandbox: user programs can read the server's files")
            return
        for protection in report.unavailable():
            log.warning("sandbox protection %r is %s", protection.name, protection.detail)
        active = ", ".join(p.name for p in report.protections if p.active)
        log.info("jobs run sandboxed: %s", active)

    async def stop(self) -> None:
        await self.retention.stop()
        if self.listener is not None:
            await self.listener.stop()
        await self.leases.stop()
        await self.scheduler.stop()
        try:
            await asyncio.to_thread(self.replicas.deregister)
        except Exception:  # the database may be gone; the row then ages out
            log.exception("could not remove this replica's registration")
        self.db.dispose()
        self._release_locks()
