"""Per-job limits on what a program sends back, checked in the worker and again by its supervisor.

The worker's checks give the program a clear exception; the supervisor's hold even against a
program that writes frames itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class JobLimits:
    #: Interim results one job may publish (QRUNTIME_MAX_INTERIM_RESULTS).
    max_interim_results: int = 100_000
    #: Encoded size of one interim result (QRUNTIME_MAX_INTERIM_BYTES).
    max_interim_bytes: int = MiB
    #: Interim results per second before the supervisor slows the job down (backpressure).
    max_interim_rate: float = 10_000.0
    #: Encoded size of the final result (QRUNTIME_MAX_RESULT_BYTES).
    max_result_bytes: int = 64 * MiB

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: dict[str, Any] | None) -> JobLimits:
        return cls(**payload) if payload else cls()

    @property
    def max_frame_bytes(self) -> int:
        """The largest event-pipe frame a worker within these limits can send."""
        return max(self.max_interim_bytes, self.max_result_bytes) + 4096


def too_many_interims(limit: int) -> str:
    return (
        f"the job published more than {limit} interim results, the server's limit "
        "(QRUNTIME_MAX_INTERIM_RESULTS)"
    )


def interim_too_large(size: int, limit: int) -> str:
    return (
        f"an interim result of {size} bytes (encoded) is over the server's limit of {limit} "
        "bytes (QRUNTIME_MAX_INTERIM_BYTES)"
    )


def result_too_large(size: int, limit: int) -> str:
    return (
        f"the result of main() is {size} bytes (encoded), over the server's limit of {limit} "
        "bytes (QRUNTIME_MAX_RESULT_BYTES)"
    )


def unstorable(what: str, problem: str) -> str:
    """Why something a job sent back (``what``: "an interim result", "the result of main()")
    cannot be stored; ``problem`` comes from ``domain.text.published_json_problem``."""
    return f"{what} cannot be stored: it {problem}"
