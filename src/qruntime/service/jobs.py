"""Use cases for jobs: submit (with every check before anything is stored), inspect, cancel."""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from qruntime.backends import BackendRegistry, check_backend_requirements
from qruntime.domain.errors import (
    InvalidInputsError,
    InvalidStateError,
    NotFoundError,
    Problem,
    QuotaExceededError,
    SerializationError,
    TooLargeError,
    ValidationFailed,
)
from qruntime.domain.inputs import check_input_names, validate_inputs
from qruntime.domain.job import JobStatus
from qruntime.domain.resources import JobResources
from qruntime.domain.source import MainSignature
from qruntime.domain.text import json_text_problem, may_hold_surrogates
from qruntime.serialization import decode
from qruntime.service.principal import Principal
from qruntime.service.programs import ProgramService
from qruntime.service.scheduler import Scheduler
from qruntime.service.sessions import admit_job
from qruntime.service.storage_budget import StorageBudget
from qruntime.storage import Database, JobRepository, StoredInterim, StoredJob
from qruntime.storage.hot_path import Admission, HotPath
from qruntime.storage.hot_reads import HotReads
from qruntime.storage.loop_sqlite import LoopSQLite, is_busy
from qruntime.storage.signals import DELETED, Signal, SignalKind, Signals
from qruntime.storage.usage import stored_bytes_of

PENDING = (JobStatus.QUEUED, JobStatus.RUNNING)
#: What a job id looks like: ``j-`` and 20 random hex digits.
JOB_ID = re.compile(r"j-[0-9a-f]{20}")
FINISHED = (JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED)


class InvalidJobRequestError(ValidationFailed):
    what = "job request"


class ResourcesUnavailableError(ValidationFailed):
    """No node of the cluster could ever hold the job's resource request."""

    what = "resource request"


#: A stream's first read is made on the event loop only with at most this many interims to
#: read: many more would hold the loop (a thread's read lets it run between rows).
LOOP_READ_INTERIMS = 64


