"""Everything a worker needs to run one job, sent to it as JSON before it starts the program."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class JobRequest:
    """One job as the executor sees it; inputs stay RuntimeEncoder JSON text."""

    job_id: str
    source: str
    backend_name: str
    inputs: str = "{}"
    max_execution_time: float = 8 * 3600
    program_name: str = "program"
    #: The SandboxPlan (as JSON) the worker applies before the program runs; None: no sandbox.
    sandbox: dict[str, Any] | None = None
    #: JobLimits as JSON; None means the defaults.
    limits: dict[str, Any] | None = None
    #: JobResources as JSON (CPUs, memory, GPUs to reserve); None means the defaults.
    resources: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> JobRequest:
        return cls(**payload)
