"""Wires the use cases to one database, backend registry, executor and scheduler."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from qruntime.backends import BackendRegistry, default_registry
from qruntime.execution import Executor, LocalExecutor
from qruntime.service.bootstrap import ensure_admin
from qruntime.service.catalogue_target import publish_catalogue
from qruntime.service.jobs import JobService
from qruntime.service.programs import ProgramService
from qruntime.service.scheduler import Scheduler
from qruntime.service.stream_hub import StreamHub
from qruntime.service.users import UserService
from qruntime.settings import Settings
from qruntime.storage import Database

log = logging.getLogger("qruntime.server")


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
        scheduler = Scheduler(
            db,
            executor or LocalExecutor(),
            hub,
            max_concurrent_jobs=settings.max_concurrent_jobs,
            max_log_bytes=settings.max_log_bytes,
        )
        programs = ProgramService(
            db,
            max_source_bytes=settings.max_source_bytes,
            max_execution_time_ceiling=settings.max_execution_time_ceiling,
        )
        jobs = JobService(
            db,
            programs,
            registry,
            scheduler,
            max_inputs_bytes=settings.max_inputs_bytes,
            max_queued_jobs_per_user=settings.max_queued_jobs_per_user,
        )
        return cls(settings, db, registry, hub, scheduler, UserService(db), programs, jobs)

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db.migrate()
        ensure_admin(
            self.db,
            self.settings.data_dir,
            self.settings.public_url,
            save_to_accounts=self.settings.save_admin_account,
        )
        if self.settings.catalogue_dir is not None:
            publish_catalogue(self.db, self.programs, self.settings.catalogue_dir)
        await self.scheduler.start()
        log.info(
            "qruntime is serving on %s (database: %s)", self.settings.public_url, self.db.dialect
        )

    async def stop(self) -> None:
        await self.scheduler.stop()
        self.db.dispose()