class JobService:
    def __init__(
        self,
        db: Database,
        programs: ProgramService,
        registry: BackendRegistry,
        scheduler: Scheduler,
        *,
        max_inputs_bytes: int,
        max_queued_jobs_per_user: int,
        max_log_bytes: int = 1024 * 1024,
        budget: StorageBudget | None = None,
    ):
        self._db = db
        self._budget = budget
        self._max_log_bytes = max_log_bytes
        self._programs = programs
        self._registry = registry
        self._scheduler = scheduler
        self._signals = Signals(scheduler.replica_id)
        self._hot = HotPath(db)  # submit on the plain DB-API connection
        self._reads = HotReads.of(db)
        self._on_loop = LoopSQLite.of(db)
        self._max_inputs_bytes = max_inputs_bytes
        self._max_queued = max_queued_jobs_per_user

    def submit(
        self,
        caller: Principal,
        *,
        program_id: str,
        backend: str,
        inputs: Any,
        max_execution_time: float | None = None,
        job_id: str | None = None,
        resources: Any = None,
        tags: Sequence[str] = (),
        session_id: str | None = None,
    ) -> StoredJob:
        """Refuse anything invalid before the job is stored; then queue it (in the session or
        batch ``session_id``, which must be the caller's, on ``backend`` and open).

        ``job_id`` is an id chosen ahead with :func:`new_job_id` (a client that names its job
        before sending it); a taken one is a DuplicateError, nothing is stored.
        """
        if job_id is not None and not JOB_ID.fullmatch(job_id):
            raise InvalidJobRequestError(Problem("job_id", f"{job_id!r} is not a job id"))
        program = self._programs.get(caller, program_id)
        metadata, signature = self._programs.derived(program)
        backend_info = self._registry.info(backend)
        check_backend_requirements(metadata, backend_info)
        limit = _time_limit(max_execution_time, metadata.max_execution_time)
        inputs_text = self._check_inputs(inputs, metadata, signature)
        reservation = self._check_resources(resources, metadata.spec.resources)
        size = len(inputs_text) + len(program.source)

        def admit(queued: int, stored_bytes: int) -> None:
            self._check_queue(queued)
            if self._budget is not None:
                self._budget.check_usage(stored_bytes, size, "this job's inputs and source")

        fields = {
            "id": job_id or new_job_id(),
            "program_id": program.id,
            "program_name": program.name,
            "owner_id": caller.user_id,
            "backend": backend,
            "inputs": inputs_text,
            "source": program.source,
            "max_execution_time": limit,
            "resources": json.dumps(reservation.to_json()),
            "tags": _checked_tags(tags),
        }
        if session_id is None:  # the common case, on the plain DB-API connection
            signal = Signal(SignalKind.QUEUED, fields["id"], self._signals.sender)
            job = self._hot.submit(owner_name=caller.name, admit=admit, signal=signal, **fields)
        else:
            job = self._submit_into(caller, session_id, admit, fields)
        if not self._scheduler.claim_after_submit():
            self._scheduler.wake()
        return job

    def _submit_into(
        self, caller: Principal, session_id: str, admit: Admission, fields: dict[str, Any]
    ) -> StoredJob:
        """A job of a session or batch: the user's row, then the group's, locked as a claim's
        activation takes them (so they cannot deadlock), then as :meth:`HotPath.submit`."""
        with self._db.session() as session:
            jobs = JobRepository(session)
            queued = jobs.count_queued(caller.user_id)  # locks the user's row first
            self._check_queue(queued)
            admit_job(session, caller, session_id, fields["backend"])
            admit(queued, stored_bytes_of(session, caller.user_id))
            job = jobs.add(**fields, session_id=session_id)
            self._signals.queued(session, job.id)
        return job

    def _check_queue(self, queued: int) -> None:
        if queued >= self._max_queued:
            raise QuotaExceededError(
                f"you already have {queued} queued jobs, the limit per user "
                f"(QRUNTIME_MAX_QUEUED_JOBS_PER_USER is {self._max_queued}); "
                "wait for some to start or cancel them"
            )

    def list(
        self,
        caller: Principal,
        *,
        limit: int | None,
        offset: int = 0,
        pending: bool | None = None,
        program_id: str | None = None,
        statuses: Collection[JobStatus] | None = None,
        backend: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        oldest_first: bool = False,
        tags: Sequence[str] = (),
        session_id: str | None = None,
    ) -> tuple[list[StoredJob], int]:
        wanted = set(statuses) if statuses else None
        if pending is not None:
            group = set(PENDING if pending else FINISHED)
            wanted = group if wanted is None else wanted & group
            if not wanted:
                return [], 0
        with self._db.session(readonly=True) as session:
            return JobRepository(session).list(
                owner_id=None if caller.is_admin else caller.user_id,
                limit=limit,
                offset=offset,
                statuses=wanted,
                program_id=program_id,
                backend=backend,
                created_after=created_after,
                created_before=created_before,
                oldest_first=oldest_first,
                tags=tags,
                session_id=session_id,
            )

    def get(self, caller: Principal, job_id: str) -> StoredJob:
        """Jobs are visible to their owner and admins only; for anyone else they do not exist."""
        return _visible(caller, job_id, self._reads.job(job_id))

    def get_with_interims(
        self, caller: Principal, job_id: str, since: int
    ) -> tuple[StoredJob, list[StoredInterim]]:
        """As :meth:`get`, with its interim results after ``since`` read in the same go (a
        stream's first read: the job first, so a finished job comes with all of them)."""
        job, interims = self._reads.job_and_interims(job_id, after=since)
        return _visible(caller, job_id, job), interims

    def get_with_interims_here(
        self, caller: Principal, job_id: str, since: int
    ) -> tuple[StoredJob, list[StoredInterim]] | None:
        """:meth:`get_with_interims` on the event loop, for a SQLite file (no thread hop on a
        stream's way to its first event); None where it takes a thread (PostgreSQL, more than
        ``LOOP_READ_INTERIMS`` interims to read, or a lock it would wait for)."""
        if self._on_loop is None:
            return None
        try:
            job, interims = self._on_loop.reads.job_and_few_interims(
                job_id, after=since, at_most=LOOP_READ_INTERIMS
            )
        except Exception as error:
            if is_busy(error):
                return None
            raise
        visible = _visible(caller, job_id, job)
        return None if interims is None else (visible, interims)

    def result(self, caller: Principal, job_id: str) -> str:
        job = self.get(caller, job_id)
        if job.status is not JobStatus.DONE or job.result is None:
            raise InvalidStateError(_no_result_message(job))
        return job.result

    def set_tags(self, caller: Principal, job_id: str, tags: Sequence[str]) -> StoredJob:
        """Replace a job's tags (its owner or an admin, as any change to a job)."""
        self.get(caller, job_id)
        checked = _checked_tags(tags)
        with self._db.session() as session:
            JobRepository(session).set_tags(job_id, checked)
        return self.get(caller, job_id)

    def interim_results(
        self, caller: Principal, job_id: str, since: int = 0
    ) -> list[StoredInterim]:
        self.get(caller, job_id)
        with self._db.session(readonly=True) as session:
            return JobRepository(session).interims(job_id, after=since)

    def logs(self, caller: Principal, job_id: str) -> str:
        job = self.get(caller, job_id)
        with self._db.session(readonly=True) as session:
            lines = [line.text for line in JobRepository(session).logs(job_id)]
        if job.log_truncated:
            lines.insert(
                0,
                "[qruntime: earlier output was dropped: the log keeps the newest "
                f"{self._max_log_bytes} bytes of each job (QRUNTIME_MAX_LOG_BYTES)]",
            )
        return "\n".join(lines) + ("\n" if lines else "")

    async def cancel(self, caller: Principal, job_id: str) -> StoredJob:
        job = await asyncio.to_thread(self.get, caller, job_id)
        if job.status.is_terminal():
            raise InvalidStateError(f"job {job_id!r} has already finished: {job.status}")
        return await self._scheduler.cancel(job_id)

    def delete(self, caller: Principal, job_id: str) -> None:
        job = self.get(caller, job_id)
        if not job.status.is_terminal():
            raise InvalidStateError(f"job {job_id!r} is {job.status}; cancel it before deleting it")
        with self._db.session() as session:
            if JobRepository(session).delete(job_id):
                self._signals.changed(session, job_id, DELETED)

    def waiting_reason(self, job: StoredJob) -> str | None:
        """Why a queued job does not start now, when this server knows a reason."""
        if job.status is not JobStatus.QUEUED:
            return None
        general = self._scheduler.waiting_reason()
        if general is not None:
            return general
        if job.owner_replica is not None:  # held: claimed, not placed yet (Ray)
            return (
                f"claimed by replica {job.owner_replica}, waiting for Ray to place it: no "
                "node has its resources free now"
            )
        # Accepted while the executor could not tell (its cluster was down, or not read yet):
        # a request no machine can hold waits, saying so, rather than silently for ever.
        try:
            resources = JobResources.from_json(json.loads(job.resources or "null"))
        except (ValueError, TypeError):  # stored by an older version: the scheduler decides
            return None
        unsatisfiable = self._scheduler.unsatisfiable(resources)
        if unsatisfiable is not None:
            return f"waiting for a machine that can hold it: {unsatisfiable}"
        return None

    def _check_resources(self, requested: Any, defaults: dict[str, Any] | None) -> JobResources:
        """The job's reservation (its request over the program's defaults), refused when no
        machine of the executor could ever hold it."""
        try:
            reservation = JobResources.requested(requested, defaults)
        except ValueError as exc:
            location, _, message = str(exc).partition(": ")
            raise InvalidJobRequestError(Problem(location, message)) from None
        refusal = self._scheduler.unsatisfiable(reservation)
        if refusal is not None:
            raise ResourcesUnavailableError(Problem("resources", refusal))
        return reservation

    def _check_inputs(
        self, inputs: Any, metadata: Any, signature: MainSignature | None = None
    ) -> str:
        if not isinstance(inputs, dict):
            raise InvalidInputsError(Problem("inputs", "must be a JSON object of name: value"))
        try:
            text = json.dumps(inputs, allow_nan=False)
        except ValueError:
            raise InvalidInputsError(
                Problem("inputs", "NaN and Infinity are not valid JSON numbers")
            ) from None
        if may_hold_surrogates(text) and (problem := json_text_problem(inputs, "inputs")):
            raise InvalidInputsError(problem)
        if len(text) > self._max_inputs_bytes:
            raise TooLargeError(
                f"job inputs are {len(text)} bytes; the limit is {self._max_inputs_bytes} "
                "(QRUNTIME_MAX_INPUTS_BYTES)"
            )
        try:
            decoded = decode(text)
        except SerializationError as exc:
            raise InvalidInputsError(Problem("inputs", str(exc))) from None
        check_input_names(metadata.spec.parameters, decoded, signature)
        validate_inputs(metadata, decoded)
        return text


