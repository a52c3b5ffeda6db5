"""RayExecutor: jobs on a Ray cluster, each run by the qruntime agent of the node Ray placed it on.

Ray places a job by its resources (a placement group per job, held while it runs); the node's
agent (:mod:`qruntime.execution.ray_agent`) runs it from its warm pool and stores its events,
so this replica only waits for the outcome, and another one can wait in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qruntime.domain.events import ErrorEvent, JobEvent, event_from_json
from qruntime.domain.job import JobReason
from qruntime.domain.resources import JobResources
from qruntime.execution.event_sink import SinkFactory
from qruntime.execution.executor import Executor, ExecutorUnavailable
from qruntime.execution.local import LocalExecutorConfig
from qruntime.execution.ray_driver import DriverSpec
from qruntime.execution.ray_link import DriverLink
from qruntime.execution.request import JobRequest

log = logging.getLogger(__name__)

#: How often the cluster's nodes are read (for /health and the check at submit), and how
#: often a lost connection is tried again.
WATCH_SECONDS = 2.0
#: How long a call that should be quick may take before Ray counts as unreachable.
CALL_TIMEOUT = 30.0
#: How long reading the nodes may take before the driver is replaced (the head is gone).
NODES_TIMEOUT = 10.0


@dataclass(frozen=True)
class RayExecutorConfig:
    address: str
    #: Ray namespace of the agents; replicas of one service share it.
    namespace: str = "qruntime"
    agent: LocalExecutorConfig = field(default_factory=LocalExecutorConfig)
    python: str = sys.executable


@dataclass
class _Placed:
    node_id: str
    placement_group: str | None


class RayExecutor(Executor):
    kind: ClassVar[str] = "ray"
    jobs_outlive_replica: ClassVar[bool] = True
    can_adopt: ClassVar[bool] = True

    def __init__(self, config: RayExecutorConfig, sink_factory: SinkFactory):
        self.config = config
        self._link = DriverLink(
            DriverSpec(config.address, config.namespace, config.agent, sink_factory),
            config.python,
        )
        self._nodes: list[dict[str, Any]] = []
        self._placed: dict[str, _Placed] = {}
        self._reserving: dict[str, asyncio.Task[Any]] = {}
        self._running: dict[str, str] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._agents: list[dict[str, Any]] = []
        #: Each node's free resources as last read, less what jobs claimed since will take.
        self._free: list[dict[str, float]] = []
        #: Every node's address ever seen, to name a node in the message that it was lost.
        self._addresses: dict[str, str] = {}

    async def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="qruntime-ray-watch")
        await self._link.connect()

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._link.aclose()

    def status(self) -> dict[str, Any]:
        link = self._link
        return {
            "kind": self.kind,
            "state": "up" if link.connected else "down",
            "reason": link.down_reason,
            "address": self.config.address,
            "nodes": self._nodes if link.connected else [],
            "agents": self._agents if link.connected else [],
        }

    def sandbox_json(self) -> dict[str, Any]:
        """The agents' sandboxes as one report: a protection is active if it is on every node
        (an inactive one says on which node, and why)."""
        reports = [(a["node_id"], a["sandbox"]) for a in self._agents if "sandbox" in a]
        if not reports:
            return {"enabled": False, "protections": []}
        protections = []
        for first in reports[0][1].get("protections", []):
            merged = dict(first)
            for node_id, report in reports:
                same = [p for p in report.get("protections", []) if p["name"] == first["name"]]
                if not same or not same[0]["active"]:
                    where = self._addresses.get(node_id, node_id[:12])
                    detail = same[0]["detail"] if same else "not reported"
                    merged = {**first, "active": False, "detail": f"on Ray node {where}: {detail}"}
                    break
            protections.append(merged)
        enabled = all(report.get("enabled") for _, report in reports)
        return {"enabled": enabled, "protections": protections}

    def unsatisfiable(self, resources: JobResources) -> str | None:
        if not self._link.connected or not self._nodes:
            return None  # unknown now: the job waits QUEUED until the cluster is back
        return resources.unsatisfiable(node["total"] for node in self._nodes)

    def fits_now(self, resources: JobResources) -> bool:
        """Some node has the job's resources free now, by the last reading of the nodes less
        what the jobs said to fit since then will take."""
        bundle = resources.ray_bundle()
        for free in self._free:
            if all(free.get(name, 0.0) >= amount for name, amount in bundle.items()):
                for name, amount in bundle.items():
                    free[name] = free.get(name, 0.0) - amount
                return True
        return False

    async def reserve(self, request: JobRequest) -> None:
        """Hold the job's resources in a placement group where Ray finds room."""
        bundle = JobResources.from_json(request.resources).ray_bundle()
        call = asyncio.ensure_future(self._link.call("place", job_id=request.job_id, bundle=bundle))
        self._reserving[request.job_id] = call
        try:
            placed = await call
        finally:
            self._reserving.pop(request.job_id, None)
        self._placed[request.job_id] = _Placed(placed["node_id"], placed["placement_group"])

    async def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:
        job_id = request.job_id
        while True:
            try:
                node_id = await self._start(request)
                break
            except ExecutorUnavailable as exc:  # Ray went away while the job started
                log.warning("job %s waits for Ray to start it: %s", job_id, exc)
                await self._until_connected()
                found = await self._locate(job_id)
                if found is not None:  # its agent got it after all
                    node_id = found
                    break
        async for event in self._follow(job_id, node_id):
            yield event

    async def _start(self, request: JobRequest) -> str:
        """Place the job and hand it to its node's agent; the node's id."""
        job_id = request.job_id
        if job_id not in self._placed:
            await self.reserve(request)
        placed = self._placed.pop(job_id)
        try:
            started = await self._link.call(
                "start",
                node_id=placed.node_id,
                request=request.to_json(),
                placement_group=placed.placement_group,
            )
        except BaseException:
            await self.release_group(placed)
            raise
        if not started:
            await self.release_group(placed)
            log.warning("job %s: its agent already had it; following it instead", job_id)
        return placed.node_id

    async def _locate(self, job_id: str) -> str | None:
        try:
            return await self._link.call("locate", CALL_TIMEOUT, job_id=job_id)
        except (ExecutorUnavailable, RuntimeError) as exc:
            log.warning("job %s cannot be found on Ray now: %s", job_id, exc)
            return None

    async def adopt(
        self, request: JobRequest, *, recorded_seq: int
    ) -> AsyncIterator[JobEvent] | None:
        """Follow a job another replica started: its agent stores the rest of its events."""
        node_id = await self._locate(request.job_id)
        if node_id is None:
            return None
        return self._follow(request.job_id, node_id)

    async def cancel(self, job_id: str) -> bool:
        reserving = self._reserving.get(job_id)
        if reserving is not None:
            reserving.cancel()
            return True
        node_id = self._running.get(job_id)
        if node_id is None:
            return False
        try:
            return bool(
                await self._link.call("cancel", CALL_TIMEOUT, node_id=node_id, job_id=job_id)
            )
        except (ExecutorUnavailable, RuntimeError):
            return False

    def running_jobs(self) -> list[str]:
        return list(self._running)

    async def release_group(self, placed: _Placed) -> None:
        if placed.placement_group is not None:
            with contextlib.suppress(ExecutorUnavailable, RuntimeError):
                await self._link.call(
                    "unplace", CALL_TIMEOUT, placement_group=placed.placement_group
                )

    async def _follow(self, job_id: str, node_id: str) -> AsyncIterator[JobEvent]:
        """Wait for the agent's outcome; through a lost driver, wait for the next one.

        The outcome is already stored by the agent (storing it again changes nothing); only
        an outcome decided here (the node or its agent is gone) is news to the database.
        """
        self._running[job_id] = node_id
        try:
            while True:
                try:
                    answer = await self._link.call("wait", node_id=node_id, job_id=job_id)
                except ExecutorUnavailable:
                    await self._until_connected()
                    continue
                if "lost" in answer:
                    yield ErrorEvent(self._lost(node_id, answer), JobReason.PROCESS_CRASHED)
                    return
                outcome = answer["outcome"]
                if outcome is not None:
                    yield event_from_json(outcome)  # type: ignore[misc]
                return
        finally:
            self._running.pop(job_id, None)

    def _lost(self, node_id: str, answer: dict[str, Any]) -> str:
        node = f"Ray node {self._addresses.get(node_id, '?')} ({node_id[:12]})"
        if answer["lost"] == "node":
            return f"the {node} that ran this job was lost: {answer['detail']}"
        return (
            f"the qruntime agent that ran this job on {node} is gone ({answer['detail']}); "
            "the Ray cluster may have restarted"
        )

    async def _until_connected(self) -> None:
        while not await self._link.connect():
            await asyncio.sleep(WATCH_SECONDS)

    async def _watch(self) -> None:
        """Keep the node list fresh; reconnect when the driver is gone."""
        while True:
            try:
                if await self._link.connect():
                    self._nodes = await self._link.call("nodes", NODES_TIMEOUT)
                    self._addresses |= {n["node_id"]: n["address"] for n in self._nodes}
                    self._free = [dict(node["free"]) for node in self._nodes]
            except ExecutorUnavailable as exc:
                if self._link.connected:  # it answers no more: the head is gone, or stuck
                    await self._link.reset(str(exc))
            except RuntimeError as exc:
                log.warning("reading the Ray nodes: %s", exc)
            try:
                if self._link.connected:
                    self._agents = await self._link.call("agents", CALL_TIMEOUT)
            except ExecutorUnavailable:
                pass  # slow agents are no sign of a lost head; the nodes' reading says
            except RuntimeError as exc:
                log.warning("reading the Ray nodes: %s", exc)
            await asyncio.sleep(WATCH_SECONDS)
