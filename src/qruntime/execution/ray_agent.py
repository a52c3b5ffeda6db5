"""The qruntime agent on one Ray node: a long-lived actor that runs that node's jobs with the
very executor a single server uses (warm zygote, sandbox, supervisor) and stores their events
itself, so a job goes on when the replica that dispatched it dies.

The class is plain Python; :mod:`qruntime.execution.ray_driver` makes it a detached Ray actor
pinned to its node. Ray is imported only where this runs inside Ray.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import sys
from dataclasses import replace
from typing import Any

from qruntime.domain.events import ErrorEvent, JobEvent, TerminalEvent, event_to_json
from qruntime.domain.job import JobReason
from qruntime.execution.agent_settings import agent_settings, fingerprint
from qruntime.execution.event_sink import SinkFactory
from qruntime.execution.local import LocalExecutor, LocalExecutorConfig
from qruntime.execution.request import JobRequest

log = logging.getLogger(__name__)

#: Outcomes kept after a job ended, for a replica that asks for one late (after adopting it).
KEPT_OUTCOMES = 1000
#: What an outcome the agent could not store says.
NOT_STORED = "the Ray agent could not store the job's events: {error}"


class RayAgent:
    """Runs jobs on this node; every method is called by replicas through Ray."""

    def __init__(self, config: LocalExecutorConfig, sink_factory: SinkFactory, node_id: str):
        self.node_id = node_id
        #: The settings of the replica that started this agent, which every job here gets.
        self._settings = agent_settings(config)
        self._executor = LocalExecutor(_on_this_node(config))
        self._sink = sink_factory()
        self._jobs: dict[str, asyncio.Task[TerminalEvent | None]] = {}
        self._outcomes: collections.OrderedDict[str, dict[str, Any] | None] = (
            collections.OrderedDict()
        )

    async def ready(self) -> dict[str, Any]:
        """Start the warm pool (in the background) and say what this agent is."""
        asyncio.get_running_loop().create_task(self._executor.start())
        return self.status()

    def status(self) -> dict[str, Any]:
        report = self._executor.sandbox_report
        return {
            "node_id": self.node_id,
            "pid": os.getpid(),
            "running": sorted(self._jobs),
            "pool": self._executor.pool_status(),
            "sandbox": report.to_json() if report is not None else {"enabled": False},
            "settings": self._settings,
            "fingerprint": fingerprint(self._settings),
        }

    async def start(self, request: dict[str, Any], placement_group: str | None) -> bool:
        """Start a job; False (and nothing done) when this agent already has or had it."""
        job_request = JobRequest.from_json(request)
        job_id = job_request.job_id
        if job_id in self._jobs or job_id in self._outcomes:
            return False
        self._jobs[job_id] = asyncio.get_running_loop().create_task(
            self._run(job_request, placement_group), name=f"qruntime-job-{job_id}"
        )
        return True

    async def wait(self, job_id: str) -> dict[str, Any] | None:
        """The job's outcome once it is stored: ``{"outcome": event}``; ``{"outcome": None}``
        when the job had ended elsewhere; None when this agent never ran the job."""
        task = self._jobs.get(job_id)
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        if job_id in self._outcomes:
            return {"outcome": self._outcomes[job_id]}
        return None

    async def cancel(self, job_id: str) -> bool:
        return await self._executor.cancel(job_id)

    def has(self, job_id: str) -> bool:
        return job_id in self._jobs or job_id in self._outcomes

    async def _run(self, request: JobRequest, placement_group: str | None) -> TerminalEvent | None:
        job_id = request.job_id
        outcome: TerminalEvent | None
        try:
            if await self._sink.begin(job_id, self.node_id):
                outcome = await self._sink.consume(job_id, self._events(request))
            else:  # another agent started it (a retried start), or it ended meanwhile
                log.warning("job %s: not started here, it started elsewhere or ended", job_id)
                outcome = None
        except Exception as exc:  # the database is out of reach from this node
            log.exception("job %s: its events could not be stored", job_id)
            outcome = ErrorEvent(NOT_STORED.format(error=exc), JobReason.PROCESS_CRASHED)
        finally:
            self._jobs.pop(job_id, None)
            _remove_placement_group(placement_group)
        self._outcomes[job_id] = event_to_json(outcome) if outcome is not None else None
        while len(self._outcomes) > KEPT_OUTCOMES:
            self._outcomes.popitem(last=False)
        return outcome

    async def _events(self, request: JobRequest) -> Any:
        events: Any = self._executor.run(request)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()


def _on_this_node(config: LocalExecutorConfig) -> LocalExecutorConfig:
    """The replica's settings with this node's Python, and Ray's own files hidden from jobs."""
    sandbox = config.sandbox
    if sandbox is not None:
        sandbox = replace(sandbox, hidden_paths=(*sandbox.hidden_paths, *_ray_paths()))
    return replace(config, python=sys.executable, sandbox=sandbox)


def _ray_paths() -> tuple[str, ...]:
    """Ray's directory on this node (its sessions' sockets, logs and tokens)."""
    try:
        from ray._private import worker

        return (worker._global_node.get_temp_dir_path(),)
    except Exception:  # not inside Ray (tests of the class itself)
        return ()


def _remove_placement_group(name: str | None) -> None:
    """Free the job's reservation; the replica that made it may be gone."""
    if name is None:
        return
    try:
        from ray.util import get_placement_group, remove_placement_group

        remove_placement_group(get_placement_group(name))
    except Exception as exc:  # already removed, or the cluster restarted
        log.info("placement group %s: %s", name, exc)


__all__ = ["JobEvent", "RayAgent"]
