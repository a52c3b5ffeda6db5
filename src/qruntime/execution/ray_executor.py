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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qruntime.domain.events import ErrorEvent, JobEvent, event_from_json
from qruntime.domain.job import JobReason
from qruntime.domain.resources import JobResources
from qruntime.execution.agent_settings import agent_settings, describe, differences, fingerprint
from qruntime.execution.event_sink import SinkFactory
from qruntime.execution.executor import Executor, ExecutorUnavailable
from qruntime.execution.local import LocalExecutorConfig
from qruntime.execution.ray_driver import UNAVAILABLE_SECONDS, DriverSpec
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
#: How long finding a job's agent may take: an agent whose node is dying is asked until Ray
#: knows (see ray_driver.UNAVAILABLE_SECONDS).
LOCATE_TIMEOUT = UNAVAILABLE_SECONDS + CALL_TIMEOUT


@dataclass(frozen=True)
class RayExecutorConfig:
    address: str
    #: Ray namespace of the agents; replicas of one service share it.
    namespace: str = "qruntime"
    agent: LocalExecutorConfig = field(default_factory=LocalExecutorConfig)
    python: str = sys.executable
    #: How often the nodes are read (QRUNTIME_RAY_WATCH_SECONDS).
    watch_seconds: float = WATCH_SECONDS


@dataclass
class _Placed:
    node_id: str
    placement_group: str | None


