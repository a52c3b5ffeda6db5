"""The Ray driver of one replica, in a child process of its own.

Ray's core worker ends a driver whose cluster (GCS) stays unreachable; in a child process that
ends only this child, and the replica starts another (:mod:`qruntime.execution.ray_link`).
Run as ``python -m qruntime.execution.ray_driver``: the first line on stdin is the pickled
:class:`DriverSpec`, then one JSON request per line; answers go, one JSON line each, to the
file descriptor named on the command line (stdout is left to Ray's own messages).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import pickle
import sys
import uuid
from dataclasses import dataclass
from typing import Any

from qruntime.execution.event_sink import SinkFactory
from qruntime.execution.local import LocalExecutorConfig
from qruntime.execution.worker import die_with_supervisor

#: Calls an agent may take at once (its waits last as long as its jobs).
AGENT_CONCURRENCY = 100_000
#: How long an agent whose connection broke is asked again before it counts as gone: long
#: enough for Ray to find out whether its node died (by default about half a minute).
UNAVAILABLE_SECONDS = 60.0


@dataclass(frozen=True)
class DriverSpec:
    address: str
    namespace: str
    agent: LocalExecutorConfig
    sink_factory: SinkFactory


def agent_name(node_id: str) -> str:
    return f"qruntime-agent-{node_id}"


class Driver:
    """The operations a replica asks of Ray, each one request and one answer."""

    def __init__(self, spec: DriverSpec):
        import ray

        from qruntime.execution.ray_agent import RayAgent

        self.spec = spec
        self._ray = ray
        self._agent_class = ray.remote(RayAgent)
        self._agents: dict[str, Any] = {}
        self._starting: dict[str, asyncio.Task[Any]] = {}
        self._gone = lost_agent_errors(ray.exceptions)

    def hello(self) -> dict[str, Any]:
        context = self._ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "cluster": _cluster_id(), "pid": os.getpid()}

    async def nodes(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._nodes)  # Ray's state calls block

    def _nodes(self) -> list[dict[str, Any]]:
        from ray._private.state import available_resources_per_node

        free = available_resources_per_node()
        return [
            {
                "node_id": node["NodeID"],
                "address": node["NodeManagerAddress"],
                "total": _plain(node.get("Resources", {})),
                "free": _plain(free.get(node["NodeID"], {})),
            }
            for node in self._ray.nodes()
            if node.get("Alive")
        ]

    async def place(self, job_id: str, bundle: dict[str, float]) -> dict[str, Any]:
        """Reserve the job's resources where Ray finds room; waits while none is free."""
        from ray.util import placement_group, placement_group_table

        prefix = self._group_prefix(job_id)
        await asyncio.to_thread(self._remove_groups, prefix)  # left by an earlier try
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        group = placement_group([bundle], strategy="STRICT_PACK", name=name, lifetime="detached")
        try:
            await group.ready()
        except BaseException:
            self._ray.util.remove_placement_group(group)
            raise
        node_id = placement_group_table(group)["bundles_to_node_id"][0]
        return {"placement_group": name, "node_id": node_id}

    def _group_prefix(self, job_id: str) -> str:
        return f"qruntime-{self.spec.namespace}-{job_id}-"

    async def unplace_job(self, job_id: str) -> None:
        """Remove the job's reservations: a lost node's would be placed again elsewhere by
        Ray (detached groups outlive their node) and hold resources for a job that is over."""
        await asyncio.to_thread(self._remove_groups, self._group_prefix(job_id))

    def _remove_groups(self, prefix: str) -> None:
        from ray.util import get_placement_group, placement_group_table, remove_placement_group

        for group in placement_group_table().values():
            name = group.get("name") or ""
            if name.startswith(prefix) and group.get("state") != "REMOVED":
                with contextlib.suppress(Exception):
                    remove_placement_group(get_placement_group(name))

    async def unplace(self, placement_group: str) -> None:
        from ray.util import get_placement_group, remove_placement_group

        with contextlib.suppress(ValueError):  # gone already
            remove_placement_group(get_placement_group(placement_group))

    async def start(
        self, node_id: str, request: dict[str, Any], placement_group: str | None
    ) -> dict[str, Any]:
        """``{"started": bool}`` (False: the agent already had the job); ``{"lost": ...}`` (as
        :meth:`wait` says it) when the node or its agent died while the job was handed over."""
        try:
            agent = await self._agent(node_id)
            return {"started": await self._ask(agent, "start", request, placement_group)}
        except self._gone as exc:
            self._agents.pop(node_id, None)
            return await self._lost(node_id, _first(exc))

    async def wait(self, node_id: str, job_id: str) -> dict[str, Any]:
        """``{"outcome": ...}`` from the agent; else ``{"lost": "node" or "agent", "detail":
        ...}`` when the job's node died, or its agent is gone or never had the job."""
        agent = self._existing_agent(node_id)
        if agent is None:  # its node may have died (a new driver finds no live agent there)
            return await self._lost(node_id, "no agent of this service runs there")
        try:
            answer = await self._ask(agent, "wait", job_id)
        except self._gone as exc:
            self._agents.pop(node_id, None)
            return await self._lost(node_id, _first(exc))
        if answer is None:
            return {"lost": "agent", "detail": "its agent there does not know the job"}
        return answer

    async def _ask(self, agent: Any, method: str, *args: Any) -> Any:
        """An agent's answer. A broken connection (``ActorUnavailableError``: its process or
        node may be dying, and Ray does not know yet) is asked again until Ray knows; a dead
        agent then raises ``ActorDiedError``. Both of its calls asked here may be repeated:
        a start the agent already got answers False, a wait waits on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UNAVAILABLE_SECONDS
        while True:
            try:
                return await getattr(agent, method).remote(*args)
            except self._ray.exceptions.ActorUnavailableError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _lost(self, node_id: str, detail: str) -> dict[str, Any]:
        """Whether the node died (else only its agent), with its address for the message; a
        node this head never knew reads as an agent gone (the cluster restarted)."""
        try:
            node = await self.node(node_id)
        except Exception as exc:  # the head does not answer: the cluster may be restarting
            detail = f"{detail}; Ray's node table could not be read: {_first(exc)}"
            return {"lost": "agent", "detail": detail, "alive": None, "address": None}
        dead = node["address"] is not None and not node["alive"]
        return {"lost": "node" if dead else "agent", "detail": detail, **node}

    async def node(self, node_id: str) -> dict[str, Any]:
        """``{"alive": bool, "address": str | None}`` of a node, dead ones included (Ray's
        head keeps them); ``alive`` False and no address when this head never knew it."""
        for node in await asyncio.to_thread(self._ray.nodes):
            if node["NodeID"] == node_id:
                return {"alive": bool(node["Alive"]), "address": node["NodeManagerAddress"]}
        return {"alive": False, "address": None}

    async def cancel(self, node_id: str, job_id: str) -> bool:
        agent = self._existing_agent(node_id)
        if agent is None:
            return False
        try:
            return await agent.cancel.remote(job_id)
        except self._gone:
            return False

    async def locate(self, job_id: str) -> str | None:
        """The node whose agent has (or had) the job; None when no live agent knows it."""
        for node in await self.nodes():
            agent = self._existing_agent(node["node_id"])
            if agent is None:
                continue
            try:
                if await self._ask(agent, "has", job_id):
                    return node["node_id"]
            except self._gone:
                continue
        return None

    async def agents(self) -> list[dict[str, Any]]:
        """Every live node's agent, started where there is none yet (its warm pool is then
        ready before the first job arrives); nodes without CPUs or GPUs get none."""
        found = []
        for node in await self.nodes():
            if not (node["total"].get("CPU") or node["total"].get("GPU")):
                continue  # no job is ever placed there (a replica's own zero-CPU node)
            agent = self._existing_agent(node["node_id"])
            if agent is None:  # started in the background: a later round reports it
                self._start_agent_soon(node["node_id"])
            else:
                try:
                    found.append(await asyncio.wait_for(agent.status.remote(), 3.0))
                except (*self._gone, TimeoutError):
                    continue  # its node is going away
        return found

    def _start_agent_soon(self, node_id: str) -> None:
        if node_id in self._starting:
            return
        task = asyncio.get_running_loop().create_task(self._agent(node_id))
        self._starting[node_id] = task
        task.add_done_callback(lambda _: self._starting.pop(node_id, None))

    async def _agent(self, node_id: str) -> Any:
        """This node's agent, started (pinned to the node, outliving this driver) if needed."""
        agent = self._existing_agent(node_id)
        if agent is not None:
            return agent
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        agent = self._agent_class.options(
            name=agent_name(node_id),
            namespace=self.spec.namespace,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_restarts=0,
            max_concurrency=AGENT_CONCURRENCY,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(self.spec.agent, self.spec.sink_factory, node_id)
        await agent.ready.remote()
        self._agents[node_id] = agent
        return agent

    def _existing_agent(self, node_id: str) -> Any | None:
        agent = self._agents.get(node_id)
        if agent is not None:
            return agent
        try:
            agent = self._ray.get_actor(agent_name(node_id), namespace=self.spec.namespace)
        except ValueError:
            return None
        self._agents[node_id] = agent
        return agent


def lost_agent_errors(errors: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors (of module ``errors``) for a call to an agent whose process or node is
    gone or going: the node's loss, never the job's fault."""
    return (
        errors.RayActorError,  # ActorDiedError, ActorUnavailableError (asked again first)
        errors.ActorUnschedulableError,  # an agent started for a node that is gone
        errors.NodeDiedError,
        errors.ObjectLostError,  # OwnerDiedError...: the answer was lost with its node
        errors.WorkerCrashedError,
    )


def _cluster_id() -> str:
    try:
        from ray._private import worker

        return worker.global_worker.current_cluster_and_job[0].hex()
    except Exception:
        return ""


def _plain(resources: dict[str, Any]) -> dict[str, float]:
    """Ray's resource map without its per-node and per-group bookkeeping entries."""
    return {k: float(v) for k, v in resources.items() if ":" not in k and "_group_" not in k}


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


async def _serve(driver: Driver, out: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    calls: dict[int, asyncio.Task[None]] = {}

    def answer(payload: dict[str, Any]) -> None:
        data = (json.dumps(payload) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]

    async def handle(message: dict[str, Any]) -> None:
        call_id = message["id"]
        try:
            method = getattr(driver, message["op"])
            result = method(**message.get("args", {}))
            if asyncio.iscoroutine(result):
                result = await result
            answer({"id": call_id, "result": result})
        except asyncio.CancelledError:
            answer({"id": call_id, "cancelled": True})
        except Exception as exc:
            answer({"id": call_id, "error": f"{type(exc).__name__}: {_first(exc)}"})
        finally:
            calls.pop(call_id, None)

    while line := await reader.readline():
        message = json.loads(line)
        if message.get("op") == "abandon":  # the replica gave up on that call
            task = calls.get(message["args"]["call"])
            if task is not None:
                task.cancel()
            continue
        calls[message["id"]] = loop.create_task(handle(message))


def main() -> None:
    out, replica_pid = int(sys.argv[1]), int(sys.argv[2])
    die_with_supervisor(replica_pid)  # a driver of a SIGKILLed replica would hold on forever
    spec: DriverSpec = pickle.loads(base64.b64decode(sys.stdin.buffer.readline()))
    import ray

    host = spec.address.rsplit(":", 1)[0]
    options: dict[str, Any] = {}
    if host.startswith("127."):  # a cluster on this host: talk to it on the loopback address
        options["_node_ip_address"] = host
    try:
        ray.init(
            address=spec.address,
            namespace=spec.namespace,
            log_to_driver=False,
            logging_level="WARNING",
            configure_logging=False,
            **options,
        )
        driver = Driver(spec)
        os.write(out, (json.dumps({"id": 0, "result": driver.hello()}) + "\n").encode())
    except Exception as exc:
        os.write(out, (json.dumps({"id": 0, "error": _first(exc)}) + "\n").encode())
        sys.exit(3)
    asyncio.run(_serve(driver, out))


if __name__ == "__main__":
    main()