def new_job_id() -> str:
    return f"j-{uuid.uuid4().hex[:20]}"


def _visible(caller: Principal, job_id: str, job: StoredJob | None) -> StoredJob:
    if job is None or not caller.owns(job.owner_id):
        raise NotFoundError("job", job_id)
    return job


def _time_limit(requested: float | None, program_limit: int) -> float:
    if requested is None:
        return float(program_limit)
    if (
        isinstance(requested, bool)
        or not isinstance(requested, int | float)
        or not math.isfinite(requested)
        or requested <= 0
    ):
        raise InvalidJobRequestError(
            Problem(
                "max_execution_time", f"must be a positive number of seconds, got {requested!r}"
            )
        )
    if requested > program_limit:
        raise InvalidJobRequestError(
            Problem(
                "max_execution_time",
                f"{requested:g} s is more than the program's max_execution_time of "
                f"{program_limit} s",
            )
        )
    return float(requested)


def _no_result_message(job: StoredJob) -> str:
    if job.status is JobStatus.ERROR:
        return f"job {job.id!r} failed ({job.reason}): {job.error_message or ''}".rstrip(": ")
    if job.status is JobStatus.CANCELLED:
        return f"job {job.id!r} was cancelled ({job.reason}): {job.error_message or ''}".rstrip(
            ": "
        )
    return f"job {job.id!r} is {job.status}; it has no result yet"


#: Tags per job, and characters per tag (IBM's limits are of the same order).
MAX_TAGS, MAX_TAG_LENGTH = 100, 200


def _checked_tags(tags: Sequence[str]) -> list[str]:
    """Tags as given, without repeats; a bad one is refused by position."""
    if len(tags) > MAX_TAGS:
        raise InvalidJobRequestError(Problem("tags", f"at most {MAX_TAGS} tags, got {len(tags)}"))
    kept: list[str] = []
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
            message = f"each tag is a string of 1 to {MAX_TAG_LENGTH} characters"
            raise InvalidJobRequestError(Problem(f"tags[{index}]", message))
        if any(ord(char) < 32 or 0xD800 <= ord(char) <= 0xDFFF for char in tag):
            message = "a tag holds no control characters or lone surrogates"
            raise InvalidJobRequestError(Problem(f"tags[{index}]", message))
        if tag not in kept:
            kept.append(tag)
    return kept
