"""The supervisor enforces the job limits even against a program that writes frames itself."""

from __future__ import annotations

import textwrap

from qruntime.domain.events import ErrorEvent, InterimEvent, ResultEvent
from qruntime.domain.job import JobReason
from qruntime.execution import JobRequest, LocalExecutor, LocalExecutorConfig
from qruntime.execution.limits import JobLimits

#: Bypasses user_messenger: finds the event pipe and writes interim frames directly.
FORGER = textwrap.dedent(
    """
    import json, os, struct

    def main(backend, user_messenger, count, size):
        fd = user_messenger._event_fd
        for seq in range(1, count + 1):
            body = json.dumps({"type": "interim", "seq": seq, "data": json.dumps("x" * size)})
            os.write(fd, struct.pack(">I", len(body)) + body.encode())
        return "forged"
    """
)


async def run(limits: JobLimits, source: str, inputs: str) -> list:
    executor = LocalExecutor(LocalExecutorConfig(limits=limits))
    request = JobRequest("job-1", source, "aer_simulator", inputs, 60, "forger")
    return [event async for event in executor.run(request)]


async def test_too_many_forged_interims_stop_the_job_naming_the_limit():
    events = await run(JobLimits(max_interim_results=5), FORGER, '{"count": 50, "size": 1}')

    assert sum(isinstance(e, InterimEvent) for e in events) == 5
    final = events[-1]
    assert isinstance(final, ErrorEvent) and final.reason is JobReason.PROGRAM_FAILED
    assert "more than 5 interim results" in final.message


async def test_a_forged_interim_over_the_size_limit_stops_the_job():
    events = await run(JobLimits(max_interim_bytes=1000), FORGER, '{"count": 1, "size": 5000}')

    final = events[-1]
    assert isinstance(final, ErrorEvent)
    assert "over the server's limit of 1000 bytes" in final.message


async def test_a_result_over_the_limit_is_an_error_naming_the_setting():
    source = "def main(backend, user_messenger, n):\n    return 'x' * n\n"

    small = await run(JobLimits(max_result_bytes=1000), source, '{"n": 10}')
    big = await run(JobLimits(max_result_bytes=1000), source, '{"n": 5000}')

    assert isinstance(small[-1], ResultEvent)
    assert isinstance(big[-1], ErrorEvent)
    assert "QRUNTIME_MAX_RESULT_BYTES" in big[-1].message