class RayExecutor(Executor):
    kind: ClassVar[str] = "ray"
    jobs_outlive_replica: ClassVar[bool] = True
    can_adopt: ClassVar[bool] = True
    places_before_start: ClassVar[bool] = True

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
        #: The settings this replica would give agents; running agents keep their own.
        self._settings = agent_settings(config.agent)
        self._fingerprint = fingerprint(self._settings)
        #: Agents whose settings differ from this replica's, as last read (and warned about).
        self._differing: list[dict[str, Any]] = []

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
            "agent_settings": {
                "fingerprint": self._fingerprint,
                "differing": self._differing if link.connected else [],
            },
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

    def room(self) -> Callable[[JobResources], bool]:
        """Some node has the job's resources free now, by the last reading of the nodes less
        what jobs claimed since will take, and less what this claim said yes to before. Jobs
        it said yes to but another replica got take nothing here."""
        free = [dict(node) for node in self._free]
        return lambda resources: _take(free, resources)

    def taken(self, resources: JobResources) -> None:
        _take(self._free, resources)

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

    async def unreserve(self, job_id: str) -> None:
        reserving = self._reserving.get(job_id)
        if reserving is not None:
            reserving.cancel()  # the driver removes the group it was waiting for
        placed = self._placed.pop(job_id, None)
        if placed is not None:
            await self.release_group(placed)

    async def run(self, request: JobRequest) -> AsyncIterator[JobEvent]:
        job_id = request.job_id
        while True:
            try:
                node_id, lost = await self._start(request)
                if lost is not None:  # the node (or its agent) died while it got the job
                    yield self._lost_event(node_id, lost)
                    return
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

    async def _start(self, request: JobRequest) -> tuple[str, dict[str, Any] | None]:
        """Place the job and hand it to its node's agent: the node's id, and what the driver
        said if the node or its agent died meanwhile."""
        job_id = request.job_id
        if job_id not in self._placed:
            await self.reserve(request)
        placed = self._placed.pop(job_id)
        try:
            answer = await self._link.call(
                "start",
                node_id=placed.node_id,
                request=request.to_json(),
                placement_group=placed.placement_group,
            )
        except RuntimeError as exc:  # the driver failed the call: was the node lost?
            lost = await self._lost_in(placed.node_id, exc)
            if lost is None:
                await self.release_group(placed)
                raise
            answer = lost
        except BaseException:
            await self.release_group(placed)
            raise
        if "lost" in answer:
            await self.release_group(placed)
            log.warning("job %s: lost while handed to Ray node %s", job_id, placed.node_id)
            return placed.node_id, answer
        if not answer["started"]:
            await self.release_group(placed)
            log.warning("job %s: its agent already had it; following it instead", job_id)
        return placed.node_id, None

    async def _locate(self, job_id: str) -> str | None:
        try:
            return await self._link.call("locate", LOCATE_TIMEOUT, job_id=job_id)
        except (ExecutorUnavailable, RuntimeError) as exc:
            log.warning("job %s cannot be found on Ray now: %s", job_id, exc)
            return None

    async def adopt(
        self, request: JobRequest, *, recorded_seq: int, started_on: str | None = None
    ) -> AsyncIterator[JobEvent] | None:
        """Follow a job another replica started: its agent stores the rest of its events.
        When no agent has it, the node its agent recorded (``started_on``) says why: that
        node died, or its agent is gone (the cluster restarted)."""
        node_id = await self._locate(request.job_id)
        if node_id is not None:
            return self._follow(request.job_id, node_id)
        if started_on is None:
            return None
        try:
            node = await self._link.call("node", CALL_TIMEOUT, node_id=started_on)
        except (ExecutorUnavailable, RuntimeError) as exc:
            log.warning("job %s: cannot ask Ray about node %s: %s", request.job_id, started_on, exc)
            return None
        # A node this head never knew: the cluster restarted since (its agents are new).
        dead = node["address"] is not None and not node["alive"]
        detail = "no agent of the cluster has the job"
        lost = {"lost": "node" if dead else "agent", "detail": detail, **node}
        return self._ended(request.job_id, started_on, lost)

    async def _ended(
        self, job_id: str, node_id: str, lost: dict[str, Any]
    ) -> AsyncIterator[JobEvent]:
        await self._unplace_job(job_id)
        yield self._lost_event(node_id, lost)

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

    async def _unplace_job(self, job_id: str) -> None:
        """Remove what the job reserved, when its agent (which would) is gone."""
        with contextlib.suppress(ExecutorUnavailable, RuntimeError):
            await self._link.call("unplace_job", CALL_TIMEOUT, job_id=job_id)

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
                except RuntimeError as exc:  # the driver failed the call: was the node lost?
                    lost = await self._lost_in(node_id, exc)
                    if lost is None:
                        raise
                    answer = lost
                if "lost" in answer:
                    await self._unplace_job(job_id)
                    yield self._lost_event(node_id, answer)
                    return
                outcome = answer["outcome"]
                if outcome is not None:
                    yield event_from_json(outcome)  # type: ignore[misc]
                return
        finally:
            self._running.pop(job_id, None)

    async def _lost_in(self, node_id: str, exc: RuntimeError) -> dict[str, Any] | None:
        """A call to the node's agent failed with an error the driver did not read as a loss:
        a loss still if Ray says the node died (or the head never knew it); else None."""
        try:
            node = await self._link.call("node", CALL_TIMEOUT, node_id=node_id)
        except (ExecutorUnavailable, RuntimeError):
            return None
        if node["alive"]:
            return None
        kind = "node" if node["address"] is not None else "agent"
        return {"lost": kind, "detail": str(exc), **node}

    def _lost_event(self, node_id: str, answer: dict[str, Any]) -> ErrorEvent:
        """The end of a job whose node died (INTERRUPTED: it did not fail, its machine went),
        or whose agent is gone from a node that lives on."""
        address = answer.get("address") or self._addresses.get(node_id)
        node = self.node_name(node_id, address)
        if answer["lost"] == "node":
            return ErrorEvent(
                f"the {node} that ran this job was lost (the node died), and the job with it; "
                f"its interim results up to then are kept (Ray: {answer['detail']})",
                JobReason.INTERRUPTED,
            )
        return ErrorEvent(
            f"the qruntime agent that ran this job on {node} is gone ({answer['detail']}); "
            "the Ray cluster may have restarted",
            JobReason.PROCESS_CRASHED,
        )

    @staticmethod
    def node_name(node_id: str, address: str | None) -> str:
        return f"Ray node {address or '(address unknown)'} ({node_id[:12]})"

    def _compare_settings(self) -> None:
        """Warn (log, ``/health``) when running agents keep settings other than this
        replica's: they were started by a replica configured otherwise, and run its jobs so."""
        differing = []
        for agent in self._agents:
            theirs = agent.get("settings")
            if theirs is None or agent.get("fingerprint") == self._fingerprint:
                continue
            address = self._addresses.get(agent["node_id"])
            differing.append(
                {
                    "node_id": agent["node_id"],
                    "address": address,
                    "fingerprint": agent.get("fingerprint"),
                    "settings": differences(theirs, self._settings),
                }
            )
        if differing != self._differing:
            for agent in differing:
                log.warning(
                    "the qruntime agent on %s runs jobs with other settings than this "
                    "replica's (it keeps those of the replica that started it): %s; give every "
                    "replica the same settings, or restart the agents",
                    self.node_name(agent["node_id"], agent["address"]),
                    describe(agent["settings"]),
                )
        self._differing = differing

    async def _until_connected(self) -> None:
        while not await self._link.connect():
            await asyncio.sleep(self.config.watch_seconds)

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
                    self._compare_settings()
            except ExecutorUnavailable:
                pass  # slow agents are no sign of a lost head; the nodes' reading says
            except RuntimeError as exc:
                log.warning("reading the Ray nodes: %s", exc)
            await asyncio.sleep(self.config.watch_seconds)


def _take(free: list[dict[str, float]], resources: JobResources) -> bool:
    """Take the job's bundle from the first node that has it free; False if none has."""
    bundle = resources.ray_bundle()
    for node in free:
        if all(node.get(name, 0.0) >= amount for name, amount in bundle.items()):
            for name, amount in bundle.items():
                node[name] = node.get(name, 0.0) - amount
            return True
    return False
