"""A Ray node lost while its agent is called (handing a job over, or waiting on it) ends the job
naming the node, whatever error Ray raised; fakes stand in for Ray's calls, its errors are Ray's.
The real cluster's node losses are in tests/integration/test_ray_executor.py."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from qruntime.domain.events import ErrorEvent
from qruntime.domain.job import JobReason
from qruntime.execution import ray_driver
from qruntime.execution.ray_driver import Driver, lost_agent_errors
from qruntime.execution.ray_executor import RayExecutor, RayExecutorConfig
from qruntime.execution.request import JobRequest

errors = pytest.importorskip("ray.exceptions")

NODE = "f" * 56
ADDRESS = "10.0.0.7"

LOSSES: dict[str, Callable[[], BaseException]] = {
    "ActorDiedError": lambda: errors.ActorDiedError(),
    "ActorUnavailableError": lambda: errors.ActorUnavailableError("connection lost", None),
    "ActorUnschedulableError": lambda: errors.ActorUnschedulableError("its node is dead"),
    "NodeDiedError": lambda: errors.NodeDiedError("the node died"),
    "WorkerCrashedError": lambda: errors.WorkerCrashedError(),
}


class FailingAgent:
    """An agent handle whose every call fails with ``error``."""

    def __init__(self, error: BaseException):
        self.error = error

    def __getattr__(self, method: str) -> Any:
        async def remote(*args: Any) -> Any:
            raise self.error

        return SimpleNamespace(remote=remote)


class FakeRay:
    """Ray's node table (the head keeps dead nodes) and no named actors."""

    exceptions = errors

    def __init__(self, alive: bool):
        self._nodes = [{"NodeID": NODE, "Alive": alive, "NodeManagerAddress": ADDRESS}]

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes

    def get_actor(self, name: str, namespace: str) -> Any:
        raise ValueError(f"Failed to look up actor {name}")


def driver(agent: Any | None, *, alive: bool = False) -> Driver:
    made = Driver.__new__(Driver)  # its __init__ needs Ray itself
    made.spec = SimpleNamespace(namespace="qruntime")  # type: ignore[assignment]
    made._ray = FakeRay(alive)
    made._agents = {NODE: agent} if agent is not None else {}
    made._starting = {}
    made._gone = lost_agent_errors(errors)
    return made


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_driver, "UNAVAILABLE_SECONDS", 0.0)


@pytest.mark.parametrize("name", LOSSES)
async def test_a_start_or_wait_failed_by_a_dead_node_says_the_node_was_lost(name: str) -> None:
    agent = FailingAgent(LOSSES[name]())
    started = await driver(agent).start(NODE, {"job_id": "j"}, None)
    waited = await driver(agent).wait(NODE, "j")
    for answer in (started, waited):
        assert answer["lost"] == "node" and answer["address"] == ADDRESS, answer


async def test_the_same_error_on_a_live_node_is_the_agent_gone() -> None:
    agent = FailingAgent(errors.ActorDiedError())
    answer = await driver(agent, alive=True).wait(NODE, "j")
    assert answer["lost"] == "agent" and answer["address"] == ADDRESS, answer


async def test_a_dead_node_with_no_agent_left_is_the_node_lost() -> None:
    """A new driver (the old one died) finds no live agent there: the node died, not only the
    agent (it said 'agent gone' before)."""
    answer = await driver(None).wait(NODE, "j")
    assert answer["lost"] == "node" and "no agent of this service" in answer["detail"], answer


class FakeLink:
    """The replica's driver link: each op's answer, or the error the driver sent for it."""

    connected = True

    def __init__(self, **answers: Any):
        self.answers = answers

    async def call(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        answer = self.answers.get(op)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def executor(**answers: Any) -> RayExecutor:
    made = RayExecutor(RayExecutorConfig(address="127.0.0.1:1"), sink_factory=lambda: None)  # type: ignore[arg-type]
    base = {"place": {"node_id": NODE, "placement_group": "g"}, "start": {"started": True}}
    made._link = FakeLink(**(base | answers))  # type: ignore[assignment]
    return made


async def events_of(made: RayExecutor) -> list[Any]:
    return [event async for event in made.run(JobRequest("j", "source", "backend"))]


@pytest.mark.parametrize("op", ["start", "wait"])
async def test_a_driver_error_from_a_node_ray_says_died_ends_the_job_naming_it(op: str) -> None:
    """An error the driver did not read as a loss (it became 'internal error: ...' before)."""
    failed = RuntimeError("RayError: the node is gone")
    made = executor(**{op: failed, "node": {"alive": False, "address": ADDRESS}})
    [event] = await events_of(made)
    assert isinstance(event, ErrorEvent) and event.reason is JobReason.INTERRUPTED, event
    assert f"Ray node {ADDRESS} ({NODE[:12]})" in event.message, event
    assert "was lost (the node died)" in event.message and "the node is gone" in event.message


async def test_a_driver_error_on_a_live_node_stays_an_error_of_its_own() -> None:
    made = executor(wait=RuntimeError("KeyError: 'x'"), node={"alive": True, "address": ADDRESS})
    with pytest.raises(RuntimeError, match="KeyError"):
        await events_of(made)
